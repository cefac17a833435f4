"""Figures of the common corruptions (paper §5.4-5.5, App. 7.9-7.10): accuracy vs severity
(Fig. 6 left), per corruption (Fig. 6 right), per frequency group (Fig. 7 left), against
RobustBench models (Fig. 24), and the corruptions' Fourier spectra (Fig. 25).

A model's accuracy on a group of corruptions is the mean over the group's corruptions (all
15 for Fig. 6 left); lines and bars are then means over seeds with SEM error bars. Each
figure saves what it draws beside the PDF as ``<name>.data.csv``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from simreg.data.corrupted import read_corruptions
from simreg.data.corruptions import CORRUPTIONS, FREQUENCY_GROUPS, GROUP_OF
from simreg.report.noise_figures import (
    draw_sem_bands,
    in_order,
    label_order,
    label_palette,
    mean_sem,
    model_labels,
    save_figure,
)
from simreg.report.selection import BASELINE, MODEL_KEYS, normalize_keys

CLEAN = "none"
GROUPS = tuple(FREQUENCY_GROUPS)  # low, medium, high
BY_GROUP = tuple(c for g in GROUPS for c in FREQUENCY_GROUPS[g])  # Fig. 25's order
NAMES = {
    c: c.replace("_", " ").replace("jpeg", "JPEG").replace("transform", "").strip()
    for c in CORRUPTIONS
}


def labelled(table: pd.DataFrame) -> pd.DataFrame:
    data = normalize_keys(table)
    data["label"] = model_labels(data)
    return data


def per_model(table: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Each model's accuracy averaged over the corruptions within each group of ``by``."""
    corrupted = table[table["corruption"] != CLEAN]
    return (
        corrupted.groupby([*MODEL_KEYS, "label", *by], dropna=False)["accuracy"]
        .mean()
        .reset_index()
    )


def plot_corruption_severity(table: pd.DataFrame, out_pdf: str | Path, title: str) -> None:
    """Mean accuracy over the corruptions vs severity, severity 0 being the clean images;
    one line per model setting (Fig. 6 left). Data CSV: one row per (label, severity)."""
    data = labelled(table)
    models = pd.concat(
        [
            per_model(data, ["severity"]),
            data[data["corruption"] == CLEAN][[*MODEL_KEYS, "label", "severity", "accuracy"]],
        ]
    )
    order = label_order(data)
    drawn = in_order(
        mean_sem(
            models.assign(panel="all corruptions"), ["panel", "label", "severity"], "accuracy"
        ),
        ["all corruptions"],
        order,
        "severity",
    )
    palette = label_palette(order)
    fig, ax = plt.subplots(figsize=(5, 3.8))
    sns.lineplot(
        data=drawn,
        x="severity",
        y="mean",
        hue="label",
        hue_order=order,
        palette=palette,
        style="label",
        style_order=order,
        markers=True,
        dashes=False,
        errorbar=None,
        ax=ax,
    )
    draw_sem_bands(ax, drawn, "severity", palette, order)
    ax.set_xticks(sorted(drawn["severity"].unique()))
    ax.set_xlabel("severity (0 = clean)")
    n_corruptions = data.loc[data["corruption"] != CLEAN, "corruption"].nunique()
    ax.set_ylabel(f"accuracy, mean over {n_corruptions} corruptions")
    ax.legend(title="", fontsize=8)
    ax.set_title(title, fontsize=10)
    save_figure(fig, out_pdf, data=drawn)


def grouped_bars(
    ax: plt.Axes, drawn: pd.DataFrame, x: str, x_order: list[str], order: list[str], palette: dict
) -> None:
    """Bars of ``drawn`` (mean, sem per x and label), one group per x value, SEM bars."""
    width = 0.8 / max(len(order), 1)
    for j, label in enumerate(order):
        rows = drawn[drawn["label"] == label].set_index(x).reindex(x_order)
        positions = np.arange(len(x_order)) - 0.4 + width * (j + 0.5)
        ax.bar(
            positions,
            rows["mean"],
            width,
            yerr=rows["sem"].fillna(0),
            capsize=2,
            color=palette[label],
            label=label,
        )
    ax.set_xticks(np.arange(len(x_order)))


