"""Does the paper reproduce? Each claim of Attias et al. 2024 (C1–C9) and the related papers'
headline claims (R1–R5), checked on the pipeline's tidy outputs.

One :class:`Claim` per claim: its paper item, the figure grids whose models it reads (it is
evaluated wherever one of them is configured, on the union of their models), the evaluations
it reads, the statistic (a function here that returns one value per seed and comparison), the
claimed direction, the no-effect value and the paper's own number where its text or a table
gives one. ``simreg claims`` (rule ``claims``) evaluates every claim into
``results/tables/claims.csv`` and ``results/claims.md``.

Verdicts (docs/claims.md): a two-sided 95% t interval over seeds of each comparison's
per-seed values, and

- **holds**: the interval excludes the no-effect value, on the claimed side;
- **contradicted**: it excludes it, on the other side;
- **inconclusive**: it contains it (or fewer than two seeds);
- **not run**: the config has no grid for the claim, or the grid has no models to compare.

A claim of no effect (R3) holds where the interval lies inside ± its ``margin`` and is
contradicted where it excludes the no-effect value.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from simreg.report.selection import BASELINE, MODEL_KEYS, attach_baseline, normalize_keys
from simreg.paths import RESULTS
from simreg.settings import typed
from simreg.report.targets import ATTIAS, METRICS, SIMILARITY_TARGETS, table_file

GREATER, LESS, NO_EFFECT = "greater", "less", "none"
HOLDS, CONTRADICTED, INCONCLUSIVE, NOT_RUN = "holds", "contradicted", "inconclusive", "not run"
VERDICTS = (HOLDS, CONTRADICTED, INCONCLUSIVE, NOT_RUN)
LEVEL = 0.95
SEP = "__"  # between a claim key and an evaluation in the rule's input names
NOISES = ("gaussian", "uniform", "salt_pepper")
ROTH, SCHAEFFER, BASHIVAN = "Roth 2018", "Schaeffer et al.", "Bashivan et al."
# C9: the low-frequency share of a perturbation's radial power spectrum is the power at radii
# up to this fraction of the largest radius, over the total.
LOW_FREQUENCY_RADIUS = 0.25
# C4: a seed's γ has collapsed when one layer holds at least this weight (tables.COLLAPSED).
COLLAPSED = 0.9
CLAIMS_TABLE = table_file("claims")
CLAIMS_REPORT = str(RESULTS / "claims.md")
COLUMNS = [
    "claim",
    "paper",
    "item",
    "comparison",
    "statistic",
    "direction",
    "null",
    "paper_value",
    "n_seeds",
    "seeds",
    "values",
    "mean",
    "sem",
    "ci_low",
    "ci_high",
    "verdict",
    "first_seeds_verdict",
    "note",
]


@dataclass(frozen=True)
class Claim:
    id: str
    paper: str
    item: str
    statement: str
    grids: tuple[str, ...]  # figure grids whose models it reads (any configured one)
    reads: tuple[str, ...]  # evaluations (and METRICS) it reads
    statistic: str  # function of this module: (data, params) -> per-seed frame
    describes: str  # what one per-seed value is
    direction: str  # GREATER, LESS or NO_EFFECT (relative to ``null``)
    null: float = 0.0  # the no-effect value (1 for ratios, 0 for differences)
    paper_value: str = ""  # the paper's own number or statement
    margin: float = 0.0  # NO_EFFECT: the largest difference that counts as none

    @property
    def key(self) -> str:
        """Unique per entry (a claim may have several statistics): "C1_noise_ratios"."""
        return f"{self.id}_{self.statistic}"

    def null_value(self, params: dict) -> float:
        """The no-effect value; C1's clean cost is judged against the grid's bound A0."""
        return float(params.get("null", self.null))


# ---- per-seed statistics ------------------------------------------------------------------
# Each returns a frame with columns comparison, seed, value (one row per seed per comparison).


def _label(row) -> str:
    """ "threshold α=10 Th=0.8 k=16 on cifar10_gray_n5000"."""
    parts = [str(row["method"])]
    if float(row["alpha"]):
        parts.append(f"α={float(row['alpha']):g}")
    if pd.notna(row["threshold"]):
        parts.append(f"Th={float(row['threshold']):g}")
    if int(row["reg_pairs"]):
        parts.append(f"k={int(row['reg_pairs'])}")
    if row["regularization"] != BASELINE:
        parts.append(f"on {row['regularization']}")
    return " ".join(parts)


def _rows(frame: pd.DataFrame, value: str, prefix: str) -> pd.DataFrame:
    """comparison / seed / value rows from a frame of regularized models (GROUP_KEYS)."""
    if frame.empty:
        return pd.DataFrame(columns=["comparison", "seed", "value"])
    labels = frame.apply(_label, axis=1)
    return pd.DataFrame(
        {
            "comparison": [f"{prefix}: {label}" for label in labels],
            "seed": frame["seed"].astype(int).to_numpy(),
            "value": frame[value].astype(float).to_numpy(),
        }
    )


def _at(frame: pd.DataFrame, x: str, value: str, where: float) -> pd.Series:
    """Per model: ``value`` at ``x == where`` (compared to 1e-6), mean over other rows."""
    rows = frame[(frame[x].astype(float) - float(where)).abs() <= 1e-6]
    return rows.groupby(MODEL_KEYS, dropna=False)[value].mean()


def _versus_none(
    per_model: pd.DataFrame, columns: list[str], methods=None, ratio: bool = True
) -> pd.DataFrame:
    """Regularized models (of ``methods``; None: every method) with each column as R/U
    (``ratio``) or R − U against the ``none`` model of the same task and seed."""
    if methods is not None:
        per_model = per_model[per_model["method"].isin([BASELINE, *methods])]
    if not (per_model["method"] != BASELINE).any() or not (per_model["method"] == BASELINE).any():
        return per_model.iloc[0:0]
    paired = attach_baseline(per_model)
    for c in columns:
        base = paired[f"{c}_baseline"]
        paired[c] = paired[c] / base if ratio else paired[c] - base
    return paired


def _noise_per_model(noise: pd.DataFrame, epsilon: dict) -> pd.DataFrame:
    noise = normalize_keys(noise)
    parts = {"clean": _at(noise, "epsilon", "accuracy", 0.0)}
    for kind in NOISES:
        rows = noise[noise["noise"] == kind]
        if len(rows) and kind in epsilon:
            parts[kind] = _at(rows, "epsilon", "accuracy", epsilon[kind])
    return pd.DataFrame(parts).reset_index()


def noise_ratios(data, params):
    """C1: RD/UD per noise kind at the selection ε, and R0/U0, of the S_Th models."""
    per_model = _noise_per_model(data["noise"], params["epsilons"])
    kinds = [k for k in NOISES if k in per_model]
    paired = _versus_none(per_model, ["clean", *kinds], methods=["threshold"])
    frames = [
        _rows(paired, kind, f"{kind} RD/UD at ε {params['epsilons'][kind]:g}") for kind in kinds
    ]
    return pd.concat(frames, ignore_index=True)


def clean_ratio(data, params):
    """C1 (its cost): R0/U0 of the S_Th models, against the acceptable-region bound A0."""
    per_model = _noise_per_model(data["noise"], params["epsilons"])
    paired = _versus_none(per_model, ["clean"], methods=["threshold"])
    return _rows(paired, "clean", "R0/U0")


def fgsm_ratio(data, params):
    """C2: RD/UD under transferred FGSM at the selection ε, S_Th models."""
    fgsm = normalize_keys(data["fgsm_transfer"])
    epsilon = params["epsilons"]["fgsm_transfer"]
    per_model = _at(fgsm, "epsilon", "accuracy", epsilon).rename("fgsm").reset_index()
    paired = _versus_none(per_model, ["fgsm"], methods=["threshold"])
    return _rows(paired, "fgsm", f"FGSM RD/UD at ε {epsilon:g}")


def boundary_ratio(data, params):
    """C3: Boundary score S(M) over that of ``none``, per setting, S_Th models."""
    from simreg.report.tables import boundary_scores

    scores = boundary_scores(data["boundary"])
    frames = []
    for setting, rows in scores.groupby("setting", sort=True):
        per_model = rows[MODEL_KEYS + ["score"]]
        paired = _versus_none(per_model, ["score"], methods=["threshold"])
        frames.append(_rows(paired, "score", f"S(M) ratio, {setting} setting"))
    return pd.concat(frames, ignore_index=True) if frames else _rows(pd.DataFrame(), "", "")


def _best_gamma(metrics: pd.DataFrame) -> pd.DataFrame:
    from simreg.report.tables import GAMMAS, best_epochs

    best = best_epochs(metrics)
    best = best[best["method"] == "threshold"]
    return best[MODEL_KEYS + [g for g in GAMMAS if g in best]]


def gamma_early(data, params):
    """C4: the share of γ on the first two candidate layers (stem and stage 1: the paper's
    γ1 + γ5), per S_Th seed; 0.4 is a uniform γ."""
    best = _best_gamma(data[METRICS])
    best = best.assign(early=best["gamma_0"] + best["gamma_1"])
    return _rows(best, "early", "γ1 + γ5")


def gamma_collapsed(data, params):
    """C4: whether a seed's γ collapsed onto one layer (1) or not (0)."""
    from simreg.report.tables import GAMMAS

    best = _best_gamma(data[METRICS])
    best = best.assign(
        collapsed=(best[[g for g in GAMMAS if g in best]].max(axis=1) >= COLLAPSED).astype(float)
    )
    return _rows(best, "collapsed", f"γ collapsed onto one layer (≥ {COLLAPSED:g})")


