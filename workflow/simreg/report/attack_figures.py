"""Figures of the attacks: transferred FGSM and Boundary score per model setting (paper Fig. 3
centre and right; with the noise panels, Figs. 5, 8 and 9), the spectrum of minimal
perturbations (Fig. 7 centre and right), and the minimal Lp distances (supplement Fig. 2).

Lines and bars are means over seeds with SEM error bars; a model's Boundary score is first
averaged over its repeats (App. 7.1). Each figure computes those means and SEMs first, draws
from them and saves them beside the PDF as ``<name>.data.csv`` (see
:func:`simreg.report.noise_figures.save_figure`).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from simreg.report.noise_figures import (
    NOISE_NAMES,
    draw_sem_bands,
    draw_sem_bars,
    in_order,
    label_order,
    label_palette,
    mean_sem,
    model_labels,
    save_figure,
)
from simreg.report.selection import MODEL_KEYS, normalize_keys
from simreg.report.tables import boundary_scores, minimal_distance_summary

NORM_NAMES = {"l0": "L0", "l1": "L1", "l2": "L2", "linf": "L∞"}


def labelled(frame: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its model keys typed and the ``label`` of its model from ``labels``."""
    return normalize_keys(frame).merge(labels, on=MODEL_KEYS, how="left")


def model_label_table(*frames: pd.DataFrame) -> pd.DataFrame:
    """One label per model over all ``frames``, so that every panel names models alike."""
    keys = pd.concat([normalize_keys(f)[MODEL_KEYS] for f in frames if not f.empty])
    keys = keys.drop_duplicates().reset_index(drop=True)
    return keys.assign(label=model_labels(keys))


def plot_robustness(
    out_pdf: str | Path,
    title: str,
    *,
    fgsm: pd.DataFrame,
    boundary: pd.DataFrame,
    noise: pd.DataFrame | None = None,
) -> None:
    """One row of panels: accuracy vs ε per noise kind (if ``noise``), accuracy vs ε under
    transferred FGSM, and the Boundary score per setting, one color per model setting.

    The data CSV has one row per (panel, label, epsilon) of the line panels and per (panel,
    label) of the Boundary panels: mean and SEM over seeds of the accuracy or the score, the
    number ``n`` of seeds, and (Boundary) the unsolved images summed over repeats and seeds."""
    noise = noise if noise is not None else pd.DataFrame()
    labels = model_label_table(fgsm, boundary, noise)
    order = label_order(labels)
    palette = dict(zip(order, sns.color_palette(n_colors=len(order))))
    fgsm, boundary = labelled(fgsm, labels), labelled(boundary_scores(boundary), labels)
    kinds = [] if noise.empty else [k for k in NOISE_NAMES if k in set(noise["noise"])]
    settings = list(dict.fromkeys(boundary.sort_values("steps")["setting"]))  # fewest steps first
    fgsm_panel = "FGSM transferred from none"
    xlabels = {**{NOISE_NAMES[kind]: "noise level ε" for kind in kinds}, fgsm_panel: "ε"}
    line_panels = list(xlabels)
    steps = {
        setting: int(boundary.loc[boundary["setting"] == setting, "steps"].iloc[0])
        for setting in settings
    }
    bar_panels = [f"Boundary Attack, {setting} ({steps[setting]} steps)" for setting in settings]
    lines = [fgsm.assign(panel=fgsm_panel)]
    if kinds:
        noise = labelled(noise, labels)
        lines = [
            noise[noise["noise"] == kind].assign(panel=panel)
            for kind, panel in zip(kinds, line_panels)
        ] + lines
    bars = boundary.assign(panel=boundary["setting"].map(dict(zip(settings, bar_panels))))
    bar_data = mean_sem(bars, ["panel", "label"], "score").merge(
        bars.groupby(["panel", "label"])["n_unsolved"].sum().reset_index(),
        on=["panel", "label"],
        how="left",
    )
    drawn = in_order(
        pd.concat(
            [mean_sem(pd.concat(lines), ["panel", "label", "epsilon"], "accuracy"), bar_data],
            ignore_index=True,
        ),
        line_panels + bar_panels,
        order,
        "epsilon",
    )
    drawn = drawn[["panel", "label", "epsilon", "mean", "sem", "n", "n_unsolved"]].astype(
        {"n_unsolved": "Int64"}
    )

    n_panels = len(line_panels) + len(bar_panels)
    fig, axes = plt.subplots(1, n_panels, figsize=(3.4 * n_panels, 3.4), squeeze=False)
    axes = list(axes[0])
    for ax, panel in zip(axes, line_panels):
        rows = drawn[drawn["panel"] == panel]
        sns.lineplot(
            data=rows,
            x="epsilon",
            y="mean",
            hue="label",
            hue_order=order,
            palette=palette,
            marker="o",
            errorbar=None,
            ax=ax,
            legend=False,
        )
        draw_sem_bands(ax, rows, "epsilon", palette, order)
        ax.set(title=panel, xlabel=xlabels[panel], ylabel="test accuracy")
    for ax, panel in zip(axes[len(line_panels) :], bar_panels):
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
        ax.set(title=panel, xlabel="", xticks=[], ylabel="S(M): median ||δ||²/d")
        unsolved = int(rows["n_unsolved"].sum())
        if unsolved:
            ax.text(
                0.02,
                0.98,
                f"{unsolved} unsolved images (left out)",
                va="top",
                transform=ax.transAxes,
                fontsize=7,
            )
    handles = [plt.Line2D([], [], color=palette[label], marker="o") for label in order]
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


