"""The minimal adversarial distance suite (simreg.evaluate.minimal_distance): distances, the minimum
over candidates, the suite's validation, the ε search, and the CSV of the pipeline step."""

from __future__ import annotations

import math
from collections import Counter

import eagerpy as ep
import foolbox as fb
import numpy as np
import pandas as pd
import pytest
import torch

from simreg.data.store import read_split
from simreg.data.subsets import random_images
from simreg.evaluate.context import run_evaluation
from simreg.evaluate.minimal_distance import (
    ATTACKS,
    NORMS,
    PAPER_SUITE,
    QUICK_SUITE,
    PerImageEpsilon,
    attack_distances,
    minimal_distances,
    perturbation_norms,
    plan_runs,
)
from simreg.models.inference import predict
from simreg.evaluate.sparse_attacks import jsma

torch.set_num_threads(2)
SMALL_SUITE = {  # one cheap run of each kind of wrapper: ε search, minimization, sparse
    "repeats": 2,
    "eps_search": {"grid": 3, "bisection": 1, "min_fraction": 0.01},
    "attacks": {
        "pgd_linf": [{"steps": 3, "rel_stepsize": 0.2}],
        "fmn_l2": [{"steps": 5}],
        "jsma_l0": [{"max_fraction": 0.2}],
    },
}
CSV_COLUMNS = ["image", "label", "norm", "distance", "attack", "n_successful"]


@pytest.fixture(scope="module")
def batch(digits, linear_model):
    x, y = digits
    wrong = (predict(linear_model, x) != y).nonzero().flatten()
    right = (predict(linear_model, x) == y).nonzero().flatten()
    pick = torch.cat([right[:20], wrong[:4]])  # some already misclassified
    return x[pick], y[pick]


@pytest.fixture(scope="module")
def candidates(linear_model, batch):
    return attack_distances(linear_model, *batch, SMALL_SUITE, seed=0)


def test_perturbation_norms_of_a_hand_made_perturbation():
    x = torch.full((1, 1, 4, 4), 0.5)
    adv = x.clone()
    adv[0, 0, 0, 0] += 0.25
    adv[0, 0, 1, 2] -= 0.5
    adv[0, 0, 3, 3] += 1e-7  # round-off, below the L0 tolerance
    l0, l1, l2, linf = perturbation_norms(x, adv)[0].tolist()
    assert l0 == 2
    assert l1 == pytest.approx(0.75, abs=1e-6)
    assert l2 == pytest.approx(math.sqrt(0.25**2 + 0.5**2), abs=1e-6)
    assert linf == pytest.approx(0.5)
    assert perturbation_norms(x, x).abs().sum() == 0


def test_candidate_table_columns_and_true_distances(linear_model, batch, candidates):
    x, y = batch
    assert list(candidates.columns) == ["sample", "attack", "repeat", "norm", "success", "distance"]
    jsma_rows = candidates[candidates["attack"] == "jsma_l0#0"]
    adv, success = jsma(linear_model, x, y, max_fraction=0.2)
    expected = perturbation_norms(x, adv).numpy()
    for row in jsma_rows.itertuples():
        assert row.success == bool(success[row.sample])
        want = expected[row.sample, NORMS.index(row.norm)] if row.success else math.inf
        assert row.distance == pytest.approx(want)
    assert set(candidates.loc[~candidates["success"], "distance"]) <= {math.inf}
    # the randomised attack ran `repeats` times, the deterministic ones once
    assert set(candidates.loc[candidates["attack"] == "pgd_linf#0", "repeat"]) == {0, 1}
    assert set(candidates.loc[candidates["attack"] == "fmn_l2#0", "repeat"]) == {0}


def test_minimum_is_over_all_successful_candidates(candidates):
    minimal = minimal_distances(candidates)
    n_samples = candidates["sample"].nunique()
    assert len(minimal) == n_samples * len(NORMS)
    ok = candidates[candidates["success"]]
    for row in minimal.itertuples():
        found = ok[(ok["sample"] == row.sample) & (ok["norm"] == row.norm)]
        assert row.n_successful == len(found)
        assert (row.distance <= found["distance"]).all()
        assert row.distance == found["distance"].min()
        by_attack = found[found["attack"] == row.attack]["distance"]
        assert row.distance in set(by_attack)  # the attack recorded found it
    assert np.isfinite(minimal["distance"]).mean() > 0.9  # the suite does find adversarials


