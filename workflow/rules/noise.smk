rule noise:
    input:
        model=rules.train.output.model,
        task=lambda w: paths.dataset_file(w.task),
    output:
        f"results/noise/{paths.MODEL_STEM}.csv",
    log:
        f"results/logs/noise/{paths.MODEL_STEM}.log",
    conda:
        "../../envs/simreg.yaml"
    threads: config["resources"]["eval_threads"]
    resources:
        mem_mb=config["resources"]["eval_mem_mb"],
        runtime=config["resources"]["eval_runtime"],
        gpu=config["resources"]["gpu"],
    params:
        epsilons=noise_grid,
        seed=config["noise"]["seed"],
        n_images=(
            f"--n-images {config['noise']['n_images']}"
            if config["noise"]["n_images"]
            else ""
        ),
        model_keys=lambda w: json.dumps(model_key(w).columns()),
        device=config["training"]["device"],
    shell:
        "simreg noise --model {input.model} --dataset {input.task} --out {output}"
        " --epsilons '{params.epsilons}' --seed {params.seed} {params.n_images}"
        " --keys '{params.model_keys}' --device {params.device} 2> {log}"
