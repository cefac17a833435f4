# The FGSM source: gradient signs of one unregularized model per task, trained with its own
# seed (fgsm_transfer.source_seed, outside every evaluated seed set), made once and read by
# every fgsm_transfer evaluation of the task, `none` included (simreg.evaluate.fgsm).


rule fgsm_perturbations:
    input:
        model=fgsm_source_model,
        task=lambda w: dataset_file(w.task),
    output:
        fgsm_perturbations_file("{task}", "{seed}"),
    log:
        "results/logs/fgsm_perturbations/{task}/seed{seed}.log",
    benchmark:
        "results/benchmarks/fgsm_perturbations/{task}/seed{seed}.tsv"
    conda:
        "../../envs/simreg.yaml"
    threads: SETTINGS.resources.eval_threads
    resources:
        mem_mb=SETTINGS.resources.eval_mem_mb,
        runtime=SETTINGS.resources.eval_runtime,
        gpu=SETTINGS.resources.gpu,
        slurm_partition=devices.slurm_partition(SETTINGS.resources.gpu),
    params:
        n_images=optional("--n-images", SETTINGS.fgsm_transfer.n_images),
        batch_size=SETTINGS.fgsm_transfer.batch_size,
        model_keys=lambda w: json.dumps(fgsm_source(w.task, w.seed).columns()),
        device=job_device,
        code=command_code("fgsm_perturbations"),
    shell:
        "simreg fgsm-perturbations --model {input.model} --dataset {input.task} --out {output}"
        " {params.n_images} --batch-size {params.batch_size} --keys '{params.model_keys}'"
        " --device {params.device} >> {log} 2>&1"
