# Evaluations of every trained model: one rule per registered kind (noise, fgsm_transfer,
# boundary, spectrum, whitebox, minimal_distance; simreg.evaluate.registry), all calling
# `simreg evaluate <kind>`. With resources.evaluation_jobs: per_model, one job per model runs
# every evaluation the config's targets read of it (evaluate_model: `simreg evaluate-model`, in
# one process, into its bundle folder), and <kind>_member links each file from the bundle to
# its usual path; a file no target reads is still made by its kind's rule. Each file has one
# of the two ways: the other's input is a path no rule makes (simreg.evaluate.bundles).

for evaluation in EVALUATIONS.values():

    rule:
        name:
            evaluation.name
        input:
            unpack(evaluation_inputs(evaluation)),
        output:
            **evaluation.output_files(MODEL, "{setting}"),
        log:
            evaluation.log_file(MODEL, "{setting}"),
        benchmark:
            benchmark_file(evaluation.name, evaluation.log_file(MODEL, "{setting}"))
        conda:
            "../../envs/simreg.yaml"
        threads: SETTINGS.resources.eval_threads
        resources:
            mem_mb=SETTINGS.resources.eval_mem_mb,
            runtime=getattr(SETTINGS.resources, evaluation.runtime),
            gpu=SETTINGS.resources.gpu if evaluation.gpu else 0,
            slurm_partition=devices.slurm_partition(
                SETTINGS.resources.gpu if evaluation.gpu else 0
            ),
        params:
            kind=evaluation.name,
            inputs=lambda w, input: named_files("--input", dict(input.items())),
            outputs=lambda w, output: named_files("--out", dict(output.items())),
            params=evaluation_params(evaluation),
            model_keys=lambda w: json.dumps(model_key(w).columns()),
            device=job_device,
            code=command_code("evaluate", evaluation.implementation),
        shell:
            EVALUATION_COMMAND


if EVALUATION_BUNDLES:

    rule evaluate_model:
        input:
            unpack(bundle_job_inputs),
        output:
            bundle=directory(bundle_dir(MODEL)),
        log:
            log_file("evaluate_model", MODEL),
        benchmark:
            benchmark_file("evaluate_model", log_file("evaluate_model", MODEL))
        conda:
            "../../envs/simreg.yaml"
        threads: SETTINGS.resources.eval_threads
        resources:
            mem_mb=SETTINGS.resources.eval_mem_mb,
            runtime=bundle_runtime,
            gpu=bundle_gpu,
            slurm_partition=lambda w: devices.slurm_partition(bundle_gpu(w)),
        params:
            evaluations=bundle_job_evaluations,
            model_keys=lambda w: json.dumps(model_key(w).columns()),
            device=job_device,
            code=bundle_code,
        shell:
            "simreg evaluate-model --evaluations '{params.evaluations}'"
            " --keys '{params.model_keys}' --device {params.device} >> {log} 2>&1"

    # One evaluation's files from its model's bundle: hard links (no second copy on disk), or
    # copies where the two folders are on different file systems.
    for evaluation in EVALUATIONS.values():

        rule:
            name:
                f"{evaluation.name}_member"
            input:
                bundle=member_bundle(evaluation),
            output:
                **evaluation.output_files(MODEL, "{setting}"),
            log:
                evaluation.log_file(MODEL, "{setting}"),
            localrule: True
            conda:
                "../../envs/simreg.yaml"
            params:
                links=member_links(evaluation),
            shell:
                "( {params.links} ) >> {log} 2>&1"
