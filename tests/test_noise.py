"""Random noise of the robustness evaluation (paper §5.1): statistics on a constant image."""

from __future__ import annotations

import math

import pytest
import torch

from simreg.evaluate.noise import NOISES, gaussian, salt_pepper, uniform

torch.set_num_threads(2)
EPS = 0.1
SHAPE = (100, 3, 32, 32)  # 307,200 pixel values


def grey():
    return torch.full(SHAPE, 0.5)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_gaussian_statistics():
    x = grey()
    residual = gaussian(x, EPS, gen()) - 0.5
    assert abs(residual.mean().item()) < 0.02 * EPS
    assert residual.std().item() == pytest.approx(EPS, rel=0.02)
    torch.testing.assert_close(x, grey())  # input untouched


def test_uniform_statistics():
    x = grey()
    residual = uniform(x, EPS, gen()) - 0.5
    assert residual.min().item() >= -EPS - 1e-7 and residual.max().item() <= EPS + 1e-7
    assert abs(residual.mean().item()) < 0.02 * EPS
    assert residual.std().item() == pytest.approx(EPS / math.sqrt(3), rel=0.02)
    # it fills the interval: values near both ends occur
    assert residual.min().item() < -0.99 * EPS and residual.max().item() > 0.99 * EPS
    torch.testing.assert_close(x, grey())


def test_salt_pepper_statistics():
    x = grey()
    out = salt_pepper(x, EPS, gen())
    n = out.numel()
    pepper = (out == 0.0).sum().item() / n
    salt = (out == 1.0).sum().item() / n
    unchanged = (out == 0.5).sum().item() / n
    assert pepper + salt + unchanged == pytest.approx(1.0)  # nothing else happens
    assert pepper + salt == pytest.approx(EPS, rel=0.05)
    assert pepper == pytest.approx(EPS / 2, rel=0.05)
    assert salt == pytest.approx(EPS / 2, rel=0.05)
    torch.testing.assert_close(x, grey())


@pytest.mark.parametrize("name", sorted(NOISES))
@pytest.mark.parametrize("eps", [0.05, 0.3, 1.0])
def test_outputs_in_unit_interval(name, eps):
    x = torch.rand(SHAPE, generator=gen(9))
    out = NOISES[name](x, eps, gen())
    assert out.shape == x.shape
    assert out.min().item() >= 0.0 and out.max().item() <= 1.0
    assert not torch.equal(out, x)


@pytest.mark.parametrize("name", sorted(NOISES))
def test_zero_eps_is_identity(name):
    x = torch.rand(SHAPE, generator=gen(5))
    assert torch.equal(NOISES[name](x, 0.0, gen()), x)


@pytest.mark.parametrize("name", sorted(NOISES))
def test_same_seed_same_noise(name):
    x = grey()
    a = NOISES[name](x, EPS, gen(42))
    b = NOISES[name](x, EPS, gen(42))
    c = NOISES[name](x, EPS, gen(43))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_noise_names():
    assert set(NOISES) == {"gaussian", "uniform", "salt_pepper"}
