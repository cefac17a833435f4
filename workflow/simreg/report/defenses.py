"""The related defenses compared (issue #13, beyond the paper): one row per method with the
black-box and white-box measures of every model, the area under each attack's accuracy–ε
curve (Bashivan et al. Table 2), and their figures: the comparison's bars, accuracy under
long-range-correlated noise vs ζ (after Roth et al. Fig. 3) and robustness vs the
eigenspectrum exponent (after Schaeffer et al. Fig. 8).

Each model's values are computed first (one per seed), then mean and SEM across seeds per
model group. Where a measure is taken at one ε, it is the largest ε of that evaluation's
grid: with the paper's grids, Gaussian noise at ε = 0.1 and transferred FGSM at ε = 0.02 on
CIFAR-10 (Attias §5.1, Fig. 4), white-box PGD-L∞ at 8/255.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from simreg.report.corruption_figures import CLEAN
from simreg.report.noise_figures import (
    draw_sem_bands,
    draw_sem_bars,
    in_order,
    label_order,
    label_palette,
    mean_sem,
    model_labels,
    save_figure,
    setting_text,
)
from simreg.report.selection import (
    BASELINE,
    GROUP_KEYS,
    MODEL_KEYS,
    normalize_keys,
    per_seed_accuracy,
)
from simreg.report.tables import (
    best_epochs,
    boundary_per_model,
    mean_and_sem,
    minimal_distance_per_model,
)

# The comparison's columns: name -> (panel title of the figure, axis label).
MEASURES = {
    "clean_accuracy": ("clean", "test accuracy"),
    "noise_accuracy": ("Gaussian noise", "test accuracy"),
    "fgsm_accuracy": ("FGSM transferred from none", "test accuracy"),
    "boundary_paper": ("Boundary score", "S(M): median ||δ||²/d"),
    "min_l2_mean": ("minimal L2 distance", "mean over images"),
    "pgd_accuracy": ("white-box PGD-L∞", "test accuracy"),
    "corruption_accuracy": ("common corruptions", "mean over corruptions and severities"),
    "time_ratio": ("training time", "median epoch / none"),
}


def at_largest(frame: pd.DataFrame, x: str, value: str, name: str, group=()) -> pd.DataFrame:
    """Per model: ``value`` at the largest ``x`` of the grid, as column ``name``, with that
    x in ``<name>_at``."""
    frame = normalize_keys(frame)
    largest = frame[x].max()
    rows = frame[frame[x] == largest]
    out = rows.groupby(MODEL_KEYS, dropna=False)[value].mean().rename(name).reset_index()
    return out.assign(**{f"{name}_at": largest})


def epoch_time_ratio(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per model: median seconds per epoch over that of the ``none`` model of its task and
    seed. Wall time, so it measures the machine's load too; the median keeps a few epochs
    slowed by other jobs from moving it (benchmarks/run.py times steps in isolation)."""
    metrics = normalize_keys(metrics)
    seconds = metrics.groupby(MODEL_KEYS, dropna=False)["seconds"].median().rename("seconds")
    seconds = seconds.reset_index()
    base = seconds[seconds["method"] == BASELINE][["task", "seed", "seconds"]]
    merged = seconds.merge(base, on=["task", "seed"], how="left", suffixes=("", "_none"))
    merged["time_ratio"] = merged["seconds"] / merged["seconds_none"]
    return merged[MODEL_KEYS + ["seconds", "time_ratio"]]


def corruption_mean(corruptions: pd.DataFrame) -> pd.DataFrame:
    """Per model: ``corruption_accuracy``, the accuracy averaged over every corruption and
    severity of its table (the clean row, corruption "none", left out), and how many
    (corruption, severity) cells that mean took in ``corruption_cells``."""
    corruptions = normalize_keys(corruptions)
    corrupted = corruptions[corruptions["corruption"] != CLEAN]
    groups = corrupted.groupby(MODEL_KEYS, dropna=False)
    return pd.DataFrame(
        {"corruption_accuracy": groups["accuracy"].mean(), "corruption_cells": groups.size()}
    ).reset_index()


