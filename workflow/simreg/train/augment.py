"""Data augmentation of classification batches, as batched tensor ops on the device."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def crop_flip(images_u8: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor, pad: int = 4):
    """Random-crop (reflect padding ``pad``) and horizontally flip a uint8 NHWC batch.

    ``offsets`` (B, 2) in [0, 2 pad] and ``flips`` (B,) bool come from the caller's generator,
    so augmentation is reproducible; everything else is one batched gather on the device.
    """
    b, h, w, _ = images_u8.shape
    padded = F.pad(images_u8.permute(0, 3, 1, 2).float(), (pad, pad, pad, pad), mode="reflect")
    rows = offsets[:, 0, None] + torch.arange(h, device=images_u8.device)
    cols = offsets[:, 1, None] + torch.arange(w, device=images_u8.device)
    cols = torch.where(flips[:, None], cols.flip(1), cols)
    batch = torch.arange(b, device=images_u8.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]
    return out.to(torch.uint8)


def draw_crop_flip(n_steps: int, batch_size: int, generator: torch.Generator, pad: int = 4):
    """One epoch's crop offsets (n_steps, batch_size, 2) and flips (n_steps, batch_size)."""
    offsets = torch.randint(0, 2 * pad + 1, (n_steps, batch_size, 2), generator=generator)
    flips = torch.rand((n_steps, batch_size), generator=generator) < 0.5
    return offsets, flips
