"""Where images come from: torchvision downloads (with checksums), scikit-learn's embedded
digits and photographs, a user's NPZ, an ImageNet folder, and Imagenette (ImageNet images
of 10 classes, downloaded by torchvision with its MD5) processed like the ImageNet folder. Each loader returns the images in
their native color mode as :class:`Splits`; :mod:`simreg.data.store` converts and stores them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

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
    ``train_images``/``train_labels``/``test_images``/``test_labels`` already split.

    Images are uint8, (N, H, W) or (N, H, W, C) with C 1 or 3; labels are integers
    0..C-1, one per image (the class count is their maximum + 1). Anything else is refused
    with a message naming the file and the key.
    """
    path = Path(path)
    if not path.exists():
        raise DatasetUnavailable(f"NPZ file {path.resolve()} does not exist.")
    import zipfile

    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(f"{path} is not a readable NPZ file ({error})") from None
    if not hasattr(npz, "files"):
        raise ValueError(f"{path} is a single .npy array, not an NPZ archive of named arrays")
    with npz:
        keys = set(npz.files)

        def read(key):
            try:
                return np.asarray(npz[key])
            except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as error:
                raise ValueError(f"{path}: cannot read {key!r} ({error}); the file is damaged "
                                 "or truncated") from None

        def images_of(key):
            array = read(key)
            if array.dtype != np.uint8:
                raise ValueError(f"{path}: {key} must be uint8, got {array.dtype}")
            if array.ndim == 3:
                array = array[..., None]
            if array.ndim != 4 or array.shape[-1] not in (1, 3):
                raise ValueError(f"{path}: {key} must be (N, H, W) or (N, H, W, C) with C 1 or "
                                 f"3, got shape {array.shape}")
            return array

        def labels_of(key, n_images):
            array = read(key)
            if not np.issubdtype(array.dtype, np.integer):
                raise ValueError(f"{path}: {key} must be integers 0..C-1, got {array.dtype}")
            if array.ndim != 1 or len(array) != n_images:
                raise ValueError(f"{path}: {key} has shape {array.shape}; it needs one label per "
                                 f"image ({n_images})")
            if len(array) and array.min() < 0:
                raise ValueError(f"{path}: {key} has negative labels; use 0..C-1")
            return array.astype(np.int64)

        if {"train_images", "train_labels", "test_images", "test_labels"} <= keys:
            train, test = images_of("train_images"), images_of("test_images")
            if train.shape[1:] != test.shape[1:]:
                raise ValueError(f"{path}: train_images {train.shape[1:]} and test_images "
                                 f"{test.shape[1:]} differ in image shape")
            splits = Splits(train, labels_of("train_labels", len(train)),
                            test, labels_of("test_labels", len(test)),
                            attrs={"split": "as stored in the NPZ"})
        elif {"images", "labels"} <= keys:
            images = images_of("images")
            splits = Splits(
                *_split(images, labels_of("labels", len(images)), test_fraction, seed),
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


# Imagenette: the full-size archive, so that the centre 144x256 crop sees the same field of
# view as on ImageNet's own images (the 320px/160px archives are rescaled).
IMAGENETTE_SIZE = "full"


def load_imagenette(data_root: str | Path, download: bool) -> Splits:
    """Regularization images that need no login: the training split of torchvision's
    Imagenette (9469 ImageNet images of 10 classes, archive checked against its MD5), cropped
    and downsampled exactly as :func:`load_imagenet_folder` does with ImageNet."""
    from torchvision.datasets import Imagenette

    root = Path(data_root)
    try:
        dataset = Imagenette(str(root), split="train", size=IMAGENETTE_SIZE, download=download)
    except (RuntimeError, OSError) as error:  # not found, or download failed
        raise DatasetUnavailable(
            f"Imagenette is not under {root.resolve()} and could not be downloaded ({error}). "
            f"Put the extracted archive there ({root / 'imagenette2' / 'train'}), or run on a "
            "machine with internet and `data.download: true`."
        ) from error
    splits = load_imagenet_folder(dataset._image_root)
    url, md5 = Imagenette._ARCHIVES[IMAGENETTE_SIZE]
    splits.attrs.update({"source": f"torchvision.datasets.Imagenette ({IMAGENETTE_SIZE}), "
                                   f"train split: {Path(dataset._image_root).resolve()}",
                         "source_md5": {"url": url, "md5": md5}})
    return splits


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


# Dataset names with a source of their own; an NPZ (data.npz) may not reuse them.
BUILTIN_DATASETS = (*TORCHVISION_SOURCES, "digits", "photos", "imagenet", "imagenette")


def load_source(name: str, *, data_root="data", download=True, npz=None, imagenet_dir=None,
                test_fraction=0.2, split_seed=0) -> Splits:
    """Load dataset ``name`` in its native color mode."""
    npz = npz or {}
    clash = sorted(set(npz) & set(BUILTIN_DATASETS))
    if clash:
        raise ValueError(f"data.npz names {clash} are built-in datasets; give your NPZ another "
                         "name (lowercase letters and digits)")
    if name in TORCHVISION_SOURCES:
        return load_torchvision(name, data_root, download)
    if name == "digits":
        return load_digits(test_fraction, split_seed)
    if name == "photos":
        return load_photos(test_fraction, split_seed)
    if name == "imagenet":
        return load_imagenet_folder(imagenet_dir)
    if name == "imagenette":
        return load_imagenette(data_root, download)
    if name in npz:
        return load_npz(npz[name], test_fraction, split_seed)
    known = sorted([*BUILTIN_DATASETS, *npz])
    raise ValueError(f"unknown dataset {name!r}; known: {known} (add NPZ files under data.npz)")
