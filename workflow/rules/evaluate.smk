# Evaluations of every trained model: one rule per registered kind (noise, fgsm_transfer,
# boundary, spectrum, whitebox, minimal_distance; simreg.evaluate.registry), all calling
# `simreg evaluate <kind>`.

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
