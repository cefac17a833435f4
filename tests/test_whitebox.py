"""White-box PGD-L∞ and FGSM with ε in units of 1/255."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from simreg.evaluate.context import run_evaluation
from simreg.evaluate.whitebox import pgd_linf, whitebox_accuracy


@pytest.mark.parametrize("eps", [2 / 255, 8 / 255, 0.1])
def test_pgd_respects_eps_and_bounds(linear_model, digits, eps):
    x, y = digits[0][:100], digits[1][:100]
    x_adv = pgd_linf(linear_model, x, y, eps, steps=10, rel_stepsize=0.25, seed=0)
    assert (x_adv - x).abs().max() <= eps + 1e-6
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    with torch.no_grad():
        clean = (linear_model(x).argmax(1) == y).float().mean()
        attacked = (linear_model(x_adv).argmax(1) == y).float().mean()
    assert attacked <= clean
    if eps >= 8 / 255:
        assert attacked < clean


def test_pgd_is_at_least_as_strong_as_fgsm(linear_model, digits):
    x, y = digits
    images_u8 = (x * 255).round().to(torch.uint8).permute(0, 2, 3, 1)
    rows = whitebox_accuracy(
        linear_model, images_u8, y, [0, 4, 16], pgd_steps=20, pgd_rel_stepsize=0.1, seed=0
    )
    acc = {(r["attack"], r["epsilon_255"]): r["accuracy"] for r in rows}
    assert acc["fgsm", 0] == acc["pgd_linf", 0]  # eps = 0: both are the clean accuracy
    for e in (4, 16):
        assert acc["pgd_linf", e] <= acc["fgsm", e] + 0.01
        assert acc["pgd_linf", e] < acc["pgd_linf", 0]
    assert {r["epsilon"] for r in rows} == {0.0, 4 / 255, 16 / 255}


def test_evaluate_writes_tidy_csv(saved_model, tmp_path):
    model_path, dataset = saved_model
    out = tmp_path / "w.csv"
    run_evaluation(
        "whitebox",
        {"model": model_path, "dataset": dataset},
        {"csv": out},
        {"epsilons_255": [1, 8], "n_images": 50, "pgd_steps": 3, "pgd_rel_stepsize": 0.5},
        keys={"task": "digits_gray"},
        device="cpu",
    )
    frame = pd.read_csv(out)
    assert len(frame) == 4 and set(frame["attack"]) == {"fgsm", "pgd_linf"}
    assert {"task", "method", "seed", "pgd_steps", "n_images", "simreg_version"} <= set(
        frame.columns
    )
    assert frame["accuracy"].between(0, 1).all()
