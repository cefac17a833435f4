"""Natural images as stimuli: grayscale, at the size the recordings use.

Li et al. showed the mice grayscale ImageNet images at 36 x 64 pixels (paper §3, App. 7.1).
Images of another shape are centre-cropped to the stimulus aspect ratio and then resized
(bilinear, antialiased), so nothing is stretched; values are in [0, 1].
"""

from __future__ import annotations

import numpy as np


def to_stimuli(images: np.ndarray, size) -> np.ndarray:
    """uint8 (N, H, W, C) or float (N, H, W) images -> float32 (N, h, w) in [0, 1]."""
    import torch
    import torch.nn.functional as F

    x = np.asarray(images)
    if x.ndim == 4:
        if x.shape[-1] != 1:
            x = x.mean(axis=-1, keepdims=True)  # callers pass gray datasets; rgb falls back here
        x = x[..., 0]
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / 255.0
    x = torch.as_tensor(np.ascontiguousarray(x), dtype=torch.float32)
    h, w = int(size[0]), int(size[1])
    n, H, W = x.shape
    # the largest centred crop with the target aspect ratio h / w
    if H * w > W * h:
        crop_h, crop_w = max(1, round(W * h / w)), W
    else:
        crop_h, crop_w = H, max(1, round(H * w / h))
    top, left = (H - crop_h) // 2, (W - crop_w) // 2
    x = x[:, top : top + crop_h, left : left + crop_w]
    if (crop_h, crop_w) != (h, w):
        x = F.interpolate(
            x[:, None], size=(h, w), mode="bilinear", align_corners=False, antialias=True
        )[:, 0]
    return x.clamp_(0.0, 1.0).numpy()
