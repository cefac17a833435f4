"""Figures of the attacks: transferred FGSM and Boundary score per model setting (paper Fig. 3
centre and right; with the noise panels, Figs. 5, 8 and 9), the spectrum of minimal
perturbations (Fig. 7 centre and right), and the minimal Lp distances (supplement Fig. 2).

Lines and bars are means over seeds with SEM error bars; a model's Boundary score is first
averaged over its repeats (App. 7.1).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from simreg.figures import NOISE_NAMES, label_order, model_labels, save_figure
from simreg.selection import MODEL_KEYS, normalize_keys
from simreg.tables import boundary_scores, minimal_distance_summary

NORM_NAMES = {"l0": "L0", "l1": "L1", "l2": "L2", "linf": "L∞"}


def labelled(frame: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its model keys typed and the ``label`` of its model from ``labels``."""
    return normalize_keys(frame).merge(labels, on=MODEL_KEYS, how="left")


def model_label_table(*frames: pd.DataFrame) -> pd.DataFrame:
    """One label per model over all ``frames``, so that every panel names models alike."""
    keys = pd.concat([normalize_keys(f)[MODEL_KEYS] for f in frames if not f.empty])
    keys = keys.drop_duplicates().reset_index(drop=True)
    return keys.assign(label=model_labels(keys))


def plot_robustness(out_pdf: str | Path, title: str, *, fgsm: pd.DataFrame,
                    boundary: pd.DataFrame, noise: pd.DataFrame | None = None) -> None:
    """One row of panels: accuracy vs ε per noise kind (if ``noise``), accuracy vs ε under
    transferred FGSM, and the Boundary score per setting, one color per model setting."""
    noise = noise if noise is not None else pd.DataFrame()
    labels = model_label_table(fgsm, boundary, noise)
    order = label_order(labels)
    palette = dict(zip(order, sns.color_palette(n_colors=len(order))))
    fgsm, boundary = labelled(fgsm, labels), labelled(boundary_scores(boundary), labels)
    kinds = [] if noise.empty else [k for k in NOISE_NAMES if k in set(noise["noise"])]
    settings = list(dict.fromkeys(boundary.sort_values("steps")["setting"]))  # fewest steps first
    n_panels = len(kinds) + 1 + len(settings)
    fig, axes = plt.subplots(1, n_panels, figsize=(3.4 * n_panels, 3.4), squeeze=False)
    axes = list(axes[0])
    line = dict(hue="label", hue_order=order, palette=palette, marker="o", errorbar="se")
    if kinds:
        noise = labelled(noise, labels)
    for ax, kind in zip(axes, kinds):
        sns.lineplot(data=noise[noise["noise"] == kind], x="epsilon", y="accuracy", ax=ax,
                     legend=False, **line)
        ax.set(title=NOISE_NAMES[kind], xlabel="noise level ε", ylabel="test accuracy")
    ax = axes[len(kinds)]
    sns.lineplot(data=fgsm, x="epsilon", y="accuracy", ax=ax, legend=False, **line)
    ax.set(title="FGSM transferred from none", xlabel="ε", ylabel="test accuracy")
    for ax, setting in zip(axes[len(kinds) + 1 :], settings):
        rows = boundary[boundary["setting"] == setting]
        sns.barplot(data=rows, x="label", y="score", order=order, hue="label", hue_order=order,
                    palette=palette, errorbar="se", ax=ax, legend=False)
        steps = int(rows["steps"].iloc[0])
        ax.set(title=f"Boundary Attack, {setting} ({steps} steps)", xlabel="", xticks=[],
               ylabel="S(M): median ||δ||²/d")
        unsolved = int(rows["n_unsolved"].sum())
        if unsolved:
            ax.text(0.02, 0.98, f"{unsolved} unsolved images (left out)", va="top",
                    transform=ax.transAxes, fontsize=7)
    handles = [plt.Line2D([], [], color=palette[label], marker="o") for label in order]
    fig.legend(handles, order, loc="upper center", bbox_to_anchor=(0.5, 0.0),
               ncol=min(4, len(order)), frameon=False)
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, out_pdf)


def plot_perturbation_spectrum(spectra: list[dict], out_pdf: str | Path, title: str) -> None:
    """Centre: mean log power spectrum per model setting (seeds averaged); right: radial
    profiles, mean ± SEM over seeds."""
    keys = pd.DataFrame([{k: s[k] for k in MODEL_KEYS} for s in spectra])
    labels = model_label_table(keys)
    keyed = labelled(keys, labels)
    order = label_order(labels)
    fig, axes = plt.subplots(1, len(order) + 1, figsize=(3.4 * (len(order) + 1), 3.4),
                             squeeze=False, layout="constrained")
    axes = list(axes[0])
    rows = []
    for spectrum, label in zip(spectra, keyed["label"]):
        rows += [{"label": label, "radius": r, "power": p}
                 for r, p in zip(spectrum["radius"], spectrum["radial_power"])]
    mean_power = {label: np.mean([s["power"] for s, lab in zip(spectra, keyed["label"])
                                  if lab == label], axis=0) for label in order}
    logs = {label: np.log10(p) for label, p in mean_power.items()}
    low, high = min(v.min() for v in logs.values()), max(v.max() for v in logs.values())
    for ax, label in zip(axes, order):
        image = ax.imshow(logs[label], cmap="magma", vmin=low, vmax=high)
        ax.set(title=label, xticks=[], yticks=[])
    fig.colorbar(image, ax=axes[: len(order)], shrink=0.8, label="log₁₀ power")
    ax = axes[-1]
    sns.lineplot(data=pd.DataFrame(rows), x="radius", y="power", hue="label", hue_order=order,
                 marker="o", errorbar="se", ax=ax)
    ax.set(yscale="log", xlabel="spatial frequency |k| (cycles per image)",
           ylabel="power (unit-norm δ)", title="radial profile")
    ax.legend(fontsize=7, title="")
    fig.suptitle(title)
    save_figure(fig, out_pdf)


def plot_minimal_distance(distances: pd.DataFrame, out_pdf: str | Path, title: str) -> None:
    """One panel per norm: the median minimal distance per model setting (mean ± SEM over
    seeds)."""
    labels = model_label_table(distances)
    order = label_order(labels)
    per_model = labelled(minimal_distance_summary(distances), labels)
    norms = [n for n in NORM_NAMES if n in set(per_model["norm"])]
    fig, axes = plt.subplots(1, len(norms), figsize=(3.2 * len(norms), 3.6), squeeze=False)
    for ax, norm in zip(axes[0], norms):
        rows = per_model[per_model["norm"] == norm]
        sns.barplot(data=rows, x="label", y="median", order=order, hue="label", hue_order=order,
                    errorbar="se", ax=ax, legend=False)
        ax.set(title=NORM_NAMES[norm], xlabel="", xticks=[], ylabel="median minimal distance")
    handles = [plt.Rectangle((0, 0), 1, 1, color=color)
               for color in sns.color_palette(n_colors=len(order))]
    fig.legend(handles, order, loc="upper center", bbox_to_anchor=(0.5, 0.0),
               ncol=min(4, len(order)), frameon=False)
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, out_pdf)
