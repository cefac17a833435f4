"""The claims registry (simreg.report.claims): verdicts on constructed tidy outputs (a clear
effect holds, the opposite is contradicted, seed noise larger than the effect is inconclusive,
a missing grid is not run), and `simreg claims` on a small hand-made results tree laid out
where the rule's declared inputs say."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simreg.report.claims import (
    CLAIMS,
    CONTRADICTED,
    HOLDS,
    INCONCLUSIVE,
    NOT_RUN,
    SEP,
    claim_of,
    claims_inputs,
    claims_params,
    evaluate_claims,
    interval,
    verdict,
)

ROOT = Path(__file__).resolve().parents[1]
EPSILONS = [0.0, 0.05, 0.1]
KEYS = {
    "task": "cifar10_gray",
    "regularization": "cifar10_gray_n5000",
    "alpha": 10.0,
    "threshold": 0.8,
    "reg_pairs": 16,
}
NONE_KEYS = {
    "task": "cifar10_gray",
    "regularization": "none",
    "method": "none",
    "alpha": 0.0,
    "threshold": "na",
    "reg_pairs": 0,
}
PARAMS = {"epsilons": {"gaussian": 0.1, "uniform": 0.1, "salt_pepper": 0.1, "fgsm_transfer": 0.02}}


def noise_table(gain: float, spread: float, seeds=range(7), rng_seed=0) -> pd.DataFrame:
    """Noise accuracies of `none` and `threshold` per seed: clean 0.8 for both; at ε > 0,
    none falls linearly to 0.3 and threshold to 0.3 · (1 + gain), plus per-seed noise of
    standard deviation `spread` on the threshold model."""
    rng = np.random.default_rng(rng_seed)
    rows = []
    for seed in seeds:
        jitter = rng.normal(0, spread)
        for kind in ("gaussian", "uniform", "salt_pepper"):
            for eps in EPSILONS:
                base = 0.8 - (0.8 - 0.3) * eps / 0.1
                reg = 0.8 if eps == 0 else base * (1 + gain * eps / 0.1) + jitter * eps / 0.1
                rows.append(
                    {**NONE_KEYS, "seed": seed, "noise": kind, "epsilon": eps, "accuracy": base}
                )
                rows.append(
                    {
                        **KEYS,
                        "method": "threshold",
                        "seed": seed,
                        "noise": kind,
                        "epsilon": eps,
                        "accuracy": reg,
                    }
                )
    return pd.DataFrame(rows)


def verdicts_of(noise: pd.DataFrame, tmp_path) -> pd.Series:
    """C1's verdict per noise kind from `noise` written as the tidy CSV it reads."""
    path = tmp_path / "noise.csv"
    noise.to_csv(path, index=False)
    table = evaluate_claims(
        {"C1_noise_ratios": {"noise": [str(path)]}}, {"C1_noise_ratios": PARAMS}
    )
    rows = table[table["claim"] == "C1"].set_index("comparison")
    return rows[rows["verdict"] != NOT_RUN]["verdict"]


def test_a_clear_effect_holds(tmp_path):
    verdicts = verdicts_of(noise_table(gain=0.3, spread=0.01), tmp_path)
    assert len(verdicts) == 3 and (verdicts == HOLDS).all(), verdicts


def test_the_opposite_effect_is_contradicted(tmp_path):
    verdicts = verdicts_of(noise_table(gain=-0.3, spread=0.01), tmp_path)
    assert len(verdicts) == 3 and (verdicts == CONTRADICTED).all(), verdicts


def test_seed_noise_larger_than_the_effect_is_inconclusive(tmp_path):
    verdicts = verdicts_of(noise_table(gain=0.02, spread=0.2, seeds=range(3), rng_seed=1), tmp_path)
    assert len(verdicts) == 3 and (verdicts == INCONCLUSIVE).all(), verdicts


def test_a_missing_grid_is_not_run():
    table = evaluate_claims({}, {})
    assert set(table["claim"]) == {c.id for c in CLAIMS.values()}
    assert (table["verdict"] == NOT_RUN).all()
    assert table["note"].str.startswith("no grid").all()


