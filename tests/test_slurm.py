"""profiles/slurm meets SLURM.

* fast: the sbatch command line that snakemake-executor-plugin-slurm's own submission code
  builds for every job of the quick DAG (resources as Snakemake evaluates them with the
  profile) asks for the rule's CPUs, memory, runtime and GPU, account and partition;
* slow: tests/slurm/run_slurm_test.sh, a run on a real single-node cluster (needs root and
  Debian's slurm-wlm, slurmdbd, munge and mariadb-server; .ci/run installs them).
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from test_environment import ACTIONS, workflow_rules

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "slurm" / "run_slurm_test.sh"


def check_module():
    spec = importlib.util.spec_from_file_location(
        "check_slurm_run", ROOT / "tests" / "slurm" / "check_slurm_run.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Resources(dict):
    """A job's resources as the plugin reads them (``.get`` and attribute access)."""

    __getattr__ = dict.__getitem__


def sbatch_line(block: dict) -> list[str]:
    """The sbatch arguments plugin 2.8.0 builds for one job (its run_job, less the account and
    partition checks that need a live cluster: those two strings are built as it does)."""
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    resources = Resources(
        {
            k: int(v) if v.isdigit() else v
            for k, v in block.items()
            if k
            not in (
                "rule",
                "local",
                "threads",
                "wildcards",
                "jobid",
                "input",
                "output",
                "log",
                "reason",
            )
        }
    )
    job = SimpleNamespace(
        resources=resources, threads=block["threads"], name=block["rule"], is_group=lambda: False
    )
    params = {
        "run_uuid": "RUN",
        "slurm_logfile": "log/%j.log",
        "comment_str": "rule_x",
        "account": f"-A {shlex.quote(resources['slurm_account'])}",
        "partition": f"-p {resources['slurm_partition']}",
        "workdir": "/work",
    }
    return shlex.split(get_submit_command(job, params) + set_gres_string(job))


def test_profile_sbatch_lines_ask_for_every_rules_resources(tmp_path):
    pytest.importorskip("snakemake_executor_plugin_slurm")
    # the tracked profile as it is: account and partitions from the environment
    env = {
        **os.environ,
        "SBATCH_ACCOUNT": "acct",
        "SBATCH_PARTITION": "part",
        "SIMREG_GPU_PARTITION": "gpupart",
    }
    # the quick DAG as it is (one train job per seed, one evaluate_model job per model), with
    # seeds packed (train_pack) and with one evaluation job per kind
    (tmp_path / "packed.yaml").write_text("training: {pack_size: 2}\n")
    (tmp_path / "gpu.yaml").write_text("resources: {gpu: 1}\n")  # quick asks for none
    rules = workflow_rules()
    submitted = {name for name, d in rules.items() if d & ACTIONS and "localrule=True" not in d}
    blocks = []
    per_kind = str(ROOT / "configs" / "evaluations-per-kind.yaml")
    for extra in ([], [str(tmp_path / "packed.yaml")], [per_kind]):
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "snakemake",
                "-n",
                "all",
                "--profile",
                "profiles/slurm",
                "--configfile",
                "configs/quick.yaml",
                str(tmp_path / "gpu.yaml"),
                *extra,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
        blocks += [b for b in check_module().job_blocks(out.stdout) if b["rule"] in submitted]

    from simreg.evaluate.registry import EVALUATIONS

    gpu_rules = {
        "train",
        "train_pack",
        "fit_predictor",
        "fgsm_perturbations",
        "robustbench_corruptions",
        "evaluate_model",  # each of the quick DAG's runs a GPU kind (noise)
        *(n for n, e in EVALUATIONS.items() if e.gpu),
    }
    config = yaml.safe_load((ROOT / "configs" / "quick.yaml").read_text())["resources"]
    # every cluster rule is in the quick DAG, but the RobustBench scoring (it needs downloaded
    # weights, so the quick config leaves Fig. 24 out)
    assert {b["rule"] for b in blocks} == submitted - {"robustbench_corruptions"}
    for block in blocks:
        line = sbatch_line(block)
        what = f"{block['rule']} {block.get('wildcards')}: {shlex.join(line)}"
        option = lambda flag: line[line.index(flag) + 1]  # noqa: E731
        assert line[0] == "sbatch", what
        gpu = block["rule"] in gpu_rules
        assert option("-A") == "acct", what
        assert option("-p") == ("gpupart" if gpu else "part"), what
        assert option("--mem") == block["mem_mb"], what
        assert option("-t") == block["runtime"], what
        assert f"--cpus-per-task={block['threads']}" in line, what
        gpus = [arg for arg in line if arg.startswith(("--gpus", "--gres"))]
        assert gpus == (["--gpus=1"] if block["rule"] in gpu_rules else []), what
        if block["rule"] in ("train", "train_pack"):  # the rule's own numbers, from the config
            wildcards = dict(item.split("=", 1) for item in block["wildcards"].split(", "))
            seeds = len(wildcards.get("seeds", "0").split("-"))  # memory, runtime: per seed
            assert (block["threads"], int(block["mem_mb"]), int(block["runtime"])) == (
                config["train_threads"],
                config["train_mem_mb"] * seeds,
                config["train_runtime"] * seeds,
            ), what
    assert {b["rule"] for b in blocks if "--gpus=1" in sbatch_line(b)} == gpu_rules - {
        "robustbench_corruptions"
    }


def test_log_parser_reads_retries_and_submissions():
    log = "\n".join(
        [
            "[Tue Dec  1 14:28:11 2026]",
            "rule train:",
            "    jobid: 5",
            "    threads: 2",
            "    resources: mem_mb=1000, mem=1 GB, runtime=10, gpu=1",
            "Job 5 has been submitted with SLURM jobid 4 (log: x).",
            "localrule figure:",
            "    jobid: 0",
            "    resources: mem_mb=4000",
            "[Tue Dec  1 14:29:11 2026]",
            "rule train:",
            "    jobid: 5",
            "    threads: 2",
            "    resources: mem_mb=2000, mem=2 GB, runtime=20, gpu=1",
            "Job 5 has been submitted with SLURM jobid 6 (log: x).",
        ]
    )
    subs = check_module().parse_log(log)
    assert [(s["rule"], s["slurm"], s["threads"], s["mem_mb"], s["runtime"]) for s in subs] == [
        ("train", "4", 2, "1000", "10"),
        ("train", "6", 2, "2000", "20"),
    ]


def cluster_missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    tools = ["munged", "mariadbd", "slurmdbd", "slurmctld", "slurmd", "sbatch", "sacct"]
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        return f"missing {missing}: apt-get install -y slurm-wlm slurmdbd munge mariadb-server"
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        return 'no snakemake-executor-plugin-slurm: pip install -e ".[slurm]"'
    return None


@pytest.mark.slow
def test_real_slurm_cluster_run(tmp_path):
    """Submit, scancel, retry, resume and compare on a real cluster (about 4 minutes)."""
    if reason := cluster_missing():
        if os.environ.get("SIMREG_SLURM_TEST") == "required":  # CI: no silent skip
            pytest.fail(reason)
        pytest.skip(reason)
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    out = subprocess.run(
        ["bash", str(SCRIPT), str(tmp_path / "run")],
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-5000:]
    assert "slurm-test: passed" in out.stderr
