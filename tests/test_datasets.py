"""Dataset sources, gray conversion and the dataset HDF5 file."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from PIL import Image

import simreg
from simreg.data.sources import DatasetUnavailable, load_npz, load_source, load_torchvision
from simreg.data.store import build_dataset, read_split, to_gray


def test_to_gray_equals_pil():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(20, 9, 7, 3), dtype=np.uint8)
    images[0] = 0
    images[1] = 255
    images[2, ..., 0] = 255  # pure colours
    images[3, ..., 1] = 255
    images[4, ..., 2] = 255
    gray = to_gray(images)
    assert gray.dtype == np.uint8 and gray.shape == (20, 9, 7, 1)
    for rgb, g in zip(images, gray):
        np.testing.assert_array_equal(g[..., 0], np.asarray(Image.fromarray(rgb).convert("L")))


def test_to_gray_all_colours_of_a_grid():
    """Every (R, G, B) on a coarse grid, against PIL."""
    levels = np.arange(0, 256, 5, dtype=np.uint8)
    r, g, b = np.meshgrid(levels, levels, levels, indexing="ij")
    rgb = np.stack([r, g, b], axis=-1).reshape(1, len(levels) ** 2, len(levels), 3)
    np.testing.assert_array_equal(
        to_gray(rgb)[0, ..., 0], np.asarray(Image.fromarray(rgb[0]).convert("L"))
    )


def test_to_gray_keeps_gray():
    gray = np.random.default_rng(1).integers(0, 256, size=(3, 4, 4, 1), dtype=np.uint8)
    np.testing.assert_array_equal(to_gray(gray), gray)


# ---- NPZ sources ------------------------------------------------------------------------


def test_load_npz_images_labels(tmp_path):
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, size=(50, 5, 5), dtype=np.uint8)  # no channel axis
    labels = np.arange(50) % 4
    path = tmp_path / "set.npz"
    np.savez(path, images=images, labels=labels)
    splits = load_npz(path, test_fraction=0.2, seed=0)
    assert splits.train_images.shape == (40, 5, 5, 1)
    assert splits.test_images.shape == (10, 5, 5, 1)
    assert splits.train_labels.dtype == np.int64
    # a split of the whole set: every image exactly once, with its own label
    all_images = np.concatenate([splits.train_images, splits.test_images])[..., 0]
    all_labels = np.concatenate([splits.train_labels, splits.test_labels])
    where = [np.flatnonzero((images == im).all(axis=(1, 2))) for im in all_images]
    assert all(len(k) == 1 for k in where)  # random 5x5 images are distinct
    where = np.array([k[0] for k in where])
    np.testing.assert_array_equal(np.sort(where), np.arange(50))
    np.testing.assert_array_equal(labels[where], all_labels)
    assert splits.attrs["source"].startswith("npz:")
    assert len(splits.attrs["source_sha256"]) == 64


def test_load_npz_presplit(tmp_path):
    rng = np.random.default_rng(3)
    arrays = {
        "train_images": rng.integers(0, 256, size=(8, 4, 4, 3), dtype=np.uint8),
        "train_labels": np.arange(8),
        "test_images": rng.integers(0, 256, size=(3, 4, 4, 3), dtype=np.uint8),
        "test_labels": np.arange(3),
    }
    path = tmp_path / "split.npz"
    np.savez(path, **arrays)
    splits = load_npz(path)
    np.testing.assert_array_equal(splits.train_images, arrays["train_images"])
    np.testing.assert_array_equal(splits.test_images, arrays["test_images"])
    np.testing.assert_array_equal(splits.train_labels, arrays["train_labels"])
    np.testing.assert_array_equal(splits.test_labels, arrays["test_labels"])


def test_load_npz_rejects_other_keys(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, x=np.zeros((2, 3, 3), np.uint8), y=np.zeros(2))
    with pytest.raises(ValueError) as info:
        load_npz(path)
    message = str(info.value)
    for key in ("images", "labels", "train_images", "train_labels", "test_images", "test_labels"):
        assert f"'{key}'" in message


def test_load_npz_rejects_non_uint8(tmp_path):
    path = tmp_path / "float.npz"
    np.savez(path, images=np.zeros((4, 3, 3), np.float32), labels=np.zeros(4))
    with pytest.raises(ValueError, match="uint8"):
        load_npz(path)


def test_load_npz_missing_file(tmp_path):
    with pytest.raises(DatasetUnavailable):
        load_npz(tmp_path / "nothing.npz")


def test_load_source_unknown_name():
    with pytest.raises(ValueError) as info:
        load_source("no-such-set", npz={"mine": "mine.npz"})
    message = str(info.value)
    assert "no-such-set" in message
    for name in ("cifar10", "cifar100", "mnist", "fashionmnist", "digits", "imagenet", "mine"):
        assert f"'{name}'" in message


def test_load_torchvision_unavailable_names_root(tmp_path):
    root = tmp_path / "data root"
    with pytest.raises(DatasetUnavailable) as info:
        load_torchvision("cifar10", root, download=False)
    assert str(root.resolve()) in str(info.value)


# ---- build_dataset ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("digits")
    build_dataset("digits", "gray", folder / "gray.h5")
    build_dataset("digits", "rgb", folder / "rgb.h5")
    return folder / "gray.h5", folder / "rgb.h5"


def test_build_dataset_digits_gray(digits_files):
    gray, _ = digits_files
    with h5py.File(gray, "r") as h5:
        attrs = dict(h5.attrs)
        for part in ("train", "test"):
            images = h5[part]["images"]
            assert images.dtype == np.uint8
            assert images.ndim == 4 and images.shape[1:] == (8, 8, 1)
            assert h5[part]["labels"].shape == (images.shape[0],)
        n_total = h5["train/images"].shape[0] + h5["test/images"].shape[0]
    assert n_total == 1797
    for key in ("source", "color", "conversion", "simreg_version"):
        assert key in attrs
    assert attrs["color"] == "gray"
    assert attrs["simreg_version"] == simreg.__version__
    assert "digits" in attrs["source"]
    assert attrs["n_classes"] == 10
    train = read_split(gray, "train")
    assert train.images.max() == 255 and train.images.min() == 0


def test_build_dataset_digits_rgb(digits_files):
    gray, rgb = digits_files
    g, c = read_split(gray, "train"), read_split(rgb, "train")
    assert c.images.dtype == np.uint8 and c.images.shape[-1] == 3
    np.testing.assert_array_equal(c.images[..., 0], c.images[..., 1])
    np.testing.assert_array_equal(c.images[..., 0], c.images[..., 2])
    np.testing.assert_array_equal(c.images[..., :1], g.images)
    np.testing.assert_array_equal(c.labels, g.labels)
    assert c.attrs["color"] == "rgb"
    assert c.attrs["conversion"] != g.attrs["conversion"]


def test_photos_are_exact_tiles_of_the_embedded_photographs():
    from sklearn.datasets import load_sample_images

    from simreg.data.sources import PHOTO_TILE, load_photos

    splits = load_photos(test_fraction=0.2, seed=0)
    tiles = np.concatenate([splits.train_images, splits.test_images])
    labels = np.concatenate([splits.train_labels, splits.test_labels])
    photos = load_sample_images().images
    counts = [(p.shape[0] // PHOTO_TILE) * (p.shape[1] // PHOTO_TILE) for p in photos]
    assert len(tiles) == sum(counts) and np.bincount(labels).tolist() == counts
    # every tile is one 16x16 block of its photograph, and every block appears once
    for label, photo in enumerate(photos):
        blocks = {
            photo[r : r + PHOTO_TILE, c : c + PHOTO_TILE].tobytes()
            for r in range(0, photo.shape[0] - PHOTO_TILE + 1, PHOTO_TILE)
            for c in range(0, photo.shape[1] - PHOTO_TILE + 1, PHOTO_TILE)
        }
        assert {t.tobytes() for t in tiles[labels == label]} == blocks


def _fake_imagenette(root):
    """The layout torchvision's Imagenette extracts: imagenette2/train/<wnid>/*.JPEG."""
    from PIL import Image

    rng = np.random.default_rng(0)
    train = root / "imagenette2" / "train"
    for _c, wnid in enumerate(["n01440764", "n02102040"]):
        (train / wnid).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(rng.integers(0, 256, (300 + 40 * i, 420, 3), dtype=np.uint8)).save(
                train / wnid / f"img{i}.JPEG", quality=95
            )
    # a 375x500 image: white in its centre 144x256, black around it (PNG data, exact)
    centre = np.zeros((375, 500, 3), dtype=np.uint8)
    top, left = (375 - 144) // 2, (500 - 256) // 2
    centre[top : top + 144, left : left + 256] = 255
    Image.fromarray(centre).save(train / "n02102040" / "centre.png")
    return train


