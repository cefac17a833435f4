"""Per-model and white-box tables, the attack figures and the grids they draw on, on small
synthetic frames with known values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simreg.attack_figures import plot_minimal_distance, plot_perturbation_spectrum, plot_robustness
from simreg.config import load_config
from simreg.paths import FIGURES, ModelKey, figure_inputs, grid_models, table_inputs
from simreg.tables import models_table, whitebox_table

MODELS = [("none", 0.0, "na", 0), ("threshold", 10.0, 0.8, 16)]
SEEDS = [0, 1]


def keys(method, alpha, threshold, pairs, seed):
    return {"task": "t_gray", "regularization": "none" if method == "none" else "t_gray_n100",
            "method": method, "alpha": alpha, "threshold": threshold, "reg_pairs": pairs,
            "seed": seed}


def frames():
    noise, metrics, fgsm, boundary, whitebox, distances = [], [], [], [], [], []
    for i, (method, alpha, threshold, pairs) in enumerate(MODELS):
        for seed in SEEDS:
            k = keys(method, alpha, threshold, pairs, seed)
            noise += [{**k, "noise": "gaussian", "epsilon": e, "accuracy": a}
                      for e, a in [(0.0, 0.9), (0.1, 0.5 + 0.1 * i)]]
            metrics += [{**k, "epoch": 0, "best": True, "val_accuracy": 0.8}]
            fgsm += [{**k, "epsilon": e, "accuracy": a}
                     for e, a in [(0.0, 0.9), (0.1, 0.2 + 0.1 * i), (0.2, 0.1 + 0.1 * i)]]
            boundary += [{**k, "setting": "paper", "steps": 50, "repeat": r, "n_unsolved": r,
                          "score": 0.01 * (i + 1) + 0.001 * r} for r in range(3)]
            whitebox += [{**k, "attack": a, "epsilon_255": e, "epsilon": e / 255,
                          "accuracy": 0.9 - 0.1 * e - 0.05 * seed}
                         for a in ("fgsm", "pgd_linf") for e in (0, 2)]
            distances += [{**k, "image": img, "label": 3, "norm": norm, "distance": d,
                           "attack": "misclassified" if d == 0 else "x"}
                          for img, d in enumerate([0.0, 1.0, 2.0, 10.0, np.inf])
                          for norm in ("l2", "linf")]
    return tuple(pd.DataFrame(rows) for rows in (noise, metrics, fgsm, boundary, whitebox, distances))


def test_models_table_has_one_row_per_model_with_every_evaluation():
    noise, metrics, fgsm, boundary, whitebox, distances = frames()
    table = models_table(noise, metrics, fgsm=fgsm, boundary=boundary, whitebox=whitebox,
                         minimal_distance=distances)
    assert len(table) == len(MODELS) * len(SEEDS)
    reg = table[table["method"] == "threshold"].iloc[0]
    assert reg["fgsm_mean_accuracy"] == pytest.approx(np.mean([0.3, 0.2]))  # ε > 0 only
    assert reg["boundary_paper"] == pytest.approx(0.02 + 0.001)  # mean over 3 repeats
    assert reg["boundary_paper_unsolved"] == 0 + 1 + 2
    assert reg["min_l2_median"] == pytest.approx(2.0)  # median of 0, 1, 2, 10, inf
    assert reg["min_l2_median_correct"] == pytest.approx(6.0)  # misclassified left out
    assert reg["min_l2_mean"] == np.inf
    assert reg["pgd_linf_2/255"] == pytest.approx(0.9 - 0.2)
    assert reg["clean_accuracy"] == 0.9 and reg["val_accuracy"] == 0.8


def test_whitebox_table_averages_seeds():
    *_, whitebox, _ = frames()
    table = whitebox_table(whitebox)
    assert len(table) == len(MODELS)
    row = table.iloc[0]
    assert row["n_seeds"] == 2
    assert row["fgsm_2/255"] == pytest.approx(0.9 - 0.2 - 0.025)
    assert row["fgsm_2/255_sem"] == pytest.approx(0.025)


def test_attack_figures_are_written(tmp_path):
    noise, _, fgsm, boundary, _, distances = frames()
    plot_robustness(tmp_path / "r.pdf", "r", fgsm=fgsm, boundary=boundary, noise=noise)
    plot_robustness(tmp_path / "a.pdf", "a", fgsm=fgsm, boundary=boundary)
    plot_minimal_distance(distances, tmp_path / "m.pdf", "m")
    rng = np.random.default_rng(0)
    spectra = [{**keys(*model, seed), "power": rng.uniform(1, 2, (8, 8)),
                "radius": np.arange(6), "radial_power": rng.uniform(1, 2, 6)}
               for model in MODELS for seed in SEEDS]
    plot_perturbation_spectrum(spectra, tmp_path / "s.pdf", "s")
    for name in "rams":
        assert (tmp_path / f"{name}.pdf").stat().st_size > 1000
        assert (tmp_path / f"{name}.png").stat().st_size > 1000


def test_grids_take_lists_of_pairs_images_and_sets():
    config = load_config("config.yaml")
    pairs = grid_models(config["figures"]["robustness_by_pairs"], config)
    assert sorted({int(k.pairs) for k in pairs if k.method != "none"}) == [4, 8, 16, 32]
    n = grid_models(config["figures"]["robustness_by_n_images"], config)
    assert {k.regularization for k in n if k.method != "none"} == {
        "cifar10_gray_n100", "cifar10_gray_n1000", "cifar10_gray_n5000"}
    sets = grid_models(config["figures"]["robustness_by_dataset"], config)
    assert {k.regularization for k in sets if k.method != "none"} == {
        "cifar10_gray_n5000", "cifar100_gray_n5000"}
    assert ModelKey.make("cifar10_gray", "none", "none", 0, "na", 0, 0) in sets


def test_figures_and_tables_draw_only_what_they_show():
    config = load_config("config.yaml")
    for name, kinds in FIGURES.items():
        inputs = figure_inputs(name, config)
        assert {kind for kind, files in inputs.items() if files} == set(kinds)
    boundary = figure_inputs("attack_robustness", config)["boundary"]
    assert len(boundary) == 21 * len(config["boundary"]["settings"])  # 3 methods x 7 seeds
    assert all(f.startswith("results/boundary/") for f in boundary)
    spectra = figure_inputs("perturbation_spectrum", config)["spectrum"]
    assert all(f.startswith("results/spectrum/converged/") for f in spectra)
    models = table_inputs("models", config)
    assert len(models["minimal_distance"]) == len(models["whitebox"]) == 21
