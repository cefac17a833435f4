"""Pixel similarity S_pixel (paper §4, App. 7.1) and its HDF5 file."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

import simreg
from simreg.targets import pixel_similarity as similarity
from simreg.data.sources import Splits
from simreg.data.store import write_dataset
from simreg.targets.pixel_similarity import (
    build_similarity,
    choose_images,
    pixel_similarity,
    read_similarity,
)

torch.set_num_threads(2)


def numpy_similarity(images: np.ndarray) -> np.ndarray:
    """Independent reference: flatten, centre by the per-pixel mean, normalize rows, dot."""
    x = images.reshape(len(images), -1).astype(np.float64)
    x = x - x.mean(axis=0, keepdims=True)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    return x @ x.T


def random_images(n=24, shape=(6, 5, 3), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)


# ---- pixel_similarity ------------------------------------------------------------------


def test_image_with_itself_gives_one():
    s = pixel_similarity(random_images())
    np.testing.assert_allclose(np.diag(s), 1.0, atol=1e-6)


def test_matches_independent_numpy_computation():
    images = random_images(n=30, shape=(7, 7, 1), seed=1)
    s = pixel_similarity(images)
    assert s.shape == (30, 30)
    np.testing.assert_allclose(s, numpy_similarity(images), atol=1e-5)


def test_per_pixel_mean_is_subtracted():
    """Adding the same image to every image of the set leaves S unchanged."""
    rng = np.random.default_rng(2)
    images = rng.uniform(0, 255, size=(20, 6, 6, 1))
    offset = rng.uniform(0, 1000, size=(1, 6, 6, 1))
    np.testing.assert_allclose(
        pixel_similarity(images + offset), pixel_similarity(images), atol=1e-6
    )
    # Without centring the offset would dominate: the raw cosine similarity is nearly 1.
    raw = images.reshape(20, -1) + offset.reshape(1, -1)
    raw = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    assert np.abs(pixel_similarity(images) - raw @ raw.T).max() > 0.1


def test_symmetric_and_bounded():
    s = pixel_similarity(random_images(n=40, seed=3))
    np.testing.assert_allclose(s, s.T, atol=1e-6)
    assert s.min() >= -1.0 and s.max() <= 1.0
    # centred random images are not all alike: there are negative similarities
    assert s.min() < 0


def test_block_size_does_not_change_result():
    images = random_images(n=25, seed=4)
    np.testing.assert_allclose(
        pixel_similarity(images, block_size=3), pixel_similarity(images, block_size=1000), atol=1e-6
    )


# ---- choose_images ----------------------------------------------------------------------


def test_choose_images_reproducible_and_without_duplicates():
    a = choose_images(1000, 200, seed=7)
    b = choose_images(1000, 200, seed=7)
    np.testing.assert_array_equal(a, b)
    assert len(np.unique(a)) == 200
    assert a.min() >= 0 and a.max() < 1000
    assert not np.array_equal(a, choose_images(1000, 200, seed=8))
    # all of them: a permutation of everything
    np.testing.assert_array_equal(np.sort(choose_images(50, 50, seed=1)), np.arange(50))


def test_choose_images_too_many_raises():
    with pytest.raises(ValueError):
        choose_images(10, 11, seed=0)


# ---- build_similarity -------------------------------------------------------------------


@pytest.fixture(scope="module")
def dataset_file(tmp_path_factory):
    rng = np.random.default_rng(5)
    splits = Splits(
        train_images=rng.integers(0, 256, size=(60, 6, 6, 3), dtype=np.uint8),
        train_labels=rng.integers(0, 3, size=60).astype(np.int64),
        test_images=rng.integers(0, 256, size=(10, 6, 6, 3), dtype=np.uint8),
        test_labels=rng.integers(0, 3, size=10).astype(np.int64),
        attrs={"source": "random"},
    )
    path = tmp_path_factory.mktemp("data") / "random.h5"
    write_dataset(splits, "rgb", path, dataset="random", n_classes=3)
    return path, splits


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_build_similarity_file(tmp_path, dataset_file, dtype):
    path, splits = dataset_file
    out = tmp_path / "sim.h5"
    build_similarity(path, out, n_images=25, image_seed=3, dtype=dtype, block_size=7)
    expected_indices = choose_images(60, 25, 3)
    with h5py.File(out, "r") as h5:
        assert h5["pixel_similarity"].dtype == np.dtype(dtype)
        assert h5["pixel_similarity"].shape == (25, 25)
        np.testing.assert_array_equal(h5["indices"][...], expected_indices)
        attrs = dict(h5.attrs)
    assert attrs["n_images"] == 25
    assert attrs["image_seed"] == 3
    assert attrs["simreg_version"] == simreg.__version__
    indices, s, _ = read_similarity(out)
    np.testing.assert_array_equal(indices, expected_indices)
    reference = numpy_similarity(splits.train_images[expected_indices].mean(axis=-1))
    np.testing.assert_allclose(s, reference, atol=1e-3)


def test_interrupted_build_leaves_no_file(tmp_path, dataset_file, monkeypatch):
    path, _ = dataset_file
    real_blocks = similarity.pixel_similarity_blocks

    def failing_blocks(*args, **kwargs):
        blocks = real_blocks(*args, **kwargs)
        yield next(blocks)  # the first block is written, then the job dies
        raise KeyboardInterrupt("killed mid-way")

    monkeypatch.setattr(similarity, "pixel_similarity_blocks", failing_blocks)
    out = tmp_path / "sub" / "sim.h5"
    with pytest.raises(KeyboardInterrupt):
        build_similarity(path, out, n_images=20, image_seed=0, block_size=5)
    assert not out.exists()
    # and no temporary file is left behind either
    assert list(out.parent.iterdir()) == []


def test_color_similarity_is_that_of_the_channel_mean_images():
    """Issue #10: the authors' code averages RGB before flattening (Figs. 10, 23)."""
    rgb = np.random.default_rng(3).integers(0, 256, (20, 6, 6, 3)).astype(np.uint8)
    mean_images = rgb.astype(np.float64).mean(axis=-1, keepdims=True)
    np.testing.assert_allclose(pixel_similarity(rgb), pixel_similarity(mean_images), atol=1e-6)
    flat_all_channels = rgb.reshape(20, -1).astype(np.float64)
    flat_all_channels -= flat_all_channels.mean(0)
    flat_all_channels /= np.linalg.norm(flat_all_channels, axis=1, keepdims=True)
    assert not np.allclose(
        pixel_similarity(rgb), flat_all_channels @ flat_all_channels.T, atol=1e-3
    )
