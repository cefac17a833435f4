# Downloads run where Snakemake runs (localrule: on a cluster, the login node, which has
# internet); the dataset job only reads what they fetched (simreg.data.download).
rule download:
    output:
        download.marker_file("{dataset}"),
    log:
        "results/logs/download/{dataset}.log",
    localrule: True
    conda:
        "../../envs/simreg.yaml"
    params:
        data_root=SETTINGS.data.root,
        code=command_code("download"),
    shell:
        "simreg download --name {wildcards.dataset} --data-root {params.data_root}"
        " --out {output} >> {log} 2>&1"


rule dataset:
    input:
        # your own data (data.npz): a real input, so a dry run sees a missing file and a
        # replaced file rebuilds the dataset
        npz=lambda w: SETTINGS.data.npz.get(w.dataset, []),
        # with data.download: the record of the download job (files under data.root)
        downloaded=lambda w: (
            download.marker_file(w.dataset)
            if download.downloads_dataset(config, w.dataset)
            else []
        ),
    output:
        dataset_file("{dataset}_{color}"),
    log:
        "results/logs/dataset/{dataset}_{color}.log",
    benchmark:
        "results/benchmarks/dataset/{dataset}_{color}.tsv"
    conda:
        "../../envs/simreg.yaml"
    resources:
        mem_mb=SETTINGS.resources.dataset_mem_mb,
        runtime=SETTINGS.resources.dataset_runtime,
    params:
        data_root=SETTINGS.data.root,
        npz=json.dumps(SETTINGS.data.npz),
        imagenet=(
            f"--imagenet-dir {SETTINGS.data.imagenet_dir}"
            if SETTINGS.data.imagenet_dir
            else ""
        ),
        test_fraction=SETTINGS.data.test_fraction,
        split_seed=SETTINGS.data.split_seed,
        code=command_code("dataset"),
    shell:
        "simreg dataset --name {wildcards.dataset} --color {wildcards.color} --out {output}"
        " --data-root {params.data_root} --no-download --npz '{params.npz}' {params.imagenet}"
        " --test-fraction {params.test_fraction} --split-seed {params.split_seed} >> {log} 2>&1"