def defense_per_model(
    *,
    noise,
    metrics,
    fgsm,
    boundary,
    whitebox,
    minimal_distance,
    eigenspectrum=None,
    sensitivity=None,
    lrc=None,
    corruptions=None,
) -> pd.DataFrame:
    """One row per model: every measure of the comparison (columns of :data:`MEASURES`, each
    with the ε it was taken at where one applies), plus the eigenspectrum exponent, the
    median representation sensitivity, the LRC accuracy and the mean accuracy over the
    common corruptions where given."""
    noise = normalize_keys(noise)
    parts = [
        per_seed_accuracy(noise)[MODEL_KEYS + ["clean_accuracy"]],
        at_largest(noise[noise["noise"] == "gaussian"], "epsilon", "accuracy", "noise_accuracy"),
        at_largest(fgsm, "epsilon", "accuracy", "fgsm_accuracy"),
        boundary_per_model(boundary),
        minimal_distance_per_model(minimal_distance)[MODEL_KEYS + ["min_l2_mean"]],
        at_largest(
            normalize_keys(whitebox).query("attack == 'pgd_linf'"),
            "epsilon_255",
            "accuracy",
            "pgd_accuracy",
        ),
        epoch_time_ratio(metrics)[MODEL_KEYS + ["time_ratio"]],
        best_epochs(metrics)[MODEL_KEYS + ["val_accuracy"]],
    ]
    if eigenspectrum is not None and not eigenspectrum.empty:
        parts.append(
            normalize_keys(eigenspectrum)
            .groupby(MODEL_KEYS, dropna=False)["exponent"]
            .first()
            .reset_index()
        )
    if sensitivity is not None and not sensitivity.empty:
        parts.append(at_largest(sensitivity, "epsilon_255", "median", "sensitivity"))
    if lrc is not None and not lrc.empty:
        parts.append(at_largest(lrc_curve(lrc, "zeta"), "zeta", "accuracy", "lrc_accuracy"))
    if corruptions is not None and not corruptions.empty:
        parts.append(corruption_mean(corruptions))
    table = parts[0]
    for part in parts[1:]:
        table = table.merge(part, on=MODEL_KEYS, how="outer")
    return table.sort_values(MODEL_KEYS, na_position="first").reset_index(drop=True)


def defense_table(**frames) -> pd.DataFrame:
    """Per model group: mean and SEM across seeds of every measure of
    :func:`defense_per_model`; the ε columns (``*_at``) and ``corruption_cells`` are
    constant within a group and kept as they are."""
    per_model = defense_per_model(**frames)
    at = [c for c in per_model.columns if c.endswith("_at") or c == "corruption_cells"]
    values = [c for c in per_model.columns if c not in MODEL_KEYS + at]
    table = mean_and_sem(per_model, GROUP_KEYS, values)
    constants = per_model.groupby(GROUP_KEYS, dropna=False)[at].first().reset_index()
    return table.merge(constants, on=GROUP_KEYS, how="left")


def normalized_auc(epsilons, accuracies) -> float:
    """Area under accuracy(ε) over the grid's range, divided by that range (at most 1)."""
    order = np.argsort(epsilons)
    eps, acc = np.asarray(epsilons, float)[order], np.asarray(accuracies, float)[order]
    span = eps[-1] - eps[0]
    return float(np.trapezoid(acc, eps) / span) if span > 0 else float("nan")


def auc_per_model(*, noise, fgsm, whitebox) -> pd.DataFrame:
    """Per model: ``auc_<attack>`` of each noise kind, transferred FGSM and white-box FGSM
    and PGD-L∞, over each evaluation's ε grid (ε = 0 included)."""
    curves = []
    noise = normalize_keys(noise)
    for kind, rows in noise.groupby("noise"):
        curves.append((f"noise_{kind}", rows, "epsilon"))
    curves.append(("fgsm_transfer", normalize_keys(fgsm), "epsilon"))
    whitebox = normalize_keys(whitebox)
    for attack, rows in whitebox.groupby("attack"):
        curves.append((f"whitebox_{attack}", rows, "epsilon"))
    table = None
    for name, rows, x in curves:
        part = (
            rows.groupby(MODEL_KEYS + [x], dropna=False)["accuracy"]
            .mean()
            .reset_index()
            .groupby(MODEL_KEYS, dropna=False)
            .apply(lambda g: normalized_auc(g[x], g["accuracy"]), include_groups=False)
            .rename(f"auc_{name}")
            .reset_index()
        )
        table = part if table is None else table.merge(part, on=MODEL_KEYS, how="outer")
    return table


