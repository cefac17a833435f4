"""Fourier analysis of perturbations (paper §5.5): the radial profile of a known spectrum,
Parseval, and a single frequency landing on its radius."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from simreg.evaluate.spectrum import (
    build_spectrum,
    frequency_radius,
    power_spectrum,
    radial_profile,
    read_spectrum,
)


@pytest.mark.parametrize("shape", [(8, 8), (32, 32), (9, 12)])
def test_radial_average_of_a_radial_spectrum_returns_it(shape):
    radius = frequency_radius(shape)
    profile = np.random.default_rng(0).uniform(1, 2, radius.max() + 1)
    r, recovered = radial_profile(profile[radius])
    np.testing.assert_array_equal(r, np.arange(radius.max() + 1))
    np.testing.assert_allclose(recovered, profile)


def test_zero_frequency_is_the_centre():
    radius = frequency_radius((8, 8))
    assert radius[4, 4] == 0 and radius[4, 7] == 3 and radius[0, 4] == 4


def test_parseval_and_a_pure_frequency():
    rng = np.random.default_rng(0)
    delta = rng.normal(size=(5, 3, 16, 16))
    assert power_spectrum(delta).sum() == pytest.approx(16 * 16)  # unit-norm δ
    k = 3
    wave = np.cos(2 * np.pi * k * np.arange(16) / 16)[None, None, None, :].repeat(16, axis=2)
    power = power_spectrum(wave)
    radius, profile = radial_profile(power)
    assert np.argmax(profile) == k
    assert profile[k] * (frequency_radius((16, 16)) == k).sum() == pytest.approx(16 * 16)


def test_scaling_a_perturbation_does_not_change_its_spectrum():
    delta = np.random.default_rng(1).normal(size=(4, 1, 8, 8))
    scales = np.array([1, 10, 0.1, 3])[:, None, None, None]
    np.testing.assert_allclose(power_spectrum(delta), power_spectrum(delta * scales))


def test_build_uses_solved_perturbations_only(tmp_path):
    rng = np.random.default_rng(2)
    delta = rng.normal(size=(2, 3, 1, 8, 8)).astype(np.float32)
    delta[1, 2] = np.nan  # unsolved in repeat 1
    boundary = tmp_path / "b.h5"
    with h5py.File(boundary, "w") as f:
        f["perturbation"] = delta
        f.attrs.update({"setting": "converged", "method": "none", "seed": 0})
    out = tmp_path / "s.h5"
    build_spectrum(boundary, out, keys={"task": "digits_gray"})
    spectrum = read_spectrum(out)
    assert spectrum["n_perturbations"] == 5
    assert spectrum["method"] == "none" and spectrum["task"] == "digits_gray"
    solved = np.concatenate([delta[0], delta[1, :2]])
    np.testing.assert_allclose(spectrum["power"], power_spectrum(solved), rtol=1e-6)