def test_misclassified_images_have_distance_zero(linear_model, batch, candidates):
    x, y = batch
    wrong = set(np.flatnonzero((predict(linear_model, x) != y).numpy()))
    minimal = minimal_distances(candidates)
    for row in minimal.itertuples():
        if row.sample in wrong:
            assert row.distance == 0 and row.attack == "misclassified"
        else:
            assert row.distance > 0 and row.attack != "misclassified"
    attacked = set(candidates.loc[candidates["attack"] != "misclassified", "sample"])
    assert not attacked & wrong  # never attacked


def test_minimal_distances_on_a_hand_made_table():
    rows = [
        (0, "a#0", "l2", True, 2.0),
        (0, "b#0", "l2", True, 1.0),
        (0, "c#0", "l2", True, 1.0),
        (0, "d#0", "l2", False, math.inf),
        (1, "a#0", "l2", False, math.inf),
    ]
    table = pd.DataFrame(
        [
            {"sample": s, "attack": a, "repeat": 0, "norm": n, "success": ok, "distance": d}
            for s, a, n, ok, d in rows
        ]
    )
    minimal = minimal_distances(table).set_index(["sample", "norm"])
    assert minimal.loc[(0, "l2")].tolist() == [1.0, "b#0", 3]  # first of the tie
    assert minimal.loc[(1, "l2")].tolist() == [math.inf, "none", 0]
    assert minimal.loc[(0, "l0")].tolist() == [math.inf, "none", 0]


def test_unknown_names_raise_naming_the_allowed_ones():
    with pytest.raises(ValueError, match="unknown attack 'pgd_l3'.*pgd_l2"):
        plan_runs({"attacks": {"pgd_l3": [{}]}})
    with pytest.raises(ValueError, match="unknown parameters \\['stpes'\\].*steps"):
        plan_runs({"attacks": {"fmn_l2": [{"stpes": 3}]}})
    with pytest.raises(ValueError, match="unknown suite keys"):
        plan_runs({"attack": {}})
    with pytest.raises(ValueError, match="unknown eps_search keys"):
        plan_runs({"eps_search": {"gird": 3}, "attacks": {}})
    with pytest.raises(ValueError, match="grid >= 2"):
        plan_runs({"attacks": {"pgd_l2": [{"grid": 1}]}})
    with pytest.raises(ValueError, match="list of settings"):
        plan_runs({"attacks": {"fmn_l2": {"steps": 3}}})


def test_paper_suite_names_the_supplements_attacks_and_quick_all_but_brendel_bethge():
    """The paper suite: every attack family supplement §3 lists (all but FMN), each setting
    run five times where the attack is random; quick: every attack but B&B."""
    runs = plan_runs(PAPER_SUITE)
    assert {run.attack.name for run in runs} == {n for n in ATTACKS if not n.startswith("fmn_")}
    assert Counter(run.repeat for run in runs if run.attack.name == "pgd_l2") == {
        r: 2 for r in range(5)
    }
    assert max(run.repeat for run in runs if run.attack.name == "cw_l2") == 0
    first_bb = min(i for i, run in enumerate(runs) if run.attack.needs_start)
    assert all(run.attack.needs_start for run in runs[first_bb:])  # BB last
    quick = {run.attack.name for run in plan_runs(QUICK_SUITE)}
    assert quick == {name for name, attack in ATTACKS.items() if not attack.needs_start}


@pytest.mark.parametrize(
    "config_files, suite",
    [(["config.yaml"], "PAPER_SUITE"), (["config.yaml", "configs/quick.yaml"], "QUICK_SUITE")],
)
def test_config_suites_are_the_module_suites(config_files, suite):
    """config.yaml shows the suite the paper-scale run uses, the quick config (merged over
    it) the quick one; neither may drift from the module's."""
    from pathlib import Path

    import simreg.evaluate.minimal_distance as md
    from simreg.config import load_config

    root = Path(__file__).resolve().parents[1]
    config = load_config(*[root / f for f in config_files])
    assert config["minimal_distance"]["suite"] == getattr(md, suite)


