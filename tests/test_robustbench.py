"""RobustBench reference models (simreg.evaluate.robustbench): weights read from
<model_dir>/<dataset>/<threat_model>/<name>.pt, never downloaded; a missing file names its
path; the loading path works on small checkpoints the tests write."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from simreg.evaluate.robustbench import (
    RobustbenchUnavailable,
    import_robustbench,
    load_robustbench_model,
    weights_path,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def robustbench_utils():
    try:
        return import_robustbench()
    except RobustbenchUnavailable as error:
        pytest.skip(f"optional extra not installed: {error}")


class TinyNet(nn.Module):
    """A RobustBench-style model: RGB in [0, 1], its own normalization buffers."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mu", torch.tensor([0.5, 0.5, 0.5]).view(1, 3, 1, 1))
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, 10)

    def forward(self, x):
        x = self.conv(x - self.mu).relu().mean(dim=(2, 3))
        return self.fc(x)


@pytest.fixture
def tiny_in_zoo(robustbench_utils, monkeypatch):
    """'TinyTest' registered in RobustBench's CIFAR-10 corruptions zoo (as its own entries
    are: a constructor and a Drive id), for this test only."""
    from robustbench.model_zoo import model_dicts
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    zoo = model_dicts[BenchmarkDataset.cifar_10][ThreatModel.corruptions]
    monkeypatch.setitem(zoo, "TinyTest", {"model": TinyNet, "gdrive_id": "never-downloaded"})
    return "TinyTest"


def test_missing_weights_name_the_exact_path(tmp_path):
    expected = tmp_path / "models" / "cifar10" / "Linf" / "Carmon2019Unlabeled.pt"
    assert weights_path(tmp_path / "models", "cifar10", "Linf", "Carmon2019Unlabeled") == expected
    with pytest.raises(FileNotFoundError) as error:
        load_robustbench_model("Carmon2019Unlabeled", "Linf", tmp_path / "models")
    message = str(error.value)
    assert str(expected) in message and "load_model('Carmon2019Unlabeled'" in message
    with pytest.raises(ValueError, match="threat model"):
        load_robustbench_model("Standard", "L1", tmp_path)


def test_a_written_checkpoint_loads_through_robustbench(tiny_in_zoo, tmp_path):
    torch.manual_seed(0)
    reference = TinyNet()
    path = weights_path(tmp_path, "cifar10", "corruptions", tiny_in_zoo)
    path.parent.mkdir(parents=True)
    # RobustBench's checkpoints hold a "state_dict" whose keys may carry "module."
    torch.save({"state_dict": {f"module.{k}": v for k, v in reference.state_dict().items()}}, path)
    model = load_robustbench_model(tiny_in_zoo, "corruptions", tmp_path)
    assert isinstance(model, TinyNet) and not model.training
    x = torch.rand(5, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x))


def test_a_zoo_architecture_loads_its_weights(robustbench_utils, tmp_path):
    """A real entry: Modas2021PRIMEResNet18 (ResNet18), its state dict written here."""
    from robustbench.model_zoo import model_dicts
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    name = "Modas2021PRIMEResNet18"
    torch.manual_seed(0)
    reference = model_dicts[BenchmarkDataset.cifar_10][ThreatModel.corruptions][name]["model"]()
    path = weights_path(tmp_path, "cifar10", "corruptions", name)
    path.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), path)
    model = load_robustbench_model(name, "corruptions", tmp_path)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference.eval()(x))


def tiny_corrupted_set(tmp_path) -> Path:
    from simreg.data.corrupted import build_corruptions
    from simreg.data.sources import Splits
    from simreg.data.store import write_dataset

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, 6)
    write_dataset(
        Splits(images, labels, images, labels),
        "rgb",
        tmp_path / "cifar10_rgb.h5",
        dataset="cifar10",
        n_classes=10,
    )
    out = tmp_path / "cifar10_rgb_c.h5"
    build_corruptions(
        tmp_path / "cifar10_rgb.h5",
        tmp_path / "cifar10_rgb.h5",
        out,
        dataset="cifar10",
        color="rgb",
        source="generated",
    )
    return out


