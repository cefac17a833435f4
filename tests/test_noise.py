"""Random noise of the robustness evaluation (paper §5.1): statistics on a constant image
(clipped to [0, 1], as a constant image has no range of its own), and the per-image clip."""

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
    residual = gaussian(x, EPS, gen(), "unit") - 0.5
    assert abs(residual.mean().item()) < 0.02 * EPS
    assert residual.std().item() == pytest.approx(EPS, rel=0.02)
    torch.testing.assert_close(x, grey())  # input untouched


def test_uniform_statistics():
    x = grey()
    residual = uniform(x, EPS, gen(), "unit") - 0.5
    assert residual.min().item() >= -EPS - 1e-7 and residual.max().item() <= EPS + 1e-7
    assert abs(residual.mean().item()) < 0.02 * EPS
    assert residual.std().item() == pytest.approx(EPS / math.sqrt(3), rel=0.02)
    # it fills the interval: values near both ends occur
    assert residual.min().item() < -0.99 * EPS and residual.max().item() > 0.99 * EPS
    torch.testing.assert_close(x, grey())


def test_salt_pepper_statistics():
    x = grey()
    out = salt_pepper(x, EPS, gen(), "unit")
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
@pytest.mark.parametrize("clip", ["image", "unit"])
def test_outputs_in_unit_interval(name, eps, clip):
    x = torch.rand(SHAPE, generator=gen(9))
    out = NOISES[name](x, eps, gen(), clip)
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
    a = NOISES[name](x, EPS, gen(42), "unit")
    b = NOISES[name](x, EPS, gen(42), "unit")
    c = NOISES[name](x, EPS, gen(43), "unit")
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_noise_names():
    assert set(NOISES) == {"gaussian", "uniform", "salt_pepper"}


@pytest.mark.parametrize("name", sorted(NOISES))
def test_a_noisy_image_stays_within_its_own_min_and_max(name):
    """Issue #10: the authors' code clamps each noisy image to that image's own range."""
    low = torch.linspace(0.0, 0.4, SHAPE[0]).view(-1, 1, 1, 1)
    x = low + 0.5 * torch.rand(SHAPE, generator=gen(7))  # image i spans about [low_i, low_i + 0.5]
    out = NOISES[name](x, 0.3, gen())
    flat_x, flat_out = x.reshape(len(x), -1), out.reshape(len(out), -1)
    assert (flat_out.min(1).values >= flat_x.min(1).values).all()
    assert (flat_out.max(1).values <= flat_x.max(1).values).all()
    # the bounds are reached: the clip is the image's own, not a looser one
    assert (flat_out.max(1).values == flat_x.max(1).values).float().mean() > 0.9
    unit = NOISES[name](x, 0.3, gen(), "unit")
    assert not torch.equal(out, unit)


def test_unknown_clip_is_refused():
    with pytest.raises(ValueError, match="noise.clip"):
        gaussian(grey(), EPS, gen(), "none")
