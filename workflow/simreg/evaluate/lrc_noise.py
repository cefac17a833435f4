"""The long-range-correlated (LRC) noise attack of Roth et al. 2018 (§4.3, Fig. 3, App. Fig. 4).

Perturbations are drawn from a zero-mean Gaussian whose covariance between pixels i and j
of channels a and b is exp(−r/ζ) within a channel and 0.5·exp(−r/ζ) across channels, with
r = ||i − j||₂ in pixels and ζ the decay length: the Kronecker product A ⊗ K of the channel
matrix A (1 on the diagonal, 0.5 off it) and the spatial K_ij = exp(−r_ij/ζ), both positive
definite, so z = L_A W L_Kᵀ for white W. Each test image is perturbed ``draws`` times and
counts as correct only if every draw is classified correctly (the worst of the draws).

The unit of ε (``unit``, docs/choices.md). ``standardized`` (the default, Roth's reading):
Roth's classifier sees each image standardized to zero mean and unit variance (§5), and ε
scales the unit-variance noise in that space; in [0, 1] pixels the perturbation is
ε·σ_x·z, σ_x the image's own standard deviation over all its values. ``pixel``: ε·z on the
[0, 1] pixels. Either way the perturbed image is clipped to [0, 1].

Two curves: accuracy vs ζ at the fixed ``epsilon`` (Fig. 3 left) and accuracy vs each of
``epsilons`` at ζ = ``epsilons_zeta`` (App. Fig. 4). The draws restart from ``seed`` at every
(ζ, ε), so every model sees the same noise. An image that fails a draw is decided: later
draws are classified only for the images still correct, and a (ζ, ε) ends when none is.
"""

from __future__ import annotations

import sys

import pandas as pd
import torch

from simreg.evaluate.registry import implements
from simreg.models.inference import to_input


def lrc_factors(channels: int, height: int, width: int, zeta: float):
    """(L_A, L_K): Cholesky factors of the channel (C×C) and spatial (HW×HW) covariances."""
    rows, cols = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    points = torch.stack([rows.flatten(), cols.flatten()], 1).double()
    spatial = torch.exp(-torch.cdist(points, points) / zeta)
    channel = torch.full((channels, channels), 0.5, dtype=torch.float64)
    channel.fill_diagonal_(1.0)
    jitter = 1e-9 * torch.eye(len(spatial), dtype=torch.float64)
    return torch.linalg.cholesky(channel), torch.linalg.cholesky(spatial + jitter)


def sample_lrc(
    n: int,
    channels: int,
    height: int,
    width: int,
    zeta: float,
    generator: torch.Generator,
    factors=None,
) -> torch.Tensor:
    """``n`` draws of LRC noise (n, C, H, W) with unit variance per pixel (float32, CPU)."""
    white = torch.randn(n, channels, height * width, generator=generator, dtype=torch.float64)
    return correlate(white, height, width, factors or lrc_factors(channels, height, width, zeta))


def correlate(white: torch.Tensor, height: int, width: int, factors) -> torch.Tensor:
    """LRC noise (n, C, H, W), float32, from white Gaussian draws (n, C, H·W), float64."""
    l_channel, l_spatial = factors
    z = l_channel @ white @ l_spatial.T
    return z.reshape(len(white), -1, height, width).float()


UNITS = ("standardized", "pixel")


def noise_scale(x: torch.Tensor, epsilon: float, unit: str) -> torch.Tensor:
    """Per image (N, 1, 1, 1), the factor of the unit-variance noise z in [0, 1] pixels:
    ε·σ_x in the ``standardized`` unit (σ_x: the image's standard deviation over all its
    values, the divisor of its standardization), ε in the ``pixel`` unit."""
    if unit == "pixel":
        return torch.full((len(x), 1, 1, 1), float(epsilon), dtype=x.dtype, device=x.device)
    if unit == "standardized":
        return epsilon * x.flatten(1).std(dim=1, correction=0).view(-1, 1, 1, 1)
    raise ValueError(f"unknown LRC unit {unit!r}; known: {', '.join(UNITS)}")


def perturb(x: torch.Tensor, z: torch.Tensor, epsilon: float, unit: str) -> torch.Tensor:
    """x + scale·z clipped to [0, 1] (:func:`noise_scale`)."""
    return (x + noise_scale(x, epsilon, unit) * z).clamp(0.0, 1.0)


@torch.no_grad()
def worst_of_draws_accuracy(
    model,
    images_u8: torch.Tensor,
    labels: torch.Tensor,
    zeta: float,
    epsilon: float,
    draws: int,
    seed: int,
    batch_size: int = 500,
    unit: str = "standardized",
) -> float:
    """Share of images classified correctly under every one of ``draws`` LRC perturbations."""
    model.eval()
    n, height, width, channels = images_u8.shape
    factors = lrc_factors(channels, height, width, zeta)
    generator = torch.Generator().manual_seed(seed)
    robust = torch.ones(n, dtype=torch.bool, device=labels.device)
    for _ in range(draws):
        # every image's white noise is drawn, so that each image sees the same draws
        # whichever others are left; only images still robust are correlated and classified
        white = torch.randn(n, channels, height * width, generator=generator, dtype=torch.float64)
        alive = robust.nonzero().squeeze(1)
        if len(alive) == 0:
            break
        for start in range(0, len(alive), batch_size):
            index = alive[start : start + batch_size]
            x = to_input(images_u8[index])
            z = correlate(white[index.cpu()], height, width, factors).to(x.device)
            predicted = model(perturb(x, z, epsilon, unit)).argmax(1)
            robust[index] &= predicted == labels[index]
    return robust.float().mean().item()


def curves(zetas, epsilon: float, epsilons, epsilons_zeta: float) -> list[tuple]:
    """(curve, ζ, ε) of each point: ``zeta`` at the fixed ε per ζ (Fig. 3 left), then
    ``epsilon`` per ε at ζ = ``epsilons_zeta`` (App. Fig. 4)."""
    return [("zeta", float(z), float(epsilon)) for z in zetas] + [
        ("epsilon", float(epsilons_zeta), float(e)) for e in epsilons
    ]


@implements("lrc_noise")
def run(
    context,
    *,
    zetas,
    epsilon: float,
    draws: int,
    n_images: int | None,
    seed: int,
    batch_size: int = 500,
    unit: str = "standardized",
    epsilons=(),
    epsilons_zeta: float = 8.0,
) -> None:
    """Tidy CSV: model keys, curve, zeta, epsilon, unit, draws, accuracy (one row per point of
    each curve; a (ζ, ε) on both curves is computed once), on the first ``n_images`` test
    images."""
    indices = context.subset(n_images)
    images, labels = context.images(indices)
    rows, done = [], {}
    for curve, zeta, eps in curves(zetas, epsilon, epsilons, epsilons_zeta):
        if (zeta, eps) not in done:
            done[zeta, eps] = worst_of_draws_accuracy(
                context.model, images, labels, zeta, eps, draws, seed, batch_size, unit
            )
            print(
                f"lrc_noise: ζ = {zeta:g}, ε = {eps:g} ({unit}): accuracy {done[zeta, eps]:.4f}",
                file=sys.stderr,
            )
        rows.append(
            {
                "curve": curve,
                "zeta": zeta,
                "epsilon": eps,
                "unit": unit,
                "draws": draws,
                "accuracy": done[zeta, eps],
            }
        )
    context.write_table(pd.DataFrame(rows), n_images=len(indices), lrc_seed=seed)
