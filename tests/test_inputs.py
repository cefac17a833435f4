"""Inputs that could corrupt results are refused, naming the file or the config key: a user's
NPZ, damaged dataset files, bad config values; outputs are readable by others as the umask
says; logs of earlier attempts are kept; the user's-data template plans only that data."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from simreg.config import ConfigError, load_config
from simreg.data.sources import load_npz
from simreg.data.store import DatasetCorrupt, build_dataset, read_split
from simreg.outputs import atomic_output

ROOT = Path(__file__).resolve().parents[1]


def npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


IMAGES = np.zeros((10, 4, 4), np.uint8)


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"images": IMAGES, "labels": np.arange(12)}, "one label per image"),
        ({"images": IMAGES, "labels": np.arange(10.0)}, "must be integers"),
        ({"images": IMAGES, "labels": np.arange(10) - 1}, "negative"),
        ({"images": np.zeros((10, 16), np.uint8), "labels": np.arange(10)}, r"\(N, H, W\)"),
        ({"images": IMAGES.astype(np.float32), "labels": np.arange(10)}, "uint8"),
    ],
)
def test_a_malformed_npz_is_refused_naming_file_and_key(tmp_path, arrays, message):
    path = npz(tmp_path / "mine.npz", **arrays)
    with pytest.raises(ValueError, match=message) as info:
        load_npz(path)
    assert "mine.npz" in str(info.value)


def test_a_truncated_or_foreign_npz_is_named(tmp_path):
    path = npz(tmp_path / "cut.npz", images=np.zeros((200, 8, 8), np.uint8), labels=np.arange(200))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut.npz"):
        load_npz(path)
    text = tmp_path / "notes.npz"
    text.write_text("not an archive")
    with pytest.raises(ValueError, match="notes.npz"):
        load_npz(text)


@pytest.fixture()
def dataset(tmp_path):
    path = tmp_path / "digits_gray.h5"
    build_dataset("digits", "gray", path)
    return path


def test_an_edited_dataset_fails_its_checksum(dataset):
    read_split(dataset, "test")  # intact: reads
    with h5py.File(dataset, "r+") as h5:
        h5["test/images"][0, 0, 0, 0] ^= 1
    with pytest.raises(DatasetCorrupt, match="checksum") as info:
        read_split(dataset, "test")
    assert str(dataset) in str(info.value) and "--forcerun" in str(info.value)


def test_a_truncated_dataset_names_the_file_and_the_cure(dataset):
    data = dataset.read_bytes()
    dataset.write_bytes(data[: len(data) // 3])
    with pytest.raises(DatasetCorrupt, match="rebuild") as info:
        read_split(dataset, "train")
    assert str(dataset) in str(info.value)


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_outputs_get_the_mode_the_umask_asks_for(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        with atomic_output(tmp_path / "out.csv") as tmp:
            tmp.write_text("x\n")
    finally:
        os.umask(old)
    assert (tmp_path / "out.csv").stat().st_mode & 0o777 == mode


def paper(**overrides):
    return load_config(ROOT / "config.yaml", overrides=overrides)


@pytest.mark.parametrize(
    "overrides, names",
    [
        ({"training": {"device": "gpu0"}}, ["training.device"]),
        ({"data": {"npz": {"mnist": "x.npz"}}}, ["data.npz", "mnist", "built-in"]),
        (
            {
                "figures": {
                    "noise_accuracy": {"task": "mydata_gray", "regularization": "mydata_gray"}
                }
            },
            ["unknown dataset", "mydata", "data.npz"],
        ),
    ],
)
def test_config_problems_name_the_key(overrides, names):
    with pytest.raises(ConfigError) as info:
        paper(**overrides)
    for name in names:
        assert name in str(info.value)


def test_every_rule_appends_to_its_log():
    for path in (ROOT / "workflow" / "rules").glob("*.smk"):
        text = path.read_text()
        assert not re.search(r"\s2>\s*\{log\}", text), f"{path.name} overwrites its log"


def dry_run(*args, cwd=ROOT):
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_own_data_template_plans_only_that_data(tmp_path):
    """A dry run of configs/own-data.yaml on a small NPZ plans jobs on `mydata` only; a
    missing NPZ is reported by name before any job runs (it is a rule input)."""
    images = np.random.default_rng(0).integers(0, 256, (60, 8, 8), dtype=np.uint8)
    data = npz(tmp_path / "mydata.npz", images=images, labels=np.arange(60) % 3)
    override = tmp_path / "where.yaml"
    override.write_text(f"data:\n  npz:\n    mydata: {data}\n")
    # in a folder of its own: the repository's results/ (e.g. of the README's quick run) hold
    # figures of the same names, which would leave nothing to plan
    workdir = tmp_path / "run"
    workdir.mkdir()
    where = (
        "-s",
        str(ROOT / "Snakefile"),
        "-d",
        str(workdir),
        "--configfile",
        str(ROOT / "configs" / "own-data.yaml"),
    )
    result = dry_run(*where, str(override), cwd=workdir)
    assert result.returncode == 0, result.stderr[-2000:]
    planned = set(re.findall(r"results/datasets/(\w+)\.h5", result.stdout))
    assert planned == {"mydata_gray"}
    override.write_text(f"data:\n  npz:\n    mydata: {tmp_path / 'gone.npz'}\n")
    result = dry_run(*where, str(override), cwd=workdir)
    assert result.returncode != 0 and "gone.npz" in result.stdout + result.stderr


def test_the_workflow_runs_from_another_folder(tmp_path):
    """-s Snakefile -d elsewhere: the defaults beside the Snakefile are read."""
    result = dry_run(
        "-s",
        str(ROOT / "Snakefile"),
        "-d",
        str(tmp_path),
        "--configfile",
        str(ROOT / "configs" / "quick.yaml"),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "results/datasets/digits_gray.h5" in result.stdout
