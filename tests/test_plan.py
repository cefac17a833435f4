"""simreg plan: its job counts are Snakemake's own, and its hours come from benchmark files
scaled by the documented model (simreg.plan)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from simreg import plan

ROOT = Path(__file__).resolve().parents[1]


def dry_run_counts(*configfiles) -> Counter:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-n",
            "--forceall",
            "--quiet",
            "rules",
            "all",
            "--configfile",
            *configfiles,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    table = out.stdout.split("Job stats:")[1].split("total")[0]
    return Counter(
        {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, flags=re.M)}
    )


def test_job_counts_equal_snakemakes_dry_run_for_the_quick_config(monkeypatch):
    monkeypatch.chdir(ROOT)
    jobs, edges = plan.snakemake_dag(["configs/quick.yaml"])
    counts = plan.per_rule(jobs)
    assert counts == dry_run_counts("configs/quick.yaml")
    assert sum(counts.values()) > 200
    # every figure needs its own job and, through the edges, the trainings it draws
    targets = plan.per_target(jobs, edges)
    assert targets["figure noise_accuracy"]["figure"] == 1
    assert targets["figure noise_accuracy"]["train"] > 0
    assert len(targets) == counts["figure"] + counts["table"]
    # an evaluation job's wildcards are its model's (not the FGSM source's seed): each
    # evaluate_model job finds the evaluations it runs
    from simreg.report.reads import evaluation_bundles
    from simreg.train.model_key import ModelKey

    wildcards = plan.full_wildcards(jobs, edges)
    bundles = evaluation_bundles(plan.load_config(["configs/quick.yaml"]))
    stems = [
        ModelKey.from_wildcards(wildcards[i]).stem
        for i, job in jobs.items()
        if job.rule == "evaluate_model"
    ]
    assert sorted(stems) == sorted(bundles) and counts["evaluate_model"] == len(bundles)


def test_hours_are_the_measured_mean_scaled_by_the_grids_sizes(tmp_path):
    """Two measured train jobs (10 s and 30 s at 4 epochs): a config with 40 epochs plans
    10x the mean per job; an unmeasured rule is named, not guessed."""
    for i, seconds in enumerate((10.0, 30.0)):
        path = tmp_path / "train" / f"m{i}.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"s\th:m:s\tmax_rss\n{seconds}\t0:00:10\t100.0\n")
    measured = plan.read_benchmarks(tmp_path)
    assert [m["s"] for m in measured["train"]] == [10.0, 30.0]
    config = {"model": {"width": 8}, "training": {"epochs": 4}}
    jobs = {
        0: plan.Job(0, "train", {"task": "digits_gray"}),
        1: plan.Job(1, "train", {"task": "digits_gray"}),
        2: plan.Job(2, "noise", {}),
    }
    edges = [(0, 2)]
    calibration = plan.calibration_sizes(config, [(j.rule, j.wildcards) for j in jobs.values()])
    big = {"model": {"width": 8}, "training": {"epochs": 40}}
    est = plan.estimate(big, jobs, edges, measured, calibration)
    train = next(r for r in est.rows if r[1] == "train")
    assert train[2] == 2 and train[3] == pytest.approx(2 * 20.0 * 10 / 3600)
    assert est.unmeasured == ["noise"]  # no calibration start: left out
    assert est.hours == {"training": pytest.approx(400 / 3600)}
    assert est.extrapolated == []
    # another width: not comparable, left out and named (no width^2 extrapolation)
    wide = {"model": {"width": 16}, "training": {"epochs": 4}}
    est = plan.estimate(wide, jobs, edges, measured, calibration)
    assert "training" not in est.hours and est.extrapolated == ["train"]
    # a fixed start (imports) of 5 s is not scaled: 2 x (5 + 15 x 10) s; an unmeasured rule
    # then counts its start
    calibration["startup_s"] = 5.0
    est = plan.estimate(big, jobs, edges, measured, calibration)
    assert est.hours["training"] == pytest.approx(2 * (5 + 15 * 10) / 3600)
    assert est.hours["evaluation"] == pytest.approx(5 / 3600)


def test_the_benchmark_reader_gives_wall_cpu_and_rss_per_rule(tmp_path):
    """One reader for plan, export and benchmarks/job_times.py: the last row of each
    rule's files; a missing column or NA is None; an empty file, a file outside a rule's
    folder and (with ``since``) an older file are skipped."""
    import os

    files = {
        "train/train/a.tsv": "s\th:m:s\tmax_rss\tcpu_time\n9\t0\t1\t2\n7.5\t0\tNA\t6.25\n",
        "noise/b.tsv": "s\th:m:s\n3.0\t0:00:03\n",
        "noise/empty.tsv": "",
        "stray.tsv": "s\n1\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    measured = plan.read_benchmarks(tmp_path)
    assert sorted(measured) == ["noise", "train"]
    assert measured["train"] == [
        {
            "s": 7.5,
            "cpu_time": 6.25,
            "max_rss": None,
            "path": str(tmp_path / "train/train/a.tsv"),
            "job": "train/train/a.tsv",
        }
    ]
    assert [(m["s"], m["cpu_time"]) for m in measured["noise"]] == [(3.0, None)]
    os.utime(tmp_path / "noise/b.tsv", (1000, 1000))
    assert sorted(plan.read_benchmarks(tmp_path, since=2000)) == ["train"]


def test_the_minimal_distance_size_repeats_only_the_pgd_familys_epsilon_search():
    """Per image: a PGD setting takes steps x (grid + bisection) ε levels x repeats (the only
    randomised attacks); a minimizer its steps (x binary search steps) once."""
    suite = {
        "repeats": 5,
        "eps_search": {"grid": 4, "bisection": 2},
        "attacks": {
            "pgd_l2": [{"steps": 10}, {"steps": 10, "random_start": False}],
            "cw_l2": [{"steps": 100, "binary_search_steps": 3}],
            "ddn_l2": [],
        },
    }
    config = {"minimal_distance": {"n_images": 7, "suite": suite}}
    assert plan._suite_steps(config) == 10 * 6 * 5 + 10 * 6 + 300
    assert plan.rule_size(config, "minimal_distance", {}, 0.0) == 7 * (300 + 60 + 300)


def test_a_32x32_npz_calibrates_cifar10_jobs_and_other_shapes_are_left_out_per_job(tmp_path):
    """An NPZ task of 32x32 images (the CIFAR-10 subset) is measured at CIFAR-10's image size:
    its calibration scales the CIFAR-10 jobs; an MNIST job (28x28) and a ResNet34 job of the
    same rule are left out one by one, and counted."""
    import numpy as np

    np.savez(
        tmp_path / "subset.npz",
        train_images=np.zeros((50, 32, 32, 3), np.uint8),
        train_labels=np.zeros(50, np.int64),
        test_images=np.zeros((20, 32, 32, 3), np.uint8),
        test_labels=np.zeros(20, np.int64),
    )
    path = tmp_path / "noise" / "a.tsv"
    path.parent.mkdir()
    path.write_text("s\th:m:s\tcpu_time\n30\t0\t12\n")
    measured = plan.read_benchmarks(tmp_path)
    config = {
        "model": {"width": 64, "dataset_architecture": {"cifar100": "resnet34"}},
        "training": {"epochs": 1, "validation_fraction": 0.0},
        "data": {"npz": {"sub": str(tmp_path / "subset.npz")}},
        "noise": {"n_images": None},
    }
    assert plan._task_volume("sub_gray", 0, config) == 1024
    assert plan.rule_size(config, "noise", {"task": "sub_gray"}, 0) == 20  # its test images
    assert plan.rule_size(config, "train", {"task": "sub_gray"}, 0) == 50
    calibration = plan.calibration_sizes(config, [("noise", {"task": "sub_gray"})])
    assert calibration["shape"] == 64**2 * 1024 and calibration["architecture"] == "resnet18"
    jobs = {
        0: plan.Job(0, "noise", {"task": "cifar10_gray"}),
        1: plan.Job(1, "noise", {"task": "mnist_gray"}),
        2: plan.Job(2, "noise", {"task": "cifar100_gray"}),
    }
    est = plan.estimate(config, jobs, [], measured, calibration)
    row = next(r for r in est.rows if r[1] == "noise")
    assert row[3] == pytest.approx(30 * 10000 / 20 / 3600)  # the CIFAR-10 job only
    assert "2 of 3 jobs" in row[4] and est.extrapolated == ["noise"]
    # the CPU seconds instead of the wall seconds, for a calibration on a shared machine
    est = plan.estimate(config, jobs, [], measured, calibration, cpu=True)
    assert est.hours["evaluation"] == pytest.approx(12 * 10000 / 20 / 3600)


def test_parse_dot_reads_rules_wildcards_and_edges():
    text = (
        '\t0[label = "all", color = "0.00 0.6 0.85", style="rounded"];\n'
        '\t3[label = "train\\nseed: 0\\ntask: digits_gray", color = "x"];\n'
        '\t5[label = "noise", color = "x"];\n\t3 -> 5\n\t5 -> 0\n'
    )
    jobs, edges = plan.parse_dot(text)
    assert jobs[3].rule == "train" and jobs[3].wildcards == {"seed": "0", "task": "digits_gray"}
    assert edges == [(3, 5), (5, 0)]
    assert plan.full_wildcards(jobs, edges)[5] == {"seed": "0", "task": "digits_gray"}


def test_download_names_match_the_sources():
    from simreg.data import download
    from simreg.data.corrupted import RELEASES
    from simreg.data.sources import TORCHVISION_SOURCES

    assert set(download.DOWNLOADABLE) == {*TORCHVISION_SOURCES, "imagenette"}
    assert set(download.OFFICIAL_CORRUPTIONS) == set(RELEASES)


def test_calibration_runs_one_job_per_rule_and_one_training_per_method(monkeypatch):
    monkeypatch.chdir(ROOT)
    jobs = plan.dry_run_jobs(["configs/quick.yaml", plan.PER_KIND_EVALUATIONS])
    chosen = plan.calibration_targets(jobs)
    rules = Counter(j["rule"] for j in chosen)
    methods = {j["wildcards"]["method"] for j in jobs if j["rule"] == "train"}
    assert rules["train"] == len(methods) > 5
    assert {r for r in rules if r != "train"} == (
        {j["rule"] for j in jobs} - plan.NOT_CALIBRATED - {"train"}
    )
    assert all(n == 1 for r, n in rules.items() if r != "train")
    assert len(chosen) < len(jobs) / 5  # a small set
    noise = next(j for j in chosen if j["rule"] == "noise")
    assert noise["wildcards"]["method"] == "none" and noise["output"][0].endswith(".csv")


def test_a_benchmark_json_times_the_trainings():
    """benchmarks/run.py's epoch_s (a CIFAR-10 epoch of 49,500 images): a job costs its
    method's epoch times the task's images over that, times the epochs; an untimed method
    counts as none (as threshold where it regularizes on a similarity target), and says
    so."""
    config = {"model": {"width": 64}, "training": {"epochs": 2}}
    jobs = {
        0: plan.Job(0, "train", {"task": "cifar10_gray", "method": "threshold"}),
        1: plan.Job(1, "train", {"task": "cifar10_gray", "method": "pgd_at"}),
        2: plan.Job(2, "train", {"task": "cifar10_gray", "method": "pixel"}),
    }
    est = plan.estimate(config, jobs, [], {}, {}, epoch_s={"none": 10.0, "threshold": 20.0})
    row = next(r for r in est.rows if r[1] == "train")
    assert row[3] == pytest.approx((20 + 10 + 20) * 2 * 50000 / 49500 / 3600)
    assert "counted as none: pgd_at" in row[4] and "counted as threshold: pixel" in row[4]


def test_a_model_evaluation_job_costs_one_start_and_its_evaluations_work(tmp_path):
    """resources.evaluation_jobs: per_model: an evaluate_model job costs the start once, plus
    each of its evaluations' measured work (its kind's mean less the start); a kind without a
    measurement is named."""
    from simreg.config import load_config
    from simreg.report.reads import evaluation_bundles
    from simreg.report.targets import all_models

    config = load_config(ROOT / "config.yaml", ROOT / "configs" / "quick.yaml")
    bundles = evaluation_bundles(config)
    key = next(k for k in all_models(config) if len(bundles.get(k.stem, [])) >= 5)
    entries = bundles[key.stem]
    kinds = sorted({kind for kind, _ in entries})
    for i, kind in enumerate(kinds[1:]):  # the first kind is not measured
        path = tmp_path / kind / "m.tsv"
        path.parent.mkdir(parents=True)
        path.write_text(f"s\th:m:s\n{3.0 + i}\t0\n")
    measured = plan.read_benchmarks(tmp_path)
    wildcards = {name: str(value) for name, value in key.as_dict().items()}
    jobs = {0: plan.Job(0, "evaluate_model", wildcards)}
    est = plan.estimate(config, jobs, [], measured, {"startup_s": 2.0})
    expected = 2.0 + sum(measured[kind][0]["s"] - 2.0 for kind, _ in entries if kind != kinds[0])
    row = next(r for r in est.rows if r[1] == "evaluate_model")
    assert row[3] == pytest.approx(expected / 3600)
    assert est.hours == {"evaluation": pytest.approx(expected / 3600)}
    assert est.unmeasured == [kinds[0]]