def neural_pixel_r(data, params):
    """C5: Pearson r of neural and pixel similarity over image pairs, one value per
    regularization set (the "seed" column numbers the sets)."""
    from simreg.report.similarity_figures import pair_correlation
    from simreg.targets.pixel_similarity import read_similarity

    files = list(data[SIMILARITY_TARGETS])
    rows = []
    for i, (pixel, neural) in enumerate(dict.fromkeys(zip(files[0::2], files[1::2]))):
        _, s_pixel, _ = read_similarity(pixel)
        _, s_neural, _ = read_similarity(neural)
        rows.append(
            {
                "comparison": "Pearson r over pairs, per regularization set",
                "seed": i,
                "value": pair_correlation(s_pixel, s_neural)["pearson_r"],
            }
        )
    return pd.DataFrame(rows, columns=["comparison", "seed", "value"])


def frequency_gain(data, params):
    """C6: (R − U on high-frequency corruptions) − (R − U on low-frequency ones), at the
    grid's severity (Fig. 7 left: 4)."""
    table = normalize_keys(data["corruption_accuracy"])
    table = table[table["severity"] == params.get("severity", 4)]
    per_model = (
        table.groupby(MODEL_KEYS + ["frequency_group"], dropna=False)["accuracy"]
        .mean()
        .unstack("frequency_group")
    )
    if not {"high", "low"} <= set(per_model.columns):
        return _rows(pd.DataFrame(), "", "")
    paired = _versus_none(per_model[["high", "low"]].reset_index(), ["high", "low"], ratio=False)
    paired = paired.assign(gain=paired["high"] - paired["low"])
    return _rows(paired, "gain", "high- minus low-frequency gain over none")