def attack_auc_table(*, noise, fgsm, whitebox) -> pd.DataFrame:
    """Per model group: mean and SEM across seeds of each attack's normalized AUC."""
    per_model = auc_per_model(noise=noise, fgsm=fgsm, whitebox=whitebox)
    return mean_and_sem(
        per_model, GROUP_KEYS, [c for c in per_model.columns if c.startswith("auc_")]
    )


# ---- figures ------------------------------------------------------------------------------
def method_label(row) -> str:
    """ "sgr α=0.5", "threshold α=10, Th=0.8"; "none" and methods without α by name."""
    if row["method"] == BASELINE or row["alpha"] == 0:
        return row["method"]
    return f"{row['method']} {setting_text(row['alpha'], row['threshold'])}"


def labelled_models(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """``frame`` with a ``label`` per model setting (task and regularization set shown only
    when they vary among the similarity methods), and the labels in drawing order."""
    frame = normalize_keys(frame)
    frame["label"] = model_labels(frame)
    if (
        frame.loc[frame["regularization"] != BASELINE, "regularization"].nunique() <= 1
        and frame["task"].nunique() == 1
    ):
        frame["label"] = frame.apply(method_label, axis=1)
    return frame, label_order(frame)


def plot_defense_comparison(per_model: pd.DataFrame, out_pdf: str | Path, title: str) -> None:
    """One bar panel per measure of :data:`MEASURES`, one bar per model setting (mean ± SEM
    over seeds). The data CSV has one row per (panel, label): mean, SEM, ``n`` seeds."""
    per_model, order = labelled_models(per_model)
    measures = [m for m in MEASURES if m in per_model.columns and per_model[m].notna().any()]
    panels = [MEASURES[m][0] for m in measures]
    long = per_model.melt(id_vars=["label"], value_vars=measures, var_name="measure")
    long["panel"] = long["measure"].map({m: MEASURES[m][0] for m in measures})
    drawn = in_order(mean_sem(long, ["panel", "label"], "value"), panels, order)
    palette = label_palette(order)
    fig, axes = plt.subplots(1, len(panels), figsize=(2.8 * len(panels), 3.4), squeeze=False)
    for ax, measure, panel in zip(axes[0], measures, panels):
        rows = drawn[drawn["panel"] == panel]
        sns.barplot(
            data=rows,
            x="label",
            y="mean",
            order=order,
            hue="label",
            hue_order=order,
            palette=palette,
            errorbar=None,
            ax=ax,
            legend=False,
        )
        draw_sem_bars(ax, rows, order)
        ax.set(title=panel, xlabel="", xticks=[], ylabel=MEASURES[measure][1])
    handles = [plt.Rectangle((0, 0), 1, 1, color=palette[label]) for label in order]
    fig.legend(
        handles,
        order,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        ncol=min(4, len(order)),
        frameon=False,
    )
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, out_pdf, data=drawn)


def lrc_curve(lrc: pd.DataFrame, curve: str) -> pd.DataFrame:
    """The rows of one LRC curve: ``zeta`` (accuracy vs ζ at the fixed ε, Roth Fig. 3) or
    ``epsilon`` (accuracy vs ε at one ζ, App. Fig. 4). A table written before the ε curve
    existed (no ``curve`` column) holds the ζ curve only."""
    if "curve" not in lrc.columns:
        return lrc if curve == "zeta" else lrc.iloc[0:0]
    return lrc[lrc["curve"] == curve]


