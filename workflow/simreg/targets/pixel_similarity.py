"""Pixel similarity of a regularization set (paper §4, App. 7.1), computed in blocks.

S_pixel[i, j] is the cosine similarity of images i and j, flattened over all pixels, after
subtracting the per-pixel mean over the N chosen images. Color images are first averaged
over their RGB channels, as the authors' code does (so a color set's S_pixel is that of its
channel-mean images; issue #10, docs/choices.md). The matrix is
built one block of rows at a time and streamed into a chunked HDF5 dataset, so N = 50,000
(2.5e9 entries) never needs the full matrix in memory.

File layout (one file per regularization set)::

    /indices       int64 (N,)   which training images of the source dataset were chosen
    /pixel_similarity  float32|float16 (N, N)
    attrs: dataset, color, n_images, image_seed, dtype, block_size, version, ...

The regularization targets (thresholded S_Th and its variants) are derived from
S_pixel on load, by the regularizer that trains with them (``simreg.train.regularizers``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import h5py
import numpy as np
import torch

from simreg.data.store import read_split
from simreg.outputs import atomic_output, provenance

# An image identical to the mean image has no direction; its similarity to anything is 0.
NORM_FLOOR = 1e-12


def choose_images(n_available: int, n_images: int, seed: int) -> np.ndarray:
    """Indices of the N regularization images, drawn without replacement by ``seed``."""
    if n_images > n_available:
        raise ValueError(f"asked for {n_images} regularization images, dataset has {n_available}")
    return np.sort(np.random.default_rng(seed).choice(n_available, n_images, replace=False))


def centered_unit_rows(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Average NHWC images over their channels (authors' code: RGB -> channel mean; a
    gray image is its own mean), flatten, subtract the per-pixel mean over the set, scale
    rows to unit norm."""
    x = torch.as_tensor(images).to(torch.float64)
    if x.ndim == 4:
        x = x.mean(dim=-1)
    x = x.reshape(len(x), -1)
    x = x - x.mean(dim=0, keepdim=True)
    norms = x.norm(dim=1, keepdim=True).clamp_min(NORM_FLOOR)
    return (x / norms).to(torch.float32)


def pixel_similarity_blocks(images, block_size: int = 2048, device: str | torch.device = "cpu"):
    """Yield ``(start, rows)`` blocks of S_pixel for ``images`` (N, ...), top to bottom."""
    unit = centered_unit_rows(images).to(device)
    for start in range(0, len(unit), block_size):
        block = unit[start : start + block_size] @ unit.T
        yield start, block.clamp_(-1.0, 1.0).cpu().numpy()


def pixel_similarity(images, block_size: int = 2048) -> np.ndarray:
    """The full S_pixel matrix in memory (for small N and for tests)."""
    n = len(images)
    out = np.empty((n, n), dtype=np.float32)
    for start, rows in pixel_similarity_blocks(images, block_size):
        out[start : start + len(rows)] = rows
    return out


def build_similarity(
    dataset_path: str | Path,
    out: str | Path,
    *,
    n_images: int,
    image_seed: int,
    dtype: str = "float32",
    block_size: int = 2048,
    device: str = "cpu",
) -> None:
    """Choose N training images of a dataset, compute S_pixel in blocks, write HDF5 atomically."""
    train = read_split(dataset_path, "train")
    indices = choose_images(len(train.images), n_images, image_seed)
    images = train.images[indices]
    n = len(indices)
    started = time.perf_counter()
    with atomic_output(out) as tmp, h5py.File(tmp, "w") as h5:
        h5.create_dataset("indices", data=indices)
        chunk_rows = min(block_size, n, max(1, (1 << 22) // n))  # chunks of at most ~4M entries
        matrix = h5.create_dataset(
            "pixel_similarity", shape=(n, n), dtype=dtype, chunks=(chunk_rows, n)
        )
        for start, rows in pixel_similarity_blocks(images, block_size, device):
            matrix[start : start + len(rows)] = rows.astype(dtype)
            done = start + len(rows)
            print(
                f"similarity: {done}/{n} rows ({time.perf_counter() - started:.1f} s)",
                file=sys.stderr,
                flush=True,
            )
        attrs = provenance(
            dataset=str(train.attrs.get("dataset")),
            color=str(train.attrs.get("color")),
            dataset_file=str(dataset_path),
            n_images=n,
            image_seed=image_seed,
            dtype=dtype,
            block_size=block_size,
            image_shape=list(images.shape[1:]),
            definition="cosine similarity of flattened channel-mean images minus the per-pixel "
            "mean over the set",
            seconds=round(time.perf_counter() - started, 3),
        )
        for key, value in attrs.items():
            h5.attrs[key] = value


# The similarity matrices a target file may hold (the neural one: targets.neural_similarity).
MATRICES = ("pixel_similarity", "neural_similarity")


def read_similarity(path: str | Path) -> tuple[np.ndarray, np.ndarray, dict]:
    """Return (indices, the file's similarity matrix as float32, attrs): S_pixel, or S_neural
    for a neural similarity file (same layout)."""
    with h5py.File(path, "r") as h5:
        name = next((m for m in MATRICES if m in h5), None)
        if name is None:
            raise KeyError(f"{path} holds none of the similarity matrices {MATRICES}")
        return h5["indices"][...], h5[name][...].astype(np.float32), dict(h5.attrs)
