"""Per-model and white-box tables, the attack figures and the grids they draw on, on small
synthetic frames with known values. The figure tests check the numbers each figure saves
beside it (``<name>.data.csv``), which are the numbers it draws."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simreg.config import load_config
from simreg.report.attack_figures import (
    plot_minimal_distance,
    plot_perturbation_spectrum,
    plot_robustness,
)
from simreg.report.tables import models_table, whitebox_table
from simreg.report.targets import TARGETS, grid_models, target_inputs, target_reads
from simreg.train.model_key import ModelKey

MODELS = [("none", 0.0, "na", 0), ("threshold", 10.0, 0.8, 16)]
SEEDS = [0, 1]


def keys(method, alpha, threshold, pairs, seed):
    return {
        "task": "t_gray",
        "regularization": "none" if method == "none" else "t_gray_n100",
        "method": method,
        "alpha": alpha,
        "threshold": threshold,
        "reg_pairs": pairs,
        "seed": seed,
    }


def frames():
    noise, metrics, fgsm, boundary, whitebox, distances = [], [], [], [], [], []
    for i, (method, alpha, threshold, pairs) in enumerate(MODELS):
        for seed in SEEDS:
            k = keys(method, alpha, threshold, pairs, seed)
            noise += [
                {**k, "noise": "gaussian", "epsilon": e, "accuracy": a}
                for e, a in [(0.0, 0.9), (0.1, 0.5 + 0.1 * i)]
            ]
            metrics += [{**k, "epoch": 0, "best": True, "val_accuracy": 0.8}]
            fgsm += [
                {**k, "epsilon": e, "accuracy": a}
                for e, a in [(0.0, 0.9), (0.1, 0.2 + 0.1 * i), (0.2, 0.1 + 0.1 * i)]
            ]
            boundary += [
                {
                    **k,
                    "setting": "paper",
                    "steps": 50,
                    "repeat": r,
                    "n_unsolved": r,
                    "score": 0.01 * (i + 1) + 0.001 * r,
                }
                for r in range(3)
            ]
            whitebox += [
                {
                    **k,
                    "attack": a,
                    "epsilon_255": e,
                    "epsilon": e / 255,
                    "accuracy": 0.9 - 0.1 * e - 0.05 * seed,
                }
                for a in ("fgsm", "pgd_linf")
                for e in (0, 2)
            ]
            distances += [
                {
                    **k,
                    "image": img,
                    "label": 3,
                    "norm": norm,
                    "distance": d,
                    "attack": "misclassified" if d == 0 else "x",
                }
                for img, d in enumerate([0.0, 1.0, 2.0, 10.0, np.inf])
                for norm in ("l2", "linf")
            ]
    return tuple(
        pd.DataFrame(rows) for rows in (noise, metrics, fgsm, boundary, whitebox, distances)
    )


def test_models_table_has_one_row_per_model_with_every_evaluation():
    noise, metrics, fgsm, boundary, whitebox, distances = frames()
    table = models_table(
        noise, metrics, fgsm=fgsm, boundary=boundary, whitebox=whitebox, minimal_distance=distances
    )
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


NONE, TH = "none", "threshold α=10 Th=0.8"  # the labels of MODELS, in the order drawn
NAN = np.nan


def per_seed(value: float, seed: int) -> float:
    """Seed 1 is seed 0 + 0.2: over SEEDS the mean is value + 0.1 and the SEM 0.1."""
    return value + 0.2 * seed


def assert_saved(out_pdf, columns: list[str], rows: list[tuple]) -> None:
    """The PDF and PNG are real, complete files and the data CSV beside them holds exactly
    ``rows`` (in this order)."""
    assert out_pdf.read_bytes()[:5] == b"%PDF-" and b"%%EOF" in out_pdf.read_bytes()[-32:]
    assert out_pdf.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out_pdf.parent.glob("*.partial"))
    saved = pd.read_csv(out_pdf.with_suffix(".data.csv"), keep_default_na=False, na_values=[""])
    pd.testing.assert_frame_equal(
        saved, pd.DataFrame(rows, columns=columns), check_dtype=False, rtol=0, atol=1e-12
    )


def robustness_frames():
    """Noise, transferred FGSM and Boundary rows of MODELS with known per-seed values; the
    Boundary settings come most steps first."""
    noise, fgsm, boundary = [], [], []
    for i, model in enumerate(MODELS):
        for seed in SEEDS:
            k = keys(*model, seed)
            noise += [
                {**k, "noise": "gaussian", "epsilon": e, "accuracy": per_seed(a, seed)}
                for e, a in [(0.0, 0.7), (0.1, 0.3 + 0.1 * i)]
            ]
            fgsm += [
                {**k, "epsilon": e, "accuracy": per_seed(a, seed)}
                for e, a in [(0.0, 0.7), (0.1, 0.2 + 0.1 * i), (0.2, 0.1 + 0.1 * i)]
            ]
            # Score of repeat r: base + 0.001 r (mean over repeats base + 0.001).
            boundary += [
                {
                    **k,
                    "setting": setting,
                    "steps": steps,
                    "repeat": r,
                    "n_unsolved": r,
                    "score": base * (i + 1) + 0.001 * r + 0.02 * seed,
                }
                for setting, steps, base in [("converged", 1000, 0.1), ("paper", 50, 0.01)]
                for r in range(3)
            ]
    return pd.DataFrame(noise), pd.DataFrame(fgsm), pd.DataFrame(boundary)


ROBUSTNESS_COLUMNS = ["panel", "label", "epsilon", "mean", "sem", "n", "n_unsolved"]
FGSM = "FGSM transferred from none"
PAPER, CONVERGED = "Boundary Attack, paper (50 steps)", "Boundary Attack, converged (1000 steps)"
# Means over seeds with SEM 0.1 (accuracy) or 0.01 (score, seeds 0.02 apart); Boundary scores
# are means over repeats first, and 0 + 1 + 2 unsolved per model, 6 over the two seeds.
ATTACK_ROWS = [
    (FGSM, NONE, 0.0, 0.8, 0.1, 2, NAN),
    (FGSM, NONE, 0.1, 0.3, 0.1, 2, NAN),
    (FGSM, NONE, 0.2, 0.2, 0.1, 2, NAN),
    (FGSM, TH, 0.0, 0.8, 0.1, 2, NAN),
    (FGSM, TH, 0.1, 0.4, 0.1, 2, NAN),
    (FGSM, TH, 0.2, 0.3, 0.1, 2, NAN),
    (PAPER, NONE, NAN, 0.021, 0.01, 2, 6),
    (PAPER, TH, NAN, 0.031, 0.01, 2, 6),
    (CONVERGED, NONE, NAN, 0.111, 0.01, 2, 6),
    (CONVERGED, TH, NAN, 0.211, 0.01, 2, 6),
]


def test_robustness_saves_the_lines_and_bars_it_draws(tmp_path):
    noise, fgsm, boundary = robustness_frames()
    plot_robustness(tmp_path / "r.pdf", "r", fgsm=fgsm, boundary=boundary, noise=noise)
    assert_saved(
        tmp_path / "r.pdf",
        ROBUSTNESS_COLUMNS,
        [
            ("Gaussian", NONE, 0.0, 0.8, 0.1, 2, NAN),
            ("Gaussian", NONE, 0.1, 0.4, 0.1, 2, NAN),
            ("Gaussian", TH, 0.0, 0.8, 0.1, 2, NAN),
            ("Gaussian", TH, 0.1, 0.5, 0.1, 2, NAN),
            *ATTACK_ROWS,
        ],
    )


def test_robustness_without_noise_saves_only_the_attack_panels(tmp_path):
    _, fgsm, boundary = robustness_frames()
    plot_robustness(tmp_path / "a.pdf", "a", fgsm=fgsm, boundary=boundary)
    assert_saved(tmp_path / "a.pdf", ROBUSTNESS_COLUMNS, ATTACK_ROWS)


def test_minimal_distance_saves_the_bars_it_draws(tmp_path):
    # Per model and norm, the median over images (misclassified count 0, unsolved inf) is
    # 2 + i + 0.2 seed under L2 and ten times that under L∞ (listed first).
    rows = []
    for i, model in enumerate(MODELS):
        for seed in SEEDS:
            for norm, scale in [("linf", 10.0), ("l2", 1.0)]:
                median = per_seed(2.0 + i, seed) * scale
                rows += [
                    {
                        **keys(*model, seed),
                        "image": img,
                        "label": 3,
                        "norm": norm,
                        "distance": d,
                        "attack": "misclassified" if d == 0 else "x",
                    }
                    for img, d in enumerate([0.0, 1.0, median, 100.0, np.inf])
                ]
    plot_minimal_distance(pd.DataFrame(rows), tmp_path / "m.pdf", "m")
    # Issue #10: the bars are the MEAN over images (supplement Fig. 2), not the median: per
    # model (0 + 1 + m + 100) / 4 over the solved images, m = the median above; one unsolved
    # image per model and seed is left out and counted.
    assert_saved(
        tmp_path / "m.pdf",
        ["panel", "label", "mean", "sem", "n", "n_unsolved"],
        [
            ("L2", NONE, (101 + 2.1) / 4, 0.1 / 4, 2, 2),
            ("L2", TH, (101 + 3.1) / 4, 0.1 / 4, 2, 2),
            ("L∞", NONE, (101 + 21.0) / 4, 1.0 / 4, 2, 2),
            ("L∞", TH, (101 + 31.0) / 4, 1.0 / 4, 2, 2),
        ],
    )


def test_perturbation_spectrum_saves_the_radial_profiles_it_draws(tmp_path):
    rng = np.random.default_rng(0)
    spectra = [
        {
            **keys(*model, seed),
            "power": rng.uniform(1, 2, (8, 8)),
            "radius": np.arange(3),
            "radial_power": per_seed(1.0 + i, seed) * np.array([1.0, 0.5, 0.25]),
        }
        for i, model in enumerate(MODELS)
        for seed in SEEDS
    ]
    plot_perturbation_spectrum(spectra, tmp_path / "s.pdf", "s")
    p = "radial profile"
    assert_saved(
        tmp_path / "s.pdf",
        ["panel", "label", "radius", "mean", "sem", "n"],
        [
            (p, NONE, 0, 1.1, 0.1, 2),
            (p, NONE, 1, 0.55, 0.05, 2),
            (p, NONE, 2, 0.275, 0.025, 2),
            (p, TH, 0, 2.1, 0.1, 2),
            (p, TH, 1, 1.05, 0.05, 2),
            (p, TH, 2, 0.525, 0.025, 2),
        ],
    )


def test_grids_take_lists_of_pairs_images_and_sets():
    config = load_config("config.yaml")
    pairs = grid_models(config["figures"]["robustness_by_pairs"], config)
    assert sorted({int(k.pairs) for k in pairs if k.method != "none"}) == [4, 8, 16, 32]
    n = grid_models(config["figures"]["robustness_by_n_images"], config)
    assert {k.regularization for k in n if k.method != "none"} == {  # Fig. 9: ImageNet images
        "imagenette_gray_n100",
        "imagenette_gray_n1000",
        "imagenette_gray_n5000",
    }
    sets = grid_models(config["figures"]["robustness_by_dataset"], config)
    assert {k.regularization for k in sets if k.method != "none"} == {
        "cifar10_gray_n5000",
        "cifar100_gray_n5000",
        "imagenette_gray_n5000",
    }
    assert ModelKey.make("cifar10_gray", "none", "none", 0, "na", 0, 0) in sets


def test_figures_and_tables_draw_only_what_they_show():
    config = load_config("config.yaml")
    for name, target in TARGETS.items():
        if target.kind == "figure":
            inputs = target_inputs(name, config)
            assert {kind for kind, files in inputs.items() if files} == set(
                target_reads(name, config)
            )
    boundary = target_inputs("attack_robustness", config)["boundary"]
    assert len(boundary) == 21 * len(config["boundary"]["settings"])  # 3 methods x 7 seeds
    assert all(f.startswith("results/boundary/") for f in boundary)
    # boundary.read_by: the 10k-step setting only for the targets (and claims) it names
    assert config["boundary"]["read_by"] == {"converged": ["attack_robustness", "models"]}
    for name in ("robustness_by_dataset", "defense_comparison", "variants_cifar10"):
        files = target_inputs(name, config)["boundary"]
        assert files and all(f.startswith("results/boundary/paper/") for f in files), name
    from simreg.report.claims import CLAIMS, SEP, claims_inputs

    c3_key = next(key for key, claim in CLAIMS.items() if claim.id == "C3")
    c3 = claims_inputs(config)[f"{c3_key}{SEP}boundary"]
    assert sorted(c3) == sorted(boundary)
    assert len(target_inputs("models", config)["boundary"]) == len(boundary)
    spectra = target_inputs("perturbation_spectrum", config)["spectrum"]
    assert spectra and all(f.startswith("results/spectrum/converged/") for f in spectra)
    models = target_inputs("models", config)
    assert len(models["minimal_distance"]) == len(models["whitebox"]) == 21
