"""Choosing (alpha, Th): clean and distorted accuracy of each setting relative to its baseline.

For a regularized model R and the unregularized model U (method ``none``) of the same task
and seed, paper §5.2 / Fig. 4 compares

- R0/U0 (``clean_ratio``):  accuracy at epsilon == 0 of R over that of U;
- RD/UD (``robust_ratio``): accuracy at one configured epsilon of one attack, R over U.

The attacks are the three random noises and transferred FGSM, one plane each in Fig. 4. The
paper computes U_D and R_D "at ε = 0.1 for random attacks and ε = 0.02 for the transferred
FGSM attack" (Fig. 4 caption, gray CIFAR-10): the config's ``selection.epsilon`` holds those
values, ``selection.dataset_epsilon`` the values for datasets whose ε grids differ
(:func:`configured_epsilons`). The ε must be on the attack's grid. Both ratios are computed
per seed and then averaged over seeds (mean and SEM).

The acceptable region is the paper's (§5.2 and App. 7.5): R0/U0 >= A0 with A0 = 0.9
(``min_clean_ratio``, a config value as the paper says it is user defined) and RD/UD > 1.
"""

from __future__ import annotations

import pandas as pd

BASELINE = "none"
FGSM = "fgsm_transfer"
# The attacks of the selection planes (Fig. 4), in the paper's order.
ATTACKS = ("gaussian", "uniform", "salt_pepper", FGSM)
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
    clean = clean_rows.groupby(MODEL_KEYS, dropna=False)["accuracy"].mean().rename("clean_accuracy")
    noisy_rows = noise[noise["epsilon"] > 0]
    noisy = (
        noisy_rows.groupby(MODEL_KEYS + ["noise"], dropna=False)["accuracy"].mean().unstack("noise")
    )
    noisy.columns = [f"{kind}_mean_accuracy" for kind in noisy.columns]
    return pd.concat([clean, noisy], axis=1).reset_index()


def attach_baseline(models: pd.DataFrame) -> pd.DataFrame:
    """Regularized models with their baseline's columns (suffix ``_baseline``) on each row.

    The baseline of a model is the ``none`` model of the same task and seed.
    """
    is_baseline = models["method"] == BASELINE
    baselines = models[is_baseline].drop(
        columns=["regularization", "method", "alpha", "threshold", "reg_pairs"]
    )
    duplicated = baselines.duplicated(["task", "seed"], keep=False)
    if duplicated.any():
        pairs = baselines.loc[duplicated, ["task", "seed"]].drop_duplicates().values.tolist()
        raise ValueError(f"more than one '{BASELINE}' model for (task, seed) {pairs}")
    regularized = models[~is_baseline]
    merged = regularized.merge(
        baselines, on=["task", "seed"], how="left", suffixes=("", "_baseline"), indicator=True
    )
    lacking = merged[merged["_merge"] == "left_only"]
    if len(lacking):
        pairs = lacking[["task", "seed"]].drop_duplicates().values.tolist()
        raise ValueError(
            f"no '{BASELINE}' baseline model for (task, seed) {pairs}; "
            "every regularized seed needs the unregularized model of that seed"
        )
    return merged.drop(columns="_merge")


def configured_epsilons(config: dict, task: str) -> dict[str, float]:
    """The ε of R_D/U_D per attack for ``task`` (e.g. "cifar10_gray"): the config's
    ``selection.epsilon``, updated by ``selection.dataset_epsilon.<dataset>``."""
    from simreg.settings import typed

    selection = typed(config).selection
    dataset = task.rsplit("_", 1)[0]
    return {**selection.epsilon, **selection.dataset_epsilon.get(dataset, {})}