def pixel_vs_threshold(data, params):
    """C7: RD/UD of S_Th minus RD/UD of S_pixel (same task, regularization set, k, seed), per
    noise kind at the selection ε."""
    per_model = _noise_per_model(data["noise"], params["epsilons"])
    kinds = [k for k in NOISES if k in per_model]
    paired = _versus_none(per_model, kinds, methods=["threshold", "pixel"])
    if paired.empty:
        return _rows(paired, "", "")
    on = ["task", "regularization", "reg_pairs", "seed"]
    th = paired[paired["method"] == "threshold"]
    px = paired[paired["method"] == "pixel"][on + kinds]
    merged = th.merge(px, on=on, suffixes=("", "_pixel"))
    frames = []
    for kind in kinds:
        merged[f"{kind}_gap"] = merged[kind] - merged[f"{kind}_pixel"]
        frames.append(
            _rows(
                merged,
                f"{kind}_gap",
                f"{kind} RD/UD, S_Th minus S_pixel at ε {params['epsilons'][kind]:g}",
            )
        )
    return pd.concat(frames, ignore_index=True)


def sweep_ratio(data, params):
    """C8: Gaussian RD/UD at the selection ε of every regularized setting of the k and N
    sweeps (each row names its k and its set, whose name holds N)."""
    per_model = _noise_per_model(data["noise"], params["epsilons"])
    paired = _versus_none(per_model, ["gaussian"])
    return _rows(paired, "gaussian", f"gaussian RD/UD at ε {params['epsilons']['gaussian']:g}")


def low_frequency_share(data, params):
    """C9: the low-frequency share of the perturbations' radial power (radius ≤
    LOW_FREQUENCY_RADIUS × the largest), regularized minus ``none``."""
    from simreg.evaluate.spectrum import read_spectrum

    rows = []
    for path in data["spectrum"]:
        spectrum = read_spectrum(path)
        radius, power = (
            np.asarray(spectrum["radius"], float),
            np.asarray(spectrum["radial_power"], float),
        )
        low = radius <= LOW_FREQUENCY_RADIUS * radius.max()
        rows.append(
            {**{k: spectrum[k] for k in MODEL_KEYS}, "low": float(power[low].sum() / power.sum())}
        )
    if not rows:
        return _rows(pd.DataFrame(), "", "")
    per_model = normalize_keys(pd.DataFrame(rows))
    paired = _versus_none(per_model, ["low"], ratio=False)
    return _rows(paired, "low", "low-frequency share of |F(δ)|², minus none's")


def _method_gap(per_model: pd.DataFrame, column: str, method: str, other: str) -> pd.DataFrame:
    """``column`` of ``method`` minus that of ``other`` per (task, seed)."""
    a = per_model[per_model["method"] == method]
    b = per_model[per_model["method"] == other][["task", "seed", column]]
    merged = a.merge(b, on=["task", "seed"], suffixes=("", "_other"))
    return merged.assign(gap=merged[column] - merged[f"{column}_other"])


