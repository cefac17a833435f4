"""Robustness to random noise: test accuracy under additive noise over an epsilon grid.

On pixel values in [0, 1], for noise level eps (paper §5.1):

- ``gaussian``:    x + eps * N(0, 1)
- ``uniform``:     x + U(-eps, eps)
- ``salt_pepper``: each pixel (each channel value) set to 0 or 1, each with probability eps/2

and the result clipped (``noise.clip``): ``image`` (default, the authors' code) to the
clean image's own [min, max] over all its pixels and channels, so salt and pepper become the
image's own brightest and darkest values; ``unit`` to [0, 1]. The noise is drawn from a
generator seeded by the config's noise seed, so every model sees the same noise images at
each eps.
"""

from __future__ import annotations

import pandas as pd
import torch

from simreg.evaluate.registry import implements
from simreg.models.inference import loss_and_accuracy

CLIPS = ("image", "unit")


def clip(noisy: torch.Tensor, clean: torch.Tensor, mode: str) -> torch.Tensor:
    """``noisy`` clipped to [0, 1] (``unit``) or to each clean image's own [min, max]
    (``image``; images along the first axis)."""
    if mode == "unit":
        return noisy.clamp_(0.0, 1.0)
    if mode != "image":
        raise ValueError(f"noise.clip must be one of {CLIPS}, got {mode!r}")
    flat = clean.reshape(len(clean), -1)
    shape = (len(clean),) + (1,) * (clean.ndim - 1)
    low, high = flat.min(dim=1).values.view(shape), flat.max(dim=1).values.view(shape)
    return torch.maximum(torch.minimum(noisy, high), low)


def gaussian(
    x: torch.Tensor, eps: float, generator: torch.Generator, mode: str = "image"
) -> torch.Tensor:
    noise = torch.randn(x.shape, generator=generator, device=x.device)
    return clip(x + eps * noise, x, mode)


def uniform(
    x: torch.Tensor, eps: float, generator: torch.Generator, mode: str = "image"
) -> torch.Tensor:
    noise = torch.rand(x.shape, generator=generator, device=x.device).mul_(2.0).sub_(1.0)
    return clip(x + eps * noise, x, mode)


def salt_pepper(
    x: torch.Tensor, eps: float, generator: torch.Generator, mode: str = "image"
) -> torch.Tensor:
    u = torch.rand(x.shape, generator=generator, device=x.device)
    noisy = x.clone()
    noisy[u < eps / 2] = 0.0
    noisy[(u >= eps / 2) & (u < eps)] = 1.0
    return clip(noisy, x, mode)


NOISES = {"gaussian": gaussian, "uniform": uniform, "salt_pepper": salt_pepper}


def noise_accuracy(
    model,
    images_u8,
    labels,
    noise: str,
    epsilons,
    seed: int,
    batch_size: int = 1024,
    clip_mode: str = "image",
) -> list[dict]:
    """Accuracy of ``model`` at each eps; the generator restarts at ``seed`` for every eps."""
    add_noise = NOISES[noise]
    rows = []
    for eps in epsilons:
        generator = torch.Generator(device=images_u8.device).manual_seed(seed)
        _, acc = loss_and_accuracy(
            model,
            images_u8,
            labels,
            batch_size,
            transform=lambda x: add_noise(x, float(eps), generator, clip_mode),
        )
        rows.append({"noise": noise, "epsilon": float(eps), "accuracy": acc})
    return rows


@implements("noise")
def run(
    context,
    *,
    epsilons: dict[str, list[float]],
    seed: int,
    n_images: int | None = None,
    clip: str = "image",
) -> None:
    """Tidy CSV: model keys, noise, epsilon, accuracy (one row per noise and eps), on the
    first ``n_images`` test images (all when None)."""
    indices = context.subset(n_images)
    x, y = context.images(indices)
    rows = []
    for noise, grid in epsilons.items():
        rows += noise_accuracy(context.model, x, y, noise, grid, seed, clip_mode=clip)
    context.write_table(pd.DataFrame(rows), noise_seed=seed, n_images=len(indices), noise_clip=clip)
