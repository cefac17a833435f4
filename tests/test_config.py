"""Config validation: defaults come from the schema; bad values stop the run naming the key."""

import copy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from simreg.config import ConfigError, load_config, load_schema, validate_config
from simreg.paths import as_list
from simreg.report.targets import TARGETS, all_targets, grid_models, target_models

ROOT = Path(__file__).resolve().parents[1]


def paper_config(**overrides):
    return load_config(ROOT / "config.yaml", overrides=overrides)


def test_config_yaml_is_valid_and_holds_the_paper_settings():
    c = paper_config()
    assert c["regularization"]["threshold"] == 0.8
    assert c["figures"]["noise_accuracy"]["alpha"] == [10]
    assert c["training"]["epochs"] == 40 and c["training"]["batch_size"] == 64
    assert c["regularization"]["reg_pairs"] == 16 and c["regularization"]["n_images"] == 5000
    assert c["model"]["architecture"] == "resnet18"
    assert len(c["figures"]["noise_accuracy"]["seeds"]) == 7
    for grid in c["noise"]["epsilons"]["cifar10"].values():
        assert len(grid) == 10 and grid[0] == 0 and grid[-1] == pytest.approx(0.1)


def test_schema_defaults_fill_an_empty_config():
    c = validate_config({})
    assert c["regularization"]["threshold"] == 0.8
    assert c["training"]["lr_decay"] == 0.3 and c["training"]["augment"]["cifar10"] is True
    assert c["figures"] == {}


def test_defaults_come_from_the_typed_settings_alone():
    """One source: an empty config validates to exactly the settings' defaults, each section of
    the schema declares exactly the settings' fields, and the schema file declares no section
    or top-level key itself (only the figure grids and the structural definitions)."""
    import dataclasses

    from simreg import settings

    schema_file = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
    assert set(schema_file["properties"]) == {"figures"}
    schema = load_schema()
    c = validate_config({})
    for name, cls in settings.SECTIONS.items():
        expected = dataclasses.asdict(cls())
        if name == "boundary":  # each attack setting is completed with foolbox's defaults
            for setting, given in expected["settings"].items():
                assert c[name]["settings"][setting].items() >= given.items()
            expected["settings"] = c[name]["settings"]
        assert c[name] == expected, name
        declared = set(schema["properties"][name]["properties"])
        assert declared == {f.name for f in dataclasses.fields(cls)}, name
    for name, value in settings.TOP_LEVEL.items():
        assert c[name] == value
    assert set(schema["properties"]) == {*settings.SECTIONS, *settings.TOP_LEVEL, "figures"}


def _declared_keys(properties: dict, prefix: str = ""):
    for key, sub in properties.items():
        yield prefix + key, sub
        if isinstance(sub, dict) and "properties" in sub and sub.get("type") == "object":
            yield from _declared_keys(sub["properties"], f"{prefix}{key}.")


def test_every_declared_key_has_a_type_a_default_and_a_meaning():
    from simreg import settings

    schema = load_schema()
    names = [*settings.TOP_LEVEL, *settings.SECTIONS]
    keys = dict(_declared_keys({n: schema["properties"][n] for n in names}))
    assert len(keys) > 150
    for key, sub in keys.items():
        assert sub.get("description", "").strip(), f"{key} has no description"
        assert "default" in sub, key
        assert {"type", "enum", "$ref", "oneOf"} & set(sub), f"{key} has no type"


def test_a_setting_without_a_meaning_is_refused():
    from simreg.settings import setting

    with pytest.raises(ValueError, match="meaning"):
        setting(1, type="integer")


def test_docs_config_md_is_generated_from_the_declarations():
    """docs/config.md is what `python -m simreg.config_reference` prints, and it names every
    declared key with its default."""
    from simreg import settings
    from simreg.config_reference import reference

    text = reference()
    assert (ROOT / "docs" / "config.md").read_text() == text, (
        "docs/config.md is stale: python -m simreg.config_reference > docs/config.md"
    )
    for name in settings.SECTIONS:
        assert f"## `{name}`" in text
    assert "| `regularization.threshold`" not in text  # keys are listed under their section
    assert "| `threshold` | number | `0.8` | ≥ 0; ≤ 1 |" in text
    assert "| `fast_path.compile` | boolean | `false` |" in text


def test_training_settings_default_to_the_config_defaults():
    """The benchmark and the CLI build TrainSettings directly: their defaults are the config's."""
    from simreg.train.settings import TrainSettings

    c, s = validate_config({}), TrainSettings()
    for key, value in c["training"].items():
        # augment: resolved per task, tested below; pack_size: how jobs train, not what
        if key not in ("device", "augment", "pack_size"):
            assert getattr(s, key) == value, key
    assert (s.architecture, s.width) == (c["model"]["architecture"], c["model"]["width"])


