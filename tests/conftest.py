"""Shared fixtures: a tiny classifier on real 8x8 digits (on disk too), and one end-to-end
run of the quick DAG that every test needing pipeline outputs shares."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

torch.set_num_threads(2)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def digits():
    """(images float NCHW in [0, 1], labels) of scikit-learn's embedded 8x8 digits."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.tensor(bunch.images / 16.0, dtype=torch.float32)[:, None]
    return x, torch.tensor(bunch.target, dtype=torch.long)


@pytest.fixture(scope="session")
def linear_model(digits):
    """A softmax regression fitted to the digits in a few hundred steps (about 90 % train
    accuracy): smooth decision boundaries, every class predicted."""
    x, y = digits
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(300):
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    return model.eval()


@pytest.fixture(scope="session")
def saved_model(tmp_path_factory):
    """(model.pt, dataset.h5) of a width-4 ResNet18 on the digits, as `simreg train` writes
    them (briefly trained, so it predicts several classes)."""
    from simreg.data.store import build_dataset, read_split
    from simreg.models.resnet import build_model
    from simreg.models.inference import to_input

    root = tmp_path_factory.mktemp("attack_model")
    dataset = root / "digits_gray.h5"
    build_dataset("digits", "gray", dataset)
    train = read_split(dataset, "train")
    x = to_input(torch.from_numpy(train.images))
    y = torch.from_numpy(train.labels)
    torch.manual_seed(0)
    model = build_model("resnet18", 1, 10, width=4)
    model.set_input_normalization(x.mean(dim=(0, 2, 3)), x.std(dim=(0, 2, 3)))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    generator = torch.Generator().manual_seed(0)
    for _ in range(60):
        idx = torch.randint(len(y), (64,), generator=generator)
        optimizer.zero_grad()
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        optimizer.step()
    meta = {"method": "none", "alpha": 0.0, "threshold": "na", "seed": 0, "reg_pairs": 0}
    path = root / "model.pt"
    torch.save(
        {
            "model": model.state_dict(),
            "architecture": "resnet18",
            "width": 4,
            "in_channels": 1,
            "n_classes": 10,
            "provenance": meta,
        },
        path,
    )
    return path, dataset


# What the default suite builds of the quick DAG: the core figures and tables, which run every
# stage (dataset, similarity, training, every evaluation kind of the original suite, figures,
# tables). The whole quick DAG (every target) runs in the slow tests (`pytest -m slow`, which
# .ci/run calls), on top of this run.
CORE_TARGETS = [
    "results/figures/noise_accuracy.pdf",
    "results/figures/attack_robustness.pdf",
    "results/figures/perturbation_spectrum.pdf",
    "results/tables/models.csv",
    "results/tables/gamma.csv",
]


def snakemake(workdir, env, *targets, timeout=1500):
    # Targets go first: --configfile takes several values and would swallow them.
    command = [
        sys.executable,
        "-m",
        "snakemake",
        *targets,
        "--cores",
        "2",
        "--configfile",
        "configs/quick.yaml",
    ]
    result = subprocess.run(
        command, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory):
    """(workdir, env) of the quick DAG's CORE_TARGETS built once, from nothing, in a copy of
    the repository; shared by every test that reads pipeline outputs."""
    workdir = tmp_path_factory.mktemp("quick")
    skip = {".git", ".venv", "results", "data", ".snakemake", ".pytest_cache"}
    for source in ROOT.iterdir():
        if source.name not in skip:
            (shutil.copytree if source.is_dir() else shutil.copy)(source, workdir / source.name)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    snakemake(workdir, env, *CORE_TARGETS)
    return workdir, env


@pytest.fixture(scope="session")
def full_quick_run(quick_run):
    """The same workdir after `snakemake all`: every target of the quick DAG (slow tests)."""
    workdir, env = quick_run
    snakemake(workdir, env, "all", timeout=3000)
    return workdir, env
