"""training.pack_size: one job trains a pack of seeds of one model key (simreg.train.packs).

* pack_size 1 plans the quick DAG exactly as a config without the key (rule train, one job
  per seed, the same commands);
* pack_size 3 on a tiny grid of seeds [0, 1, 2]: one train_pack job per model key, each seed's
  files at its usual path (train_pack_member), one pack job for one requested seed;
* a real run whose pack job is killed mid-training: Snakemake retries it, it resumes from its
  checkpoint, and every seed's model is that seed's run (settings, inputs, fingerprint) as
  per-seed training (rule train) records it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest
import torch
import yaml

from simreg.paths import (
    checkpoint_dir,
    member_files,
    metrics_file,
    model_file,
    pack_checkpoint_dir,
    pack_dir,
)
from simreg.train.model_key import ModelKey
from simreg.train.packs import Pack, pack_of, seed_packs

from test_new_method import TOY

ROOT = Path(__file__).resolve().parents[1]
TASK, REG = "digits_gray", "digits_gray_n100"
SEEDS = [0, 1, 2]


def key(method="threshold", seed=0, alpha=10):
    regularization = "none" if method == "none" else REG
    return ModelKey.make(TASK, regularization, method, alpha, 0.5, 16, seed)


PACK = Pack(tuple(key(seed=s) for s in SEEDS))  # the threshold models of the tiny grid


# ---- packs -------------------------------------------------------------------------------


def test_seeds_are_cut_into_consecutive_packs_in_grid_order():
    keys = [key(seed=s) for s in [4, 0, 1, 2, 3, 5, 6]] + [key("none", s) for s in [1, 0]]
    packs = seed_packs(keys + [key(seed=0)], 3)  # a model of several grids counts once
    assert [packs[key(seed=s)].seeds for s in [4, 0, 1, 2, 3, 5, 6]] == [
        "4-0-1",
        "4-0-1",
        "4-0-1",
        "2-3-5",
        "2-3-5",
        "2-3-5",
        "6",
    ]
    assert packs[key("none", 0)].seeds == "1-0"
    assert pack_of(key(seed=100), packs) == Pack((key(seed=100),))  # in no grid: alone
    assert seed_packs(keys, 1)[key(seed=3)] == Pack((key(seed=3),))


def test_pack_paths_come_from_the_wildcards_and_keep_checkpoints_apart():
    wildcards = {
        "task": TASK,
        "regularization": REG,
        "method": "threshold",
        "alpha": "10",
        "threshold": "0.5",
        "pairs": "16",
        "seeds": "0-1-2",
    }
    pack = Pack.from_wildcards(wildcards)
    assert pack.members == tuple(key(seed=s) for s in SEEDS)
    stem = f"{TASK}/{REG}/threshold/a10_t0.5_k16/seeds0-1-2"
    assert pack_dir(pack) == f"results/packs/{stem}"
    assert member_files(pack, key(seed=1)) == {
        "model": f"results/packs/{stem}/seed1/model.pt",
        "metrics": f"results/packs/{stem}/seed1/metrics.csv",
    }
    assert pack_checkpoint_dir(pack) == f"results/checkpoints/{stem}"  # not in an output
    assert pack_dir(Pack.wildcards()) == (
        "results/packs/{task}/{regularization}/{method}/"
        "a{alpha}_t{threshold}_k{pairs}{recipe}/seeds{seeds}"
    )
    with pytest.raises(ValueError, match="non-canonical"):  # no model trained twice
        Pack.from_wildcards({**wildcards, "method": "none"})
    with pytest.raises(ValueError, match="one model key"):
        Pack((key(seed=0), key(alpha=1, seed=1)))


def test_train_pack_command_checks_its_arguments(capsys):
    from simreg.cli import _pack_inputs, main

    pairs = [("similarity", "s.h5"), ("source_model", "m0.pt"), ("source_model", "m1.pt")]
    assert _pack_inputs(pairs) == {"similarity": "s.h5", "source_model": ["m0.pt", "m1.pt"]}
    base = ["train-pack", "--task-data", "t.h5", "--checkpoint-dir", "c", "--device", "cpu"]
    settings = [{"seed": 0, "alpha": 1.0}, {"seed": 1, "alpha": 2.0}]
    with pytest.raises(SystemExit, match="share every setting but the seed"):
        main(
            base
            + [
                "--model-out",
                "a",
                "b",
                "--metrics-out",
                "c",
                "d",
                "--settings",
                json.dumps(settings),
            ]
        )
    with pytest.raises(SystemExit, match="2 seeds need 2 model paths"):
        main(
            base
            + [
                "--model-out",
                "a",
                "--metrics-out",
                "c",
                "d",
                "--settings",
                json.dumps([{"seed": 0}, {"seed": 1}]),
            ]
        )
    three = json.dumps([{"seed": 0}, {"seed": 1}, {"seed": 2}])
    with pytest.raises(SystemExit, match="'source_model' has 2 paths for a pack of 3"):
        main(
            base
            + [
                "--model-out",
                "a",
                "b",
                "e",
                "--metrics-out",
                "c",
                "d",
                "f",
                "--input",
                "source_model=m0.pt",
                "--input",
                "source_model=m1.pt",
                "--settings",
                three,
            ]
        )


# ---- the rules ---------------------------------------------------------------------------


def job_blocks(text: str) -> list[dict]:
    """The jobs of a dry run with -p: rule, output, wildcards, shell command."""
    jobs = []
    for block in re.split(r"\n\s*\n", text):
        lines = [line for line in block.strip().splitlines() if not line.startswith("[")]
        if lines and (match := re.match(r"^(?:local)?rule (\w+):$", lines[0])):
            job = {"rule": match[1]}
            for line in lines[1:]:
                if m := re.match(r"^    (output|wildcards): (.*)$", line):
                    job[m[1]] = m[2]
                elif line.startswith("Shell command: "):
                    job["shell"] = line.removeprefix("Shell command: ")
            jobs.append(job)
    return jobs


def snakemake(workdir, env, *args, timeout=300):
    # targets first: --configfile takes several values and would swallow them
    out = subprocess.run(
        [sys.executable, "-m", "snakemake", *args, "-s", str(ROOT / "Snakefile")],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout + out.stderr


def dry_run(workdir, env, *targets, configs):
    return job_blocks(snakemake(workdir, env, *targets, "-n", "-p", "--configfile", *configs))


def test_pack_size_1_plans_the_same_jobs_as_without_the_key(tmp_path):
    """pack_size 1 (the default) keeps rule train: the same jobs and commands as a config
    without the key (the quick DAG of before packs; compared with main's when written)."""
    (tmp_path / "one.yaml").write_text("training: {pack_size: 1}\n")
    quick = str(ROOT / "configs" / "quick.yaml")
    before = dry_run(tmp_path, None, "all", configs=[quick])
    after = dry_run(tmp_path, None, "all", configs=[quick, str(tmp_path / "one.yaml")])
    order = lambda jobs: sorted(jobs, key=lambda j: (j["rule"], j.get("output", "")))  # noqa: E731
    assert order(after) == order(before)
    rules = {job["rule"] for job in after}
    assert "train" in rules and not rules & {"train_pack", "train_pack_member"}
    trains = [job for job in after if job["rule"] == "train"]
    assert len(trains) == len({job["output"] for job in trains}) > 20  # one job per seed
    assert all(job["shell"].startswith("simreg train ") for job in trains)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(folder, env, config files): a grid of none, threshold and a test-only method that
    needs the baseline of its seed (source_model), seeds [0, 1, 2], in packs of 3; tiny sizes."""
    folder = tmp_path_factory.mktemp("packs")
    (folder / "plugin").mkdir()
    (folder / "plugin" / "toy_method.py").write_text(TOY)
    figures = yaml.safe_load((ROOT / "config.yaml").read_text())["figures"]
    grid = {
        "task": TASK,
        "regularization": "digits_gray",
        "threshold": [0.5],
        "alpha": [10],
        "methods": ["none", "threshold", "toydistil"],
        "seeds": SEEDS,
    }
    config = {
        "plugins": ["toy_method"],
        "model": {"width": 4},
        "training": {"epochs": 4, "validation_fraction": 0.1, "augment": False, "pack_size": 3},
        "regularization": {"threshold": 0.5, "n_images": 100},
        "resources": {"gpu": 0, "train_threads": 1, "train_mem_mb": 1000, "train_runtime": 10},
        "figures": {**{name: None for name in figures}, "noise_accuracy": grid},
    }
    (folder / "tiny.yaml").write_text(yaml.safe_dump(config))
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(folder / "plugin"), os.environ.get("PYTHONPATH")) if p
        ),
    }
    return folder, env, [str(folder / "tiny.yaml")]


def test_one_pack_job_per_model_key_and_one_member_job_per_seed(tiny, tmp_path):
    _, env, configs = tiny
    wanted = [model_file(key(seed=s)) for s in SEEDS]
    jobs = dry_run(tmp_path, env, *wanted, configs=configs)
    packs = [job for job in jobs if job["rule"] == "train_pack"]
    assert [job["output"] for job in packs] == [pack_dir(PACK)]
    members = sorted(job["output"] for job in jobs if job["rule"] == "train_pack_member")
    assert members == sorted(
        f"{model_file(key(seed=s))}, {metrics_file(key(seed=s))}" for s in SEEDS
    )
    shell = packs[0]["shell"]
    outs = re.search(r"--model-out (.*?) --metrics-out", shell)[1].split()
    assert outs == [member_files(PACK, key(seed=s))["model"] for s in SEEDS]
    assert f"--checkpoint-dir {pack_checkpoint_dir(PACK)} " in shell
    assert [s["seed"] for s in json.loads(re.search(r"--settings '(.*?)'", shell)[1])] == SEEDS

    # one seed asked for: its pack alone is trained, and only its own files are linked
    jobs = dry_run(tmp_path, env, model_file(key(seed=1)), configs=configs)
    assert sorted(job["rule"] for job in jobs if job["rule"].startswith("train")) == [
        "train_pack",
        "train_pack_member",
    ]
    assert [
        job["wildcards"].split("seeds=")[-1] for job in jobs if job["rule"] == "train_pack"
    ] == ["0-1-2"]

    # a method that needs the baseline of each seed gets one per seed, in the seeds' order
    toy = f"results/models/{TASK}/none/toydistil/a10_tna_k0/seed1/model.pt"  # a plugin's
    jobs = dry_run(tmp_path, env, toy, configs=configs)
    shell = next(
        job["shell"]
        for job in jobs
        if "toydistil" in job.get("output", "") and job["rule"] == "train_pack"
    )
    assert re.findall(r"--input source_model=(\S+)", shell) == [
        model_file(key("none", s)) for s in SEEDS
    ]

    # a model in no grid (the FGSM source seed) is a pack of its own
    jobs = dry_run(tmp_path, env, model_file(key("none", 100)), configs=configs)
    assert [
        job["wildcards"].split("seeds=")[-1] for job in jobs if job["rule"] == "train_pack"
    ] == ["100"]


def test_lint_is_clean_with_packs(tiny):
    _, env, configs = tiny
    out = snakemake(
        ROOT, env, "--lint", "--configfile", str(ROOT / "configs" / "quick.yaml"), *configs
    )
    assert "Lints for" not in out, out


# ---- a real run ---------------------------------------------------------------------------


def kill_pack_after_a_checkpoint(run: subprocess.Popen, checkpoints: Path, timeout_s=300):
    """Wait until a checkpoint file under the pack's checkpoint folder has been replaced once
    (epochs stored, epochs left), then kill the `simreg train-pack` process of the run."""
    first, deadline = None, time.monotonic() + timeout_s
    while True:
        assert run.poll() is None, "the run ended before a checkpoint was replaced"
        assert time.monotonic() < deadline, "no checkpoint was replaced in time"
        files = []
        for path in sorted(checkpoints.rglob("*")):
            if path.name.startswith("."):  # a file being written (simreg.outputs)
                continue
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            if path.is_file():
                files.append((path, stat.st_ino, stat.st_mtime_ns))
        if files and first is None:
            first = files[0]
        elif first is not None and first not in files:
            break
        time.sleep(0.02)
    pack_jobs = [
        p for p in psutil.Process(run.pid).children(recursive=True) if "train-pack" in p.cmdline()
    ]  # the command, not the shell around it
    assert len(pack_jobs) == 1, pack_jobs
    pack_jobs[0].send_signal(signal.SIGKILL)


@pytest.fixture(scope="module")
def runs(tiny):
    """(packed, per-seed) workdirs: the threshold models of seeds 0-2 trained as one pack
    (its job killed once mid-training and retried) and one job per seed (pack_size 1)."""
    folder, env, configs = tiny
    wanted = [model_file(key(seed=s)) for s in SEEDS]
    packed = folder / "packed"
    packed.mkdir()
    command = [
        sys.executable,
        "-m",
        "snakemake",
        *wanted,
        "-s",
        str(ROOT / "Snakefile"),
        "--cores",
        "2",
        "--retries",
        "1",
        "--configfile",
        *configs,
    ]
    with open(folder / "packed.log", "w") as log:
        run = subprocess.Popen(command, cwd=packed, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            kill_pack_after_a_checkpoint(run, packed / pack_checkpoint_dir(PACK))
            assert run.wait(timeout=600) == 0, (folder / "packed.log").read_text()[-3000:]
        finally:
            if run.poll() is None:
                run.kill()

    single = folder / "single"
    for shared in ("datasets", "similarity"):  # the same inputs, not built twice
        shutil.copytree(packed / "results" / shared, single / "results" / shared)
    (folder / "single.yaml").write_text("training: {pack_size: 1}\n")
    out = snakemake(
        single,
        env,
        *wanted,
        "--cores",
        "2",
        "--configfile",
        *configs,
        str(folder / "single.yaml"),
        timeout=600,
    )
    assert "rule train:" in out and "train_pack" not in out
    return packed, single, (folder / "packed.log").read_text()


def tensors(saved: dict) -> dict:
    """Every tensor of a saved model (the classifier and the method's modules), by name."""
    out = {}
    for part in ("model", "modules"):
        stack = [(part, saved.get(part, {}))]
        while stack:
            prefix, value = stack.pop()
            if isinstance(value, dict):
                stack += [(f"{prefix}.{k}", v) for k, v in value.items()]
            elif isinstance(value, torch.Tensor):
                out[prefix] = value
    return out


def test_killed_pack_resumes_and_each_seed_has_its_usual_files(runs, tiny):
    packed, _, log = runs
    _, env, configs = tiny
    assert "train_pack" in log and re.search(r"attempt 2|Trying to restart", log, re.I), log[-3000:]
    pack_log = (packed / "results/logs/train_pack" / f"{PACK.stem}.log").read_text()
    assert "resuming" in pack_log.lower(), pack_log[-3000:]
    for s in SEEDS:
        for kind, path in (
            ("model", model_file(key(seed=s))),
            ("metrics", metrics_file(key(seed=s))),
        ):
            linked = packed / path
            assert linked.stat().st_size > 0
            member = packed / member_files(PACK, key(seed=s))[kind]
            assert linked.read_bytes() == member.read_bytes()
        assert not (packed / checkpoint_dir(key(seed=s))).exists()  # the pack's, not per seed
    # done, and the pack folder is not needed again: no job reruns without it
    wanted = [model_file(key(seed=s)) for s in SEEDS]
    assert "Nothing to be done" in snakemake(packed, env, *wanted, "-n", "--configfile", *configs)
    shutil.rmtree(packed / "results" / "packs")
    assert "Nothing to be done" in snakemake(packed, env, *wanted, "-n", "--configfile", *configs)


def test_packed_models_are_each_seeds_own_run(runs):
    """Each seed's files come from that seed's run: its settings, inputs and fingerprint, as
    when trained alone; the seeds' weights differ. (That the packed weights equal the single
    runs' to 1e-5 is tests/test_packed.py's, on a well-conditioned run: at this DAG's tiny
    sizes, float32 runs of two summation orders part ways.)"""
    packed, single, _ = runs
    weights = []
    for s in SEEDS:
        a = torch.load(packed / model_file(key(seed=s)), weights_only=False)
        b = torch.load(single / model_file(key(seed=s)), weights_only=False)
        ta, tb = tensors(a), tensors(b)
        assert ta.keys() == tb.keys() and len(ta) > 10
        weights.append(ta)
        for field in (
            "method",
            "seed",
            "alpha",
            "regularizer",
            "epochs",
            "run_fingerprint",
            "inputs",
        ):
            assert a["provenance"][field] == b["provenance"][field], field
        assert a["provenance"]["pack_seeds"] == str(list(SEEDS))
        ma = pd.read_csv(packed / metrics_file(key(seed=s)))
        mb = pd.read_csv(single / metrics_file(key(seed=s)))
        assert list(ma.columns) == list(mb.columns) and list(ma["epoch"]) == list(mb["epoch"])
        assert (ma["seed"] == s).all()
    first, second = weights[0], weights[1]
    assert any(not torch.equal(first[name], second[name]) for name in first)
