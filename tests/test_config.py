"""Config validation: defaults come from the schema; bad values stop the run naming the key."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from simreg.config import ConfigError, load_config, load_schema, validate_config
from simreg.paths import all_targets, grid_models, table_models

ROOT = Path(__file__).resolve().parents[1]


def paper_config(**overrides):
    return load_config(ROOT / "config.yaml", overrides=overrides)


def test_config_yaml_is_valid_and_holds_the_paper_settings():
    c = paper_config()
    assert c["regularization"]["alpha"] == 10 and c["regularization"]["threshold"] == 0.8
    assert c["training"]["epochs"] == 40 and c["training"]["batch_size"] == 64
    assert c["regularization"]["reg_pairs"] == 16 and c["regularization"]["n_images"] == 5000
    assert c["model"]["architecture"] == "resnet18"
    assert len(c["figures"]["noise_accuracy"]["seeds"]) == 7
    for grid in c["noise"]["epsilons"]["cifar10"].values():
        assert len(grid) == 10 and grid[0] == 0 and grid[-1] == pytest.approx(0.1)


def test_schema_defaults_fill_an_empty_config():
    c = validate_config({})
    assert c["regularization"]["alpha"] == 10
    assert c["training"]["lr_decay"] == 0.3
    assert c["figures"] == {}


def test_config_yaml_uses_only_schema_keys():
    """Every key config.yaml sets is one the schema declares."""
    schema = load_schema()
    raw = yaml.safe_load((ROOT / "config.yaml").read_text())
    for section, values in raw.items():
        assert section in schema["properties"]
        props = schema["properties"][section].get("properties")
        if props and isinstance(values, dict) and section != "figures":
            assert set(values) <= set(props), section


@pytest.mark.parametrize(
    "override, names",
    [
        ({"training": {"epoch": 3}}, ["training", "epoch"]),  # unknown key (typo)
        ({"regularization": {"alpha": "ten"}}, ["regularization.alpha", "number"]),  # wrong type
        ({"regularization": {"threshold": 1.5}}, ["regularization.threshold", "maximum"]),  # range
        ({"model": {"architecture": "vgg"}}, ["model.architecture", "resnet18"]),  # enum
        ({"figures": {"noise_accuracy": {"colour": 1}}}, ["figures.noise_accuracy", "colour"]),
        ({"figures": {"noise_accuracy": {"methods": ["neural"]}}}, ["figures.noise_accuracy.methods.0"]),
    ],
)
def test_bad_config_names_the_key(override, names):
    with pytest.raises(ConfigError) as error:
        paper_config(**override)
    message = str(error.value)
    for name in names:
        assert name in message, message


def test_task_needs_a_noise_grid():
    grid = {"task": "svhn_gray", "regularization": "svhn_gray", "methods": ["none"],
            "alpha": [1], "threshold": [0.5], "seeds": [0]}
    with pytest.raises(ConfigError, match="noise.epsilons.svhn"):
        validate_config({"figures": {"noise_accuracy": grid}})


def test_quick_config_overrides_every_figure_grid():
    """--configfile merges over config.yaml, so the quick config must replace each grid whole."""
    quick_raw = yaml.safe_load((ROOT / "configs" / "quick.yaml").read_text())
    merged = load_config(ROOT / "config.yaml", ROOT / "configs" / "quick.yaml")
    assert set(merged["figures"]) == set(quick_raw["figures"])
    for name, grid in merged["figures"].items():
        assert grid == {**grid, **quick_raw["figures"][name]}
        assert set(quick_raw["figures"][name]) >= {"task", "regularization", "methods", "alpha",
                                                  "threshold", "seeds"}
    tasks = {k.task for k in table_models("results", merged)}
    assert tasks == {"digits_gray"}


def test_grid_models_are_canonical_and_unique():
    c = paper_config()
    keys = grid_models(c["figures"]["noise_accuracy"], c)
    assert len(keys) == len(set(keys)) == 7 * 3  # none, pixel, threshold x 7 seeds
    none = [k for k in keys if k.method == "none"]
    assert all(k.regularization == "none" and k.alpha == "0" and k.threshold == "na" for k in none)
    assert all(k.threshold == "na" for k in keys if k.method == "pixel")
    assert len(all_targets(c)) == 9 + 5  # every figure of paths.FIGURES, every table


def test_snakemake_refuses_a_bad_config_before_any_job(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("training:\n  epochz: 3\n")
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--configfile", str(bad)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0
    assert "epochz" in result.stdout + result.stderr


def test_a_figure_set_to_null_is_left_out():
    config = load_config(ROOT / "config.yaml", overrides={"figures": {"minimal_distance": None}})
    assert "minimal_distance" not in config["figures"]
    assert "results/figures/minimal_distance.pdf" not in all_targets(config)
    assert "results/figures/attack_robustness.pdf" in all_targets(config)