def test_robustbench_model_scored_on_corruptions(tiny_in_zoo, tmp_path):
    from simreg.evaluate.robustbench import evaluate_robustbench

    path = weights_path(tmp_path / "models", "cifar10", "corruptions", tiny_in_zoo)
    path.parent.mkdir(parents=True)
    torch.save(TinyNet().state_dict(), path)
    out = tmp_path / "rb.csv"
    evaluate_robustbench(
        tiny_in_zoo,
        "corruptions",
        tmp_path / "models",
        tiny_corrupted_set(tmp_path),
        out,
        severities=[5],
        device="cpu",
    )
    table = pd.read_csv(out)
    assert len(table) == 1 + 15 and set(table["severity"]) == {0, 5}
    assert (table["model"] == tiny_in_zoo).all() and (table["threat_model"] == "corruptions").all()
    assert table["weights_sha256"].str.len().eq(64).all()


def test_the_command_fails_naming_the_weights(tmp_path):
    """What the rule robustbench_corruptions runs: without weights it stops with the path
    (before importing robustbench, so also where the extra is missing)."""
    corrupted = tiny_corrupted_set(tmp_path)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "simreg.cli",
            "robustbench-corruptions",
            "--name",
            "Standard",
            "--threat-model",
            "corruptions",
            "--model-dir",
            str(tmp_path / "m"),
            "--corruptions",
            str(corrupted),
            "--out",
            str(tmp_path / "out.csv"),
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0
    assert str(tmp_path / "m" / "cifar10" / "corruptions" / "Standard.pt") in result.stderr
    assert not (tmp_path / "out.csv").exists()


def test_fig24_builds_through_the_commands_its_rules_run(tiny_in_zoo, tmp_path):
    """Fig. 24 with weights on disk, command by command as its rules run them (in this
    process, so that the test's zoo entry is seen): two of our models trained and scored on a
    generated corrupted set, a RobustBench model scored on it, then the figure. The real
    figure needs CIFAR-10 and the four models' weights, neither of which can be had here."""
    import dataclasses
    import json

    from simreg.cli import main
    from simreg.data.corrupted import build_corruptions
    from simreg.data.sources import Splits
    from simreg.data.store import write_dataset
    from simreg.targets.pixel_similarity import build_similarity
    from simreg.train.model_key import ModelKey
    from simreg.train.settings import TrainSettings

    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (160, 32, 32, 3), dtype=np.uint8)
    labels = np.arange(160) % 10
    task = tmp_path / "cifar10_rgb.h5"
    write_dataset(
        Splits(images[:128], labels[:128], images[128:], labels[128:]),
        "rgb",
        task,
        dataset="cifar10",
        n_classes=10,
    )
    corrupted = tmp_path / "cifar10_rgb_c.h5"
    build_corruptions(task, task, corrupted, dataset="cifar10", color="rgb", source="generated")
    similarity = tmp_path / "similarity.h5"
    build_similarity(task, similarity, n_images=64, image_seed=0)

    ours = []
    for method, alpha in (("none", 0.0), ("threshold", 1.0)):
        regularizer = (
            {}
            if method == "none"
            else {"threshold": 0.5, "reg_pairs": 8, "z_eps": 1e-5, "mean_momentum": 0.1}
        )
        settings = TrainSettings(
            method=method,
            seed=0,
            alpha=alpha,
            width=4,
            epochs=1,
            batch_size=32,
            regularizer=regularizer,
        )
        key = ModelKey.make("cifar10_rgb", "cifar10_rgb_n64", method, alpha, 0.5, 8, 0)
        model, csv = tmp_path / f"{method}.pt", tmp_path / f"{method}.csv"
        inputs = [] if method == "none" else ["--input", f"similarity={similarity}"]
        main(
            [
                "train",
                "--task-data",
                str(task),
                *inputs,
                "--model-out",
                str(model),
                "--metrics-out",
                str(tmp_path / f"{method}_metrics.csv"),
                "--checkpoint-dir",
                str(tmp_path / "ckpt"),
                "--settings",
                json.dumps(dataclasses.asdict(settings)),
                "--keys",
                json.dumps(key.columns()),
                "--device",
                "cpu",
            ]
        )
        main(
            [
                "evaluate",
                "corruption_accuracy",
                "--input",
                f"model={model}",
                "--input",
                f"dataset={task}",
                "--input",
                f"corruptions={corrupted}",
                "--out",
                f"csv={csv}",
                "--keys",
                json.dumps(key.columns()),
                "--device",
                "cpu",
            ]
        )
        ours.append(csv)

    weights = weights_path(tmp_path / "models", "cifar10", "corruptions", tiny_in_zoo)
    weights.parent.mkdir(parents=True)
    torch.save(TinyNet().state_dict(), weights)
    reference = tmp_path / "robustbench.csv"
    main(
        [
            "robustbench-corruptions",
            "--name",
            tiny_in_zoo,
            "--threat-model",
            "corruptions",
            "--model-dir",
            str(tmp_path / "models"),
            "--corruptions",
            str(corrupted),
            "--out",
            str(reference),
            "--severities",
            "5",
            "--device",
            "cpu",
        ]
    )
    figure = tmp_path / "robustbench_comparison.pdf"
    main(
        [
            "figure",
            "robustbench_comparison",
            "--out",
            str(figure),
            "--params",
            json.dumps({"title": "Fig. 24 stand-in", "severity": 5}),
            "--reads",
            "corruption_accuracy",
            *map(str, ours),
            "--reads",
            "robustbench",
            str(reference),
        ]
    )

    drawn = pd.read_csv(tmp_path / "robustbench_comparison.data.csv")
    means = drawn[drawn["corruption"] == "mean"].set_index("label")["mean"]
    scored = pd.read_csv(reference)
    at_5 = scored[(scored["severity"] == 5) & (scored["corruption"] != "clean")]
    assert len(at_5) == 15
    assert means[f"RobustBench {tiny_in_zoo} (corruptions)"] == pytest.approx(
        at_5["accuracy"].mean()
    )
    threshold = pd.read_csv(ours[1])
    threshold = threshold[(threshold["severity"] == 5) & (threshold["corruption"] != "clean")]
    label = next(label for label in means.index if "most robust" in label)
    assert means[label] == pytest.approx(threshold["accuracy"].mean())
    assert figure.stat().st_size > 0 and figure.with_suffix(".png").stat().st_size > 0


