"""FGSM (paper §5.1): the defining step, its storage as signs, and transfer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from simreg.evaluate.context import run_evaluation
from simreg.evaluate.fgsm import build_perturbations, fgsm, gradient_sign, read_perturbations
from simreg.evaluate.whitebox import whitebox_accuracy


@pytest.mark.parametrize("eps", [0.01, 0.1, 0.3])
def test_fgsm_moves_every_unclipped_pixel_by_exactly_eps(linear_model, digits, eps):
    x, y = digits
    sign = gradient_sign(linear_model, x, y)
    x_adv = fgsm(x, sign, eps)
    moved = (x_adv - x).abs()
    free = (sign != 0) & (x + eps * sign >= 0) & (x + eps * sign <= 1)
    assert free.float().mean() > 0.3  # the test has pixels to check
    torch.testing.assert_close(moved[free], torch.full_like(moved[free], eps), rtol=0, atol=1e-6)
    # clipped pixels stop at the bound, in the direction of the sign
    clipped = (sign != 0) & ~free
    assert clipped.any()
    bound = torch.where(sign[clipped] > 0, 1.0, 0.0)
    torch.testing.assert_close(x_adv[clipped], bound)
    assert x_adv.min() >= 0 and x_adv.max() <= 1


def test_sign_is_that_of_the_loss_gradient(linear_model, digits):
    x, y = digits
    sign = gradient_sign(linear_model, x[:50], y[:50])
    assert sign.dtype == torch.int8 and set(sign.unique().tolist()) <= {-1, 0, 1}
    # a small step along the sign raises the loss of every image (linear model: exactly)
    loss = torch.nn.functional.cross_entropy
    before = torch.stack([loss(linear_model(x[i : i + 1]), y[i : i + 1]) for i in range(50)])
    stepped = x[:50] + 1e-3 * sign.float()  # unclipped: the gradient direction itself
    after = torch.stack([loss(linear_model(stepped[i : i + 1]), y[i : i + 1]) for i in range(50)])
    assert (after > before).all()


def test_fgsm_lowers_accuracy_and_eps_zero_is_clean(linear_model, digits):
    x, y = digits
    sign = gradient_sign(linear_model, x, y)
    with torch.no_grad():
        acc = [
            (linear_model(fgsm(x, sign, e)).argmax(1) == y).float().mean().item()
            for e in (0.0, 0.05, 0.2)
        ]
        clean = (linear_model(x).argmax(1) == y).float().mean().item()
    assert acc[0] == clean
    assert acc[0] > acc[1] > acc[2]


def test_transfer_from_itself_equals_whitebox_fgsm(saved_model, tmp_path):
    """Stored once and reused: transferring a model's own signs is white-box FGSM."""
    model_path, dataset = saved_model
    signs = tmp_path / "signs.h5"
    build_perturbations(model_path, dataset, signs, n_images=200, device="cpu")
    sign, indices, attrs = read_perturbations(signs)
    assert sign.dtype == np.int8 and sign.shape == (200, 1, 8, 8)
    assert list(indices) == list(range(200)) and attrs["n_images"] == 200
    out = tmp_path / "transfer.csv"
    run_evaluation(
        "fgsm_transfer",
        {"model": model_path, "dataset": dataset, "perturbations": signs},
        {"csv": out},
        {"epsilons": [0.0, 0.1, 0.3]},
        keys={"task": "digits_gray"},
        device="cpu",
    )
    frame = pd.read_csv(out)
    assert list(frame["epsilon"]) == [0.0, 0.1, 0.3]
    assert {"method", "seed", "task", "simreg_version", "perturbations_file"} <= set(frame.columns)

    from simreg.data.store import read_split
    from simreg.models.inference import load_model, to_input

    model, _ = load_model(model_path)
    test = read_split(dataset, "test")
    x, y = to_input(torch.from_numpy(test.images[:200])), torch.from_numpy(test.labels[:200])
    # white-box FGSM at eps in 1/255 units: 0.1 = 25.5/255, 0.3 = 76.5/255
    rows = whitebox_accuracy(
        model,
        torch.from_numpy(test.images[:200]),
        y,
        [0.0, 25.5, 76.5],
        pgd_steps=2,
        pgd_rel_stepsize=0.5,
        seed=0,
    )
    whitebox = {r["epsilon_255"]: r["accuracy"] for r in rows if r["attack"] == "fgsm"}
    for eps, eps255 in [(0.0, 0.0), (0.1, 25.5), (0.3, 76.5)]:
        transferred = frame.loc[frame["epsilon"] == eps, "accuracy"].item()
        assert transferred == pytest.approx(whitebox[eps255], abs=1e-9)
    with torch.no_grad():
        clean = (model(x).argmax(1) == y).float().mean().item()
        assert frame["accuracy"].iloc[0] == pytest.approx(clean)


