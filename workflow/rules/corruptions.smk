# Corrupted test sets (CIFAR-10-C and the like; simreg.data.corrupted) and the RobustBench
# reference models scored on them (simreg.evaluate.robustbench). Our models are scored by
# the evaluation rule corruption_accuracy (evaluate.smk).

from simreg.evaluate.registry import robustbench_file
from simreg.paths import corruptions_file


rule corruptions:
    input:
        dataset=dataset_file("{dataset}_{color}"),
        rgb=dataset_file("{dataset}_rgb"),
    output:
        corruptions_file("{dataset}_{color}"),
    log:
        "results/logs/corruptions/{dataset}_{color}.log",
    conda:
        "../../envs/simreg.yaml"
    resources:
        mem_mb=8000,
        runtime=120,
    params:
        source=config["corruptions"]["source"],
        directory=config["corruptions"]["dir"] or config["data"]["root"],
        download="--download" if config["data"]["download"] else "--no-download",
        verify="--verify" if config["corruptions"]["verify"] else "--no-verify",
        seed=config["corruptions"]["seed"],
        n_images=optional("--n-images", config["corruptions"]["n_images"]),
        code=command_code("corruptions"),
    shell:
        "simreg corruptions --name {wildcards.dataset} --color {wildcards.color}"
        " --dataset {input.dataset} --rgb-dataset {input.rgb} --out {output}"
        " --source {params.source} --dir {params.directory} {params.download} {params.verify}"
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
    params:
        model_dir=config["robustbench"]["model_dir"],
        severities=" ".join(str(s) for s in config["robustbench"]["severities"]),
        n_images=optional("--n-images", config["robustbench"]["n_images"]),
        batch_size=config["robustbench"]["batch_size"],
        device=config["training"]["device"],
        code=command_code("robustbench_corruptions"),
    shell:
        "simreg robustbench-corruptions --name {wildcards.name}"
        " --threat-model {wildcards.threat_model} --model-dir {params.model_dir}"
        " --corruptions {input.corruptions} --out {output} --severities {params.severities}"
        " {params.n_images} --batch-size {params.batch_size} --device {params.device}"
        " >> {log} 2>&1 || (tail -n 3 {log} >&2; exit 1)"
