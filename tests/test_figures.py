"""Selection ratios, tables and figures on small synthetic frames with known accuracies.

The figure tests check the numbers each figure saves beside it (``<name>.data.csv``), which
are the numbers it draws."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from simreg.report.noise_figures import plot_noise_accuracy, plot_selection_plane
from simreg.report.selection import acceptable, best_setting, selection_ratios
from simreg.report.tables import alpha_threshold_table, gamma_table, results_table, write_table

SEEDS = [0, 1, 2]
GAUSSIAN_EPS = [0.1, 0.2]
UNIFORM_EPS = [0.3]
# Baseline per seed: clean accuracy, accuracies at the gaussian eps > 0, at the uniform eps > 0.
BASELINE = {0: (0.8, [0.6, 0.4], [0.7]), 1: (0.9, [0.5, 0.3], [0.6]), 2: (0.7, [0.4, 0.4], [0.5])}
# Regularized settings as (method, alpha, Th, clean factor, gaussian factor) on the baseline.
SCALED = [
    ("threshold", 1.0, 0.8, 0.99, 1.2),  # acceptable
    ("threshold", 1.0, 0.5, 1.00, 1.1),  # acceptable, less robust
    ("threshold", 10.0, 0.8, 0.90, 1.5),  # most robust but loses clean accuracy
    ("pixel", 1.0, None, 1.00, 0.9),
]  # no gain under noise
MIN_CLEAN = 0.95


def model_rows(method, alpha, threshold, seed, clean, gaussian, uniform):
    """Noise rows of one model, as the CSVs hold them (threshold "na" when unused)."""
    regularization = "none" if method == "none" else "t_n100"
    base = {
        "task": "t",
        "regularization": regularization,
        "method": method,
        "alpha": alpha,
        "threshold": "na" if threshold is None else threshold,
        "reg_pairs": 100,
        "seed": seed,
        "simreg_version": "0",
        "created": "now",
    }
    rows = [
        {**base, "noise": kind, "epsilon": 0.0, "accuracy": clean}
        for kind in ("gaussian", "uniform")
    ]
    rows += [
        {**base, "noise": "gaussian", "epsilon": e, "accuracy": a}
        for e, a in zip(GAUSSIAN_EPS, gaussian)
    ]
    rows += [
        {**base, "noise": "uniform", "epsilon": e, "accuracy": a}
        for e, a in zip(UNIFORM_EPS, uniform)
    ]
    return rows


@pytest.fixture
def noise() -> pd.DataFrame:
    rows = []
    for seed, (clean, gaussian, uniform) in BASELINE.items():
        rows += model_rows("none", 0.0, None, seed, clean, gaussian, uniform)
        for method, alpha, th, f_clean, f_noise in SCALED:
            rows += model_rows(
                method, alpha, th, seed, clean * f_clean, [a * f_noise for a in gaussian], uniform
            )
    # Per-seed ratios differ: clean 0.9, 1.0, 1.1; gaussian 0.55/0.5, 0.5/0.4, 0.2/0.4.
    rows += model_rows("high", 2.0, 0.8, 0, 0.72, [0.6, 0.5], [0.7])
    rows += model_rows("high", 2.0, 0.8, 1, 0.90, [0.6, 0.4], [0.6])
    rows += model_rows("high", 2.0, 0.8, 2, 0.77, [0.2, 0.2], [0.5])
    return pd.DataFrame(rows)


def metric_rows(method, alpha, threshold, seed, gammas):
    """Three epochs; epoch 1 is best and carries ``gammas``, the others carry junk."""
    junk = [0.96, 0.01, 0.01, 0.01, 0.01]
    rows = []
    for epoch in range(3):
        row = {
            "epoch": epoch,
            "lr": 0.1,
            "train_ce": 1.0,
            "train_sim": 0.1,
            "val_loss": 1.0,
            "val_accuracy": 0.5 + 0.1 * seed + 0.01 * epoch,
            "seconds": 1.0,
            "best": epoch == 1,
            "method": method,
            "alpha": alpha,
            "threshold": "na" if threshold is None else threshold,
            "seed": seed,
            "reg_pairs": 100,
            "task": "t",
            "regularization": "none" if method == "none" else "t_n100",
            "simreg_version": "0",
        }
        row.update({f"gamma_{i}": g for i, g in enumerate(gammas if epoch == 1 else junk)})
        rows.append(row)
    return rows


@pytest.fixture
def metrics(noise) -> pd.DataFrame:
    models = noise.drop_duplicates(["method", "alpha", "threshold", "seed"])
    rows = []
    for m in models.itertuples():
        threshold = None if m.threshold == "na" else m.threshold
        gammas = [0.2] * 5 if m.seed != 1 else [0.6, 0.1, 0.1, 0.1, 0.1]
        rows += metric_rows(m.method, m.alpha, threshold, m.seed, gammas)
    return pd.DataFrame(rows)


def setting(frame, method, alpha, threshold=None):
    match = (frame["method"] == method) & (frame["alpha"] == alpha)
    match &= frame["threshold"].isna() if threshold is None else frame["threshold"] == threshold
    assert match.sum() == 1
    return frame[match].iloc[0]


def test_ratios_equal_hand_computed_values(noise):
    ratios = selection_ratios(noise, "gaussian", 0.2)
    high = setting(ratios, "high", 2.0, 0.8)
    assert high["clean_ratio"] == pytest.approx(1.0)
    assert high["clean_ratio_sem"] == pytest.approx(np.std([0.9, 1.0, 1.1], ddof=1) / math.sqrt(3))
    robust = [0.5 / 0.4, 0.4 / 0.3, 0.2 / 0.4]  # the accuracies at ε = 0.2 only
    assert high["robust_ratio"] == pytest.approx(np.mean(robust))
    assert high["robust_ratio_sem"] == pytest.approx(np.std(robust, ddof=1) / math.sqrt(3))
    assert high["n_seeds"] == 3
    for method, alpha, th, f_clean, f_noise in SCALED:
        row = setting(ratios, method, alpha, th)
        assert row["clean_ratio"] == pytest.approx(f_clean)
        assert row["robust_ratio"] == pytest.approx(f_noise)
    assert set(ratios["method"]) == {"threshold", "pixel", "high"}


def test_robust_ratio_is_the_accuracy_ratio_at_the_configured_epsilon(noise):
    """RD/UD is read at one ε (paper Fig. 4: 0.1 for random noise), not averaged over ε."""
    at_01 = setting(selection_ratios(noise, "gaussian", 0.1), "high", 2.0, 0.8)
    assert at_01["robust_ratio"] == pytest.approx(np.mean([0.6 / 0.6, 0.6 / 0.5, 0.2 / 0.4]))
    at_02 = setting(selection_ratios(noise, "gaussian", 0.2), "high", 2.0, 0.8)
    assert at_01["robust_ratio"] != pytest.approx(at_02["robust_ratio"])
    with pytest.raises(ValueError, match="selection.epsilon"):
        selection_ratios(noise, "gaussian", 0.15)


def test_fgsm_plane_reads_the_fgsm_accuracies(noise):
    fgsm = noise[noise["noise"] == "uniform"].drop(columns="noise")
    fgsm = fgsm.assign(
        accuracy=np.where(fgsm["method"] == "none", fgsm["accuracy"] / 2, fgsm["accuracy"])
    )
    row = setting(selection_ratios(noise, "fgsm_transfer", 0.3, fgsm=fgsm), "pixel", 1.0)
    assert row["robust_ratio"] == pytest.approx(2.0) and row["clean_ratio"] == pytest.approx(2.0)


def test_baseline_against_itself_gives_exactly_one(noise):
    copy = noise[noise["method"] == "none"].assign(method="threshold", alpha=0.0, threshold=0.5)
    ratios = selection_ratios(pd.concat([noise, copy]), "uniform", 0.3)
    row = setting(ratios, "threshold", 0.0, 0.5)
    assert row["clean_ratio"] == 1.0 and row["robust_ratio"] == 1.0
    assert row["clean_ratio_sem"] == 0.0 and row["robust_ratio_sem"] == 0.0


def test_acceptable_and_best_setting(noise):
    ratios = selection_ratios(noise, "gaussian", 0.1)
    chosen = ratios[acceptable(ratios, MIN_CLEAN)]
    assert sorted(zip(chosen["method"], chosen["alpha"], chosen["threshold"])) == [
        ("threshold", 1.0, 0.5),
        ("threshold", 1.0, 0.8),
    ]
    best = best_setting(ratios, MIN_CLEAN)
    assert (best["method"], best["alpha"], best["threshold"]) == ("threshold", 1.0, 0.8)
    assert best_setting(ratios, 1.5) is None


def test_missing_baseline_seed_raises(noise):
    lacking = noise[~((noise["method"] == "none") & (noise["seed"] == 2))]
    with pytest.raises(ValueError, match="baseline"):
        selection_ratios(lacking, "gaussian", 0.1)


def test_alpha_threshold_table(noise):
    table = alpha_threshold_table(noise, "gaussian", 0.1, MIN_CLEAN).set_index("method")
    assert (table["attack"] == "gaussian").all() and (table["epsilon"] == 0.1).all()
    assert (table.loc["threshold", "alpha"], table.loc["threshold", "threshold"]) == (1.0, 0.8)
    assert table.loc["threshold", "robust_ratio"] == pytest.approx(1.2)
    assert (table.loc["threshold", "n_settings"], table.loc["threshold", "n_acceptable"]) == (3, 2)
    assert table.loc["threshold", "note"] == ""
    assert np.isnan(table.loc["pixel", "alpha"]) and np.isnan(table.loc["pixel", "threshold"])
    assert "no acceptable" in table.loc["pixel", "note"]


def test_gamma_table_uses_best_epochs_only(metrics):
    table = gamma_table(metrics)
    assert "none" not in set(table["method"])
    row = setting(table, "pixel", 1.0)
    assert row["stem"] == pytest.approx((0.2 + 0.6 + 0.2) / 3)
    assert row["stage1"] == pytest.approx((0.2 + 0.1 + 0.2) / 3)
    assert row["stem_sem"] == pytest.approx(np.std([0.2, 0.6, 0.2], ddof=1) / math.sqrt(3))
    assert row["n_seeds"] == 3


def test_gamma_table_reports_the_share_of_seeds_collapsed_onto_each_layer():
    """Issue #10: three seeds each collapsed onto a different layer average to 1/3 per
    layer; the shares show the collapse that the mean hides."""
    rows = []
    for seed, layer in enumerate([0, 1, 2]):
        gammas = [0.0] * 5
        gammas[layer] = 0.97
        gammas[4] = 0.03
        rows += metric_rows("threshold", 10.0, 0.8, seed, gammas)
    rows += metric_rows("threshold", 10.0, 0.5, 0, [0.2] * 5)  # no collapse
    table = gamma_table(pd.DataFrame(rows))
    row = setting(table, "threshold", 10.0, 0.8)
    assert [row[f"{layer}"] for layer in ("stem", "stage1", "stage2")] == pytest.approx(
        [0.97 / 3] * 3
    )
    assert [
        row[f"{layer}_collapsed"] for layer in ("stem", "stage1", "stage2", "stage3", "stage4")
    ] == pytest.approx([1 / 3, 1 / 3, 1 / 3, 0, 0])
    flat = setting(table, "threshold", 10.0, 0.5)
    assert all(flat[f"{layer}_collapsed"] == 0 for layer in ("stem", "stage4"))


def test_results_table(noise, metrics):
    table = results_table(noise, metrics)
    none = setting(table, "none", 0.0)
    assert none["clean_accuracy"] == pytest.approx(0.8)
    assert none["gaussian_mean_accuracy"] == pytest.approx((0.5 + 0.4 + 0.4) / 3)
    assert none["uniform_mean_accuracy"] == pytest.approx(0.6)
    assert none["val_accuracy"] == pytest.approx(0.61)
    assert len(table) == 1 + len(SCALED) + 1


def saved_figure(out_pdf) -> pd.DataFrame:
    """The data CSV saved with the figure ``out_pdf``, once its PDF and PNG are checked to be
    real, complete files (no temporary file left over)."""
    assert out_pdf.read_bytes()[:5] == b"%PDF-" and b"%%EOF" in out_pdf.read_bytes()[-32:]
    assert out_pdf.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out_pdf.parent.glob("*.partial"))
    return pd.read_csv(out_pdf.with_suffix(".data.csv"), keep_default_na=False, na_values=[""])


def assert_saved(out_pdf, columns: list[str], rows: list[tuple]) -> None:
    """The data CSV of ``out_pdf`` holds exactly ``rows`` (in this order)."""
    expected = pd.DataFrame(rows, columns=columns)
    pd.testing.assert_frame_equal(
        saved_figure(out_pdf), expected, check_dtype=False, rtol=0, atol=1e-12
    )


def test_noise_accuracy_saves_the_means_and_sems_it_draws(tmp_path):
    # Seed 1 is seed 0 + 0.2 (e.g. 0.5 and 0.7: mean 0.6, SEM 0.1); pixel has one seed only.
    rows = []
    for method, alpha, th, seeds, clean, gaussian, uniform in [
        ("threshold", 10.0, 0.8, [0, 1], 0.6, [0.5, 0.4], [0.3]),
        ("none", 0.0, None, [0, 1], 0.7, [0.4, 0.3], [0.2]),
        ("pixel", 1.0, None, [0], 0.75, [0.55, 0.45], [0.15]),
    ]:
        for seed in seeds:
            shift = 0.2 * seed
            rows += model_rows(
                method,
                alpha,
                th,
                seed,
                clean + shift,
                [a + shift for a in gaussian],
                [a + shift for a in uniform],
            )
    plot_noise_accuracy(pd.DataFrame(rows), tmp_path / "noise.pdf", "synthetic")
    one, th = "pixel α=1", "threshold α=10 Th=0.8"
    # Panels in the order drawn, then labels (baseline first, then by method), then ε.
    assert_saved(
        tmp_path / "noise.pdf",
        ["panel", "label", "epsilon", "mean", "sem", "n"],
        [
            ("Gaussian", "none", 0.0, 0.8, 0.1, 2),
            ("Gaussian", "none", 0.1, 0.5, 0.1, 2),
            ("Gaussian", "none", 0.2, 0.4, 0.1, 2),
            ("Gaussian", one, 0.0, 0.75, np.nan, 1),
            ("Gaussian", one, 0.1, 0.55, np.nan, 1),
            ("Gaussian", one, 0.2, 0.45, np.nan, 1),
            ("Gaussian", th, 0.0, 0.7, 0.1, 2),
            ("Gaussian", th, 0.1, 0.6, 0.1, 2),
            ("Gaussian", th, 0.2, 0.5, 0.1, 2),
            ("uniform", "none", 0.0, 0.8, 0.1, 2),
            ("uniform", "none", 0.3, 0.3, 0.1, 2),
            ("uniform", one, 0.0, 0.75, np.nan, 1),
            ("uniform", one, 0.3, 0.15, np.nan, 1),
            ("uniform", th, 0.0, 0.7, 0.1, 2),
            ("uniform", th, 0.3, 0.4, 0.1, 2),
        ],
    )


def test_selection_plane_saves_each_point(noise, tmp_path):
    plot_selection_plane(
        noise, tmp_path / "plane.pdf", {"gaussian": 0.1, "salt_pepper": 0.1}, MIN_CLEAN, "synthetic"
    )
    sem3 = np.std([0.9, 1.0, 1.1], ddof=1) / math.sqrt(3)
    robust = [0.6 / 0.6, 0.6 / 0.5, 0.2 / 0.4]
    nan = np.nan
    panel = "Gaussian noise, ε = 0.1"  # no salt-and-pepper data: no plane
    # One row per point, series (label) sorted as the legend, then alpha and Th.
    assert_saved(
        tmp_path / "plane.pdf",
        [
            "panel",
            "label",
            "alpha",
            "threshold",
            "attack",
            "epsilon",
            "robust_ratio",
            "robust_ratio_sem",
            "clean_ratio",
            "clean_ratio_sem",
            "n_seeds",
            "acceptable",
        ],
        [
            (
                panel,
                "high",
                2.0,
                0.8,
                "gaussian",
                0.1,
                np.mean(robust),
                np.std(robust, ddof=1) / math.sqrt(3),
                1.0,
                sem3,
                3,
                False,
            ),
            (panel, "pixel", 1.0, nan, "gaussian", 0.1, 0.9, 0.0, 1.0, 0.0, 3, False),
            (panel, "threshold", 1.0, 0.5, "gaussian", 0.1, 1.1, 0.0, 1.0, 0.0, 3, True),
            (panel, "threshold", 1.0, 0.8, "gaussian", 0.1, 1.2, 0.0, 0.99, 0.0, 3, True),
            (panel, "threshold", 10.0, 0.8, "gaussian", 0.1, 1.5, 0.0, 0.9, 0.0, 3, False),
        ],
    )


def test_write_table_round_trips(noise, metrics, tmp_path):
    table = results_table(noise, metrics)
    write_table(table, tmp_path / "results.csv")
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "results.csv"), table, check_dtype=False)
    markdown = (tmp_path / "results.md").read_text()
    assert markdown.startswith("| task") and "gaussian_mean_accuracy" in markdown