def attack_accuracy(noise: pd.DataFrame, fgsm: pd.DataFrame | None = None) -> pd.DataFrame:
    """One tidy frame of every model's accuracy per attack and ε: the noise rows (attack =
    noise kind) and the transferred-FGSM rows (attack = ``fgsm_transfer``)."""
    frames = []
    if noise is not None and len(noise):
        frames.append(normalize_keys(noise).rename(columns={"noise": "attack"}))
    if fgsm is not None and len(fgsm):
        frames.append(normalize_keys(fgsm).assign(attack=FGSM))
    if not frames:
        raise ValueError("no noise or FGSM accuracies to select on")
    columns = MODEL_KEYS + ["attack", "epsilon", "accuracy"]
    return pd.concat([f[columns] for f in frames], ignore_index=True)


def accuracy_at(accuracy: pd.DataFrame, attack: str, epsilon: float) -> pd.Series:
    """Per model (indexed by MODEL_KEYS): its accuracy under ``attack`` at ``epsilon``.

    ``epsilon`` must be on the attack's grid of every model (compared to 1e-6)."""
    rows = accuracy[accuracy["attack"] == attack]
    if rows.empty:
        raise ValueError(
            f"attack {attack!r} not in the data (have {sorted(set(accuracy['attack']))})"
        )
    at = rows[(rows["epsilon"] - float(epsilon)).abs() <= 1e-6]
    per_model = at.groupby(MODEL_KEYS, dropna=False)["accuracy"].mean()
    models = rows.groupby(MODEL_KEYS, dropna=False).size()
    if len(per_model) != len(models):
        grid = sorted(set(rows["epsilon"].round(6)))
        raise ValueError(
            f"ε = {epsilon:g} is not on the {attack} grid {grid} of every model; "
            "set config key selection.epsilon (or selection.dataset_epsilon) to a "
            "value of the grid"
        )
    return per_model


def selection_ratios(
    noise: pd.DataFrame, attack: str, epsilon: float, *, fgsm: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Per regularized group: clean_ratio (R0/U0) and robust_ratio (RD/UD, accuracies at
    ``epsilon`` of ``attack``: a noise kind or ``fgsm_transfer``), mean/SEM over seeds.

    R0 and U0 are the accuracies at ε = 0 of the same attack's rows (the same test images)."""
    accuracy = attack_accuracy(noise, fgsm if attack == FGSM else None)
    per_model = pd.concat(
        [
            accuracy_at(accuracy, attack, 0.0).rename("clean_accuracy"),
            accuracy_at(accuracy, attack, epsilon).rename("distorted_accuracy"),
        ],
        axis=1,
    ).reset_index()
    paired = attach_baseline(per_model)
    paired["clean_ratio"] = paired["clean_accuracy"] / paired["clean_accuracy_baseline"]
    paired["robust_ratio"] = paired["distorted_accuracy"] / paired["distorted_accuracy_baseline"]
    groups = paired.groupby(GROUP_KEYS, dropna=False)
    ratios = groups[["clean_ratio", "robust_ratio"]].agg(["mean", "sem"])
    ratios.columns = [name if stat == "mean" else f"{name}_sem" for name, stat in ratios.columns]
    ratios["n_seeds"] = groups["seed"].nunique()
    columns = ["clean_ratio", "clean_ratio_sem", "robust_ratio", "robust_ratio_sem", "n_seeds"]
    return ratios[columns].reset_index().assign(attack=attack, epsilon=float(epsilon))


def acceptable(frame: pd.DataFrame, min_clean_ratio: float) -> pd.Series:
    """Settings in the acceptable region: clean_ratio >= min_clean_ratio and robust_ratio > 1."""
    return (frame["clean_ratio"] >= min_clean_ratio) & (frame["robust_ratio"] > 1)


def best_setting(frame: pd.DataFrame, min_clean_ratio: float) -> dict | None:
    """The acceptable row with the highest robust_ratio (first on ties), or None."""
    candidates = frame[acceptable(frame, min_clean_ratio)]
    if candidates.empty:
        return None
    return candidates.loc[candidates["robust_ratio"].idxmax()].to_dict()