def plot_perturbation_spectrum(spectra: list[dict], out_pdf: str | Path, title: str) -> None:
    """Centre: mean log power spectrum per model setting (seeds averaged); right: radial
    profiles, mean ± SEM over seeds.

    The data CSV holds the radial profiles: one row per (label, radius), mean and SEM of the
    power over seeds and their number ``n``; the 2-D spectra are not in it."""
    keys = pd.DataFrame([{k: s[k] for k in MODEL_KEYS} for s in spectra])
    labels = model_label_table(keys)
    keyed = labelled(keys, labels)
    order = label_order(labels)
    fig, axes = plt.subplots(
        1,
        len(order) + 1,
        figsize=(3.4 * (len(order) + 1), 3.4),
        squeeze=False,
        layout="constrained",
    )
    axes = list(axes[0])
    rows = []
    for spectrum, label in zip(spectra, keyed["label"]):
        rows += [
            {"label": label, "radius": r, "power": p}
            for r, p in zip(spectrum["radius"], spectrum["radial_power"])
        ]
    panel = "radial profile"
    drawn = in_order(
        mean_sem(pd.DataFrame(rows).assign(panel=panel), ["panel", "label", "radius"], "power"),
        [panel],
        order,
        "radius",
    )
    mean_power = {
        label: np.mean(
            [s["power"] for s, lab in zip(spectra, keyed["label"]) if lab == label], axis=0
        )
        for label in order
    }
    logs = {label: np.log10(p) for label, p in mean_power.items()}
    low, high = min(v.min() for v in logs.values()), max(v.max() for v in logs.values())
    for ax, label in zip(axes, order):
        image = ax.imshow(logs[label], cmap="magma", vmin=low, vmax=high)
        ax.set(title=label, xticks=[], yticks=[])
    fig.colorbar(image, ax=axes[: len(order)], shrink=0.8, label="log₁₀ power")
    ax = axes[-1]
    palette = label_palette(order)
    sns.lineplot(
        data=drawn,
        x="radius",
        y="mean",
        hue="label",
        hue_order=order,
        palette=palette,
        marker="o",
        errorbar=None,
        ax=ax,
    )
    draw_sem_bands(ax, drawn, "radius", palette, order)
    ax.set(
        yscale="log",
        xlabel="spatial frequency |k| (cycles per image)",
        ylabel="power (unit-norm δ)",
        title=panel,
    )
    ax.legend(fontsize=7, title="")
    fig.suptitle(title)
    save_figure(fig, out_pdf, data=drawn)


def plot_minimal_distance(distances: pd.DataFrame, out_pdf: str | Path, title: str) -> None:
    """One panel per norm: the mean minimal distance over the images per model setting, as
    the supplement's Fig. 2 plots it ("average this minimal adversarial distance over all
    1000 samples"); mean ± SEM over seeds. Images on which no attack of the suite succeeded
    (infinite distance) are left out of a model's mean and counted in ``n_unsolved``. The
    models table keeps the median too.

    The data CSV has one row per (panel, label): mean and SEM over seeds of the per-model
    mean distance, the number ``n`` of seeds and the unsolved images summed over seeds."""
    labels = model_label_table(distances)
    order = label_order(labels)
    per_model = labelled(minimal_distance_summary(distances), labels)
    norms = [n for n in NORM_NAMES if n in set(per_model["norm"])]
    panels = [NORM_NAMES[norm] for norm in norms]
    per_model = per_model[per_model["norm"].isin(norms)]
    per_model = per_model.assign(panel=per_model["norm"].map(NORM_NAMES))
    unsolved = per_model.groupby(["panel", "label"])["n_unsolved"].sum().rename("n_unsolved")
    drawn = in_order(
        mean_sem(per_model, ["panel", "label"], "mean_solved").merge(
            unsolved.reset_index(), on=["panel", "label"]
        ),
        panels,
        order,
    )
    palette = label_palette(order)
    fig, axes = plt.subplots(1, len(norms), figsize=(3.2 * len(norms), 3.6), squeeze=False)
    for ax, panel in zip(axes[0], panels):
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
        ax.set(title=panel, xlabel="", xticks=[], ylabel="mean minimal distance")
    handles = [
        plt.Rectangle((0, 0), 1, 1, color=color) for color in sns.color_palette(n_colors=len(order))
    ]
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
