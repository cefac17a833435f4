"""Figures: accuracy under random noise (paper Fig. 3 left, Figs. 12-16, the variants of
Figs. 20-22) and the selection planes of (alpha, Th) settings (paper Fig. 4).

Every figure is written as a PDF and as a PNG beside it, with the numbers it was drawn from
in ``<name>.data.csv`` (one tidy row per point or bar, ``panel`` naming its panel), all
atomically. Error bars are the SEM across seeds; each figure computes its means and SEMs
first and draws from that frame, so the CSV holds exactly what is drawn.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from simreg.outputs import atomic_output, write_csv  # noqa: E402
from simreg.report.selection import (
    ATTACKS,
    BASELINE,
    FGSM,
    acceptable,  # noqa: E402
    normalize_keys,
    selection_ratios,
)

NOISE_NAMES = {"gaussian": "Gaussian", "uniform": "uniform", "salt_pepper": "salt & pepper"}
ATTACK_NAMES = {**{k: f"{v} noise" for k, v in NOISE_NAMES.items()}, FGSM: "transferred FGSM"}


def setting_text(alpha: float, threshold: float, sep: str = ", ") -> str:
    """``"α=10, Th=0.8"``, or ``"α=10"`` for methods without a threshold."""
    text = f"α={alpha:g}"
    if not math.isnan(threshold):
        text += f"{sep}Th={threshold:g}"
    return text


def varying_keys(frame: pd.DataFrame) -> list[str]:
    """Of task, regularization and reg_pairs, those that vary among regularized rows."""
    regularized = frame[frame["method"] != BASELINE]
    return [
        key for key in ("task", "regularization", "reg_pairs") if regularized[key].nunique() > 1
    ]


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
        na_position="first",
    )
    return list(dict.fromkeys(ordered["label"]))


def data_file(out_pdf: str | Path) -> Path:
    """The CSV of the numbers a figure was drawn from: ``x.pdf`` -> ``x.data.csv``."""
    return Path(out_pdf).with_suffix(".data.csv")


def save_figure(fig: plt.Figure, out_pdf: str | Path, *, data: pd.DataFrame) -> None:
    """Write ``data`` (what ``fig`` shows) to ``<stem>.data.csv``, then ``fig`` to ``out_pdf``
    and to the PNG beside it, each atomically, then close ``fig``."""
    out_pdf = Path(out_pdf)
    write_csv(data, data_file(out_pdf))
    with atomic_output(out_pdf) as tmp:
        fig.savefig(tmp, format="pdf", bbox_inches="tight")
    with atomic_output(out_pdf.with_suffix(".png")) as tmp:
        fig.savefig(tmp, format="png", dpi=150, bbox_inches="tight")
    plt.close(fig)


def mean_sem(frame: pd.DataFrame, keys: list[str], value: str) -> pd.DataFrame:
    """Per group of ``keys``: ``mean`` and ``sem`` of ``value`` and the number ``n`` of values
    (one per seed), as seaborn's ``errorbar="se"`` draws them: rows lacking a key or the value
    are left out, and the SEM of a single value is NaN (no error bar)."""
    rows = frame.dropna(subset=[*keys, value])
    return (
        rows.groupby(keys, sort=False)[value].agg(mean="mean", sem="sem", n="count").reset_index()
    )


def in_order(
    frame: pd.DataFrame, panels: list[str], labels: list[str], x: str | None = None
) -> pd.DataFrame:
    """``frame`` sorted as drawn: by panel, then label (in the given orders), then ``x``."""
    rank = {
        "panel": {p: i for i, p in enumerate(panels)},
        "label": {lab: i for i, lab in enumerate(labels)},
    }
    keys = ["panel", "label"] + ([x] if x else [])
    return frame.sort_values(
        keys, key=lambda col: col.map(rank[col.name]) if col.name in rank else col, kind="stable"
    ).reset_index(drop=True)


def label_palette(order: list[str]) -> dict:
    """A color per label, the ones seaborn picks for ``hue_order=order`` by default (the
    color cycle, or husl when there are more labels than cycle colors)."""
    n = len(order)
    colors = (
        sns.color_palette(n_colors=n)
        if n <= len(sns.color_palette())
        else sns.color_palette("husl", n)
    )
    return dict(zip(order, colors))


def draw_sem_bands(
    ax: plt.Axes, drawn: pd.DataFrame, x: str, palette: dict, order: list[str]
) -> None:
    """The band ``mean ± sem`` around each label's line, as seaborn's
    ``errorbar="se"`` draws it."""
    for label in order:
        rows = drawn[drawn["label"] == label].sort_values(x)
        if len(rows):
            ax.fill_between(
                rows[x],
                rows["mean"] - rows["sem"],
                rows["mean"] + rows["sem"],
                color=palette[label],
                alpha=0.2,
            )


def draw_sem_bars(ax: plt.Axes, drawn: pd.DataFrame, order: list[str]) -> None:
    """The error bar ``mean ± sem`` on each bar of a categorical bar plot with ``order``, as
    seaborn's ``errorbar="se"`` draws it."""
    for row in drawn.itertuples():
        i = order.index(row.label)
        ax.plot(
            [i, i],
            [row.mean - row.sem, row.mean + row.sem],
            color=".26",
            linewidth=1.5 * matplotlib.rcParams["lines.linewidth"],
        )
    ax.set_xlim(-0.5, len(order) - 0.5, auto=None)  # as seaborn leaves a categorical axis


