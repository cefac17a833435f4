"""Common corruptions (simreg.data.corruptions, simreg.data.corrupted): each generated
corruption keeps shape and dtype, grows with severity and is fixed by its seed; the CIFAR
constants; the official files' layout and their gray conversion; the evaluation and the
figures built on them."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from simreg.data import corruptions as C
from simreg.data.corrupted import build_corruptions, load_official, read_corruptions
from simreg.data.sources import DatasetUnavailable, Splits
from simreg.data.store import to_gray, write_dataset

RANDOM = {
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "glass_blur",
    "motion_blur",
    "snow",
    "frost",
    "fog",
    "elastic_transform",
}


@pytest.fixture(scope="module")
def photo_tiles():
    """16 natural 32x32 RGB images: tiles of scikit-learn's two embedded photographs."""
    from sklearn.datasets import load_sample_images

    tiles = [
        p[:384, :608].reshape(12, 32, 19, 32, 3).transpose(0, 2, 1, 3, 4).reshape(-1, 32, 32, 3)
        for p in load_sample_images().images
    ]
    return np.ascontiguousarray(np.concatenate(tiles)[::29][:16])


def distortion(images, corruption, severity, seed=0):
    out = C.corrupt(images, corruption, severity, np.random.default_rng(seed))
    return np.abs(out.astype(np.float64) - images).mean()


@pytest.mark.parametrize("corruption", C.CORRUPTIONS)
@pytest.mark.parametrize("shape", [(3, 32, 32, 3), (3, 8, 8, 1), (2, 13, 9, 1)])
def test_shape_and_dtype_are_kept(corruption, shape):
    images = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    for severity in C.SEVERITIES:
        out = C.corrupt(images, corruption, severity, np.random.default_rng(0))
        assert out.shape == images.shape and out.dtype == np.uint8


# Corruptions whose CIFAR constants do not make the mean pixel change monotone: glass blur
# (severity 3 blurs more than 4), frost (the image weight falls as the frost weight rises),
# elastic (the affine jitter shrinks while the local displacement grows).
NOT_MONOTONE = {"glass_blur", "frost", "elastic_transform"}


@pytest.mark.parametrize("corruption", C.CORRUPTIONS)
def test_distortion_grows_with_severity(corruption, photo_tiles):
    d = [distortion(photo_tiles, corruption, s) for s in C.SEVERITIES]
    assert d[0] > 0.5, d  # every severity changes natural images
    if corruption == "elastic_transform":
        return  # below: its local displacement
    assert d[-1] > d[0], d
    if corruption not in NOT_MONOTONE:
        # never smaller; equal is possible: motion blur's severities 3 and 4, (6, 2) and
        # (8, 2), differ only in taps of weight exp(-36/8 ... ) < 1e-8
        assert all(b >= a for a, b in zip(d, d[1:])), d


def test_elastic_local_displacement_grows_with_severity():
    """On a linear ramp the affine part leaves a ramp (zero second difference inside); only
    the random displacement field bends it, and its strength grows with severity."""
    ramp = np.tile(np.linspace(40, 215, 32), (32, 1))
    images = np.repeat(np.rint(ramp)[None, :, :, None], 8, axis=0).astype(np.uint8)
    curvature = []
    for severity in C.SEVERITIES:
        out = C.corrupt(images, "elastic_transform", severity, np.random.default_rng(0))
        inner = out[:, 6:-6, 6:-6, 0].astype(np.float64)
        curvature.append(np.abs(np.diff(inner, 2, axis=2)).mean())
    # severity 1 is affine only: a ramp stays a ramp, up to rounding to uint8; severity 2's
    # field is blurred by σ = 6.4 px, too smooth to show. From 3 on, α/σ = 1.3, 2.5, 3.3.
    assert curvature[0] < 1.0
    assert curvature[2] < curvature[3] < curvature[4], curvature
    assert curvature[4] > 2 * curvature[0], curvature


@pytest.mark.parametrize("corruption", C.CORRUPTIONS)
def test_output_is_fixed_by_the_seed(corruption, photo_tiles):
    images = photo_tiles[:4]
    first = C.corrupt(images, corruption, 3, np.random.default_rng(7))
    again = C.corrupt(images, corruption, 3, np.random.default_rng(7))
    other = C.corrupt(images, corruption, 3, np.random.default_rng(8))
    assert np.array_equal(first, again)
    assert (not np.array_equal(first, other)) == (corruption in RANDOM)


