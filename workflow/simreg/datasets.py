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
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from simreg.outputs import atomic_output, provenance

COLORS = ("gray", "rgb")
TORCHVISION_SOURCES = {
    "cifar10": "CIFAR10",
    "cifar100": "CIFAR100",
    "mnist": "MNIST",
    "fashionmnist": "FashionMNIST",
}
# ImageNet regularization images: the paper's source (Li et al. 2019) cropped the centre
# 144x256 of each image and downsampled it 4x to 36x64, in grayscale.
IMAGENET_CROP = (144, 256)
IMAGENET_SIZE = (36, 64)


class DatasetUnavailable(RuntimeError):
    """A dataset is not on disk and cannot be fetched."""


@dataclass
class Splits:
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    attrs: dict = field(default_factory=dict)


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


def _split(images, labels, test_fraction: float, seed: int):
    order = np.random.default_rng(seed).permutation(len(images))
    n_test = int(round(test_fraction * len(images)))
    test, train = order[:n_test], order[n_test:]
    return images[train], labels[train], images[test], labels[test]


def load_torchvision(name: str, data_root: str | Path, download: bool) -> Splits:
    """CIFAR-10/100, MNIST, FashionMNIST through torchvision, which checks each archive's MD5."""
    import torchvision

    cls = getattr(torchvision.datasets, TORCHVISION_SOURCES[name])
    root = Path(data_root)
    parts = {}
    for train in (True, False):
        try:
            ds = cls(root=str(root), train=train, download=download)
        except (RuntimeError, OSError) as error:  # not found, or download failed
            raise DatasetUnavailable(
                f"{name} is not under {root.resolve()} and could not be downloaded "
                f"({error}). Put the torchvision files there (for {cls.__name__}: "
                f"{root / getattr(cls, 'base_folder', cls.__name__)}), or run on a machine "
                f"with internet and `data.download: true`."
            ) from error
        images = np.asarray(ds.data)
        if images.ndim == 3:  # MNIST-type tensors are (N, H, W)
            images = images[..., None]
        parts[train] = (images.astype(np.uint8), np.asarray(ds.targets, dtype=np.int64))
    checksums = {}
    for attr in ("tgz_md5", "train_list", "test_list", "resources"):
        if hasattr(cls, attr):
            checksums[attr] = getattr(cls, attr)
    return Splits(
        *parts[True],
        *parts[False],
        attrs={"source": f"torchvision.datasets.{cls.__name__}", "source_md5": checksums},
    )


def load_digits(test_fraction: float = 0.2, seed: int = 0) -> Splits:
    """scikit-learn's embedded 8x8 handwritten digits (1797 images): needs no download."""
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    labels = bunch.target.astype(np.int64)
    return Splits(
        *_split(images, labels, test_fraction, seed),
        attrs={
            "source": "sklearn.datasets.load_digits (8x8, values 0-16 scaled to 0-255)",
            "split": f"random {test_fraction:g} test fraction, seed {seed}",
        },
    )


