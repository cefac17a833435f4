"""One end-to-end run of the quick DAG, from nothing, through Snakemake (the session's shared
``quick_run`` of conftest.py).

Runs every rule (dataset, similarity, train, evaluations, figure, table) on the embedded
digits data, then checks the outputs against independent computations and their provenance.
"""

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from simreg.config import load_config
from simreg.targets.threshold import threshold_targets
from simreg.report.targets import all_targets

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_every_figure_and_table_is_built(full_quick_run):
    workdir, _ = full_quick_run
    config = load_config(ROOT / "config.yaml", ROOT / "configs" / "quick.yaml")
    for target in all_targets(config):
        path = workdir / target
        assert path.stat().st_size > 0, target
        companion = path.with_suffix(".png" if path.suffix == ".pdf" else ".md")
        assert companion.stat().st_size > 0, companion


@pytest.mark.slow
def test_claims_table_is_built_with_a_verdict_per_claim(full_quick_run):
    """`snakemake all` builds results/tables/claims.csv: every registered claim has a row,
    and a claim whose grid the quick config defines is evaluated on its seeds."""
    from simreg.report.claims import CLAIMS, NOT_RUN, VERDICTS, claims_params

    workdir, _ = full_quick_run
    config = load_config(ROOT / "config.yaml", ROOT / "configs" / "quick.yaml")
    table = pd.read_csv(workdir / "results" / "tables" / "claims.csv")
    assert set(table["claim"]) == {c.id for c in CLAIMS.values()}
    assert set(table["verdict"]) <= set(VERDICTS)
    run = {CLAIMS[key].id for key in claims_params(config)}
    c1 = table[(table["claim"] == "C1") & (table["verdict"] != NOT_RUN)]
    assert "C1" in run and len(c1) == 4  # three noise kinds and the clean cost
    assert (c1["n_seeds"] == len(config["figures"]["noise_accuracy"]["seeds"])).all()
    assert (workdir / "results" / "claims.md").stat().st_size > 0


def test_similarity_file_matches_numpy_and_thresholds_to_three_values(quick_run):
    workdir, _ = quick_run
    with h5py.File(workdir / "results/similarity/digits_gray_n500.h5") as h5:
        indices, stored, attrs = h5["indices"][...], h5["pixel_similarity"][...], dict(h5.attrs)
    with h5py.File(workdir / "results/datasets/digits_gray.h5") as h5:
        images = h5["train/images"][...][indices]
    x = images.reshape(len(images), -1).astype(np.float64)
    x -= x.mean(axis=0)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    np.testing.assert_allclose(stored, x @ x.T, atol=1e-3)
    assert attrs["n_images"] == 500 and "simreg_version" in attrs
    targets = threshold_targets(torch.from_numpy(stored.astype(np.float32)), 0.5)
    assert set(torch.unique(targets).tolist()) <= {-1, 0, 1}


def test_outputs_carry_provenance(quick_run):
    workdir, _ = quick_run
    noise = pd.read_csv(next((workdir / "results/noise").rglob("*.csv")))
    for column in ("task", "method", "alpha", "threshold", "seed", "noise_seed", "simreg_version"):
        assert column in noise.columns
    stem = "digits_gray/digits_gray_n500/threshold/a10_t0.5_k16/seed0"
    metrics = pd.read_csv(workdir / "results/models" / stem / "metrics.csv")
    assert metrics["best"].sum() == 1
    assert {"gamma_0", "gamma_4", "simreg_version", "seed"} <= set(metrics.columns)
    gammas = metrics[[f"gamma_{k}" for k in range(5)]].to_numpy()
    np.testing.assert_allclose(gammas.sum(axis=1), 1, rtol=1e-6)  # softmax weights
    assert (metrics["threshold"] == 0.5).all() and (metrics["reg_pairs"] == 16).all()
    saved = torch.load(workdir / "results/models" / stem / "model.pt", weights_only=False)
    meta = saved["provenance"]
    assert meta["epochs"] == 4 and float(meta["threshold"]) == 0.5 and meta["method"] == "threshold"
    assert "results/similarity/digits_gray_n500.h5" in meta["inputs"]


@pytest.mark.slow
def test_a_second_run_has_nothing_to_do(full_quick_run):
    workdir, env = full_quick_run
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "all", "-n", "--configfile", "configs/quick.yaml"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr


def test_attack_outputs_hold_their_defining_property(quick_run):
    """Stored Boundary perturbations are adversarial for their model and inside [0, 1];
    FGSM signs exist once, from the one source model (its own seed, outside the grids');
    every transfer starts at the clean accuracy."""
    from simreg.data.store import read_split
    from simreg.models.inference import load_model, to_input

    workdir, _ = quick_run
    signs = sorted((workdir / "results/fgsm/perturbations").rglob("*.h5"))
    config = load_config(ROOT / "config.yaml", ROOT / "configs" / "quick.yaml")
    assert [p.name for p in signs] == [f"seed{config['fgsm_transfer']['source_seed']}.h5"]
    stem = "digits_gray/digits_gray_n500/threshold/a10_t0.5_k16/seed0"
    model, _ = load_model(workdir / "results/models" / stem / "model.pt")
    test = read_split(workdir / "results/datasets/digits_gray.h5", "test")
    with h5py.File(workdir / "results/boundary/converged" / f"{stem}.h5") as h5:
        indices, delta = h5["indices"][...], h5["perturbation"][...]
    x = to_input(torch.from_numpy(test.images[indices]))
    for repeat in delta:
        solved = ~np.isnan(repeat).any(axis=(1, 2, 3))
        assert solved.mean() > 0.9
        x_adv = x[solved] + torch.from_numpy(repeat[solved])
        assert x_adv.min() >= -1e-6 and x_adv.max() <= 1 + 1e-6
        with torch.no_grad():
            assert (model(x_adv).argmax(1) != model(x[solved]).argmax(1)).all()
    noise = pd.read_csv(workdir / "results/noise" / f"{stem}.csv")
    fgsm = pd.read_csv(workdir / "results/fgsm/transfer" / f"{stem}.csv")
    clean = noise.loc[noise["epsilon"] == 0, "accuracy"].iloc[0]
    assert fgsm.loc[fgsm["epsilon"] == 0, "accuracy"].item() == pytest.approx(clean)


@pytest.mark.slow
def test_corruption_outputs_match_the_clean_evaluation(full_quick_run):
    """The quick run generates the digits' corruptions (no official release) and scores each
    grid model on them: its clean row is the noise evaluation's ε = 0 accuracy."""
    workdir, _ = full_quick_run
    with h5py.File(workdir / "results/datasets/digits_gray_c.h5") as h5:
        attrs = dict(h5.attrs)
        shape = h5["corruptions/snow"].shape
    assert attrs["origin"] == "generated" and "make_cifar_c.py" in attrs["source"]
    assert shape[0] == 5 and shape[2:] == (8, 8, 1)
    stem = "digits_gray/digits_gray_n500/threshold/a10_t0.5_k16/seed0"
    table = pd.read_csv(workdir / "results/corruption_accuracy" / f"{stem}.csv")
    assert len(table) == 1 + 15 * 5 and (table["corruptions_origin"] == "generated").all()
    noise = pd.read_csv(workdir / "results/noise" / f"{stem}.csv")
    clean = noise.loc[noise["epsilon"] == 0, "accuracy"].iloc[0]
    assert table.loc[table["corruption"] == "none", "accuracy"].item() == pytest.approx(clean)
