"""Which test images an evaluation uses: the same ones for every model."""

from __future__ import annotations

import numpy as np


def first_images(n_total: int, n_images: int | None) -> np.ndarray:
    """Indices of the first ``n_images`` images (all when None): the same for every model."""
    return np.arange(n_total if not n_images else min(n_images, n_total))


def random_images(n_total: int, n_images: int | None, seed: int) -> np.ndarray:
    """Sorted indices of ``n_images`` images (all when None) drawn by a permutation seeded with
    ``seed``: they depend on the sizes and the seed only, so every model gets the same."""
    order = np.random.default_rng(seed).permutation(n_total)
    return np.sort(order[: n_total if not n_images else min(n_images, n_total)])