def test_a_pair_pass_variant_is_its_own_row_with_its_own_models(tmp_path):
    """A claim's pair-pass variant (claims.pair_pass_claims) reads only its own files and
    gives its own rows: here the split models show the effect, the fused ones the opposite."""
    split, fused = tmp_path / "split.csv", tmp_path / "fused.csv"
    noise_table(gain=0.3, spread=0.01).to_csv(split, index=False)
    noise_table(gain=-0.3, spread=0.01).to_csv(fused, index=False)
    table = evaluate_claims(
        {
            "C1_noise_ratios": {"noise": [str(split)]},
            "C1_noise_ratios_fused": {"noise": [str(fused)]},
        },
        {"C1_noise_ratios": PARAMS, "C1_noise_ratios_fused": {**PARAMS, "pair_pass": "fused"}},
    )
    rows = table[(table["claim"] == "C1") & (table["verdict"] != NOT_RUN)]
    is_fused = rows["comparison"].str.contains("[fused pair pass]", regex=False)
    assert is_fused.sum() == 3 and (~is_fused).sum() == 3
    assert (rows[is_fused]["verdict"] == CONTRADICTED).all()
    assert (rows[~is_fused]["verdict"] == HOLDS).all()


def test_the_verdict_on_the_first_seeds_uses_only_those(tmp_path):
    """first_seeds: seeds 0-2 show no effect (inconclusive), all seven a clear one (holds)."""
    noise = noise_table(gain=0.5, spread=0.0)  # RD/UD 1.5 on every seed
    early = (noise["seed"] < 3) & (noise["method"] == "threshold") & (noise["epsilon"] > 0)
    ratio = noise.loc[early, "seed"].map({0: 0.9, 1: 1.1, 2: 1.0})  # seeds 0-2: around 1
    noise.loc[early, "accuracy"] = noise.loc[early, "accuracy"] / 1.5 * ratio
    path = tmp_path / "noise.csv"
    noise.to_csv(path, index=False)
    table = evaluate_claims(
        {"C1_noise_ratios": {"noise": [str(path)]}},
        {"C1_noise_ratios": {**PARAMS, "first_seeds": 3}},
    )
    rows = table[(table["claim"] == "C1") & (table["verdict"] != NOT_RUN)]
    assert (rows["verdict"] == HOLDS).all(), rows
    assert (rows["first_seeds_verdict"] == f"{INCONCLUSIVE} on 3 seeds").all(), rows


def test_per_seed_values_are_the_ratio_at_the_selection_epsilon(tmp_path):
    path = tmp_path / "noise.csv"
    noise_table(gain=0.3, spread=0.0, seeds=range(3)).to_csv(path, index=False)
    table = evaluate_claims(
        {"C1_noise_ratios": {"noise": [str(path)]}}, {"C1_noise_ratios": PARAMS}
    )
    row = table[table["comparison"].str.contains("gaussian RD/UD")].iloc[0]
    assert row["values"] == "1.3;1.3;1.3" and row["seeds"] == "0;1;2"
    assert row["mean"] == pytest.approx(1.3) and row["n_seeds"] == 3


def test_interval_is_the_t_interval_over_seeds():
    from scipy import stats

    values = [1.0, 1.2, 1.4, 1.1]
    mean, sem, low, high = interval(values)
    assert sem == pytest.approx(np.std(values, ddof=1) / 2)
    assert high - mean == pytest.approx(stats.t.ppf(0.975, 3) * sem)
    assert np.isnan(interval([1.0])[2])  # one seed: no interval, so inconclusive
    assert verdict(*interval([5.0])[2:], "greater", 1.0) == INCONCLUSIVE
    one_seed = noise_table(gain=0.3, spread=0.0, seeds=[0])
    rows = _one_seed_rows(one_seed)
    assert (rows["verdict"] == INCONCLUSIVE).all()
    assert rows["note"].str.contains("no interval").all()


def _one_seed_rows(noise):
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "noise.csv"
        noise.to_csv(path, index=False)
        table = evaluate_claims(
            {"C1_noise_ratios": {"noise": [str(path)]}}, {"C1_noise_ratios": PARAMS}
        )
    return table[(table["claim"] == "C1") & (table["verdict"] != NOT_RUN)]


