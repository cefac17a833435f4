"""Sampling the image pairs a similarity regularizer compares at each step."""

from __future__ import annotations

import torch


def sample_pairs(n: int, count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` index pairs (i, j), i != j, uniform over ordered pairs of ``n`` images.

    Returns a (count, 2) int64 tensor on the CPU (the generator's device).
    """
    if n < 2:
        raise ValueError("need at least 2 regularization images to form a pair")
    i = torch.randint(n, (count,), generator=generator)
    j = (i + torch.randint(1, n, (count,), generator=generator)) % n
    return torch.stack([i, j], dim=1)


def eligible_pair_list(mask: torch.Tensor) -> torch.Tensor:
    """The (M, 2) pairs i < j where ``mask`` holds."""
    pairs = torch.nonzero(torch.triu(mask, diagonal=1))
    if len(pairs) == 0:
        raise ValueError("no pair of regularization images satisfies this method's condition")
    return pairs