@pytest.mark.parametrize("norm", ["l1", "l2", "linf"])
def test_pgd_takes_one_epsilon_per_image(linear_model, batch, norm):
    x, y = batch
    eps = torch.logspace(-2, 0, len(x)) * {"l1": 8.0, "l2": 2.0, "linf": 0.3}[norm]
    bisections = {}
    for steps in (0, 3):
        suite = {"attacks": {f"pgd_{norm}": [{"steps": 5, "grid": 4, "bisection": steps}]}}
        table = attack_distances(linear_model, x, y, suite, seed=3)
        bisections[steps] = table[table["norm"] == norm].groupby("sample")["distance"].min()
    # same seed, same grid: the bisection can only lower the distance found
    assert (bisections[3] <= bisections[0]).all() and (bisections[3] < bisections[0]).any()
    attack = ATTACKS[f"pgd_{norm}"]
    adv, _ = attack.run(
        linear_model, x, y, {"steps": 5, "grid": 2, "bisection": 0, "min_fraction": 0.01}, 0
    )
    assert adv.min() >= 0 and adv.max() <= 1
    # the per-image projection itself
    cls = {"l1": fb.attacks.L1PGD, "l2": fb.attacks.L2PGD, "linf": fb.attacks.LinfPGD}[norm]
    per_image = type("PerImage", (PerImageEpsilon, cls), {})(steps=5)
    out = per_image.run(
        fb.PyTorchModel(linear_model, bounds=(0, 1)),
        x,
        fb.criteria.Misclassification(y),
        epsilon=ep.astensor(eps.view(-1, 1, 1, 1)),
    )
    sizes = perturbation_norms(x, out)[:, NORMS.index(norm)]
    assert torch.all(sizes <= eps.double() * (1 + 1e-4) + 1e-6)
    assert torch.all(sizes[-4:] > eps[0])  # large ε are used, not clipped to the smallest


def test_brendel_bethge_skips_images_without_a_starting_point(linear_model, batch):
    x, y = batch
    keep = predict(linear_model, x) == y
    x, y = x[keep], y[keep]
    adv, success = jsma(linear_model, x, y, max_fraction=0.3)
    start = torch.where(torch.arange(len(x))[:, None, None, None] % 2 == 0, adv, x)
    has_start = (torch.arange(len(x)) % 2 == 0) & success
    out, ok = ATTACKS["bb_linf"].run(linear_model, x, y, {"steps": 5}, 0, start)
    assert torch.equal(ok, has_start)
    assert torch.equal(out[~has_start], x[~has_start])
    linf = NORMS.index("linf")
    assert torch.all(
        perturbation_norms(x, out)[has_start, linf]
        <= perturbation_norms(x, start)[has_start, linf] + 1e-6
    )


def test_subset_is_fixed_and_independent_of_the_model():
    a = random_images(1000, 50, seed=0)
    assert np.array_equal(a, random_images(1000, 50, seed=0)) and len(np.unique(a)) == 50
    assert not np.array_equal(a, random_images(1000, 50, seed=1))
    assert len(random_images(30, 50, seed=0)) == 30


def test_evaluate_writes_one_row_per_image_and_norm(saved_model, tmp_path):
    model_path, dataset = saved_model
    other = tmp_path / "other.pt"
    saved = torch.load(model_path, weights_only=False)
    saved["model"] = {k: v * 0.5 if v.is_floating_point() else v for k, v in saved["model"].items()}
    torch.save(saved, other)
    frames = []
    for i, path in enumerate((model_path, other)):
        out = tmp_path / f"md{i}.csv"
        run_evaluation(
            "minimal_distance",
            {"model": path, "dataset": dataset},
            {"csv": out},
            {
                "suite": SMALL_SUITE,
                "n_images": 10,
                "seed": 5,
                "batch_size": 4,
                "candidates_out": tmp_path / f"candidates{i}.csv",
            },
            keys={"task": "digits_gray"},
            device="cpu",
        )
        frames.append(pd.read_csv(out))
    first, second = frames
    assert list(first.columns[: len(CSV_COLUMNS)]) == CSV_COLUMNS
    assert {
        "suite",
        "n_images",
        "attack_seed",
        "model_file",
        "dataset_file",
        "task",
        "method",
        "alpha",
        "threshold",
        "seed",
        "reg_pairs",
    } <= set(first.columns)
    assert len(first) == 10 * len(NORMS)
    assert all(sorted(norms) == sorted(NORMS) for _, norms in first.groupby("image")["norm"])
    test = read_split(dataset, "test")
    assert np.array_equal(np.sort(first["image"].unique()), random_images(len(test.labels), 10, 5))
    assert np.array_equal(first["label"], test.labels[first["image"]])
    assert np.array_equal(first["image"], second["image"])  # same images for both models
    assert not np.array_equal(first["distance"], second["distance"])
    candidates = pd.read_csv(tmp_path / "candidates0.csv")
    best = candidates[candidates["success"]].groupby(["image", "norm"])["distance"].min()
    merged = first.set_index(["image", "norm"])["distance"]
    assert np.allclose(merged.loc[best.index], best)