def load_npz(path: str | Path, test_fraction: float = 0.2, seed: int = 0) -> Splits:
    """A local NPZ: keys ``images`` (uint8 N,H,W[,C]) and ``labels``, split here; or
    ``train_images``/``train_labels``/``test_images``/``test_labels`` already split."""
    path = Path(path)
    if not path.exists():
        raise DatasetUnavailable(f"NPZ file {path.resolve()} does not exist.")
    with np.load(path, allow_pickle=False) as npz:
        keys = set(npz.files)

        def images_of(key):
            array = np.asarray(npz[key])
            if array.dtype != np.uint8:
                raise ValueError(f"{path}: {key} must be uint8, got {array.dtype}")
            return array[..., None] if array.ndim == 3 else array

        if {"train_images", "train_labels", "test_images", "test_labels"} <= keys:
            splits = Splits(
                images_of("train_images"),
                np.asarray(npz["train_labels"], dtype=np.int64),
                images_of("test_images"),
                np.asarray(npz["test_labels"], dtype=np.int64),
                attrs={"split": "as stored in the NPZ"},
            )
        elif {"images", "labels"} <= keys:
            splits = Splits(
                *_split(images_of("images"), np.asarray(npz["labels"], np.int64), test_fraction, seed),
                attrs={"split": f"random {test_fraction:g} test fraction, seed {seed}"},
            )
        else:
            raise ValueError(
                f"{path} has keys {sorted(keys)}; expected 'images' and 'labels', or "
                "'train_images', 'train_labels', 'test_images' and 'test_labels'."
            )
    splits.attrs["source"] = f"npz:{path.resolve()}"
    splits.attrs["source_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    return splits


def load_imagenet_folder(root: str | Path) -> Splits:
    """ImageNet regularization images from an ImageFolder tree, cropped and downsampled as
    in the paper's source: centre 144x256 crop (after scaling to cover it) -> 36x64."""
    from PIL import Image
    from torchvision.datasets import ImageFolder

    root = Path(root) if root else None
    if root is None or not root.is_dir():
        raise DatasetUnavailable(
            f"ImageNet images are not at {root}. Set `data.imagenet_dir` to an ImageFolder "
            "tree (one folder per class with JPEG images); ImageNet cannot be downloaded."
        )
    folder = ImageFolder(str(root))
    crop_h, crop_w = IMAGENET_CROP
    out = np.empty((len(folder), *IMAGENET_SIZE, 3), dtype=np.uint8)
    for i, (file, _) in enumerate(folder.samples):
        with Image.open(file) as img:
            img = img.convert("RGB")
            scale = max(crop_h / img.height, crop_w / img.width)
            if scale > 1:
                img = img.resize((round(img.width * scale), round(img.height * scale)), Image.BICUBIC)
            left, top = (img.width - crop_w) // 2, (img.height - crop_h) // 2
            img = img.crop((left, top, left + crop_w, top + crop_h))
            img = img.resize(IMAGENET_SIZE[::-1], Image.BOX)
            out[i] = np.asarray(img)
    labels = np.asarray(folder.targets, dtype=np.int64)
    return Splits(
        out, labels, out[:0], labels[:0],
        attrs={"source": f"ImageFolder:{root.resolve()}", "crop": "centre 144x256 -> 36x64 (box)"},
    )


PHOTO_TILE = 16


def load_photos(test_fraction: float = 0.2, seed: int = 0) -> Splits:
    """Natural-image regularization set that needs no download: the two photographs that
    scikit-learn embeds (china.jpg, flower.jpg, 427x640 RGB) cut into non-overlapping 16x16
    tiles (2080 tiles; label = which photograph)."""
    from sklearn.datasets import load_sample_images

    tiles, labels = [], []
    for label, photo in enumerate(load_sample_images().images):
        h, w = (d - d % PHOTO_TILE for d in photo.shape[:2])
        grid = photo[:h, :w].reshape(h // PHOTO_TILE, PHOTO_TILE, w // PHOTO_TILE, PHOTO_TILE, 3)
        grid = grid.transpose(0, 2, 1, 3, 4).reshape(-1, PHOTO_TILE, PHOTO_TILE, 3)
        tiles.append(grid)
        labels.append(np.full(len(grid), label, dtype=np.int64))
    return Splits(
        *_split(np.concatenate(tiles).astype(np.uint8), np.concatenate(labels), test_fraction, seed),
        attrs={"source": "sklearn.datasets.load_sample_images (china.jpg, flower.jpg), "
                         f"non-overlapping {PHOTO_TILE}x{PHOTO_TILE} tiles",
               "split": f"random {test_fraction:g} test fraction, seed {seed}"},
    )


def load_source(name: str, *, data_root="data", download=True, npz=None, imagenet_dir=None,
                test_fraction=0.2, split_seed=0) -> Splits:
    """Load dataset ``name`` in its native color mode."""
    npz = npz or {}
    if name in TORCHVISION_SOURCES:
        return load_torchvision(name, data_root, download)
    if name == "digits":
        return load_digits(test_fraction, split_seed)
    if name == "photos":
        return load_photos(test_fraction, split_seed)
    if name == "imagenet":
        return load_imagenet_folder(imagenet_dir)
    if name in npz:
        return load_npz(npz[name], test_fraction, split_seed)
    known = sorted([*TORCHVISION_SOURCES, "digits", "photos", "imagenet", *npz])
    raise ValueError(f"unknown dataset {name!r}; known: {known} (add NPZ files under data.npz)")


def first_images(n_total: int, n_images: int | None) -> np.ndarray:
    """Indices of the first ``n_images`` images (all when None): the same for every model."""
    return np.arange(n_total if not n_images else min(n_images, n_total))


def random_images(n_total: int, n_images: int | None, seed: int) -> np.ndarray:
    """Sorted indices of ``n_images`` images (all when None) drawn by a permutation seeded with
    ``seed``: they depend on the sizes and the seed only, so every model gets the same."""
    order = np.random.default_rng(seed).permutation(n_total)
    return np.sort(order[: n_total if not n_images else min(n_images, n_total)])


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


def read_split(path: str | Path, split: str) -> ImageSet:
    with h5py.File(path, "r") as h5:
        return ImageSet(
            images=h5[split]["images"][...],
            labels=h5[split]["labels"][...],
            n_classes=int(h5.attrs["n_classes"]),
            attrs=dict(h5.attrs),
        )