def test_removed_keys_are_rejected():
    with pytest.raises(ConfigError, match="alpha"):
        validate_config({"regularization": {"alpha": 10}})


def test_schema_lists_exactly_the_registered_figures():
    schema = load_schema()
    figures = {n for n, t in TARGETS.items() if t.kind == "figure"}
    assert set(schema["properties"]["figures"]["properties"]) == figures


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
        ({"regularization": {"threshold": "high"}}, ["regularization.threshold", "number"]),  # type
        ({"regularization": {"threshold": 1.5}}, ["regularization.threshold", "maximum"]),  # range
        ({"model": {"architecture": "vgg"}}, ["model.architecture", "resnet18"]),  # enum
        ({"figures": {"noise_accuracy": {"colour": 1}}}, ["figures.noise_accuracy", "colour"]),
        (
            {"figures": {"noise_accuracy": {"methods": ["telepathy"]}}},
            ["figures.noise_accuracy.methods.0"],
        ),
        ({"boundary": {"read_by": {"slow": ["attack_robustness"]}}}, ["boundary.read_by", "slow"]),
        (
            {"boundary": {"read_by": {"converged": ["noise_accuracy"]}}},  # reads no Boundary
            ["boundary.read_by", "noise_accuracy"],
        ),
    ],
)
def test_bad_config_names_the_key(override, names):
    with pytest.raises(ConfigError) as error:
        paper_config(**override)
    message = str(error.value)
    for name in names:
        assert name in message, message


def test_task_needs_a_noise_grid():
    grid = {
        "task": "svhn_gray",
        "regularization": "svhn_gray",
        "methods": ["none"],
        "alpha": [1],
        "threshold": [0.5],
        "seeds": [0],
    }
    with pytest.raises(ConfigError, match="noise.epsilons.svhn"):
        validate_config(
            {"data": {"npz": {"svhn": "svhn.npz"}}, "figures": {"noise_accuracy": grid}}
        )


def test_quick_config_shrinks_every_grid_of_config_yaml():
    """configs/quick.yaml gives sizes (``shrink``), not grids: every grid of config.yaml but
    Fig. 24's is planned on the digits, with the shrink's first seeds and at most 2 values per
    sweep, and its ``figures`` block restates no grid whole."""
    paper = yaml.safe_load((ROOT / "config.yaml").read_text())["figures"]
    quick_raw = yaml.safe_load((ROOT / "configs" / "quick.yaml").read_text())
    merged = load_config(ROOT / "config.yaml", ROOT / "configs" / "quick.yaml")
    assert set(merged["figures"]) == set(paper) - {"robustbench_comparison"}
    required = {"task", "regularization", "methods", "alpha", "threshold", "seeds"}
    assert all(grid is None or not required <= set(grid) for grid in quick_raw["figures"].values())
    for name, grid in merged["figures"].items():
        assert grid["task"] in {"digits_gray", "digits_rgb"}, name
        assert set(as_list(grid["regularization"])) <= {
            "digits_gray",
            "photos_gray",
            "photos_rgb",
        }, name
        given = quick_raw["figures"].get(name) or {}
        seeds = quick_raw["shrink"]["seeds"]
        assert grid["seeds"] == given.get("seeds", paper[name]["seeds"])[:seeds], name
        alphas = grid["alpha"].values() if isinstance(grid["alpha"], dict) else [grid["alpha"]]
        assert all(len(values) <= 2 for values in [*alphas, grid["threshold"]]), name
        assert len(grid.get("reg_pairs", [])) <= 2 and len(grid.get("n_images", [])) <= 2
        assert "per_regularization" not in grid, name
        if name != "selection_plane":
            assert grid["threshold"] == [0.5], name
    tasks = {k.task for k in target_models("results", merged)}
    assert tasks == {"digits_gray", "digits_rgb"}  # digits_rgb: the color figures (10, 23)


