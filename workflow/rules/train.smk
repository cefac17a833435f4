rule train:
    input:
        task=lambda w: paths.dataset_file(w.task),
        similarity=regularization_input,
        regularization_images=regularization_images,
    output:
        model=f"results/models/{paths.MODEL_STEM}/model.pt",
        metrics=f"results/models/{paths.MODEL_STEM}/metrics.csv",
    log:
        f"results/logs/train/{paths.MODEL_STEM}.log",
    conda:
        "../../envs/simreg.yaml"
    threads: config["resources"]["train_threads"]
    resources:
        mem_mb=lambda w, attempt: config["resources"]["train_mem_mb"] * attempt,
        runtime=lambda w, attempt: config["resources"]["train_runtime"] * attempt,
        gpu=config["resources"]["gpu"],
    params:
        # Checkpoints live outside the outputs, so a failed job keeps them and a rerun resumes.
        checkpoint_dir=f"results/checkpoints/{paths.MODEL_STEM}",
        similarity=lambda w, input: (
            f"--similarity {input.similarity}" if input.similarity else ""
        ),
        settings=lambda w: json.dumps(settings_from_config(config, model_key(w))),
        model_keys=lambda w: json.dumps(model_key(w).columns()),
        device=config["training"]["device"],
    shell:
        "simreg train --task-data {input.task} {params.similarity}"
        " --model-out {output.model} --metrics-out {output.metrics}"
        " --checkpoint-dir {params.checkpoint_dir} --settings '{params.settings}'"
        " --keys '{params.model_keys}' --device {params.device} --threads {threads} 2> {log}"
