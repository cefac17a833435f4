# The neural arm (simreg.neural): recordings of mouse V1 (the config's, or simulated scans),
# the predictive model fitted per scan and model seed, and its similarity of a regularization
# set (simreg.targets.neural_similarity), which the `neural` methods train towards.


rule simulate_recordings:
    input:
        lambda w: dataset_file(paths.neural_stimuli(config)),
    output:
        paths.simulated_recordings_file("{scan}"),
    log:
        "results/logs/simulate_recordings/{scan}.log",
    benchmark:
        "results/benchmarks/simulate_recordings/{scan}.tsv"
    conda:
        "../../envs/simreg.yaml"
    resources:
        mem_mb=SETTINGS.resources.eval_mem_mb,
        runtime=SETTINGS.resources.eval_runtime,
    params:
        sizes=neural_params("simulation"),
        code=command_code("simulate_recordings"),
    shell:
        "simreg simulate-recordings --stimuli {input} --scan {wildcards.scan} --out {output}"
        " --params '{params.sizes}' >> {log} 2>&1"


rule fit_predictor:
    input:
        lambda w: [
            paths.recordings_file(config, s)
            for s in paths.predictor_scans(config, w.scan)
        ],
    output:
        **paths.predictor_files("{scan}", "{seed}"),
    log:
        "results/logs/fit_predictor/{scan}/seed{seed}.log",
    benchmark:
        "results/benchmarks/fit_predictor/{scan}/seed{seed}.tsv"
    conda:
        "../../envs/simreg.yaml"
    threads: SETTINGS.resources.train_threads
    resources:
        mem_mb=SETTINGS.resources.train_mem_mb,
        runtime=SETTINGS.resources.train_runtime,
        gpu=SETTINGS.resources.gpu,
        slurm_partition=devices.slurm_partition(SETTINGS.resources.gpu),
    params:
        settings=neural_params("predictor"),
        model_keys=lambda w: json.dumps({"scan": w.scan, "model_seed": int(w.seed)}),
        device=job_device,
        code=command_code("fit_predictor"),
    shell:
        "simreg fit-predictor --recordings {input} --seed {wildcards.seed}"
        " --model-out {output.model} --neurons-out {output.neurons}"
        " --summary-out {output.summary} --params '{params.settings}' --keys '{params.model_keys}'"
        " --device {params.device} --threads {threads} >> {log} 2>&1"


rule neural_similarity:
    input:
        predictors=paths.all_predictor_models(config),
        recordings=[
            paths.recordings_file(config, scan) for scan in paths.neural_scans(config)
        ],
        pixel=rules.similarity.output[0],
        images=rules.similarity.input[0],
    output:
        paths.neural_similarity_file("{dataset}_{color}_n{n}"),
    log:
        "results/logs/neural_similarity/{dataset}_{color}_n{n}.log",
    benchmark:
        "results/benchmarks/neural_similarity/{dataset}_{color}_n{n}.tsv"
    conda:
        "../../envs/simreg.yaml"
    resources:
        mem_mb=SETTINGS.resources.similarity_mem_mb,
        runtime=SETTINGS.resources.similarity_runtime,
    params:
        dtype=SETTINGS.similarity.dtype,
        block_size=SETTINGS.similarity.block_size,
        code=command_code("neural_similarity"),
    shell:
        "simreg neural-similarity --predictors {input.predictors} --pixel-similarity {input.pixel}"
        " --images {input.images} --recordings {input.recordings} --out {output}"
        " --dtype {params.dtype} --block-size {params.block_size} >> {log} 2>&1"
