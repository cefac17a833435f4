rule dataset:
    input:
        # your own data (data.npz): a real input, so a dry run sees a missing file and a
        # replaced file rebuilds the dataset
        npz=lambda w: config["data"]["npz"].get(w.dataset, []),
    output:
        dataset_file("{dataset}_{color}"),
    log:
        "results/logs/dataset/{dataset}_{color}.log",
    conda:
        "../../envs/simreg.yaml"
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        data_root=config["data"]["root"],
        download="--download" if config["data"]["download"] else "--no-download",
        npz=json.dumps(config["data"]["npz"]),
        imagenet=(
            f"--imagenet-dir {config['data']['imagenet_dir']}"
            if config["data"]["imagenet_dir"]
            else ""
        ),
        test_fraction=config["data"]["test_fraction"],
        split_seed=config["data"]["split_seed"],
        code=command_code("dataset"),
    shell:
        "simreg dataset --name {wildcards.dataset} --color {wildcards.color} --out {output}"
        " --data-root {params.data_root} {params.download} --npz '{params.npz}' {params.imagenet}"
        " --test-fraction {params.test_fraction} --split-seed {params.split_seed} >> {log} 2>&1"
