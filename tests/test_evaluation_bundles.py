"""resources.evaluation_jobs: per_model, one evaluation job per model
(simreg.evaluate.bundles):

* it plans the same evaluation files, with the same inputs and parameters, as per_kind, in
  one evaluate_model job per model, each file linked by its kind's member job;
* an evaluation that reads another's output (spectrum, the Boundary Attack's perturbations)
  runs after it in the same job and reads it from the bundle;
* one process running several evaluations writes what separate processes write;
* a file that no target of the config reads is made by its kind's own rule.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from simreg.config import load_config
from simreg.evaluate.bundles import bundle_evaluations, bundle_inputs
from simreg.report.reads import evaluation_bundles
from simreg.evaluate.registry import EVALUATIONS
from simreg.plan import dry_run_jobs
from simreg.train.model_key import ModelKey

ROOT = Path(__file__).resolve().parents[1]
QUICK = str(ROOT / "configs" / "quick.yaml")
PER_KIND = str(ROOT / "configs" / "evaluations-per-kind.yaml")


def quick_config() -> dict:
    return load_config(ROOT / "config.yaml", QUICK)


def command_args(shell: str) -> list[str]:
    return shlex.split(shell.split(" >> ")[0])


def option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_per_model_plans_the_evaluations_per_kind_plans():
    """Every evaluation file of the per_kind DAG is made by a member job of the per_model DAG,
    from the same inputs with the same parameters, in one evaluate_model job per model; the
    other jobs are the same."""
    per_kind = dry_run_jobs([QUICK, PER_KIND], cwd=ROOT)
    per_model = dry_run_jobs([QUICK], cwd=ROOT)

    def evaluations_of(jobs):
        return [j for j in jobs if j["rule"] in EVALUATIONS]

    separate = {}  # first output -> (kind, inputs, params)
    for job in evaluations_of(per_kind):
        args = command_args(job["shell"])
        inputs = dict(args[i + 1].split("=", 1) for i, a in enumerate(args) if a == "--input")
        separate[job["output"][0]] = (
            job["rule"],
            inputs,
            json.loads(option(args, "--params")),
        )
    assert separate, "the per_kind DAG plans evaluations"
    assert not evaluations_of(per_model)
    members = {j["output"][0]: j["rule"] for j in per_model if j["rule"].endswith("_member")}
    assert {path: f"{kind}_member" for path, (kind, _, _) in separate.items()} == members

    bundled = {}  # first output -> (kind, inputs, params), paths in the bundle mapped back
    models = set()
    for job in per_model:
        if job["rule"] != "evaluate_model":
            continue
        (bundle,) = job["output"]
        models.add(bundle)
        args = command_args(job["shell"])
        for evaluation in json.loads(option(args, "--evaluations")):
            back = {
                name: p.replace(bundle, "results", 1) for name, p in evaluation["inputs"].items()
            }
            first = next(iter(evaluation["outputs"].values())).replace(bundle, "results", 1)
            bundled[first] = (evaluation["kind"], back, evaluation["params"])
    assert bundled == separate
    models_per_kind = {option(command_args(j["shell"]), "--keys") for j in evaluations_of(per_kind)}
    assert len(models) == len(models_per_kind) < len(separate)

    def others(jobs):
        return sorted(
            j["rule"]
            for j in jobs
            if j["rule"] not in EVALUATIONS
            and j["rule"] != "evaluate_model"
            and not j["rule"].endswith("_member")
        )

    assert others(per_kind) == others(per_model)


def test_spectrum_runs_after_its_boundary_attack_and_reads_it_from_the_bundle():
    config = quick_config()
    bundles = evaluation_bundles(config)
    with_spectrum = [
        stem for stem, entries in bundles.items() if ("spectrum", "converged") in entries
    ]
    assert with_spectrum
    for stem in with_spectrum:
        entries = bundles[stem]
        assert entries.index(("boundary", "converged")) < entries.index(("spectrum", "converged"))
        key = next(k for k in _keys(config) if k.stem == stem)
        evaluations = bundle_evaluations(config, key, entries)
        boundary = next(
            e for e in evaluations if (e["kind"], e["setting"]) == ("boundary", "converged")
        )
        spectrum = next(e for e in evaluations if e["kind"] == "spectrum")
        assert spectrum["inputs"]["boundary"] == boundary["outputs"]["h5"]
        assert spectrum["inputs"]["boundary"].startswith("results/evaluation_bundles/")
        assert EVALUATIONS["boundary"].output_files(key, "converged")["h5"] not in (
            bundle_inputs(evaluations).values()
        )


def _keys(config) -> list[ModelKey]:
    from simreg.report.targets import all_models

    return all_models(config)


def test_one_process_writes_what_separate_processes_write(saved_model, tmp_path):
    """noise, the Boundary Attack and its spectrum, by `simreg evaluate` each in its own
    process and by `simreg evaluate-model` in one: the same tables and spectra (but the
    time columns)."""
    model, dataset = saved_model
    config = quick_config()
    boundary_params = EVALUATIONS["boundary"].params(config, "digits_gray", "paper")
    boundary_params.update(n_images=6, repeats=1, batch_size=6, init_directions=20)
    boundary_params["attack"] = {"steps": 5}

    def spec(folder):
        return [
            {
                "kind": "noise",
                "setting": None,
                "inputs": {"model": str(model), "dataset": str(dataset)},
                "outputs": {"csv": f"{folder}/noise.csv"},
                "params": {
                    **EVALUATIONS["noise"].params(config, "digits_gray", None),
                    "n_images": 60,
                },
            },
            {
                "kind": "boundary",
                "setting": "paper",
                "inputs": {"model": str(model), "dataset": str(dataset)},
                "outputs": {"csv": f"{folder}/boundary.csv", "h5": f"{folder}/boundary.h5"},
                "params": boundary_params,
            },
            {
                "kind": "spectrum",
                "setting": "paper",
                "inputs": {"boundary": f"{folder}/boundary.h5"},
                "outputs": {"h5": f"{folder}/spectrum.h5"},
                "params": {},
            },
        ]

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    simreg = [sys.executable, "-m", "simreg.cli"]
    for evaluation in spec(tmp_path / "separate"):
        subprocess.run(
            [
                *simreg,
                "evaluate",
                evaluation["kind"],
                *[f"--input={n}={p}" for n, p in evaluation["inputs"].items()],
                *[f"--out={n}={p}" for n, p in evaluation["outputs"].items()],
                "--params",
                json.dumps(evaluation["params"]),
                "--device",
                "cpu",
            ],
            check=True,
            env=env,
        )
    out = subprocess.run(
        [
            *simreg,
            "evaluate-model",
            "--evaluations",
            json.dumps(spec(tmp_path / "bundle")),
            "--device",
            "cpu",
        ],
        check=True,
        env=env,
        capture_output=True,
        text=True,
    )
    assert "3/3 spectrum (paper) done in" in out.stderr  # progress, with each one's time
    untimed = ["created", "seconds"]
    for table in ("noise.csv", "boundary.csv"):
        separate = pd.read_csv(tmp_path / "separate" / table).drop(columns=untimed, errors="ignore")
        bundled = pd.read_csv(tmp_path / "bundle" / table).drop(columns=untimed, errors="ignore")
        pd.testing.assert_frame_equal(separate, bundled)
    for name in ("boundary.h5", "spectrum.h5"):
        with (
            h5py.File(tmp_path / "separate" / name) as a,
            h5py.File(tmp_path / "bundle" / name) as b,
        ):
            assert sorted(a) == sorted(b)
            for dataset_name in a:
                if isinstance(a[dataset_name], h5py.Dataset):
                    np.testing.assert_array_equal(a[dataset_name][()], b[dataset_name][()])


def test_a_file_no_target_reads_is_made_by_its_kinds_own_rule():
    """Under per_model, naming the evaluation file of a model outside the config's grids runs
    that one evaluation alone (its kind's rule, as under per_kind), and a bundled file is made
    by its model's job and linked."""
    unread = ModelKey.make("digits_gray", "digits_gray_n500", "threshold", 3, 0.5, 16, 7)
    target = EVALUATIONS["noise"].output_files(unread)["csv"]
    jobs = dry_run_jobs([QUICK], targets=[target], cwd=ROOT)
    rules = [j["rule"] for j in jobs]
    assert rules.count("noise") == 1 and "evaluate_model" not in rules and "train" in rules
    config = quick_config()
    key = next(k for k in _keys(config) if ("noise", None) in evaluation_bundles(config)[k.stem])
    bundled = EVALUATIONS["noise"].output_files(key)["csv"]
    rules = [j["rule"] for j in dry_run_jobs([QUICK], targets=[bundled], cwd=ROOT)]
    assert (
        "noise" not in rules and rules.count("evaluate_model") == rules.count("noise_member") == 1
    )
