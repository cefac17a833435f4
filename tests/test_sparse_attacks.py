"""JSMA and SparseFool (simreg.evaluate.sparse_attacks): budgets, bounds, and that success means
misclassified, on a softmax regression of the 8x8 digits (fixtures in conftest.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from simreg.models.inference import predict
from simreg.evaluate.sparse_attacks import (
    deepfool_boundary,
    jsma,
    l1_step_to_hyperplane,
    sparsefool,
)

torch.set_num_threads(2)
N_VALUES = 64  # 1 x 8 x 8


@pytest.fixture(scope="module")
def batch(digits):
    x, y = digits
    return x[-64:], y[-64:]


def changed(x, adv):
    return ((adv - x).abs() > 1e-6).flatten(1).sum(1)


@pytest.mark.parametrize("max_fraction", [0.05, 0.1, 0.3])
def test_jsma_budget_bounds_and_values_at_bounds(linear_model, batch, max_fraction):
    x, y = batch
    adv, success = jsma(linear_model, x, y, max_fraction=max_fraction)
    assert adv.shape == x.shape and success.shape == y.shape and success.dtype == torch.bool
    assert adv.min() >= 0 and adv.max() <= 1
    assert changed(x, adv).max() <= max_fraction * N_VALUES
    moved = (adv - x).abs() > 1e-6
    assert torch.all((adv[moved] == 0) | (adv[moved] == 1))  # pushed to a bound


def test_jsma_success_is_misclassification(linear_model, batch):
    x, y = batch
    adv, success = jsma(linear_model, x, y, max_fraction=0.3)
    assert torch.equal(success, predict(linear_model, adv) != y)
    assert success.float().mean() > 0.8  # it does attack: not vacuous
    clean_correct = predict(linear_model, x) == y
    assert (success & clean_correct).sum() > 0.7 * clean_correct.sum()


def test_jsma_leaves_misclassified_and_zero_budget_alone(linear_model, batch):
    x, y = batch
    wrong = predict(linear_model, x) != y
    adv, success = jsma(linear_model, x, y, max_fraction=0.3)
    assert wrong.any()
    assert torch.equal(adv[wrong], x[wrong]) and success[wrong].all()
    adv0, success0 = jsma(linear_model, x, y, max_fraction=0.0)
    assert torch.equal(adv0, x) and torch.equal(success0, wrong)


def test_sparsefool_bounds_sparse_and_adversarial(linear_model, batch):
    x, y = batch
    adv, success = sparsefool(linear_model, x, y, lambda_=2.0, max_iter=10)
    assert adv.shape == x.shape and adv.min() >= 0 and adv.max() <= 1
    assert torch.equal(success, predict(linear_model, adv) != y)
    assert success.float().mean() > 0.9
    assert changed(x, adv)[success].float().median() < N_VALUES / 4  # sparse, not dense


@pytest.fixture(scope="module")
def tanh_model(digits):
    """A small tanh network fitted to the digits: curved boundaries, so one linearised step
    does not always cross them."""
    x, y = digits
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(N_VALUES, 32), nn.Tanh(), nn.Linear(32, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(200):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    return model.eval()


@pytest.mark.parametrize(
    "attack, settings",
    [(jsma, {"max_fraction": 0.05}), (sparsefool, {"lambda_": 1.0, "max_iter": 1})],
)
def test_success_is_misclassification_when_some_fail(tanh_model, batch, attack, settings):
    x, y = batch
    adv, success = attack(tanh_model, x, y, **settings)
    assert 0 < success.float().mean() < 1  # a budget too small for some images
    assert torch.equal(success, predict(tanh_model, adv) != y)
    assert adv.min() >= 0 and adv.max() <= 1


@pytest.mark.parametrize("attack", [jsma, sparsefool])
@pytest.mark.parametrize("n_classes", [2, 3, 13])
def test_any_number_of_classes(attack, n_classes, batch):
    x, _ = batch
    torch.manual_seed(n_classes)
    model = nn.Sequential(nn.Flatten(), nn.Linear(N_VALUES, n_classes)).eval()
    y = predict(model, x)  # every image correct: all must be attacked
    adv, success = attack(model, x, y)
    assert adv.shape == x.shape and adv.min() >= 0 and adv.max() <= 1
    assert torch.equal(success, predict(model, adv) != y)
    assert success.any()


def test_deepfool_boundary_crosses_the_boundary(linear_model, batch):
    x, y = batch
    keep = predict(linear_model, x) == y
    point, normal = deepfool_boundary(
        linear_model, x[keep], y[keep], steps=50, overshoot=0.02, candidates=9
    )
    assert (predict(linear_model, point) != y[keep]).float().mean() > 0.95
    assert normal.shape == point.shape and torch.all(normal.flatten(1).norm(dim=1) > 0)


def greedy_reference(x, w, point):
    """The paper's LinearSolver loop, one coordinate at a time (on a flat vector)."""
    x = x.clone()
    for j in w.abs().argsort(descending=True):
        need = float(((point - x) * w).sum())
        if abs(need) < 1e-7 or w[j] == 0:
            break
        x[j] = (x[j] + need / w[j]).clamp(0, 1)
    return x


def test_l1_step_to_hyperplane_matches_the_papers_loop():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(32, 20, generator=g)
    w = torch.randn(32, 20, generator=g)
    point = x + 0.3 * torch.randn(32, 20, generator=g)
    out = l1_step_to_hyperplane(x, w, point)
    expected = torch.stack([greedy_reference(*row) for row in zip(x, w, point)])
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
    assert out.min() >= 0 and out.max() <= 1
    on_plane = ((out - point) * w).sum(1).abs() < 1e-4
    assert on_plane.float().mean() > 0.5  # reachable planes are reached
