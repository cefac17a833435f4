# Training: one job per model key, whatever the method (simreg.train.regularizers); the
# method's own DAG inputs (similarity targets, a source model) come from its `needs`.


rule train:
    input:
        unpack(train_inputs),
    output:
        model=model_file(MODEL),
        metrics=metrics_file(MODEL),
    log:
        log_file("train", MODEL),
    conda:
        "../../envs/simreg.yaml"
    threads: config["resources"]["train_threads"]
    resources:
        mem_mb=lambda w, attempt: config["resources"]["train_mem_mb"] * attempt,
        runtime=lambda w, attempt: config["resources"]["train_runtime"] * attempt,
        gpu=config["resources"]["gpu"],
    params:
        # Checkpoints live outside the outputs, so a failed job keeps them and a rerun resumes.
        checkpoint_dir=checkpoint_dir(MODEL),
        inputs=lambda w, input: named_files(
            "--input", {k: v for k, v in input.items() if k != "task"}
        ),
        settings=train_settings,
        model_keys=lambda w: json.dumps(model_key(w).columns()),
        device=config["training"]["device"],
    shell:
        "simreg train --task-data {input.task} {params.inputs}"
        " --model-out {output.model} --metrics-out {output.metrics}"
        " --checkpoint-dir {params.checkpoint_dir} --settings '{params.settings}'"
        " --keys '{params.model_keys}' --device {params.device} --threads {threads} 2>> {log}"
