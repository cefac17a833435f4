"""Fourier analysis of minimal Boundary Attack perturbations (paper §5.5, Fig. 7 centre, right).

For each solved image the perturbation δ = x_adv - x is scaled to unit L2 norm, so that every
image weighs the same and models with larger perturbations are compared by *where* their
perturbation energy lies, not by how much there is. Its power |F(δ)|² (2-D DFT per channel,
zero frequency moved to the centre) is summed over channels and averaged over images; by
Parseval the mean spectrum sums to H·W. The radial profile averages it over rings of integer
radius |k| around the zero frequency.
"""

from __future__ import annotations

import sys

import h5py
import numpy as np

from simreg.evaluate.registry import implements
from simreg.outputs import atomic_output, provenance

# The model-key columns a Boundary Attack output records.
MODEL_KEYS = ("task", "regularization", "method", "alpha", "threshold", "reg_pairs", "seed")


def power_spectrum(delta: np.ndarray) -> np.ndarray:
    """|F(δ/||δ||)|² of δ (N, C, H, W), summed over channels, averaged over images; centred,
    (H, W)."""
    delta = np.asarray(delta, dtype=np.float64)
    norms = np.sqrt((delta**2).sum(axis=(1, 2, 3), keepdims=True))
    if (norms == 0).any():
        raise ValueError("a perturbation is zero: it has no spectrum to normalize")
    spectra = np.abs(np.fft.fft2(delta / norms, axes=(-2, -1))) ** 2
    return np.fft.fftshift(spectra.sum(axis=1).mean(axis=0), axes=(-2, -1))


def frequency_radius(shape: tuple[int, int]) -> np.ndarray:
    """Integer distance of each entry of a centred (fftshift-ed) spectrum from zero frequency."""
    h, w = shape
    ky = np.arange(h) - h // 2
    kx = np.arange(w) - w // 2
    return np.rint(np.hypot(ky[:, None], kx[None, :])).astype(int)


def radial_profile(power: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(radius, mean power on the ring of that radius) of a centred 2-D spectrum."""
    radius = frequency_radius(power.shape)
    sums = np.bincount(radius.ravel(), weights=power.ravel())
    counts = np.bincount(radius.ravel())
    return np.arange(len(sums)), sums / counts


def read_perturbations(boundary_h5) -> tuple[np.ndarray, dict]:
    """The solved perturbations of every repeat of a Boundary Attack output, (M, C, H, W)."""
    with h5py.File(boundary_h5, "r") as f:
        delta = f["perturbation"][...]
        attrs = dict(f.attrs)
    delta = delta.reshape(-1, *delta.shape[2:])
    solved = ~np.isnan(delta).any(axis=(1, 2, 3))
    delta = delta[solved]
    nonzero = (np.abs(delta) > 0).any(axis=(1, 2, 3))  # a zero δ has no direction to show
    return delta[nonzero], attrs


@implements("spectrum")
def run(context) -> None:
    """The spectrum of ``context.inputs["boundary"]`` into ``context.outputs["h5"]``."""
    build_spectrum(context.inputs["boundary"], context.outputs["h5"], keys=context.keys)


def build_spectrum(boundary_h5, out, *, keys: dict | None = None) -> None:
    """HDF5 with /power (H, W, centred), /radius and /radial_power, and the provenance."""
    delta, attrs = read_perturbations(boundary_h5)
    if len(delta) == 0:
        raise ValueError(f"{boundary_h5} holds no solved perturbation")
    power = power_spectrum(delta)
    radius, radial = radial_profile(power)
    model_keys = {k: attrs[k] for k in MODEL_KEYS if k in attrs}  # as the attack recorded
    model_keys.update(keys or {})
    info = provenance(
        boundary_file=str(boundary_h5),
        n_perturbations=len(delta),
        setting=attrs.get("setting", ""),
        steps=attrs.get("steps", ""),
        normalization="each δ scaled to unit L2 norm",
        **model_keys,
    )
    with atomic_output(out) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("power", data=power)
        f.create_dataset("radius", data=radius)
        f.create_dataset("radial_power", data=radial)
        f.attrs.update(info)
    print(f"spectrum: {len(delta)} perturbations of {boundary_h5} -> {out}", file=sys.stderr)


def read_spectrum(path) -> dict:
    with h5py.File(path, "r") as f:
        return {
            "power": f["power"][...],
            "radius": f["radius"][...],
            "radial_power": f["radial_power"][...],
            **dict(f.attrs),
        }
