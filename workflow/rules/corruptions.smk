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
        data_root=SETTINGS.data.root,
        directory=SETTINGS.corruptions.dir or SETTINGS.data.root,
        source=SETTINGS.corruptions.source,
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
        mem_mb=SETTINGS.resources.corruptions_mem_mb,
        runtime=SETTINGS.resources.corruptions_runtime,
    params:
        source=SETTINGS.corruptions.source,
        directory=SETTINGS.corruptions.dir or SETTINGS.data.root,
        verify="--verify" if SETTINGS.corruptions.verify else "--no-verify",
        seed=SETTINGS.corruptions.seed,
        n_images=optional("--n-images", SETTINGS.corruptions.n_images),
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
    threads: SETTINGS.resources.eval_threads
    resources:
        mem_mb=SETTINGS.resources.eval_mem_mb,
        runtime=SETTINGS.resources.eval_runtime,
        gpu=SETTINGS.resources.gpu,
        slurm_partition=devices.slurm_partition(SETTINGS.resources.gpu),
    params:
        model_dir=SETTINGS.robustbench.model_dir,
        severities=" ".join(str(s) for s in SETTINGS.robustbench.severities),
        n_images=optional("--n-images", SETTINGS.robustbench.n_images),
        batch_size=SETTINGS.robustbench.batch_size,
        device=job_device,
        code=command_code("robustbench_corruptions"),
    shell:
        "simreg robustbench-corruptions --name {wildcards.name}"
        " --threat-model {wildcards.threat_model} --model-dir {params.model_dir}"
        " --corruptions {input.corruptions} --out {output} --severities {params.severities}"
        " {params.n_images} --batch-size {params.batch_size} --device {params.device}"
        " >> {log} 2>&1 || (tail -n 3 {log} >&2; exit 1)"
