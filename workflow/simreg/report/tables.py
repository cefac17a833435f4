"""Tables: the selected (alpha, Th) per method (paper App. Table 1), the learned layer
weights gamma (App. Table 2), a summary of every model group, one row per model with every
evaluation, and white-box accuracy in units of 1/255.

Each function returns a DataFrame; ``write_table`` writes it as CSV plus a Markdown copy.
Spreads are the SEM across seeds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from simreg.outputs import write_csv, write_text
from simreg.report.selection import (
    BASELINE,
    GROUP_KEYS,
    MODEL_KEYS,
    acceptable,
    best_setting,
    normalize_keys,
    per_seed_accuracy,
    selection_ratios,
)

LAYERS = ["stem", "stage1", "stage2", "stage3", "stage4"]
GAMMAS = [f"gamma_{i}" for i in range(len(LAYERS))]
METHOD_KEYS = ["task", "regularization", "method"]


def mean_and_sem(per_seed: pd.DataFrame, keys: list[str], columns: list[str]) -> pd.DataFrame:
    """Per group of ``keys``: ``n_seeds``, then the mean of each column and its ``_sem``."""
    groups = per_seed.groupby(keys, dropna=False)
    summary = groups[columns].agg(["mean", "sem"])
    summary.columns = [name if stat == "mean" else f"{name}_sem" for name, stat in summary.columns]
    summary.insert(0, "n_seeds", groups["seed"].nunique())
    return summary.reset_index()


def best_epochs(metrics: pd.DataFrame) -> pd.DataFrame:
    """The kept (``best``) epoch row of each model; exactly one per model is required."""
    metrics = normalize_keys(metrics)
    best = metrics[metrics["best"].astype(str).str.lower() == "true"]
    counts = best.groupby(MODEL_KEYS, dropna=False).size()
    models = metrics.groupby(MODEL_KEYS, dropna=False).size()
    if len(counts) != len(models) or (counts != 1).any():
        raise ValueError("every model needs exactly one epoch marked best in the metrics")
    return best


def alpha_threshold_table(
    noise: pd.DataFrame,
    attack: str,
    epsilon: float,
    min_clean_ratio: float,
    fgsm: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per (task, regularization, method): the selected (alpha, Th) and its ratios.

    The ratios are those of ``attack`` (a noise kind or ``fgsm_transfer``) at ``epsilon``
    (the config's ``selection.epsilon``, paper Fig. 4 caption). The selected setting is the
    acceptable one with the highest robust ratio (``selection.best_setting``);
    ``n_settings`` counts the settings tried and ``n_acceptable`` those in the acceptable
    region.
    """
    ratios = selection_ratios(noise, attack, epsilon, fgsm=fgsm)
    chosen = [
        "alpha",
        "threshold",
        "reg_pairs",
        "clean_ratio",
        "clean_ratio_sem",
        "robust_ratio",
        "robust_ratio_sem",
        "n_seeds",
    ]
    rows = []
    for keys, settings in ratios.groupby(METHOD_KEYS, sort=True):
        best = best_setting(settings, min_clean_ratio)
        row = dict(zip(METHOD_KEYS, keys))
        row.update({key: (best[key] if best else np.nan) for key in chosen})
        row["attack"], row["epsilon"] = attack, float(epsilon)
        row["n_settings"] = len(settings)
        row["n_acceptable"] = int(acceptable(settings, min_clean_ratio).sum())
        row["note"] = (
            ""
            if best
            else (
                f"no acceptable setting (clean ratio >= {min_clean_ratio:g} and robust ratio > 1)"
            )
        )
        rows.append(row)
    return pd.DataFrame(
        rows,
        columns=METHOD_KEYS + chosen + ["attack", "epsilon", "n_settings", "n_acceptable", "note"],
    )


# A seed's γ has collapsed onto a layer when that layer holds at least this weight (our
# choice; Li et al.'s supplement §2 and App. Table 2's multiples of 1/7 and 1/8 suggest γ
# often ends one-hot).
COLLAPSED = 0.9


def gamma_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per regularized group: mean and SEM across seeds of the best-epoch layer weights, and
    for each layer the share of seeds whose γ collapsed onto it (``<layer>_collapsed``: γ of
    that layer >= COLLAPSED). A mean of 1/3 on three layers can be three seeds each
    collapsed onto a different layer; the shares tell the two apart.

    Columns are named by layer (``stem``, ``stage1``..``stage4`` and their ``_sem``);
    method ``none`` is left out because its gamma is never trained.
    """
    best = best_epochs(metrics)
    best = best[best["method"] != BASELINE].rename(columns=dict(zip(GAMMAS, LAYERS)))
    table = mean_and_sem(best, GROUP_KEYS, LAYERS)
    collapsed = [f"{layer}_collapsed" for layer in LAYERS]
    shares = (
        best.assign(**{c: best[layer] >= COLLAPSED for c, layer in zip(collapsed, LAYERS)})
        .groupby(GROUP_KEYS, dropna=False)[collapsed]
        .mean()
        .reset_index()
    )
    table = table.merge(shares, on=GROUP_KEYS, how="left")
    return table[
        GROUP_KEYS + ["n_seeds"] + LAYERS + [f"{layer}_sem" for layer in LAYERS] + collapsed
    ]


def results_table(noise: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """Per model group: best-epoch validation accuracy, clean test accuracy and the mean
    accuracy over each noise kind's epsilon > 0 grid, each as mean and SEM across seeds."""
    accuracy = per_seed_accuracy(noise)
    validation = best_epochs(metrics)[MODEL_KEYS + ["val_accuracy"]]
    per_seed = accuracy.merge(validation, on=MODEL_KEYS, how="outer")
    noise_columns = [c for c in accuracy.columns if c.endswith("_mean_accuracy")]
    return mean_and_sem(per_seed, GROUP_KEYS, ["val_accuracy", "clean_accuracy"] + noise_columns)