def lrc_gap(data, params):
    """R1: LRC accuracy of SGR minus GN at the largest ζ, and that gap at the largest ζ
    minus the gap at the smallest (on the accuracy-vs-ζ curve at the fixed ε)."""
    from simreg.report.defenses import lrc_curve

    lrc = normalize_keys(lrc_curve(data["lrc_noise"], "zeta"))
    zetas = sorted(lrc["zeta"].astype(float).unique())
    if not zetas:
        return _rows(pd.DataFrame(), "", "")
    top = _at(lrc, "zeta", "accuracy", zetas[-1]).rename("top")
    bottom = _at(lrc, "zeta", "accuracy", zetas[0]).rename("bottom")
    per_model = pd.concat([top, bottom], axis=1).reset_index()
    gap_top = _method_gap(per_model, "top", "sgr", "gn")
    gap_bottom = _method_gap(per_model, "bottom", "sgr", "gn")
    growth = gap_top.assign(gap=gap_top["gap"].to_numpy() - gap_bottom["gap"].to_numpy())
    return pd.concat(
        [
            _rows(gap_top, "gap", f"SGR minus GN at ζ {zetas[-1]:g}"),
            _rows(growth, "gap", f"gap at ζ {zetas[-1]:g} minus gap at ζ {zetas[0]:g}"),
        ],
        ignore_index=True,
    )


def exponent_shift(data, params):
    """R2: eigenspectrum exponent α of the covariance models minus that of ``none``."""
    exponent = (
        normalize_keys(data["eigenspectrum"])
        .groupby(MODEL_KEYS, dropna=False)["exponent"]
        .first()
        .reset_index()
    )
    paired = _versus_none(exponent, ["exponent"], methods=["covariance"], ratio=False)
    return _rows(paired, "exponent", "α minus none's")


