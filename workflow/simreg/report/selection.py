"""Choosing (alpha, Th): clean and noise accuracy of each setting relative to its baseline.

For a regularized model R and the unregularized model U (method ``none``) of the same task
and seed, paper §5.1 / Fig. 4 compares

- R0/U0 (``clean_ratio``):  clean test accuracy (epsilon == 0) of R over that of U;
- RD/UD (``robust_ratio``): mean accuracy over the epsilon > 0 grid of one noise kind,
  R over U.

Both are computed per seed and then averaged over seeds (mean and SEM).

The acceptable region (``clean_ratio >= min_clean_ratio`` and ``robust_ratio > 1``) is our
reading of the paper's Fig. 4: a setting must beat its baseline under noise while losing
little clean accuracy. We could not find the exact bounds in the paper or its code, so
``min_clean_ratio`` is a config value rather than a constant.
"""

from __future__ import annotations

import pandas as pd

BASELINE = "none"
GROUP_KEYS = ["task", "regularization", "method", "alpha", "threshold", "reg_pairs"]
MODEL_KEYS = GROUP_KEYS + ["seed"]


def normalize_keys(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with the model keys typed: threshold "na" -> NaN, alpha float, seed int."""
    missing = [key for key in MODEL_KEYS if key not in frame.columns]
    if missing:
        raise ValueError(f"frame lacks the model key columns {missing}")
    frame = frame.copy()
    frame["threshold"] = pd.to_numeric(frame["threshold"], errors="coerce").astype(float)
    frame["alpha"] = frame["alpha"].astype(float)
    frame["reg_pairs"] = frame["reg_pairs"].astype(int)
    frame["seed"] = frame["seed"].astype(int)
    for key in ("task", "regularization", "method"):
        frame[key] = frame[key].astype(str)
    return frame


def per_seed_accuracy(noise: pd.DataFrame) -> pd.DataFrame:
    """One row per model (group keys + seed): ``clean_accuracy`` and ``<kind>_mean_accuracy``.

    ``clean_accuracy`` is the mean over the epsilon == 0 rows (identical across noise kinds);
    ``<kind>_mean_accuracy`` is the mean accuracy over that kind's epsilon > 0 grid.
    """
    noise = normalize_keys(noise)
    clean_rows = noise[noise["epsilon"] == 0]
    clean = (clean_rows.groupby(MODEL_KEYS, dropna=False)["accuracy"].mean()
             .rename("clean_accuracy"))
    noisy_rows = noise[noise["epsilon"] > 0]
    noisy = (noisy_rows.groupby(MODEL_KEYS + ["noise"], dropna=False)["accuracy"].mean()
             .unstack("noise"))
    noisy.columns = [f"{kind}_mean_accuracy" for kind in noisy.columns]
    return pd.concat([clean, noisy], axis=1).reset_index()


def attach_baseline(models: pd.DataFrame) -> pd.DataFrame:
    """Regularized models with their baseline's columns (suffix ``_baseline``) on each row.

    The baseline of a model is the ``none`` model of the same task and seed.
    """
    is_baseline = models["method"] == BASELINE
    baselines = models[is_baseline].drop(columns=["regularization", "method", "alpha",
                                                   "threshold", "reg_pairs"])
    duplicated = baselines.duplicated(["task", "seed"], keep=False)
    if duplicated.any():
        pairs = baselines.loc[duplicated, ["task", "seed"]].drop_duplicates().values.tolist()
        raise ValueError(f"more than one '{BASELINE}' model for (task, seed) {pairs}")
    regularized = models[~is_baseline]
    merged = regularized.merge(baselines, on=["task", "seed"], how="left",
                               suffixes=("", "_baseline"), indicator=True)
    lacking = merged[merged["_merge"] == "left_only"]
    if len(lacking):
        pairs = lacking[["task", "seed"]].drop_duplicates().values.tolist()
        raise ValueError(f"no '{BASELINE}' baseline model for (task, seed) {pairs}; "
                         "every regularized seed needs the unregularized model of that seed")
    return merged.drop(columns="_merge")


def selection_ratios(noise: pd.DataFrame, noise_kind: str) -> pd.DataFrame:
    """Per regularized group: clean_ratio (R0/U0) and robust_ratio (RD/UD), mean/SEM over seeds."""
    if noise_kind not in set(noise["noise"]):
        raise ValueError(f"noise kind {noise_kind!r} not in the data "
                         f"(have {sorted(set(noise['noise']))})")
    column = f"{noise_kind}_mean_accuracy"
    paired = attach_baseline(per_seed_accuracy(noise))
    paired["clean_ratio"] = paired["clean_accuracy"] / paired["clean_accuracy_baseline"]
    paired["robust_ratio"] = paired[column] / paired[f"{column}_baseline"]
    groups = paired.groupby(GROUP_KEYS, dropna=False)
    ratios = groups[["clean_ratio", "robust_ratio"]].agg(["mean", "sem"])
    ratios.columns = [name if stat == "mean" else f"{name}_sem" for name, stat in ratios.columns]
    ratios["n_seeds"] = groups["seed"].nunique()
    columns = ["clean_ratio", "clean_ratio_sem", "robust_ratio", "robust_ratio_sem", "n_seeds"]
    return ratios[columns].reset_index()


def acceptable(frame: pd.DataFrame, min_clean_ratio: float) -> pd.Series:
    """Settings in the acceptable region: clean_ratio >= min_clean_ratio and robust_ratio > 1."""
    return (frame["clean_ratio"] >= min_clean_ratio) & (frame["robust_ratio"] > 1)


def best_setting(frame: pd.DataFrame, min_clean_ratio: float) -> dict | None:
    """The acceptable row with the highest robust_ratio (first on ties), or None."""
    candidates = frame[acceptable(frame, min_clean_ratio)]
    if candidates.empty:
        return None
    return candidates.loc[candidates["robust_ratio"].idxmax()].to_dict()