def test_transfer_refuses_signs_of_other_images(saved_model, tmp_path):
    model_path, dataset = saved_model
    import h5py

    bad = tmp_path / "bad.h5"
    with h5py.File(bad, "w") as f:
        f["sign"] = np.zeros((10, 3, 8, 8), dtype=np.int8)
        f["indices"] = np.arange(10)
    with pytest.raises(ValueError, match="does not match"):
        run_evaluation(
            "fgsm_transfer",
            {"model": model_path, "dataset": dataset, "perturbations": bad},
            {"csv": tmp_path / "x.csv"},
            {"epsilons": [0.1]},
            device="cpu",
        )


@pytest.mark.parametrize("configs", [["config.yaml"], ["config.yaml", "configs/quick.yaml"]])
def test_the_fgsm_source_is_one_fixed_model_that_is_never_evaluated(configs):
    """Issue #10: every evaluated model (`none` included) is attacked with the signs of one
    unregularized model per task, trained with a seed that no figure grid evaluates."""
    from pathlib import Path

    from simreg.config import load_config
    from simreg.evaluate.registry import EVALUATIONS, fgsm_perturbations_file, fgsm_source
    from simreg.report.targets import TARGETS, target_models

    root = Path(__file__).resolve().parents[1]
    config = load_config(*(root / c for c in configs))
    seed = config["fgsm_transfer"]["source_seed"]
    evaluated = {key for name in TARGETS for key in target_models(name, config)}
    attacked = {
        key
        for name, t in TARGETS.items()
        if "fgsm_transfer" in t.reads
        for key in target_models(name, config)
    }
    assert any(key.method == "none" for key in attacked)
    for key in attacked:
        files = EVALUATIONS["fgsm_transfer"].inputs(key, None, config)
        assert files["perturbations"] == fgsm_perturbations_file(key.task, seed)
        assert fgsm_source(key.task, seed) not in evaluated
        assert fgsm_source(key.task, seed).method == "none"


def test_a_source_seed_inside_a_grid_is_refused():
    from pathlib import Path

    from simreg.config import ConfigError, load_config

    root = Path(__file__).resolve().parents[1]
    with pytest.raises(ConfigError, match="fgsm_transfer.source_seed"):
        load_config(root / "config.yaml", overrides={"fgsm_transfer": {"source_seed": 3}})


def test_transfer_table_names_its_source_model(saved_model, tmp_path):
    model_path, dataset = saved_model
    signs = tmp_path / "signs.h5"
    source = {"task": "digits_gray", "method": "none", "seed": 100}
    build_perturbations(model_path, dataset, signs, n_images=20, device="cpu", keys=source)
    out = tmp_path / "transfer.csv"
    run_evaluation(
        "fgsm_transfer",
        {"model": model_path, "dataset": dataset, "perturbations": signs},
        {"csv": out},
        {"epsilons": [0.0, 0.1]},
        keys={"task": "digits_gray", "seed": 0},
        device="cpu",
    )
    frame = pd.read_csv(out)
    assert (frame["source_seed"] == 100).all() and (frame["source_method"] == "none").all()
    assert (frame["seed"] == 0).all()
