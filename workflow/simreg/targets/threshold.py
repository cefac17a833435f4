"""The thresholded pixel similarity S_Th (paper eq. 5)."""

from __future__ import annotations

import torch


def threshold_targets(s_pixel: torch.Tensor, threshold: float) -> torch.Tensor:
    """S_Th in {-1, 0, +1} as int8: +1 where S_pixel > Th, -1 where S_pixel < -Th, 0 otherwise
    (strict inequalities), with 1 on the diagonal as in the authors' code."""
    out = torch.zeros(s_pixel.shape, dtype=torch.int8)
    out[s_pixel > threshold] = 1
    out[s_pixel < -threshold] = -1
    out.fill_diagonal_(1)
    return out