def plot_noise_accuracy(noise: pd.DataFrame, out_pdf: str | Path, title: str) -> None:
    """Accuracy vs epsilon, one panel per noise kind, one line per model setting.

    The data CSV has one row per (panel, label, epsilon): mean and SEM of the accuracy over
    seeds and their number ``n``."""
    data = normalize_keys(noise)
    data["label"] = model_labels(data)
    kinds = [kind for kind in NOISE_NAMES if kind in set(data["noise"])]
    kinds += sorted(set(data["noise"]) - set(kinds))
    panels = [NOISE_NAMES.get(kind, kind) for kind in kinds]
    order = label_order(data)
    data["panel"] = data["noise"].map(dict(zip(kinds, panels)))
    drawn = in_order(
        mean_sem(data, ["panel", "label", "epsilon"], "accuracy"), panels, order, "epsilon"
    )
    palette = label_palette(order)
    grid = sns.relplot(
        data=drawn,
        kind="line",
        x="epsilon",
        y="mean",
        col="panel",
        col_order=panels,
        hue="label",
        hue_order=order,
        palette=palette,
        style="label",
        style_order=order,
        markers=True,
        dashes=False,
        errorbar=None,
        height=3.2,
        aspect=1.1,
        facet_kws={"sharex": False, "sharey": True},
    )
    for panel, ax in grid.axes_dict.items():
        draw_sem_bands(ax, drawn[drawn["panel"] == panel], "epsilon", palette, order)
        ax.set_title(panel)
        ax.set_xlabel("noise level ε")
    grid.set_ylabels("test accuracy")
    grid.legend.set_title("")
    grid.figure.suptitle(title, y=1.03)
    save_figure(grid.figure, out_pdf, data=drawn)


def shade_acceptable(ax: plt.Axes, min_clean_ratio: float) -> None:
    """Shade x > 1, y >= min_clean_ratio over the current limits; dashed lines on its edges."""
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    if x1 > 1 and y1 > min_clean_ratio:
        ax.fill_between(
            [1, x1],
            min_clean_ratio,
            y1,
            color="tab:green",
            alpha=0.12,
            linewidth=0,
            label="acceptable",
            zorder=0,
        )
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