def plot_corruption_types(
    table: pd.DataFrame, out_pdf: str | Path, title: str, severity: int = 4
) -> None:
    """Accuracy on each corruption at ``severity`` (Fig. 6 right: 4), grouped low, medium,
    high. Data CSV: one row per (corruption, label)."""
    data = labelled(table)
    data = data[(data["severity"] == severity) & (data["corruption"] != CLEAN)]
    if data.empty:
        raise ValueError(f"no accuracies at severity {severity}")
    order = label_order(data)
    present = [c for c in BY_GROUP if c in set(data["corruption"])]
    drawn = mean_sem(
        data.assign(panel=f"severity {severity}"), ["panel", "label", "corruption"], "accuracy"
    )
    drawn["frequency_group"] = drawn["corruption"].map(GROUP_OF)
    drawn["severity"] = severity
    rank = {c: i for i, c in enumerate(present)}
    drawn = (
        in_order(drawn, [f"severity {severity}"], order)
        .sort_values(["corruption"], key=lambda c: c.map(rank), kind="stable")
        .reset_index(drop=True)
    )
    draw_corruption_bars(
        drawn,
        present,
        order,
        severity,
        title,
        out_pdf,
        drawn,
        size=(max(6, 0.55 * len(present) * max(1, len(order) / 2)), 3.8),
        legend_size=8,
    )


def plot_corruption_frequency(
    table: pd.DataFrame, out_pdf: str | Path, title: str, severity: int = 4
) -> None:
    """Accuracy per frequency group of corruptions (App. 7.10) at ``severity`` (Fig. 7 left:
    4), one bar per model setting (regularization set included). Data CSV: one row per
    (group, label)."""
    data = labelled(table)
    data = data[data["severity"] == severity]
    if data.empty:
        raise ValueError(f"no accuracies at severity {severity}")
    order = label_order(data)
    models = per_model(data, ["frequency_group"])
    drawn = mean_sem(
        models.assign(panel=f"severity {severity}"),
        ["panel", "label", "frequency_group"],
        "accuracy",
    )
    drawn["severity"] = severity
    rank = {g: i for i, g in enumerate(GROUPS)}
    drawn = (
        in_order(drawn, [f"severity {severity}"], order)
        .sort_values("frequency_group", key=lambda c: c.map(rank), kind="stable")
        .reset_index(drop=True)
    )
    palette = label_palette(order)
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    groups = [g for g in GROUPS if g in set(drawn["frequency_group"])]
    grouped_bars(ax, drawn, "frequency_group", groups, order, palette)
    ax.set_xticklabels([f"{g} frequency" for g in groups])
    ax.set_ylabel(f"accuracy at severity {severity}")
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    save_figure(fig, out_pdf, data=drawn)


def most_robust(data: pd.DataFrame, severity: int) -> pd.DataFrame:
    """The rows of the regularized model (one seed) with the highest mean accuracy over the
    corruptions at ``severity``, as the paper picks "our most robust model" (App. 7.9)."""
    regularized = data[(data["method"] != BASELINE) & (data["severity"] == severity)]
    if regularized.empty:
        raise ValueError(f"no regularized model with accuracies at severity {severity}")
    means = per_model(regularized, [])
    best = means.loc[means["accuracy"].idxmax()]
    return data[(data["label"] == best["label"]) & (data["seed"] == best["seed"])]


def plot_robustbench_comparison(
    ours: pd.DataFrame,
    robustbench: pd.DataFrame,
    out_pdf: str | Path,
    title: str,
    severity: int = 5,
) -> None:
    """Accuracy per corruption and the mean over them at ``severity`` (App. 7.9: 5): our
    most robust regularized model, the unregularized model of the same seed, and each
    RobustBench model. Data CSV: one row per (model, corruption) and its ``mean``."""
    data = labelled(ours)
    best = most_robust(data, severity)
    seed = int(best["seed"].iloc[0])
    baseline = data[(data["method"] == BASELINE) & (data["seed"] == seed)]
    rows = []
    for frame, name in (
        (baseline, f"ours: {BASELINE} (seed {seed})"),
        (best, f"ours: {best['label'].iloc[0]} (seed {seed}, most robust)"),
    ):
        rows.append(frame.assign(label=name)[["label", "corruption", "severity", "accuracy"]])
    for (model, threat), frame in robustbench.groupby(["model", "threat_model"], sort=False):
        rows.append(
            frame.assign(label=f"RobustBench {model} ({threat})")[
                ["label", "corruption", "severity", "accuracy"]
            ]
        )
    drawn = pd.concat(rows, ignore_index=True)
    drawn = drawn[(drawn["severity"] == severity) & (drawn["corruption"] != CLEAN)]
    means = drawn.groupby("label", sort=False)["accuracy"].mean().reset_index()
    drawn = pd.concat(
        [drawn, means.assign(corruption="mean", severity=severity)], ignore_index=True
    )
    order = list(dict.fromkeys(drawn["label"]))
    present = [c for c in BY_GROUP if c in set(drawn["corruption"])] + ["mean"]
    drawn = drawn.rename(columns={"accuracy": "mean"}).assign(
        sem=np.nan, panel=f"severity {severity}"
    )
    draw_corruption_bars(
        drawn,
        present,
        order,
        severity,
        title,
        out_pdf,
        drawn[["panel", "label", "corruption", "severity", "mean"]],
        size=(max(7, 0.6 * len(present) * max(1, len(order) / 2)), 4),
        legend_size=7,
    )