def test_shrink_replaces_sets_and_cuts_seeds_and_sweeps_once():
    from simreg.config import shrink_grids

    grid = {
        "task": "cifar10_gray",
        "regularization": ["cifar10_gray", "mnist_gray", "svhn_gray"],
        "methods": ["threshold", "gn"],
        "alpha": {"threshold": [1, 5, 10], "gn": [0.1]},
        "threshold": [0.8],
        "reg_pairs": [4, 8, 32],
        "n_images": [100, 300],
        "seeds": [3, 1, 2],
        "per_regularization": {"mnist_gray": {"alpha": [4]}, "svhn_gray": {"alpha": [2]}},
    }
    plane = {**grid, "alpha": [1, 5, 10], "threshold": [0.5, 0.6, 0.7]}
    config = {
        "figures": {"a": grid, "b": plane},
        "regularization": {"reg_pairs": 16, "n_images": 100},
        "shrink": {
            "tasks": {"cifar10_gray": "digits_gray"},
            "regularization": {"cifar10_gray": "digits_gray", "mnist_gray": "digits_gray"},
            "seeds": 2,
            "values": 2,
            "threshold": 0.5,
        },
    }
    shrink_grids(config)
    assert grid["task"] == "digits_gray"
    assert grid["regularization"] == ["digits_gray", "svhn_gray"]  # the two sets made one
    assert grid["per_regularization"] == {"svhn_gray": {"alpha": [2]}}  # a replaced set's: gone
    assert grid["seeds"] == [3, 1]
    assert grid["reg_pairs"] == [4, 16]  # the first, then the section's own value
    assert grid["n_images"] == [100]  # the first is the section's
    assert grid["alpha"] == {"threshold": [1, 5], "gn": [0.1]} and grid["threshold"] == [0.5]
    assert plane["alpha"] == [1, 5] and plane["threshold"] == [0.5, 0.6]  # a Th sweep: cut
    before = copy.deepcopy(config)
    shrink_grids(config)
    assert config == before
    config["shrink"]["tasks"] = {"cifar10_gray": "mnist_gray", "mnist_gray": "digits_gray"}
    with pytest.raises(ConfigError, match="shrink.tasks"):
        shrink_grids(config)


def test_no_shrink_leaves_the_grids_as_given():
    raw = yaml.safe_load((ROOT / "config.yaml").read_text())["figures"]
    c = paper_config()
    assert c["shrink"] == {
        "tasks": {},
        "regularization": {},
        "seeds": None,
        "values": None,
        "threshold": None,
    }
    for name, grid in c["figures"].items():
        assert {k: grid[k] for k in raw[name]} == raw[name], name


def test_grid_models_are_canonical_and_unique():
    c = paper_config()
    keys = grid_models(c["figures"]["noise_accuracy"], c)
    assert len(keys) == len(set(keys)) == 7 * 3  # none, pixel, threshold x 7 seeds
    none = [k for k in keys if k.method == "none"]
    assert all(k.regularization == "none" and k.alpha == "0" and k.threshold == "na" for k in none)
    assert all(k.threshold == "na" for k in keys if k.method == "pixel")
    # every figure and table (#10, #13, #11, #12) but the opt-in Fig. 24 (robustbench.enabled)
    assert len(all_targets(c)) + 1 == len(TARGETS) == 23 + 6 + 5 + 5 + 5


