# Corrupted test sets (CIFAR-10-C and the like; simreg.data.corrupted) and the RobustBench
# reference models scored on them (simreg.evaluate.robustbench). Our models are scored by
# the evaluation rule corruption_accuracy (evaluate.smk).

from simreg.evaluate.registry import robustbench_file
from simreg.paths import corruptions_file


# The official files (CIFAR-10-C, ...) are fetched on the login node (localrule), once per
# dataset; the corruptions job only reads them, or generates the set.
rule download_corruptions:
    output:
        download.corruptions_marker_file("{dataset}"),
    log:
        "results/logs/download/{dataset}_c.log",
    localrule: True
    conda:
        "../../envs/simreg.yaml"
    params:
        data_root=config["data"]["root"],
        directory=config["corruptions"]["dir"] or config["data"]["root"],
        source=config["corruptions"]["source"],
        code=command_code("download"),
    shell:
        "simreg download --corruptions --name {wildcards.dataset} --data-root {params.data_root}"
        " --dir {params.directory} --source {params.source} --out {output} >> {log} 2>&1"


rule corruptions:
    input:
        dataset=dataset_file("{dataset}_{color}"),
        rgb=dataset_file("{dataset}_rgb"),
        downloaded=lambda w: (
            download.corruptions_marker_file(w.dataset)
            if download.downloads_corruptions(config, w.dataset)
            else []
        ),
    output:
        corruptions_file("{dataset}_{color}"),
    log:
        "results/logs/corruptions/{dataset}_{color}.log",
    benchmark:
        "results/benchmarks/corruptions/{dataset}_{color}.tsv"
    conda:
        "../../envs/simreg.yaml"
    resources:
        mem_mb=config["resources"]["corruptions_mem_mb"],
        runtime=config["resources"]["corruptions_runtime"],
    params:
        source=config["corruptions"]["source"],
        directory=config["corruptions"]["dir"] or config["data"]["root"],
        verify="--verify" if config["corruptions"]["verify"] else "--no-verify",
        seed=config["corruptions"]["seed"],
        n_images=optional("--n-images", config["corruptions"]["n_images"]),
        code=command_code("corruptions"),
    shell:
        "simreg corruptions --name {wildcards.dataset} --color {wildcards.color}"
        " --dataset {input.dataset} --rgb-dataset {input.rgb} --out {output}"
        " --source {params.source} --dir {params.directory} --no-download {params.verify}"
        " --seed {params.seed} {params.n_images} >> {log} 2>&1"


# The weights are not an input: a missing file fails the job with its path and how to get
# it (shown here from the log), instead of a bare "missing input" from Snakemake.
rule robustbench_corruptions:
    input:
        corruptions=corruptions_file("{task}"),
    output:
        robustbench_file("{task}", "{threat_model}", "{name}"),
    log:
        "results/logs/robustbench_corruptions/{task}/{threat_model}/{name}.log",
    benchmark:
        "results/benchmarks/robustbench_corruptions/{task}/{threat_model}/{name}.tsv"
    wildcard_constraints:
        threat_model="corruptions|Linf|L2",
        name=r"[A-Za-z0-9_-]+",
    conda:
        "../../envs/robustbench.yaml"
    threads: config["resources"]["eval_threads"]
    resources:
        mem_mb=config["resources"]["eval_mem_mb"],
        runtime=config["resources"]["eval_runtime"],
        gpu=config["resources"]["gpu"],
        slurm_partition=devices.slurm_partition(config["resources"]["gpu"]),
    params:
        model_dir=config["robustbench"]["model_dir"],
        severities=" ".join(str(s) for s in config["robustbench"]["severities"]),
        n_images=optional("--n-images", config["robustbench"]["n_images"]),
        batch_size=config["robustbench"]["batch_size"],
        device=job_device,
        code=command_code("robustbench_corruptions"),
    shell:
        "simreg robustbench-corruptions --name {wildcards.name}"
        " --threat-model {wildcards.threat_model} --model-dir {params.model_dir}"
        " --corruptions {input.corruptions} --out {output} --severities {params.severities}"
        " {params.n_images} --batch-size {params.batch_size} --device {params.device}"
        " >> {log} 2>&1 || (tail -n 3 {log} >&2; exit 1)"