def _pgd_at_largest(whitebox: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    rows = normalize_keys(whitebox).query("attack == 'pgd_linf'")
    largest = float(rows["epsilon_255"].max())
    return _at(rows, "epsilon_255", "accuracy", largest).rename("pgd").reset_index(), largest


def jacobian_pgd(data, params, method="jacobian"):
    """R3: white-box PGD-L∞ accuracy of the Jacobian models minus ``none``'s, largest ε."""
    per_model, largest = _pgd_at_largest(data["whitebox"])
    paired = _versus_none(per_model, ["pgd"], methods=[method], ratio=False)
    return _rows(paired, "pgd", f"PGD accuracy at {largest:g}/255 minus none's")


def jacobian_column_sums_pgd(data, params):
    """R3 for the penalty Schaeffer et al. ran (the Jacobian's column sums, §3.4)."""
    return jacobian_pgd(data, params, method="jacobian_column_sums")


def afd_auc(data, params):
    """R4: normalized AUC of white-box PGD-L∞ accuracy over ε, AFD minus ``none``."""
    from simreg.report.defenses import normalized_auc

    rows = normalize_keys(data["whitebox"]).query("attack == 'pgd_linf'")
    curves = rows.groupby(MODEL_KEYS + ["epsilon"], dropna=False)["accuracy"].mean().reset_index()
    auc = (
        curves.groupby(MODEL_KEYS, dropna=False)
        .apply(lambda g: normalized_auc(g["epsilon"], g["accuracy"]), include_groups=False)
        .rename("auc")
        .reset_index()
    )
    paired = _versus_none(auc, ["auc"], methods=["afd"], ratio=False)
    return _rows(paired, "auc", "PGD-L∞ AUC minus none's")


def pgd_at_pgd(data, params):
    """R5: white-box PGD-L∞ accuracy of PGD-AT minus ``none``'s, at the largest ε."""
    per_model, largest = _pgd_at_largest(data["whitebox"])
    paired = _versus_none(per_model, ["pgd"], methods=["pgd_at"], ratio=False)
    return _rows(paired, "pgd", f"PGD accuracy at {largest:g}/255 minus none's")


def pgd_at_clean(data, params):
    """R5 (its cost): clean accuracy of PGD-AT minus ``none``'s."""
    noise = normalize_keys(data["noise"])
    per_model = _at(noise, "epsilon", "accuracy", 0.0).rename("clean").reset_index()
    paired = _versus_none(per_model, ["clean"], methods=["pgd_at"], ratio=False)
    return _rows(paired, "clean", "clean accuracy minus none's")


# ---- the registry -------------------------------------------------------------------------
CLAIMS: dict[str, Claim] = {}


def register(claim: Claim) -> Claim:
    from simreg.evaluate.registry import EVALUATIONS

    unknown = set(claim.reads) - set(EVALUATIONS) - {METRICS, SIMILARITY_TARGETS}
    if unknown:
        raise ValueError(f"claim {claim.id!r} reads unknown evaluations {sorted(unknown)}")
    if claim.direction not in (GREATER, LESS, NO_EFFECT):
        raise ValueError(f"claim {claim.id!r}: direction {claim.direction!r}")
    if claim.statistic not in globals():
        raise ValueError(f"claim {claim.id!r}: no statistic {claim.statistic!r}")
    CLAIMS[claim.key] = claim
    return claim


RATIO = "ratio to none (per seed)"
# R4, R5: the grids with every defense and white-box and noise accuracy (the comparison's, or
# the exponent figure's where a config leaves the comparison out)
DEFENSE_GRIDS = ("defense_comparison", "robustness_vs_exponent")
for _claim in (
    Claim(
        "C1",
        ATTIAS,
        "Fig. 3 left, Fig. 4",
        "S_Th raises noise accuracy at high ε",
        ("noise_accuracy",),
        ("noise",),
        "noise_ratios",
        "RD/UD " + RATIO,
        GREATER,
        1.0,
        "RD/UD > 1 at ε 0.1 for all three noises (Fig. 4, gray CIFAR-10)",
    ),
    Claim(
        "C1",
        ATTIAS,
        "Fig. 4",
        "at a small clean cost (R0/U0 ≥ the acceptable-region bound)",
        ("noise_accuracy",),
        ("noise",),
        "clean_ratio",
        "R0/U0 " + RATIO,
        GREATER,
        0.9,
        "R0/U0 ≥ A0 = 0.9 (§5.2)",
    ),
    Claim(
        "C2",
        ATTIAS,
        "Fig. 3 centre, Fig. 4",
        "S_Th raises accuracy under transferred FGSM",
        ("attack_robustness",),
        ("fgsm_transfer",),
        "fgsm_ratio",
        "RD/UD " + RATIO,
        GREATER,
        1.0,
        "RD/UD > 1 at ε 0.02 (Fig. 4)",
    ),
    Claim(
        "C3",
        ATTIAS,
        "Fig. 3 right",
        "S_Th raises the Boundary score S(M)",
        ("attack_robustness",),
        ("boundary",),
        "boundary_ratio",
        "S(M) " + RATIO,
        GREATER,
        1.0,
        "S(M) of S_Th above none's (Fig. 3 right)",
    ),
    Claim(
        "C4",
        ATTIAS,
        "Table 2",
        "γ concentrates on the early layers",
        ("noise_accuracy", "robustness_by_dataset", "noise_mnist", "noise_fashionmnist"),
        (METRICS,),
        "gamma_early",
        "γ1 + γ5 of one seed (0.4 = uniform)",
        GREATER,
        0.4,
        "γ1 + γ5 = 0.57 (CIFAR-10 on CIFAR-10), 1.00 (on CIFAR-100 and on ImageNet)",
    ),
    Claim(
        "C4",
        ATTIAS,
        "Table 2",
        "most seeds' γ collapses onto one layer",
        ("noise_accuracy", "robustness_by_dataset", "noise_mnist", "noise_fashionmnist"),
        (METRICS,),
        "gamma_collapsed",
        "1 if the seed's largest γ ≥ 0.9, else 0",
        GREATER,
        0.5,
        "Table 2's MNIST rows are multiples of 1/8 (one-hot seeds)",
    ),
    Claim(
        "C5",
        ATTIAS,
        "Fig. 1",
        "neural similarity correlates with pixel similarity",
        ("neural_pixel_similarity",),
        (SIMILARITY_TARGETS,),
        "neural_pixel_r",
        "Pearson r of one regularization set",
        GREATER,
        0.0,
        "a positive correlation (Fig. 1)",
    ),
    Claim(
        "C6",
        ATTIAS,
        "Fig. 7 left",
        "the gain over none is larger on high- than on low-frequency corruptions",
        ("corruption_frequency",),
        ("corruption_accuracy",),
        "frequency_gain",
        "accuracy difference (per seed)",
        GREATER,
        0.0,
    ),
    Claim(
        "C7",
        ATTIAS,
        "Figs. 2–3",
        "S_pixel's gains are smaller than S_Th's",
        ("noise_accuracy",),
        ("noise",),
        "pixel_vs_threshold",
        "difference of RD/UD (per seed)",
        GREATER,
        0.0,
    ),
    Claim(
        "C8",
        ATTIAS,
        "Figs. 8–9",
        "the effect holds across batch sizes k and image counts N",
        ("robustness_by_pairs", "robustness_by_n_images"),
        ("noise",),
        "sweep_ratio",
        "RD/UD " + RATIO,
        GREATER,
        1.0,
        "RD/UD > 1 for k = 4–32 (Fig. 8)",
    ),
    Claim(
        "C9",
        ATTIAS,
        "Fig. 7 right",
        "minimal perturbations of regularized models carry relatively more low-frequency power",
        ("perturbation_spectrum",),
        ("spectrum",),
        "low_frequency_share",
        "difference of low-frequency shares (per seed)",
        GREATER,
        0.0,
    ),
    Claim(
        "R1",
        ROTH,
        "Fig. 3 left",
        "SGR beats GN under LRC noise, more so at larger ζ",
        ("lrc_accuracy",),
        ("lrc_noise",),
        "lrc_gap",
        "accuracy difference (per seed)",
        GREATER,
        0.0,
        "SGR above GN for ζ in [1, 16] at ε 0.3 (five runs)",
    ),
    Claim(
        "R2",
        SCHAEFFER,
        "Fig. 7 left",
        "the covariance penalty lowers the exponent α",
        ("robustness_vs_exponent",),
        ("eigenspectrum",),
        "exponent_shift",
        "difference of exponents (per seed)",
        LESS,
        0.0,
        '"covariance penalization decreases α"',
    ),
    Claim(
        "R3",
        SCHAEFFER,
        "Fig. 7 right",
        "the Jacobian penalty shows no relation with PGD accuracy",
        ("robustness_vs_exponent",),
        ("whitebox",),
        "jacobian_pgd",
        "accuracy difference (per seed)",
        NO_EFFECT,
        0.0,
        '"Jacobian penalization appears to have no relationship with accuracy"',
        margin=0.05,
    ),
    Claim(
        "R3",
        SCHAEFFER,
        "Fig. 7 right",
        "the column-sum penalty they ran shows no relation with PGD accuracy",
        ("robustness_vs_exponent",),
        ("whitebox",),
        "jacobian_column_sums_pgd",
        "accuracy difference (per seed)",
        NO_EFFECT,
        0.0,
        '"Jacobian penalization appears to have no relationship with accuracy"',
        margin=0.05,
    ),
    Claim(
        "R4",
        BASHIVAN,
        "Table 2",
        "AFD raises white-box robustness (AUC) over none",
        DEFENSE_GRIDS,
        ("whitebox",),
        "afd_auc",
        "AUC difference (per seed)",
        GREATER,
        0.0,
        "higher AUC than the baseline under every white-box attack",
    ),
    Claim(
        "R5",
        "PGD-AT",
        "(Madry et al.)",
        "PGD-AT raises white-box accuracy",
        DEFENSE_GRIDS,
        ("whitebox",),
        "pgd_at_pgd",
        "accuracy difference (per seed)",
        GREATER,
        0.0,
    ),
    Claim(
        "R5",
        "PGD-AT",
        "(Madry et al.)",
        "at a cost in clean accuracy",
        DEFENSE_GRIDS,
        ("noise",),
        "pgd_at_clean",
        "accuracy difference (per seed)",
        LESS,
        0.0,
    ),
):
    register(_claim)


# ---- which claims a config can check, and their inputs ------------------------------------
def claim_grids(key: str, config: dict) -> list[str]:
    """The claim's grids that the config defines (empty: not run)."""
    return [g for g in CLAIMS[key].grids if typed(config).figures.get(g)]


def claim_params(key: str, config: dict) -> dict:
    """What the statistic needs besides the data: the selection ε of the grid's task, C1's
    bound A0 (the selection plane's ``min_clean_ratio``), C6's severity."""
    from simreg.report.selection import configured_epsilons

    figures = typed(config).figures
    grids = claim_grids(key, config)
    grid = figures[grids[0]]
    params = {"epsilons": configured_epsilons(config, grid["task"])}
    if "severity" in grid:
        params["severity"] = grid["severity"]
    if CLAIMS[key].statistic == "clean_ratio":
        plane = figures.get("selection_plane") or {}
        params["null"] = plane.get("min_clean_ratio", CLAIMS[key].null)
    return params


def other_pair_pass(config: dict) -> str:
    """The pair pass that ``claims.pair_pass_claims`` are checked under a second time."""
    from simreg.train.model_key import PAIR_PASSES

    return next(p for p in PAIR_PASSES if p != typed(config).regularization.pair_pass)


def variant_key(key: str, pair_pass: str) -> str:
    """The key of claim entry ``key`` checked under ``pair_pass``: "C1_noise_ratios_fused"."""
    return f"{key}_{pair_pass}"


def claim_of(key: str) -> tuple[Claim, str]:
    """(claim, pair pass variant or '') of a key of the rule's params or inputs."""
    from simreg.train.model_key import PAIR_PASSES

    if key in CLAIMS:
        return CLAIMS[key], ""
    for pair_pass in PAIR_PASSES:
        base = key.removesuffix(f"_{pair_pass}")
        if base != key and base in CLAIMS:
            return CLAIMS[base], pair_pass
    raise KeyError(f"no claim entry {key!r}")


def claim_variants(key: str, config: dict) -> dict[str, list]:
    """Rule key -> the models a claim entry reads: its grids' models under the config's pair
    pass, and, where ``claims.pair_pass_claims`` names the claim, under the other pass (the
    ``claims.pair_pass_methods`` models retrained, of ``claims.pair_pass_seeds`` where it is
    given; the rest dropped but the baselines)."""
    from simreg.paths import NO_REGULARIZATION
    from simreg.report.targets import grid_models
    from simreg.train.model_key import ModelKey, join_pairs, split_pairs

    settings = typed(config)
    grids = claim_grids(key, settings)
    if not grids:
        return {}
    models = list(
        dict.fromkeys(m for g in grids for m in grid_models(settings.figures[g], settings))
    )
    variants = {key: models}
    claims = settings.claims
    if CLAIMS[key].id in claims.pair_pass_claims:
        other, methods = other_pair_pass(settings), claims.pair_pass_methods
        seeds = claims.pair_pass_seeds
        rekeyed = [
            m
            if m.method == NO_REGULARIZATION
            else ModelKey.make(
                m.task,
                m.regularization,
                m.method,
                m.alpha,
                m.threshold,
                join_pairs(split_pairs(m.pairs)[0], other),
                m.seed,
                m.recipe,
            )
            for m in models
            if m.method in (NO_REGULARIZATION, *methods) and (seeds is None or int(m.seed) in seeds)
        ]
        if any(m.method != NO_REGULARIZATION for m in rekeyed):
            variants[variant_key(key, other)] = list(dict.fromkeys(rekeyed))
    return variants


def claims_inputs(config: dict) -> dict[str, list[str]]:
    """Input files of the claims rule, as ``<claim key>__<evaluation>`` -> files: for each
    claim with a configured grid (and each of its pair-pass variants), the evaluations it
    reads of its models only (of an evaluation's settings, those its grids' figures read)."""
    from simreg.report.targets import evaluation_files

    inputs = {}
    for key, claim in CLAIMS.items():
        grids = claim_grids(key, config)
        for variant, models in claim_variants(key, config).items():
            for kind in claim.reads:
                inputs[f"{variant}{SEP}{kind}"] = list(
                    dict.fromkeys(
                        f for m in models for f in evaluation_files(kind, m, config, grids)
                    )
                )
    return inputs


def claims_params(config: dict) -> dict:
    """Per claim entry with a configured grid, and per pair-pass variant of it: its params
    (claims absent here are not run)."""
    first_seeds = typed(config).claims.first_seeds
    params = {}
    for key in CLAIMS:
        for variant in claim_variants(key, config):
            params[variant] = {**claim_params(key, config), "first_seeds": first_seeds}
            if variant != key:
                params[variant]["pair_pass"] = claim_of(variant)[1]
    return params


# ---- verdicts -----------------------------------------------------------------------------
def interval(values, level: float = LEVEL) -> tuple[float, float, float, float]:
    """Mean, SEM and the two-sided t interval over seeds (NaN bounds below two seeds)."""
    from scipy import stats

    values = np.asarray(values, float)
    n = len(values)
    mean = float(values.mean()) if n else float("nan")
    if n < 2:
        return mean, float("nan"), float("nan"), float("nan")
    sem = float(values.std(ddof=1) / np.sqrt(n))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * sem
    return mean, sem, mean - half, mean + half


def verdict(low: float, high: float, direction: str, null: float, margin: float = 0.0) -> str:
    """holds / contradicted / inconclusive from the interval [low, high] (docs/claims.md)."""
    if np.isnan(low) or np.isnan(high):
        return INCONCLUSIVE
    if direction == NO_EFFECT:
        if null - margin <= low and high <= null + margin:
            return HOLDS
        return CONTRADICTED if low > null or high < null else INCONCLUSIVE
    above, below = low > null, high < null
    if direction == LESS:
        above, below = below, above
    return HOLDS if above else CONTRADICTED if below else INCONCLUSIVE


def _row(
    key: str,
    claim: Claim,
    comparison: str,
    null: float,
    per_seed=None,
    note: str = "",
    first_seeds: int = 0,
) -> dict:
    """One comparison's row; ``first_seeds`` > 1 also gives the verdict on that many first
    seeds where there are more."""
    row = {
        "claim": claim.id,
        "paper": claim.paper,
        "item": claim.item,
        "comparison": comparison or claim.statement,
        "statistic": claim.describes,
        "direction": claim.direction,
        "null": null,
        "paper_value": claim.paper_value,
        "n_seeds": 0,
        "seeds": "",
        "values": "",
        "mean": np.nan,
        "sem": np.nan,
        "ci_low": np.nan,
        "ci_high": np.nan,
        "verdict": NOT_RUN,
        "first_seeds_verdict": "",
        "note": note,
    }
    if per_seed is None:
        return row
    per_seed = per_seed.sort_values("seed")
    finite = per_seed[np.isfinite(per_seed["value"].astype(float))]
    mean, sem, low, high = interval(finite["value"])
    dropped = len(per_seed) - len(finite)
    if 1 < first_seeds < len(finite):
        first = interval(finite["value"].iloc[:first_seeds])
        first_verdict = verdict(first[2], first[3], claim.direction, null, claim.margin)
        row["first_seeds_verdict"] = f"{first_verdict} on {first_seeds} seeds"
    row.update(
        n_seeds=len(finite),
        seeds=";".join(str(int(s)) for s in finite["seed"]),
        values=";".join(f"{v:.6g}" for v in finite["value"]),
        mean=mean,
        sem=sem,
        ci_low=low,
        ci_high=high,
        verdict=verdict(low, high, claim.direction, null, claim.margin) if len(finite) else NOT_RUN,
        note="; ".join(
            filter(
                None,
                [
                    note,
                    f"{dropped} seeds without a finite value" if dropped else "",
                    "fewer than two seeds: no interval" if 0 < len(finite) < 2 else "",
                ],
            )
        ),
    )
    return row


def evaluate_claims(files: dict[str, dict[str, list[str]]], params: dict) -> pd.DataFrame:
    """Every claim's rows. ``files``: claim key (or pair-pass variant key) -> evaluation ->
    its files; ``params``: the same keys -> params (a claim absent from ``params`` has no grid
    in the config: not run)."""
    rows = []
    for key, claim in CLAIMS.items():
        if key not in params:
            rows.append(
                _row(
                    key,
                    claim,
                    claim.statement,
                    claim.null,
                    note=f"no grid for it in the config ({', '.join(claim.grids)})",
                )
            )
            continue
        for variant in [key, *(v for v in params if v != key and claim_of(v)[0] is claim)]:
            rows += _claim_rows(variant, claim, files.get(variant, {}), params[variant])
    return pd.DataFrame(rows, columns=COLUMNS)


def _claim_rows(key: str, claim: Claim, files: dict[str, list[str]], params: dict) -> list:
    """The rows of one claim entry (or pair-pass variant of it)."""
    from simreg.report.draw import read_inputs

    null = claim.null_value(params)
    statement = claim.statement + (
        f" [{params['pair_pass']} pair pass]" if "pair_pass" in params else ""
    )
    data = read_inputs({kind: files.get(kind, []) for kind in claim.reads})
    if any(isinstance(d, pd.DataFrame) and d.empty for d in data.values()):
        return [_row(key, claim, statement, null, note="no outputs to read")]
    per_seed = globals()[claim.statistic](data, params)
    if per_seed.empty:
        return [_row(key, claim, statement, null, note="its grid has no models to compare")]
    return [
        _row(
            key,
            claim,
            f"{statement}: {comparison}",
            null,
            seeds,
            first_seeds=params.get("first_seeds", 0),
        )
        for comparison, seeds in per_seed.groupby("comparison", sort=False)
    ]


def claims_markdown(table: pd.DataFrame) -> str:
    """results/claims.md: the verdict counts, then one line per comparison."""
    counts = ", ".join(f"{int((table['verdict'] == v).sum())} {v}" for v in VERDICTS)
    lines = [
        "# Claims",
        "",
        f"{len(table)} comparisons of {table['claim'].nunique()} claims: {counts}. "
        f"Interval: two-sided {LEVEL:.0%} t interval over seeds (docs/claims.md).",
        "",
        "| claim | item | comparison | claimed | mean ± SEM | 95% interval | seeds | "
        "paper | verdict |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    sign = {GREATER: ">", LESS: "<", NO_EFFECT: "≈"}
    for row in table.itertuples(index=False):
        claimed = f"{sign[row.direction]} {row.null:g}"
        if row.verdict == NOT_RUN:
            cells = [
                row.claim,
                f"{row.paper} {row.item}",
                row.comparison,
                claimed,
                "",
                "",
                "",
                row.paper_value,
                f"**{row.verdict}**: {row.note}",
            ]
        else:
            ci = "" if np.isnan(row.ci_low) else f"[{row.ci_low:.3g}, {row.ci_high:.3g}]"
            sem = "" if np.isnan(row.sem) else f" ± {row.sem:.2g}"
            cells = [
                row.claim,
                f"{row.paper} {row.item}",
                row.comparison,
                claimed,
                f"{row.mean:.3g}{sem}",
                ci,
                f"{row.n_seeds}: {row.values}",
                row.paper_value,
                f"**{row.verdict}**"
                + (f" ({row.first_seeds_verdict})" if row.first_seeds_verdict else "")
                + (f": {row.note}" if row.note else ""),
            ]
        lines.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def write_claims(files: dict, params: dict, out_csv: str | Path, out_md: str | Path) -> None:
    from simreg.outputs import write_csv, write_text

    table = evaluate_claims(files, params)
    write_csv(table, out_csv)
    write_text(claims_markdown(table), out_md)


def claims_files(reads) -> dict[str, dict[str, list[str]]]:
    """``--reads KEY__KIND FILE...`` groups as claim key -> evaluation -> files."""
    files: dict = {}
    for name, paths in reads:
        key, kind = name.split(SEP, 1)
        files.setdefault(key, {})[kind] = list(paths)
    return files