def test_imagenette_is_processed_exactly_like_the_imagenet_folder(tmp_path):
    """Issue #10: Imagenette (real ImageNet images, downloadable) goes through the same crop
    and downsampling as an ImageNet tree: centre 144x256, box-downsampled to 36x64."""
    from simreg.data.sources import load_imagenet_folder, load_imagenette, load_source

    train = _fake_imagenette(tmp_path)
    splits = load_imagenette(tmp_path, download=False)
    reference = load_imagenet_folder(train)
    np.testing.assert_array_equal(splits.train_images, reference.train_images)
    np.testing.assert_array_equal(splits.train_labels, reference.train_labels)
    assert splits.train_images.shape == (5, 36, 64, 3)
    centre = splits.train_images[2]  # ImageFolder order: class 0 (2 images), then centre.png
    assert (centre == 255).all()  # the centre crop, and only it
    assert "Imagenette" in splits.attrs["source"] and len(splits.attrs["source_md5"]["md5"]) == 32
    same = load_source("imagenette", data_root=tmp_path, download=False)
    np.testing.assert_array_equal(same.train_images, splits.train_images)


def test_imagenette_missing_names_its_folder(tmp_path):
    from simreg.data.sources import DatasetUnavailable, load_imagenette

    with pytest.raises(DatasetUnavailable, match="imagenette2"):
        load_imagenette(tmp_path, download=False)