def plot_selection_plane(
    noise: pd.DataFrame,
    out_pdf: str | Path,
    epsilons: dict[str, float],
    min_clean_ratio: float,
    title: str,
    fgsm: pd.DataFrame | None = None,
) -> None:
    """One plane per attack (paper Fig. 4: Gaussian, uniform, salt-and-pepper, transferred
    FGSM): each (alpha, Th) setting at (RD/UD, R0/U0) with SEM bars, the ratios at the
    attack's configured ε (``epsilons``); acceptable region shaded.

    Attacks without data (e.g. no FGSM evaluation) get no plane. The data CSV has one row
    per point: its panel and label (series), alpha, Th, the attack and its ε, both ratios
    with their SEM over seeds (NaN for one seed, drawn as no bar), ``n_seeds`` and
    ``acceptable``."""
    present = set(noise["noise"]) if noise is not None and len(noise) else set()
    if fgsm is not None and len(fgsm):
        present.add(FGSM)
    attacks = [a for a in ATTACKS if a in epsilons and a in present]
    if not attacks:
        raise ValueError(f"no attack of {sorted(epsilons)} in the data ({sorted(present)})")
    planes = []
    for attack in attacks:
        ratios = selection_ratios(noise, attack, epsilons[attack], fgsm=fgsm)
        if ratios.empty:
            raise ValueError("no regularized models to place on the selection plane")
        planes.append(
            ratios.assign(
                panel=f"{ATTACK_NAMES[attack]}, ε = {epsilons[attack]:g}",
                label=model_labels(ratios, with_setting=False),
                acceptable=acceptable(ratios, min_clean_ratio),
            )
        )
    panels = [p["panel"].iloc[0] for p in planes]
    drawn = pd.concat(planes, ignore_index=True)
    drawn = in_order(drawn, panels, sorted(set(drawn["label"])))[
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
        ]
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.0 * len(panels), 4.5), squeeze=False)
    labels = sorted(set(drawn["label"]))
    palette = dict(zip(labels, sns.color_palette(n_colors=max(len(labels), 1))))
    for ax, panel in zip(axes[0], panels):
        rows = drawn[drawn["panel"] == panel]
        for series, points in rows.groupby("label", sort=True):
            ax.errorbar(
                points["robust_ratio"],
                points["clean_ratio"],
                xerr=points["robust_ratio_sem"].fillna(0),
                yerr=points["clean_ratio_sem"].fillna(0),
                fmt="o",
                color=palette[series],
                capsize=2,
                label=series,
            )
            for _, point in points.iterrows():
                ax.annotate(
                    setting_text(point["alpha"], point["threshold"]),
                    (point["robust_ratio"], point["clean_ratio"]),
                    textcoords="offset points",
                    xytext=(4, 4),
                    fontsize=7,
                )
        ax.set_xlim(*padded_limits(rows["robust_ratio"], rows["robust_ratio_sem"], 1.0))
        ax.set_ylim(*padded_limits(rows["clean_ratio"], rows["clean_ratio_sem"], min_clean_ratio))
        shade_acceptable(ax, min_clean_ratio)
        n_ok = int(rows["acceptable"].sum())
        ax.set_xlabel("RD/UD (accuracy at ε)")
        ax.set_ylabel("R0/U0 (clean accuracy)")
        ax.set_title(f"{panel}\n{n_ok} of {len(rows)} settings acceptable", fontsize=10)
        ax.legend(fontsize=7, loc="best")
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, out_pdf, data=drawn)


def plot_noise_examples(
    dataset_file: str | Path,
    out_pdf: str | Path,
    epsilon: float,
    clip: str,
    seed: int,
    title: str,
    image: int = 0,
) -> None:
    """Paper Fig. 11: test image ``image`` of the task, clean and under Gaussian, uniform and
    salt-and-pepper noise at ``epsilon``, drawn exactly as the noise evaluation draws them
    (generator seeded by the noise seed, the configured clip).

    The data CSV has one row per panel: the noise, ε, the image's min and max, and the mean
    absolute change from the clean image."""
    import torch

    from simreg.data.store import read_split
    from simreg.evaluate.noise import NOISES
    from simreg.models.inference import to_input

    test = read_split(dataset_file, "test")
    clean = to_input(torch.from_numpy(test.images[image : image + 1]))
    shown = {"clean": clean}
    for kind, add_noise in NOISES.items():
        generator = torch.Generator().manual_seed(seed)
        shown[kind] = add_noise(clean, float(epsilon), generator, clip)
    rows = [
        {
            "panel": NOISE_NAMES.get(kind, kind),
            "noise": kind,
            "epsilon": 0.0 if kind == "clean" else float(epsilon),
            "image": image,
            "min": x.min().item(),
            "max": x.max().item(),
            "mean_abs_change": (x - clean).abs().mean().item(),
        }
        for kind, x in shown.items()
    ]
    fig, axes = plt.subplots(1, len(shown), figsize=(2.6 * len(shown), 2.9), squeeze=False)
    for ax, (kind, x) in zip(axes[0], shown.items()):
        picture = x[0].permute(1, 2, 0).numpy()
        gray = picture.shape[-1] == 1
        ax.imshow(
            picture[..., 0] if gray else picture,
            cmap="gray" if gray else None,
            vmin=0.0,
            vmax=1.0,
            interpolation="nearest",
        )
        ax.set(
            xticks=[],
            yticks=[],
            title="clean" if kind == "clean" else f"{NOISE_NAMES[kind]}, ε = {epsilon:g}",
        )
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, out_pdf, data=pd.DataFrame(rows))
