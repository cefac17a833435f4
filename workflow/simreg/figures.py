"""Figures: accuracy under random noise (paper Fig. 3 left, Figs. 12-13) and the
selection plane of (alpha, Th) settings (paper Fig. 4).

Every figure is written as a PDF and as a PNG beside it, both atomically. Error bars are
the SEM across seeds.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from simreg.outputs import atomic_output  # noqa: E402
from simreg.selection import BASELINE, acceptable, normalize_keys, selection_ratios  # noqa: E402

NOISE_NAMES = {"gaussian": "Gaussian", "uniform": "uniform", "salt_pepper": "salt & pepper"}


def setting_text(alpha: float, threshold: float, sep: str = ", ") -> str:
    """``"α=10, Th=0.8"``, or ``"α=10"`` for methods without a threshold."""
    text = f"α={alpha:g}"
    if not math.isnan(threshold):
        text += f"{sep}Th={threshold:g}"
    return text


def varying_keys(frame: pd.DataFrame) -> list[str]:
    """Of task, regularization and reg_pairs, those that vary among regularized rows."""
    regularized = frame[frame["method"] != BASELINE]
    return [key for key in ("task", "regularization", "reg_pairs") if regularized[key].nunique() > 1]


def model_labels(frame: pd.DataFrame, with_setting: bool = True) -> pd.Series:
    """A readable label per row, e.g. "threshold α=10 Th=0.8" or "none".

    Task, regularization set and pair count are added only when they vary in ``frame``;
    ``with_setting=False`` leaves out alpha and Th (one label per method).
    """
    varying = varying_keys(frame)

    def label(row) -> str:
        if row["method"] == BASELINE:
            return f"{row['task']} {BASELINE}" if "task" in varying else BASELINE
        parts = [f"pairs={row[key]}" if key == "reg_pairs" else str(row[key]) for key in varying]
        parts.append(row["method"])
        if with_setting:
            parts.append(setting_text(row["alpha"], row["threshold"], sep=" "))
        return " ".join(parts)

    return frame.apply(label, axis=1)


def label_order(frame: pd.DataFrame) -> list[str]:
    """Labels with the baseline first, then by method, alpha and threshold."""
    ordered = frame.assign(is_regularized=frame["method"] != BASELINE).sort_values(
        ["is_regularized", "task", "regularization", "method", "alpha", "threshold", "reg_pairs"],
        na_position="first")
    return list(dict.fromkeys(ordered["label"]))


def save_figure(fig: plt.Figure, out_pdf: str | Path) -> None:
    """Write ``fig`` to ``out_pdf`` and to the PNG beside it, atomically, then close it."""
    out_pdf = Path(out_pdf)
    with atomic_output(out_pdf) as tmp:
        fig.savefig(tmp, format="pdf", bbox_inches="tight")
    with atomic_output(out_pdf.with_suffix(".png")) as tmp:
        fig.savefig(tmp, format="png", dpi=150, bbox_inches="tight")
    plt.close(fig)


def plot_noise_accuracy(noise: pd.DataFrame, out_pdf: str | Path, title: str) -> None:
    """Accuracy vs epsilon, one panel per noise kind, one line per model setting."""
    data = normalize_keys(noise)
    data["label"] = model_labels(data)
    kinds = [kind for kind in NOISE_NAMES if kind in set(data["noise"])]
    kinds += sorted(set(data["noise"]) - set(kinds))
    grid = sns.relplot(data=data, kind="line", x="epsilon", y="accuracy", col="noise",
                       col_order=kinds, hue="label", hue_order=label_order(data),
                       style="label", style_order=label_order(data), markers=True, dashes=False,
                       errorbar="se", height=3.2, aspect=1.1,
                       facet_kws={"sharex": False, "sharey": True})
    for kind, ax in grid.axes_dict.items():
        ax.set_title(NOISE_NAMES.get(kind, kind))
        ax.set_xlabel("noise level ε")
    grid.set_ylabels("test accuracy")
    grid.legend.set_title("")
    grid.figure.suptitle(title, y=1.03)
    save_figure(grid.figure, out_pdf)


def shade_acceptable(ax: plt.Axes, min_clean_ratio: float) -> None:
    """Shade x > 1, y >= min_clean_ratio over the current limits; dashed lines on its edges."""
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    if x1 > 1 and y1 > min_clean_ratio:
        ax.fill_between([1, x1], min_clean_ratio, y1, color="tab:green", alpha=0.12,
                        linewidth=0, label="acceptable", zorder=0)
    ax.axvline(1, color="gray", linestyle="--", linewidth=1)
    ax.axhline(min_clean_ratio, color="gray", linestyle="--", linewidth=1)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)


def padded_limits(values: pd.Series, errors: pd.Series, anchor: float) -> tuple[float, float]:
    """Limits covering values ± errors and ``anchor``, with a 10 % margin."""
    errors = errors.fillna(0)
    low = min((values - errors).min(), anchor)
    high = max((values + errors).max(), anchor)
    margin = 0.1 * (high - low) or 0.05 * abs(anchor) or 0.05
    return low - margin, high + margin


def plot_selection_plane(noise: pd.DataFrame, out_pdf: str | Path, noise_kind: str,
                         min_clean_ratio: float, title: str) -> None:
    """Each (alpha, Th) setting at (RD/UD, R0/U0) with SEM bars; acceptable region shaded."""
    ratios = selection_ratios(noise, noise_kind)
    if ratios.empty:
        raise ValueError("no regularized models to place on the selection plane")
    ratios["series"] = model_labels(ratios, with_setting=False)
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    palette = sns.color_palette(n_colors=max(ratios["series"].nunique(), 1))
    for color, (series, points) in zip(palette, ratios.groupby("series", sort=True)):
        ax.errorbar(points["robust_ratio"], points["clean_ratio"],
                    xerr=points["robust_ratio_sem"].fillna(0),
                    yerr=points["clean_ratio_sem"].fillna(0),
                    fmt="o", color=color, capsize=2, label=series)
        for _, point in points.iterrows():
            ax.annotate(setting_text(point["alpha"], point["threshold"]),
                        (point["robust_ratio"], point["clean_ratio"]),
                        textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xlim(*padded_limits(ratios["robust_ratio"], ratios["robust_ratio_sem"], 1.0))
    ax.set_ylim(*padded_limits(ratios["clean_ratio"], ratios["clean_ratio_sem"], min_clean_ratio))
    shade_acceptable(ax, min_clean_ratio)
    n_ok = int(acceptable(ratios, min_clean_ratio).sum())
    ax.set_xlabel(f"RD/UD (mean accuracy under {NOISE_NAMES.get(noise_kind, noise_kind)} noise)")
    ax.set_ylabel("R0/U0 (clean accuracy)")
    ax.set_title(f"{title}\n{n_ok} of {len(ratios)} settings acceptable", fontsize=10)
    ax.legend(fontsize=7, loc="best")
    save_figure(fig, out_pdf)