@pytest.mark.parametrize(
    "low, high, direction, expected",
    [
        (1.1, 1.5, "greater", HOLDS),
        (0.5, 0.9, "greater", CONTRADICTED),
        (0.9, 1.1, "greater", INCONCLUSIVE),
        (0.5, 0.9, "less", HOLDS),
        (1.1, 1.5, "less", CONTRADICTED),
    ],
)
def test_verdict_of_an_interval(low, high, direction, expected):
    assert verdict(low, high, direction, 1.0) == expected


@pytest.mark.parametrize(
    "low, high, expected",
    [(-0.02, 0.03, HOLDS), (0.01, 0.2, CONTRADICTED), (-0.1, 0.02, INCONCLUSIVE)],
)
def test_a_claim_of_no_effect_holds_inside_its_margin(low, high, expected):
    assert verdict(low, high, "none", 0.0, margin=0.05) == expected


def test_claims_cli_on_a_hand_made_results_tree(tmp_path, monkeypatch):
    """The rule's declared inputs (claims_inputs) laid out by hand for a config with only
    the noise_accuracy grid; `simreg claims` reads them and writes both outputs."""
    from simreg.cli import main
    from simreg.config import load_config

    config = load_config(ROOT / "config.yaml", ROOT / "configs" / "quick.yaml")
    grid = {
        "task": "cifar10_gray",
        "regularization": "cifar10_gray",
        "methods": ["none", "threshold"],
        "alpha": [10],
        "threshold": [0.8],
        "seeds": [0, 1, 2],
    }
    config["figures"] = {"noise_accuracy": grid}
    config["selection"]["dataset_epsilon"] = {}
    config["selection"]["epsilon"] = PARAMS["epsilons"]
    inputs = claims_inputs(config)
    params = claims_params(config)
    # only the claims of noise_accuracy's grid: C1, C4, C7
    assert {name.split(SEP)[0] for name in inputs} == {
        "C1_noise_ratios",
        "C1_clean_ratio",
        "C4_gamma_early",
        "C4_gamma_collapsed",
        "C7_pixel_vs_threshold",
    }
    assert set(params) == {name.split(SEP)[0] for name in inputs}
    monkeypatch.chdir(tmp_path)
    noise = noise_table(gain=0.3, spread=0.01, seeds=range(3))
    noise["regularization"] = noise["regularization"].replace(
        "cifar10_gray_n5000",
        config["figures"]["noise_accuracy"]["regularization"]
        + f"_n{config['regularization']['n_images']}",
    )
    noise_files = inputs["C1_noise_ratios" + SEP + "noise"]
    assert len(noise_files) == 6  # 2 methods x 3 seeds
    for path in noise_files:
        seed = int(re.search(r"/seed(\d+)", path).group(1))
        method = "none" if "/none/" in path else "threshold"
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        noise[(noise["seed"] == seed) & (noise["method"] == method)].to_csv(path, index=False)
    for path in inputs["C4_gamma_early" + SEP + "metrics"]:
        seed = int(re.search(r"/seed(\d+)", path).group(1))
        keys = NONE_KEYS if "/none/" in path else {**KEYS, "method": "threshold"}
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        gammas = [0.0, 1.0, 0.0, 0.0, 0.0] if seed else [0.5, 0.5, 0.0, 0.0, 0.0]
        pd.DataFrame(
            [
                {
                    **keys,
                    "seed": seed,
                    "epoch": 1,
                    "best": True,
                    "val_accuracy": 0.5,
                    **{f"gamma_{i}": g for i, g in enumerate(gammas)},
                }
            ]
        ).to_csv(path, index=False)
    argv = [
        "claims",
        "--out",
        "results/tables/claims.csv",
        "--md",
        "results/claims.md",
        "--params",
        json.dumps(params),
    ]
    for name, files in inputs.items():
        argv += ["--reads", name, *files]
    assert main(argv) == 0
    table = pd.read_csv("results/tables/claims.csv")
    verdicts = dict(zip(table["comparison"], table["verdict"]))
    c1 = table[(table["claim"] == "C1") & table["comparison"].str.contains("RD/UD")]
    assert len(c1) == 3 and (c1["verdict"] == HOLDS).all(), verdicts
    early = table[table["comparison"].str.contains("γ1 \\+ γ5")]
    assert early["values"].item() == "1;1;1" and early["verdict"].item() == HOLDS
    # no pixel models in the grid: C7 has nothing to compare; no k/N sweep: C8 not run
    assert table.loc[table["claim"] == "C7", "verdict"].item() == NOT_RUN
    assert table.loc[table["claim"] == "C8", "note"].item().startswith("no grid")
    assert "| C1 |" in Path("results/claims.md").read_text()