def test_gaussian_noise_has_cifar_sigma():
    """CIFAR-10-C's σ: 0.04 at severity 1, 0.10 at severity 5 on [0, 1] images (ImageNet-C's
    would be 0.08 and 0.38)."""
    images = np.full((64, 32, 32, 3), 128, dtype=np.uint8)
    for severity, sigma in ((1, 0.04), (5, 0.10)):
        out = C.corrupt(images, "gaussian_noise", severity, np.random.default_rng(0))
        noise = (out.astype(np.float64) - images) / 255.0
        assert noise.std() == pytest.approx(sigma, abs=0.002)
    assert C.CONSTANTS["gaussian_noise"] == [0.04, 0.06, 0.08, 0.09, 0.10]


def test_clipped_zoom_equals_scipy_zoom():
    """Zoom blur's interpolation matrices compute scipy.ndimage.zoom(order=1), cropped."""
    import math

    from scipy import ndimage

    x = np.random.default_rng(0).random((2, 13, 9, 3)).astype(np.float32)
    for factor in (1.01, 1.06, 1.25, 1.75):
        h, w = x.shape[1:3]
        ch, cw = math.ceil(h / factor), math.ceil(w / factor)
        top, left = (h - ch) // 2, (w - cw) // 2
        zoomed = ndimage.zoom(
            x[:, top : top + ch, left : left + cw], (1, factor, factor, 1), order=1
        )
        trim_top, trim_left = (zoomed.shape[1] - h) // 2, (zoomed.shape[2] - w) // 2
        expected = zoomed[:, trim_top : trim_top + h, trim_left : trim_left + w]
        np.testing.assert_allclose(C._clipped_zoom(x, factor), expected, atol=1e-5)


def test_generation_is_chunked_by_position_not_by_count():
    from simreg.data.corrupted import CHUNK, generate

    images = np.random.default_rng(0).integers(0, 256, (CHUNK + 5, 8, 8, 1), dtype=np.uint8)
    full = generate(images, "gaussian_noise", seed=3)
    head = generate(images[:10], "gaussian_noise", seed=3)
    assert full.shape == (5, CHUNK + 5, 8, 8, 1)
    assert np.array_equal(full[:, :10], head)


