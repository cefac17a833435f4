# Attacks on every trained model (issue #4): transferred FGSM, Boundary Attack and the
# spectrum of its perturbations, white-box FGSM/PGD-L∞, minimal Lp distances.


rule fgsm_perturbations:
    input:
        model=fgsm_source_model,
        task=lambda w: paths.dataset_file(w.task),
    output:
        "results/fgsm/perturbations/{task}/seed{seed}.h5",
    log:
        "results/logs/fgsm_perturbations/{task}/seed{seed}.log",
    conda:
        "../../envs/simreg.yaml"
    threads: config["resources"]["eval_threads"]
    resources:
        mem_mb=config["resources"]["eval_mem_mb"],
        runtime=config["resources"]["eval_runtime"],
        gpu=config["resources"]["gpu"],
    params:
        n_images=optional("--n-images", config["fgsm_transfer"]["n_images"]),
        batch_size=config["fgsm_transfer"]["batch_size"],
        model_keys=lambda w: json.dumps(paths.fgsm_source(w.task, w.seed).columns()),
        device=config["training"]["device"],
    shell:
        "simreg fgsm-perturbations --model {input.model} --dataset {input.task} --out {output}"
        " {params.n_images} --batch-size {params.batch_size} --keys '{params.model_keys}'"
        " --device {params.device} 2> {log}"


rule fgsm_transfer:
    input:
        model=rules.train.output.model,
        perturbations=lambda w: paths.fgsm_perturbations_file(w.task, w.seed),
        task=lambda w: paths.dataset_file(w.task),
    output:
        f"results/fgsm/transfer/{paths.MODEL_STEM}.csv",
    log:
        f"results/logs/fgsm_transfer/{paths.MODEL_STEM}.log",
    conda:
        "../../envs/simreg.yaml"
    threads: config["resources"]["eval_threads"]
    resources:
        mem_mb=config["resources"]["eval_mem_mb"],
        runtime=config["resources"]["eval_runtime"],
        gpu=config["resources"]["gpu"],
    params:
        epsilons=lambda w: json.dumps(dataset_grid(config["fgsm_transfer"], w.task)),
        model_keys=lambda w: json.dumps(model_key(w).columns()),
        device=config["training"]["device"],
    shell:
        "simreg fgsm-transfer --model {input.model} --perturbations {input.perturbations}"
        " --dataset {input.task} --out {output} --epsilons '{params.epsilons}'"
        " --keys '{params.model_keys}' --device {params.device} 2> {log}"


rule boundary:
    input:
        model=rules.train.output.model,
        task=lambda w: paths.dataset_file(w.task),
    output:
        csv=f"results/boundary/{{setting}}/{paths.MODEL_STEM}.csv",
        h5=f"results/boundary/{{setting}}/{paths.MODEL_STEM}.h5",
    log:
        f"results/logs/boundary/{{setting}}/{paths.MODEL_STEM}.log",
    wildcard_constraints:
        setting="|".join(config["boundary"]["settings"]),
    conda:
        "../../envs/simreg.yaml"
    threads: config["resources"]["eval_threads"]
    resources:
        mem_mb=config["resources"]["eval_mem_mb"],
        runtime=config["resources"]["attack_runtime"],
        gpu=config["resources"]["gpu"],
    params:
        attack=lambda w: json.dumps(config["boundary"]["settings"][w.setting]),
        n_images=optional("--n-images", config["boundary"]["n_images"]),
        repeats=config["boundary"]["repeats"],
        seed=config["boundary"]["subset_seed"],
        batch_size=config["boundary"]["batch_size"],
        init=" ".join(
            f"--{key.replace('_', '-')} {config['boundary'][key]}"
            for key in ("init_retries", "init_directions", "init_steps")
        ),
        model_keys=lambda w: json.dumps(model_key(w).columns()),
        device=config["training"]["device"],
    shell:
        "simreg boundary --model {input.model} --dataset {input.task} --out {output.csv}"
        " --perturbations-out {output.h5} --setting {wildcards.setting}"
        " --attack '{params.attack}' {params.n_images} --repeats {params.repeats}"
        " --seed {params.seed} --batch-size {params.batch_size} {params.init}"
        " --keys '{params.model_keys}' --device {params.device} 2> {log}"


rule spectrum:
    input:
        rules.boundary.output.h5,
    output:
        f"results/spectrum/{{setting}}/{paths.MODEL_STEM}.h5",
    log:
        f"results/logs/spectrum/{{setting}}/{paths.MODEL_STEM}.log",
    conda:
        "../../envs/simreg.yaml"
    resources:
        mem_mb=config["resources"]["eval_mem_mb"],
        runtime=config["resources"]["eval_runtime"],
    params:
        model_keys=lambda w: json.dumps(model_key(w).columns()),
    shell:
        "simreg spectrum --boundary {input} --out {output} --keys '{params.model_keys}' 2> {log}"


rule whitebox:
    input:
        model=rules.train.output.model,
        task=lambda w: paths.dataset_file(w.task),
    output:
        f"results/whitebox/{paths.MODEL_STEM}.csv",
    log:
        f"results/logs/whitebox/{paths.MODEL_STEM}.log",
    conda:
        "../../envs/simreg.yaml"
    threads: config["resources"]["eval_threads"]
    resources:
        mem_mb=config["resources"]["eval_mem_mb"],
        runtime=config["resources"]["eval_runtime"],
        gpu=config["resources"]["gpu"],
    params:
        epsilons=json.dumps(config["whitebox"]["epsilons_255"]),
        n_images=optional("--n-images", config["whitebox"]["n_images"]),
        pgd_steps=config["whitebox"]["pgd_steps"],
        pgd_rel_stepsize=config["whitebox"]["pgd_rel_stepsize"],
        seed=config["whitebox"]["seed"],
        batch_size=config["whitebox"]["batch_size"],
        model_keys=lambda w: json.dumps(model_key(w).columns()),
        device=config["training"]["device"],
    shell:
        "simreg whitebox --model {input.model} --dataset {input.task} --out {output}"
        " --epsilons-255 '{params.epsilons}' {params.n_images} --pgd-steps {params.pgd_steps}"
        " --pgd-rel-stepsize {params.pgd_rel_stepsize} --seed {params.seed}"
        " --batch-size {params.batch_size} --keys '{params.model_keys}'"
        " --device {params.device} 2> {log}"


rule minimal_distance:
    input:
        model=rules.train.output.model,
        task=lambda w: paths.dataset_file(w.task),
    output:
        f"results/minimal_distance/{paths.MODEL_STEM}.csv",
    log:
        f"results/logs/minimal_distance/{paths.MODEL_STEM}.log",
    conda:
        "../../envs/simreg.yaml"
    threads: config["resources"]["eval_threads"]
    resources:
        mem_mb=config["resources"]["eval_mem_mb"],
        runtime=config["resources"]["attack_runtime"],
        gpu=config["resources"]["gpu"],
    params:
        suite=json.dumps(config["minimal_distance"]["suite"]),
        n_images=config["minimal_distance"]["n_images"],
        seed=config["minimal_distance"]["seed"],
        batch_size=config["minimal_distance"]["batch_size"],
        model_keys=lambda w: json.dumps(model_key(w).columns()),
        device=config["training"]["device"],
    shell:
        "simreg minimal-distance --model {input.model} --dataset {input.task} --out {output}"
        " --suite '{params.suite}' --n-images {params.n_images} --seed {params.seed}"
        " --batch-size {params.batch_size} --keys '{params.model_keys}'"
        " --device {params.device} 2> {log}"