def _models(methods, seeds, make):
    """Rows of ``make(method, seed)`` (a list of dicts) with each model's key columns."""
    rows = []
    for seed in seeds:
        for method in methods:
            keys = (
                NONE_KEYS
                if method == "none"
                else {
                    **KEYS,
                    "method": method,
                    "regularization": "none"
                    if method not in ("threshold", "pixel")
                    else KEYS["regularization"],
                    "threshold": "na" if method not in ("threshold", "pixel") else 0.8,
                }
            )
            rows += [{**keys, "seed": seed, **row} for row in make(method, seed)]
    return pd.DataFrame(rows)


def _verdicts(key, kind, frame, tmp_path, params=None):
    path = tmp_path / f"{kind}.csv"
    frame.to_csv(path, index=False)
    table = evaluate_claims({key: {kind: [str(path)]}}, {key: params or PARAMS})
    claim = CLAIMS[key].id
    return table[(table["claim"] == claim) & (table["verdict"] != NOT_RUN)]


def test_boundary_ratio_per_setting(tmp_path):
    score = {"none": 1.0, "threshold": 2.0}
    frame = _models(
        ["none", "threshold"],
        range(4),
        lambda m, s: [
            {
                "setting": setting,
                "repeat": r,
                "score": score[m] * (1 + 0.01 * s) * f,
                "n_unsolved": 0,
                "steps": steps,
            }
            for setting, steps, f in (("paper", 50, 1.0), ("converged", 500, 0.5))
            for r in range(2)
        ],
    )
    rows = _verdicts("C3_boundary_ratio", "boundary", frame, tmp_path)
    assert len(rows) == 2 and (rows["verdict"] == HOLDS).all()
    assert rows["mean"].tolist() == pytest.approx([2.0, 2.0])


def test_lrc_gap_and_its_growth(tmp_path):
    # SGR above GN by 0.05 at ζ 1 and by 0.15 at ζ 16, plus seed noise of ±0.01
    accuracy = {("sgr", 1): 0.55, ("sgr", 16): 0.45, ("gn", 1): 0.5, ("gn", 16): 0.3}
    frame = _models(
        ["none", "sgr", "gn"],
        range(3),
        lambda m, s: [
            {
                "zeta": z,
                "epsilon": 0.3,
                "draws": 10,
                "accuracy": accuracy.get((m, z), 0.4) + 0.01 * (s - 1) * (m == "sgr"),
            }
            for z in (1, 16)
        ],
    )
    rows = _verdicts("R1_lrc_gap", "lrc_noise", frame, tmp_path)
    assert rows["mean"].tolist() == pytest.approx([0.15, 0.10])
    assert (rows["verdict"] == HOLDS).all()


def test_no_relation_holds_for_a_small_difference_and_is_contradicted_by_a_large_one(tmp_path):
    def whitebox(gap):
        return _models(
            ["none", "jacobian"],
            range(5),
            lambda m, s: [
                {
                    "attack": "pgd_linf",
                    "epsilon_255": e,
                    "epsilon": e / 255,
                    "accuracy": 0.3 - 0.02 * e + (gap + 0.002 * (s - 2)) * (m == "jacobian"),
                }
                for e in (0, 8)
            ],
        )

    small = _verdicts("R3_jacobian_pgd", "whitebox", whitebox(0.005), tmp_path)
    large = _verdicts("R3_jacobian_pgd", "whitebox", whitebox(0.2), tmp_path)
    assert small["verdict"].item() == HOLDS and large["verdict"].item() == CONTRADICTED