# ---- the official files -----------------------------------------------------------------
def fake_cifar(tmp_path, n=6, corruptions=C.CORRUPTIONS):
    """A CIFAR-10 dataset file (rgb and gray) and a fake CIFAR-10-C folder in the official
    layout: <corruption>.npy uint8 (5n, 32, 32, 3), labels.npy (5n,)."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, n)
    test = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    splits = Splits(test, labels, test, labels, attrs={"source": "fake"})
    files = {}
    for color in ("rgb", "gray"):
        files[color] = tmp_path / f"cifar10_{color}.h5"
        write_dataset(splits, color, files[color], dataset="cifar10", n_classes=10)
    folder = tmp_path / "data" / "CIFAR-10-C"
    folder.mkdir(parents=True)
    np.save(folder / "labels.npy", np.tile(labels, 5).astype(np.uint8))
    official = {}
    for corruption in corruptions:
        official[corruption] = rng.integers(0, 256, (5 * n, 32, 32, 3), dtype=np.uint8)
        np.save(folder / f"{corruption}.npy", official[corruption])
    return files, folder, official, labels


def test_official_layout_is_loaded_into_both_colors(tmp_path):
    files, folder, official, labels = fake_cifar(tmp_path)
    n = len(labels)
    for color in ("rgb", "gray"):
        out = tmp_path / f"cifar10_{color}_c.h5"
        origin = build_corruptions(
            files[color],
            files["rgb"],
            out,
            dataset="cifar10",
            color=color,
            source="official",
            directory=tmp_path / "data",
            verify=False,
        )
        assert origin == "official"
        data = read_corruptions(out)
        assert data.attrs["origin"] == "official" and "2535967" in data.attrs["source"]
        md5s = json.loads(data.attrs["source_checksums"])["md5"]
        assert set(md5s) == {"labels", *C.CORRUPTIONS}
        assert json.loads(data.attrs["constants"])["constants"]["gaussian_noise"][-1] == 0.1
        np.testing.assert_array_equal(data.labels, labels)
        for corruption in ("gaussian_noise", "zoom_blur"):
            stored = data.images(corruption)
            assert stored.shape == (5, n, 32, 32, 3 if color == "rgb" else 1)
            blocks = official[corruption].reshape(5, n, 32, 32, 3)  # severity s: block s-1
            if color == "rgb":
                np.testing.assert_array_equal(stored, blocks)
            else:  # the training conversion, which is PIL's convert("L")
                np.testing.assert_array_equal(
                    stored, to_gray(blocks.reshape(-1, 32, 32, 3)).reshape(stored.shape)
                )
                pil = np.stack([np.asarray(Image.fromarray(im).convert("L")) for im in blocks[3]])
                np.testing.assert_array_equal(stored[3, ..., 0], pil)


def test_official_folder_is_checked(tmp_path):
    files, folder, official, labels = fake_cifar(tmp_path, corruptions=("gaussian_noise",))
    with pytest.raises(ValueError, match="gaussian_noise.npy: MD5"):
        load_official(folder, ("gaussian_noise",), checksums={"gaussian_noise": "0" * 32})
    with pytest.raises(DatasetUnavailable, match="shot_noise.npy"):
        load_official(folder, ("gaussian_noise", "shot_noise"))
    with pytest.raises(DatasetUnavailable, match="CIFAR-10-C"):
        build_corruptions(
            files["rgb"],
            files["rgb"],
            tmp_path / "x.h5",
            dataset="cifar10",
            color="rgb",
            source="official",
            directory=tmp_path / "nowhere",
        )
    np.save(folder / "labels.npy", np.tile((labels + 1) % 10, 5).astype(np.uint8))
    images, _, _ = load_official(folder, ("gaussian_noise",))
    assert images["gaussian_noise"].shape == (5, len(labels), 32, 32, 3)


def test_generated_set_records_its_provenance_and_colors_agree(tmp_path):
    """Generated from the RGB source, then converted: the gray file is the training gray
    conversion of the rgb file, corruption by corruption."""
    files, *_ = fake_cifar(tmp_path, corruptions=())
    out = {}
    for color in ("rgb", "gray"):
        out[color] = tmp_path / f"cifar10_{color}_c.h5"
        origin = build_corruptions(
            files[color],
            files["rgb"],
            out[color],
            dataset="cifar10",
            color=color,
            source="auto",
            directory=tmp_path / "none",
            download=False,
            seed=3,
            n_images=4,
        )
        assert origin == "generated"
    rgb, gray = read_corruptions(out["rgb"]), read_corruptions(out["gray"])
    assert rgb.attrs["origin"] == "generated" and int(rgb.attrs["seed"]) == 3
    assert "make_cifar_c.py" in rgb.attrs["source"] and "sha256" in rgb.attrs["source_checksums"]
    assert "generated texture" in rgb.attrs["frost"]
    assert rgb.corruptions() == list(C.CORRUPTIONS)
    for corruption in C.CORRUPTIONS:
        a, b = rgb.images(corruption), gray.images(corruption)
        assert a.shape == (5, 4, 32, 32, 3) and b.shape == (5, 4, 32, 32, 1)
        np.testing.assert_array_equal(b, to_gray(a.reshape(-1, 32, 32, 3)).reshape(b.shape))
    with h5py.File(out["gray"]) as h5:
        assert json.loads(h5["corruptions/gaussian_noise"].attrs["constants"])[-1] == 0.1
        assert h5["corruptions/fog"].attrs["frequency_group"] == "low"


def test_grayscale_source_is_corrupted_in_gray(tmp_path):
    """A gray source (stored replicated in its rgb file) is corrupted on one channel."""
    from simreg.data.store import build_dataset

    for color in ("gray", "rgb"):
        build_dataset("digits", color, tmp_path / f"digits_{color}.h5")
    build_corruptions(
        tmp_path / "digits_gray.h5",
        tmp_path / "digits_rgb.h5",
        tmp_path / "gray_c.h5",
        dataset="digits",
        color="gray",
        n_images=5,
    )
    build_corruptions(
        tmp_path / "digits_rgb.h5",
        tmp_path / "digits_rgb.h5",
        tmp_path / "rgb_c.h5",
        dataset="digits",
        color="rgb",
        n_images=5,
    )
    gray, rgb = read_corruptions(tmp_path / "gray_c.h5"), read_corruptions(tmp_path / "rgb_c.h5")
    noise = rgb.images("gaussian_noise")
    assert (noise == noise[..., :1]).all()  # the same noise on the three channels
    np.testing.assert_array_equal(gray.images("gaussian_noise"), noise[..., :1])


# ---- evaluation and figures -------------------------------------------------------------
def test_corruption_accuracy_evaluation(saved_model, tmp_path):
    import torch

    from simreg.data.store import build_dataset, read_split
    from simreg.evaluate.context import run_evaluation
    from simreg.models.inference import load_model, loss_and_accuracy

    model_file, dataset = saved_model
    build_dataset("digits", "rgb", tmp_path / "digits_rgb.h5")
    corrupted = tmp_path / "digits_gray_c.h5"
    build_corruptions(
        dataset, tmp_path / "digits_rgb.h5", corrupted, dataset="digits", color="gray", n_images=60
    )
    out = tmp_path / "acc.csv"
    run_evaluation(
        "corruption_accuracy",
        {"model": model_file, "dataset": dataset, "corruptions": corrupted},
        {"csv": out},
        {"n_images": 50, "batch_size": 64},
        device="cpu",
    )
    table = pd.read_csv(out)
    assert len(table) == 1 + 15 * 5 and (table["n_images"] == 50).all()
    assert set(table["frequency_group"]) == {"none", "low", "medium", "high"}
    model, _ = load_model(model_file)
    test = read_split(dataset, "test")
    data = read_corruptions(corrupted)
    for corruption, severity, images in (
        ("none", 0, test.images[:50]),
        ("fog", 2, data.images("fog", 2)[:50]),
    ):
        _, expected = loss_and_accuracy(
            model, torch.from_numpy(images), torch.from_numpy(test.labels[:50])
        )
        row = table[(table["corruption"] == corruption) & (table["severity"] == severity)]
        assert row["accuracy"].item() == pytest.approx(expected)


def accuracy_table(accuracies: dict, seeds=(0, 1)) -> pd.DataFrame:
    """A corruption_accuracy table: ``accuracies[method](corruption, severity, seed)``."""
    rows = []
    for method, accuracy in accuracies.items():
        for seed in seeds:
            keys = {
                "task": "t_gray",
                "regularization": "none" if method == "none" else "t_gray_n9",
                "method": method,
                "alpha": 0 if method == "none" else 10,
                "threshold": "na" if method == "none" else 0.5,
                "reg_pairs": 16,
                "seed": seed,
            }
            rows.append(
                {
                    **keys,
                    "corruption": "none",
                    "severity": 0,
                    "frequency_group": "none",
                    "accuracy": accuracy("none", 0, seed),
                }
            )
            for corruption in C.CORRUPTIONS:
                for severity in C.SEVERITIES:
                    rows.append(
                        {
                            **keys,
                            "corruption": corruption,
                            "severity": severity,
                            "frequency_group": C.GROUP_OF[corruption],
                            "accuracy": accuracy(corruption, severity, seed),
                        }
                    )
    return pd.DataFrame(rows)


def test_frequency_groups_average_their_corruptions(tmp_path):
    from simreg.report.corruption_figures import plot_corruption_frequency, plot_corruption_severity

    index = {c: i for i, c in enumerate(C.CORRUPTIONS)}
    table = accuracy_table(
        {
            "none": lambda c, s, seed: 0.9 - 0.1 * s if c != "none" else 0.95,
            "threshold": lambda c, s, seed: 0.01 * index.get(c, 0) + 0.1 * seed,
        }
    )
    plot_corruption_frequency(table, tmp_path / "f.pdf", "t", severity=4)
    drawn = pd.read_csv(tmp_path / "f.data.csv")
    high = drawn[(drawn["frequency_group"] == "high") & (drawn["label"] != "none")]
    # gaussian, shot, impulse noise are corruptions 0, 1, 2: mean 0.01; seeds add 0 and 0.1
    assert high["mean"].item() == pytest.approx(0.01 + 0.05)
    low = np.mean([0.01 * index[c] for c in C.FREQUENCY_GROUPS["low"]]) + 0.05
    assert drawn[(drawn["frequency_group"] == "low") & (drawn["label"] != "none")][
        "mean"
    ].item() == pytest.approx(low)
    plot_corruption_severity(table, tmp_path / "s.pdf", "t")
    drawn = pd.read_csv(tmp_path / "s.data.csv")
    none = drawn[drawn["label"] == "none"].set_index("severity")["mean"]
    assert none[0] == pytest.approx(0.95) and none[3] == pytest.approx(0.6)
    assert (tmp_path / "s.png").stat().st_size > 0


def test_robustbench_comparison_picks_our_most_robust_model(tmp_path):
    from simreg.report.corruption_figures import plot_robustbench_comparison

    ours = accuracy_table(
        {"none": lambda c, s, seed: 0.3, "threshold": lambda c, s, seed: 0.4 + 0.1 * seed},
        seeds=(0, 1, 2),
    )
    robust = accuracy_table({"none": lambda c, s, seed: 0.7}, seeds=(0,)).assign(
        model="Standard", threat_model="corruptions"
    )
    plot_robustbench_comparison(ours, robust, tmp_path / "r.pdf", "t", severity=5)
    drawn = pd.read_csv(tmp_path / "r.data.csv")
    means = drawn[drawn["corruption"] == "mean"].set_index("label")["mean"]
    best = [label for label in means.index if "most robust" in label]
    assert best == ["ours: threshold α=10 Th=0.5 (seed 2, most robust)"]
    assert means[best[0]] == pytest.approx(0.6)
    assert means["RobustBench Standard (corruptions)"] == pytest.approx(0.7)
    assert means["ours: none (seed 2)"] == pytest.approx(0.3)
    assert set(drawn["corruption"]) == {*C.CORRUPTIONS, "mean"}