def test_snakemake_refuses_a_bad_config_before_any_job(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("training:\n  epochz: 3\n")
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--configfile", str(bad)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "epochz" in result.stdout + result.stderr


def test_a_figure_set_to_null_is_left_out():
    config = load_config(ROOT / "config.yaml", overrides={"figures": {"minimal_distance": None}})
    assert "minimal_distance" not in config["figures"]
    assert "results/figures/minimal_distance.pdf" not in all_targets(config)
    assert "results/figures/attack_robustness.pdf" in all_targets(config)


def test_augmentation_is_chosen_per_dataset():
    """Issue #10: crop + flip for CIFAR, none for MNIST-type (authors' code), none for a
    dataset the config does not name (an NPZ); a bool sets every dataset."""
    from simreg.train.model_key import baseline_key
    from simreg.train.settings import settings_from_config

    c = paper_config()
    augment = {
        task: settings_from_config(c, baseline_key(task, 0)).augment
        for task in (
            "cifar10_gray",
            "cifar100_rgb",
            "mnist_gray",
            "fashionmnist_gray",
            "digits_gray",
            "mysubset_gray",
        )
    }
    assert augment == {
        "cifar10_gray": True,
        "cifar100_rgb": True,
        "mnist_gray": False,
        "fashionmnist_gray": False,
        "digits_gray": False,
        "mysubset_gray": False,
    }
    named = paper_config(training={"augment": {"mysubset": True}})
    assert settings_from_config(named, baseline_key("mysubset_gray", 0)).augment is True
    off = paper_config(training={"augment": False})
    assert settings_from_config(off, baseline_key("cifar10_gray", 0)).augment is False


def test_grids_take_the_alpha_and_threshold_of_each_pair():
    """Issue #10: App. Table 1's (α, Th) per classification-regularization pair are the
    defaults of the grids (e.g. MNIST-MNIST α 4, Th 0.2; FashionMNIST-MNIST α 10, Th 0.4)."""
    c = paper_config()
    settings = {
        (k.task, k.regularization.rsplit("_n", 1)[0], k.alpha, k.threshold)
        for name in ("noise_mnist", "noise_fashionmnist", "robustness_by_dataset", "noise_cifar100")
        for k in grid_models(c["figures"][name], c)
        if k.method == "threshold"
    }
    assert settings == {
        ("mnist_gray", "mnist_gray", "4", "0.2"),
        ("mnist_gray", "fashionmnist_gray", "10", "0.8"),
        ("fashionmnist_gray", "mnist_gray", "10", "0.4"),
        ("fashionmnist_gray", "fashionmnist_gray", "10", "0.8"),
        *{
            (task, reg, "10", "0.8")
            for task in ("cifar10_gray", "cifar100_gray")
            for reg in ("cifar10_gray", "cifar100_gray", "imagenette_gray")
        },
    }


def test_imagenet_grids_use_imagenette_unless_an_imagenet_tree_is_given():
    c = paper_config()
    assert c["figures"]["noise_accuracy"]["regularization"] == "imagenette_gray"
    tree = paper_config(data={"imagenet_dir": "/data/imagenet/train"})
    assert tree["figures"]["noise_accuracy"]["regularization"] == "imagenet_gray"
    assert "imagenet_rgb" in tree["figures"]["color_cifar10"]["regularization"]
    assert tree["figures"]["noise_mnist"] == c["figures"]["noise_mnist"]


def test_cifar100_tasks_train_a_resnet34():
    from simreg.train.model_key import baseline_key
    from simreg.train.settings import settings_from_config

    c = paper_config()
    assert settings_from_config(c, baseline_key("cifar100_gray", 0)).architecture == "resnet34"
    assert settings_from_config(c, baseline_key("cifar10_gray", 0)).architecture == "resnet18"


@pytest.mark.parametrize(
    "text, names",
    [
        ("training: [unclosed\n", "line 2, column 1"),
        ("", "is empty"),
        ("# only a comment\n", "is empty"),
        ("- a list\n- not keys\n", "holds a list"),
    ],
)
def test_a_broken_or_empty_config_file_is_named(tmp_path, text, names):
    broken = tmp_path / "mine.yaml"
    broken.write_text(text)
    with pytest.raises(ConfigError, match=names) as error:
        load_config(ROOT / "config.yaml", broken)
    assert str(broken) in str(error.value)
    # the command a user runs when Snakemake's own message names no file
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "simreg.cli",
            "check-config",
            str(ROOT / "config.yaml"),
            str(broken),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert str(broken) in result.stderr and names in result.stderr


def test_check_config_names_the_bad_key_and_accepts_a_good_merge(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("training:\n  epochs: ten\n")
    check = [sys.executable, "-m", "simreg.cli", "check-config", str(ROOT / "config.yaml")]
    result = subprocess.run(check + [str(bad)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "training.epochs" in result.stderr
    result = subprocess.run(
        check + [str(ROOT / "configs" / "quick.yaml")], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0 and "valid" in result.stdout


def test_a_broken_defaults_file_beside_the_snakefile_is_named(tmp_path):
    """The Snakefile reads config.yaml itself first: Snakemake's message would name no file."""
    workflow = tmp_path / "workflow"
    shutil.copy(ROOT / "Snakefile", tmp_path / "Snakefile")
    shutil.copytree(ROOT / "workflow" / "rules", workflow / "rules")
    shutil.copytree(ROOT / "workflow" / "report", workflow / "report")
    (tmp_path / "config.yaml").write_text("training:\n\tepochs: 3\n")  # a tab: not YAML
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-n",
            "-s",
            str(tmp_path / "Snakefile"),
            "-d",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert f"config file {tmp_path / 'config.yaml'}, line 2" in output


DUPLICATE = """training:
  epochs: 2
  lr: 0.1
  epochs: 3
"""


def test_a_key_given_twice_is_an_error_naming_the_file_and_both_lines(tmp_path):
    """YAML keeps the last of two equal keys silently; our loader refuses it, in check-config
    and in the Snakefile (which reads every config file of the run again)."""
    twice = tmp_path / "twice.yaml"
    twice.write_text(DUPLICATE)
    with pytest.raises(ConfigError, match="'epochs' is given twice") as error:
        load_config(ROOT / "config.yaml", twice)
    assert str(twice) in str(error.value) and "line 2 and line 4" in str(error.value)
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--configfile", str(twice)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert f"config file {twice}: key 'epochs' is given twice" in result.stdout + result.stderr
    assert "line 2 and line 4" in result.stdout + result.stderr
    # the same key in two different mappings, or overridden after a merge (<<), is fine
    twice.write_text("a: &x {epochs: 2}\nb: {epochs: 3}\nc:\n  <<: *x\n  epochs: 4\n")
    from simreg.config import read_config_file

    assert read_config_file(twice)["c"] == {"epochs": 4}


@pytest.mark.parametrize(
    "name",
    ["config.yaml", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "configs").glob("*.yaml"))],
)
def test_the_shipped_configs_give_no_key_twice(name):
    from simreg.config import read_config_file

    read_config_file(ROOT / name)