def test_the_column_sum_row_of_r3_reads_only_the_column_sum_models(tmp_path):
    """R3 has a row for eq. 1's Jacobian and one for the column sums Schaeffer ran: each
    compares its own method with none (a far-off jacobian model does not move the other)."""
    shift = {"none": 0.0, "jacobian": 0.2, "jacobian_column_sums": 0.01}
    frame = _models(
        list(shift),
        range(4),
        lambda m, s: [
            {
                "attack": "pgd_linf",
                "epsilon_255": e,
                "epsilon": e / 255,
                "accuracy": 0.3 - 0.02 * e + shift[m] + 0.002 * (s - 2) * (m != "none"),
            }
            for e in (0, 8)
        ],
    )
    column_sums = _verdicts("R3_jacobian_column_sums_pgd", "whitebox", frame, tmp_path)
    frobenius = _verdicts("R3_jacobian_pgd", "whitebox", frame, tmp_path)
    assert column_sums["mean"].item() == pytest.approx(0.009)  # 0.01 + mean seed offset
    assert column_sums["verdict"].item() == HOLDS
    assert frobenius["verdict"].item() == CONTRADICTED


def test_low_frequency_share_of_the_perturbation_spectrum(tmp_path):
    import h5py

    radius = np.arange(8.0)
    files = []
    for seed in range(3):
        for method, low in (("none", 1.0), ("threshold", 3.0)):  # more power at radii <= 1.75
            keys = NONE_KEYS if method == "none" else {**KEYS, "method": method}
            path = tmp_path / f"{method}{seed}.h5"
            with h5py.File(path, "w") as f:
                f["power"] = np.ones((4, 4))
                f["radius"] = radius
                f["radial_power"] = np.where(radius <= 1.75, low + 0.1 * seed, 1.0)
                f.attrs.update({k: str(v) for k, v in {**keys, "seed": seed}.items()})
            files.append(str(path))
    table = evaluate_claims(
        {"C9_low_frequency_share": {"spectrum": files}}, {"C9_low_frequency_share": PARAMS}
    )
    row = table[(table["claim"] == "C9") & (table["verdict"] != NOT_RUN)].iloc[0]
    # radii 0 and 1 of 0..7 are the low band (<= 0.25 * 7): share 2 low / (2 low + 6)
    share = lambda low: 2 * low / (2 * low + 6)  # noqa: E731
    expected = [share(3 + 0.1 * s) - share(1 + 0.1 * s) for s in range(3)]
    assert [float(v) for v in row["values"].split(";")] == pytest.approx(expected, rel=1e-5)
    assert row["verdict"] == HOLDS


def test_the_reference_config_checks_every_claim_the_subset_can():
    """configs/cifar10-reference.yaml (issue #24): every claim but C5 has a grid; seven seeds
    for none, pixel and threshold, at least three elsewhere; 10% of the images validate."""
    from simreg.report.targets import all_models

    config = load_config_files("configs/cifar10-reference.yaml")
    params = claims_params(config)
    run = {claim_of(key)[0].id for key in params}
    assert run == {f"C{i}" for i in (1, 2, 3, 4, 6, 7, 8, 9)} | {f"R{i}" for i in range(1, 6)}
    # C1-C3 also under the fused pair pass (issue #24 §2), each verdict also on 3 seeds
    fused = {claim_of(key)[0].id for key in params if claim_of(key)[1] == "fused"}
    assert fused == {"C1", "C2", "C3"}
    assert all(p["first_seeds"] == 3 for p in params.values())
    assert config["training"]["validation_fraction"] >= 0.1
    seeds: dict = {}
    for key in all_models(config):
        seeds.setdefault(key.method, set()).add(int(key.seed))
    assert all(len(seeds[m]) >= 7 for m in ("none", "pixel", "threshold")), seeds
    assert all(len(s) >= 3 for s in seeds.values()), seeds


def load_config_files(name):
    from simreg.config import load_config

    return load_config(ROOT / "config.yaml", ROOT / name)