def plot_lrc_accuracy(lrc: pd.DataFrame, out_pdf: str | Path, title: str) -> None:
    """Accuracy under LRC noise (worst of the draws), one line per model setting, mean ± SEM
    over seeds: vs decay length ζ at fixed ε (Roth et al. Fig. 3 left) and, where the table
    has it, vs ε at one ζ (their App. Fig. 4). The data CSV has one row per (panel, label,
    x) with x the panel's ζ or ε."""
    data, order = labelled_models(lrc)
    unit = f", {data['unit'].iloc[0]} ε" if "unit" in data.columns else ""
    draws = int(data["draws"].iloc[0])
    panels = []
    by_zeta = lrc_curve(data, "zeta")
    panels.append(
        (
            f"vs ζ at ε = {float(by_zeta['epsilon'].iloc[0]):g}{unit}",
            by_zeta.assign(x=by_zeta["zeta"]),
            "decay length ζ (pixels)",
            "log",
        )
    )
    by_epsilon = lrc_curve(data, "epsilon")
    if not by_epsilon.empty:
        panels.append(
            (
                f"vs ε at ζ = {float(by_epsilon['zeta'].iloc[0]):g}{unit}",
                by_epsilon.assign(x=by_epsilon["epsilon"]),
                "ε",
                "linear",
            )
        )
    names = [panel for panel, *_ in panels]
    drawn = in_order(
        pd.concat(
            [
                mean_sem(rows.assign(panel=panel), ["panel", "label", "x"], "accuracy")
                for panel, rows, *_ in panels
            ],
            ignore_index=True,
        ),
        names,
        order,
        "x",
    )
    palette = label_palette(order)
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 3.8), squeeze=False)
    for ax, (panel, _, xlabel, scale) in zip(axes[0], panels):
        rows = drawn[drawn["panel"] == panel]
        sns.lineplot(
            data=rows,
            x="x",
            y="mean",
            hue="label",
            hue_order=order,
            palette=palette,
            marker="o",
            errorbar=None,
            ax=ax,
            legend=ax is axes[0][0],
        )
        draw_sem_bands(ax, rows, "x", palette, order)
        ax.set(xscale=scale, xlabel=xlabel, ylabel="test accuracy", title=panel)
    axes[0][0].legend(fontsize=7, title="")
    fig.suptitle(f"{title}\nLRC noise, worst of {draws} draws")
    fig.tight_layout()
    save_figure(fig, out_pdf, data=drawn)


def plot_robustness_vs_exponent(per_model: pd.DataFrame, out_pdf: str | Path, title: str) -> None:
    """Each model at (eigenspectrum exponent α, robustness): white-box PGD-L∞ accuracy and
    Gaussian-noise accuracy, one color per model setting; the line α = 1 marks Schaeffer et
    al.'s fractal bound for high-dimensional inputs (their Fig. 8). The data CSV has one row
    per (panel, model)."""
    data, order = labelled_models(per_model)
    measures = {"pgd_accuracy": "white-box PGD-L∞", "noise_accuracy": "Gaussian noise"}
    measures = {k: v for k, v in measures.items() if k in data.columns}
    rows = [
        data.assign(panel=panel, robustness=data[m])[
            ["panel", "label", *MODEL_KEYS, "exponent", "robustness"]
        ]
        for m, panel in measures.items()
    ]
    drawn = in_order(pd.concat(rows, ignore_index=True), list(measures.values()), order)
    palette = label_palette(order)
    fig, axes = plt.subplots(1, len(measures), figsize=(4.2 * len(measures), 3.8), squeeze=False)
    for ax, (measure, panel) in zip(axes[0], measures.items()):
        points = drawn[drawn["panel"] == panel]
        sns.scatterplot(
            data=points,
            x="exponent",
            y="robustness",
            hue="label",
            hue_order=order,
            palette=palette,
            ax=ax,
            legend=ax is axes[0][-1],
        )
        ax.axvline(1.0, color="tab:red", linestyle="--", linewidth=1)
        at = data[f"{measure}_at"].iloc[0] if f"{measure}_at" in data else ""
        unit = "/255" if measure == "pgd_accuracy" else ""
        ax.set(
            title=f"{panel} (ε = {at:g}{unit})" if at != "" else panel,
            xlabel="eigenspectrum exponent α",
            ylabel="test accuracy",
        )
    if axes[0][-1].get_legend() is not None:
        axes[0][-1].legend(fontsize=7, title="", loc="best")
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, out_pdf, data=drawn)