def draw_corruption_bars(
    drawn, present, order, severity, title, out_pdf, data, *, size, legend_size
) -> None:
    """Bars per corruption (``present``, in order) and label at one severity, saved with the
    numbers drawn (``data``)."""
    fig, ax = plt.subplots(figsize=size)
    grouped_bars(ax, drawn, "corruption", present, order, label_palette(order))
    ax.set_xticklabels([NAMES.get(c, c) for c in present], rotation=60, ha="right")
    ax.set_ylabel(f"accuracy at severity {severity}")
    ax.legend(fontsize=legend_size)
    ax.set_title(title, fontsize=10)
    save_figure(fig, out_pdf, data=data)


def corruption_spectra(path: str | Path, severity: int = 3) -> pd.DataFrame:
    """E|F(C(X) - X)| of each corruption at ``severity`` over the set's images: the 2-D DFT
    magnitude per image and channel, averaged over both, zero frequency centred. Tidy:
    corruption, frequency_group, ky, kx, magnitude."""
    corrupted = read_corruptions(path)
    clean = corrupted.clean.astype(np.float64) / 255.0
    h, w = clean.shape[1:3]
    ky, kx = np.meshgrid(np.arange(h) - h // 2, np.arange(w) - w // 2, indexing="ij")
    frames = []
    for corruption in [c for c in BY_GROUP if c in corrupted.corruptions()]:
        diff = corrupted.images(corruption, severity).astype(np.float64) / 255.0 - clean
        magnitude = np.abs(np.fft.fft2(diff, axes=(1, 2))).mean(axis=(0, 3))
        frames.append(
            pd.DataFrame(
                {
                    "corruption": corruption,
                    "frequency_group": GROUP_OF[corruption],
                    "severity": severity,
                    "ky": ky.ravel(),
                    "kx": kx.ravel(),
                    "magnitude": np.fft.fftshift(magnitude).ravel(),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def plot_corruption_spectra(
    path: str | Path, out_pdf: str | Path, title: str, severity: int = 3
) -> None:
    """One panel per corruption, log(1 + E|F(C(X) - X)|), ordered low, medium, high
    frequency (Fig. 25, severity 3). Data CSV: the spectra (corruption_spectra's rows)."""
    drawn = corruption_spectra(path, severity)
    corruptions = list(dict.fromkeys(drawn["corruption"]))
    columns = 5
    rows = -(-len(corruptions) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.2 * columns, 2.3 * rows), squeeze=False)
    shown = np.log1p(drawn["magnitude"])
    vmin, vmax = shown.min(), shown.max()
    for ax, corruption in zip(axes.ravel(), corruptions):
        rows_c = drawn[drawn["corruption"] == corruption]
        h, w = rows_c["ky"].nunique(), rows_c["kx"].nunique()
        image = np.log1p(rows_c["magnitude"].to_numpy()).reshape(h, w)
        ax.imshow(image, cmap="viridis", vmin=vmin, vmax=vmax)
        ax.set_title(f"{NAMES[corruption]}\n({GROUP_OF[corruption]})", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes.ravel()[len(corruptions) :]:
        ax.axis("off")
    fig.suptitle(f"{title}: log(1 + E|F(C(X) − X)|), severity {severity}", fontsize=10)
    fig.tight_layout()
    save_figure(fig, out_pdf, data=drawn.assign(log1p_magnitude=np.log1p(drawn["magnitude"])))