def fgsm_per_model(fgsm: pd.DataFrame) -> pd.DataFrame:
    """Per model: mean accuracy over the transferred-FGSM ε > 0 grid."""
    fgsm = normalize_keys(fgsm)
    return (
        fgsm[fgsm["epsilon"] > 0]
        .groupby(MODEL_KEYS, dropna=False)["accuracy"]
        .mean()
        .rename("fgsm_mean_accuracy")
        .reset_index()
    )


def boundary_scores(boundary: pd.DataFrame) -> pd.DataFrame:
    """One row per model and setting: ``score`` = mean S(M) over repeats (App. 7.1),
    ``n_unsolved`` summed over repeats, and the setting's ``steps``."""
    return (
        normalize_keys(boundary)
        .groupby(MODEL_KEYS + ["setting"], dropna=False)
        .agg(score=("score", "mean"), n_unsolved=("n_unsolved", "sum"), steps=("steps", "first"))
        .reset_index()
    )


def boundary_per_model(boundary: pd.DataFrame) -> pd.DataFrame:
    """Per model: ``boundary_<setting>`` (mean score over repeats) and
    ``boundary_<setting>_unsolved``, one column pair per setting."""
    wide = (
        boundary_scores(boundary)
        .set_index(MODEL_KEYS + ["setting"])[["score", "n_unsolved"]]
        .unstack("setting")
    )
    wide.columns = [
        f"boundary_{setting}" if stat == "score" else f"boundary_{setting}_unsolved"
        for stat, setting in wide.columns
    ]
    return wide.reset_index()


def whitebox_per_model(whitebox: pd.DataFrame) -> pd.DataFrame:
    """Per model: accuracy under each white-box attack and ε, as ``<attack>_<ε·255>/255``."""
    whitebox = normalize_keys(whitebox)
    wide = (
        whitebox.groupby(MODEL_KEYS + ["attack", "epsilon_255"], dropna=False)["accuracy"]
        .mean()
        .unstack(["attack", "epsilon_255"])
    )
    wide.columns = [f"{attack}_{eps:g}/255" for attack, eps in wide.columns]
    return wide.reset_index()


def minimal_distance_summary(distances: pd.DataFrame) -> pd.DataFrame:
    """One row per model and norm: ``median`` and ``mean`` minimal distance over all images
    (misclassified ones count 0, unsolved ones inf), ``median_correct`` over the correctly
    classified ones only, which stays informative when accuracy is below 50 %, and
    ``mean_solved``, the mean over the images with a finite distance (what the supplement's
    Fig. 2 averages), with the number ``n_unsolved`` of images left out of it."""
    distances = normalize_keys(distances)
    keys = MODEL_KEYS + ["norm"]
    summary = distances.groupby(keys, dropna=False)["distance"].agg(["median", "mean"])
    correct = distances[distances["attack"] != "misclassified"]
    summary["median_correct"] = correct.groupby(keys, dropna=False)["distance"].median()
    finite = np.isfinite(distances["distance"])
    summary["mean_solved"] = distances[finite].groupby(keys, dropna=False)["distance"].mean()
    summary["n_unsolved"] = (
        distances.assign(unsolved=~finite).groupby(keys, dropna=False)["unsolved"].sum()
    )
    return summary.reset_index()


def minimal_distance_per_model(distances: pd.DataFrame) -> pd.DataFrame:
    """Per model: ``min_<norm>_median``, ``_mean`` and ``_median_correct`` for each norm."""
    wide = minimal_distance_summary(distances).set_index(MODEL_KEYS + ["norm"]).unstack("norm")
    wide.columns = [f"min_{norm}_{stat}" for stat, norm in wide.columns]
    return wide.reset_index()


def models_table(
    noise: pd.DataFrame,
    metrics: pd.DataFrame,
    *,
    fgsm: pd.DataFrame,
    boundary: pd.DataFrame,
    whitebox: pd.DataFrame,
    minimal_distance: pd.DataFrame,
) -> pd.DataFrame:
    """One row per model (every seed): validation and clean accuracy, mean accuracy under
    each noise and transferred FGSM, Boundary scores, white-box accuracies and minimal
    distances."""
    parts = [per_seed_accuracy(noise), best_epochs(metrics)[MODEL_KEYS + ["val_accuracy"]]]
    summaries = [
        (fgsm, fgsm_per_model),
        (boundary, boundary_per_model),
        (whitebox, whitebox_per_model),
        (minimal_distance, minimal_distance_per_model),
    ]
    parts += [summary(frame) for frame, summary in summaries if not frame.empty]
    table = parts[0]
    for part in parts[1:]:
        table = table.merge(part, on=MODEL_KEYS, how="outer")
    return table.sort_values(MODEL_KEYS, na_position="first").reset_index(drop=True)


def whitebox_table(whitebox: pd.DataFrame) -> pd.DataFrame:
    """Per model group: accuracy under white-box FGSM and PGD-L∞ at each ε (1/255 units),
    mean and SEM across seeds."""
    per_model = whitebox_per_model(whitebox)
    columns = [c for c in per_model.columns if c not in MODEL_KEYS]
    return mean_and_sem(per_model, GROUP_KEYS, columns)


def write_table(frame: pd.DataFrame, out_csv: str | Path) -> None:
    """Write ``frame`` as CSV and as Markdown (``.md`` beside it, floats to 4 significant
    digits), both atomically."""
    out_csv = Path(out_csv)
    write_csv(frame, out_csv)
    write_text(frame.to_markdown(index=False, floatfmt=".4g") + "\n", out_csv.with_suffix(".md"))
