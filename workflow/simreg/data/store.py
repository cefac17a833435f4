"""Datasets: fetch a source, convert it to one color mode, store it as HDF5.

Every dataset ends up in the same layout, whatever its source::

    /train/images  uint8 (N, H, W, C)   C = 1 (gray) or 3 (rgb)
    /train/labels  int64 (N,)
    /test/images, /test/labels
    attrs: source, color, conversion, checksums, simreg version, ...

Grayscale conversion, used everywhere in simreg: ITU-R BT.601 luma with PIL's integer
arithmetic, ``L = (19595 R + 38470 G + 7471 B + 2**15) >> 16``. This is exactly
``PIL.Image.convert("L")``, which the paper's source code (torchvision ``Grayscale``
on PIL images) applies to CIFAR.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from simreg.data.sources import Splits, load_source
from simreg.outputs import atomic_output, provenance

COLORS = ("gray", "rgb")


def to_gray(images: np.ndarray) -> np.ndarray:
    """RGB uint8 (N, H, W, 3) -> gray uint8 (N, H, W, 1), identical to PIL's convert('L')."""
    if images.shape[-1] == 1:
        return images
    rgb = images.astype(np.uint32)
    luma = (19595 * rgb[..., 0] + 38470 * rgb[..., 1] + 7471 * rgb[..., 2] + (1 << 15)) >> 16
    return luma.astype(np.uint8)[..., None]


def to_color(images: np.ndarray, color: str) -> tuple[np.ndarray, str]:
    """Convert NHWC uint8 images to ``color``; return them and a note on the conversion."""
    if color not in COLORS:
        raise ValueError(f"color must be one of {COLORS}, got {color!r}")
    channels = images.shape[-1]
    if color == "gray":
        if channels == 1:
            return images, "none (source is grayscale)"
        return to_gray(images), "ITU-R BT.601 luma, PIL integer formula (= PIL convert('L'))"
    if channels == 3:
        return images, "none (source is RGB)"
    return np.repeat(images, 3, axis=-1), "grayscale replicated to 3 channels"


def array_sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def write_dataset(splits: Splits, color: str, path: str | Path, **attrs) -> None:
    """Convert ``splits`` to ``color`` and write the HDF5 file atomically."""
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as h5:
        conversion = None
        for part in ("train", "test"):
            images, conversion = to_color(getattr(splits, f"{part}_images"), color)
            labels = getattr(splits, f"{part}_labels")
            group = h5.create_group(part)
            group.create_dataset("images", data=images)
            group.create_dataset("labels", data=labels)
            group.attrs["images_sha256"] = array_sha256(images)
            group.attrs["labels_sha256"] = array_sha256(labels)
        meta = {**splits.attrs, **attrs, "color": color, "conversion": conversion}
        for key, value in provenance(**meta).items():
            h5.attrs[key] = value


def build_dataset(name: str, color: str, out: str | Path, **source_options) -> None:
    splits = load_source(name, **source_options)
    n_classes = int(max(splits.train_labels.max(initial=0), splits.test_labels.max(initial=0)) + 1)
    write_dataset(splits, color, out, dataset=name, n_classes=n_classes,
                  source_options=json.dumps({k: str(v) for k, v in source_options.items()}))


@dataclass
class ImageSet:
    """Images (uint8 NHWC) and labels of one split, read from a dataset HDF5 file."""

    images: np.ndarray
    labels: np.ndarray
    n_classes: int
    attrs: dict


class DatasetCorrupt(ValueError):
    """A dataset file is unreadable, or its content no longer matches its checksums."""


def read_split(path: str | Path, split: str, verify: bool = True) -> ImageSet:
    """Images and labels of one split; with ``verify``, checked against the SHA-256 sums
    written with them, so an edited or truncated file is never used silently."""
    rebuild = (f"rebuild it (e.g. `snakemake {path} --forcerun`, or delete it and rerun)")
    try:
        with h5py.File(path, "r") as h5:
            group = h5[split]
            images, labels = group["images"][...], group["labels"][...]
            expected = {"images": group.attrs.get("images_sha256"),
                        "labels": group.attrs.get("labels_sha256")}
            out = ImageSet(images=images, labels=labels, n_classes=int(h5.attrs["n_classes"]),
                           attrs=dict(h5.attrs))
    except FileNotFoundError:
        raise
    except (OSError, KeyError) as error:
        raise DatasetCorrupt(f"dataset file {path} cannot be read ({error}); it is truncated "
                             f"or not a simreg dataset: {rebuild}") from error
    if verify:
        for name, array in (("images", out.images), ("labels", out.labels)):
            if expected[name] is not None and array_sha256(array) != expected[name]:
                raise DatasetCorrupt(f"dataset file {path}: /{split}/{name} does not match the "
                                     f"checksum stored with it (edited or damaged): {rebuild}")
    return out