def test_all_leaves_fig24_out_unless_enabled():
    """Fig. 24 is opt-in: the paper's config plans no RobustBench job under `all` (its rules
    need the extra and hand-fetched weights) until robustbench.enabled is true."""
    from simreg.config import load_config
    from simreg.report.targets import ROBUSTBENCH, TARGETS, all_targets

    fig24 = TARGETS["robustbench_comparison"].file
    default = load_config(ROOT / "config.yaml")
    assert default["robustbench"]["enabled"] is False
    assert fig24 not in all_targets(default)
    assert len(all_targets(default)) == len(TARGETS) - 1
    enabled = load_config(ROOT / "config.yaml", overrides={"robustbench": {"enabled": True}})
    assert fig24 in all_targets(enabled)
    # every target that reads the RobustBench tables is behind the switch
    assert all(t.opt_in == "robustbench" for t in TARGETS.values() if ROBUSTBENCH in t.reads)


def test_asking_for_fig24_without_extra_or_weights_says_what_to_get(tmp_path, monkeypatch):
    from simreg.config import load_config
    from simreg.evaluate.registry import robustbench_file, robustbench_missing

    monkeypatch.chdir(tmp_path)
    config = load_config(ROOT / "config.yaml")
    message = robustbench_missing(config, "cifar10_rgb", extra_installed=False)
    assert 'pip install -e ".[robustbench]"' in message
    for model in config["robustbench"]["models"]:
        path = tmp_path / "models" / "cifar10" / model["threat_model"] / f"{model['name']}.pt"
        assert str(path) in message
    assert "robustbench.enabled: true" in message
    assert "pip install" not in robustbench_missing(config, "cifar10_rgb", extra_installed=True)
    # the weights on disk, or the models already scored: nothing is missing
    for model in config["robustbench"]["models"]:
        path = tmp_path / "models" / "cifar10" / model["threat_model"] / f"{model['name']}.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    assert robustbench_missing(config, "cifar10_rgb", extra_installed=True) is None
    for model in config["robustbench"]["models"]:
        table = Path(robustbench_file("cifar10_rgb", model["threat_model"], model["name"]))
        table.parent.mkdir(parents=True, exist_ok=True)
        table.touch()
    assert robustbench_missing(config, "cifar10_rgb", extra_installed=False) is None


def test_snakemake_asked_for_fig24_without_weights_stops_with_that_message(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-n",
            "results/figures/robustbench_comparison.pdf",
            "-d",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "Fig. 24 (figures.robustbench_comparison)" in output
    assert str(tmp_path / "models" / "cifar10" / "L2" / "Engstrom2019Robustness.pt") in output
