"""Each method's own training recipe (figures.<grid>.training): it reaches the optimizer, it is
part of the model key, a model without one keeps its path and params, and the native config
plans."""

import dataclasses
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from simreg.config import ConfigError, load_config, validate_config
from simreg.paths import WILDCARDS
from simreg.report.targets import grid_models
from simreg.train import recipe
from simreg.paths import model_file
from simreg.train.model_key import ModelKey
from simreg.train.settings import settings_from_config, settings_record

ROOT = Path(__file__).resolve().parents[1]
SUBSET = ROOT / "configs" / "cifar10-subset.yaml"
NATIVE = ROOT / "configs" / "cifar10-subset-native.yaml"
AFD_RECIPE = {
    "weight_decay": 1e-4,
    "batch_size": 128,
    "epochs": 3,
    "lr_decay": 0.1,
    "lr_step_epochs": 2,
}
GN_RECIPE = {"optimizer": "adam", "lr": 1e-3, "betas": [0.8, 0.99], "lr_decay": 1.0}


def digits_config(training=None):
    """The quick config (digits), its defense grid with ``training`` as its recipes."""
    grid = {} if training is None else {"defense_comparison": {"training": training}}
    return load_config(
        ROOT / "config.yaml", ROOT / "configs" / "quick.yaml", overrides={"figures": grid}
    )


def key_of(config, method):
    grid = config["figures"]["defense_comparison"]
    return next(k for k in grid_models(grid, config) if k.method == method)


@pytest.fixture(scope="module")
def digits_task(tmp_path_factory):
    from simreg.data.store import build_dataset

    task = tmp_path_factory.mktemp("recipes") / "digits_gray.h5"
    build_dataset("digits", "gray", task)
    return task


def test_an_afd_override_reaches_the_optimizer(digits_task):
    from simreg.train.trainer import Trainer

    config = digits_config({"afd": AFD_RECIPE})
    settings = settings_from_config(config, key_of(config, "afd"))
    trainer = Trainer(digits_task, {}, settings, torch.device("cpu"))
    assert isinstance(trainer.optimizer, torch.optim.SGD)
    (group,) = trainer.optimizer.param_groups
    assert group["weight_decay"] == 1e-4 and group["momentum"] == 0.9
    assert trainer.s.batch_size == 128 and trainer.s.epochs == 3
    # the schedule of the recipe: lr / 10 from epoch 2 on, AFD's own optimizers with it
    lrs = [trainer.plan_epoch(epoch)[0] for epoch in range(3)]
    assert lrs == pytest.approx([0.1, 0.1, 0.01])
    assert group["lr"] == pytest.approx(0.01)
    assert trainer.regularizer.discriminator_optimizer.param_groups[0]["lr"] == pytest.approx(0.01)
    # each step of the epoch takes a batch of the recipe's size
    _, steps = trainer.plan_epoch(0)
    assert {len(idx) for idx, _, _ in steps} == {128}
    # the same method without the override: the training section's optimizer
    plain = digits_config()
    default = Trainer(
        digits_task, {}, settings_from_config(plain, key_of(plain, "afd")), torch.device("cpu")
    )
    assert default.optimizer.param_groups[0]["weight_decay"] == 0.0


def test_an_adam_override_builds_adam_and_the_schedule_scales_it(digits_task):
    from simreg.train.trainer import Trainer

    config = digits_config({"gn": {**GN_RECIPE, "lr_decay": 0.5, "lr_step_epochs": 1}})
    trainer = Trainer(
        digits_task, {}, settings_from_config(config, key_of(config, "gn")), torch.device("cpu")
    )
    assert isinstance(trainer.optimizer, torch.optim.Adam)
    (group,) = trainer.optimizer.param_groups
    assert group["betas"] == (0.8, 0.99) and group["weight_decay"] == 0.0
    assert [trainer.plan_epoch(e)[0] for e in range(3)] == pytest.approx([1e-3, 5e-4, 2.5e-4])
    assert group["lr"] == pytest.approx(2.5e-4)
    trainer.step(*trainer.plan_epoch(0)[1][0])  # one Adam step runs
    assert trainer.optimizer.state  # Adam's moments exist


def test_an_override_changes_the_model_key_and_none_keeps_it():
    plain, tuned = digits_config(), digits_config({"afd": AFD_RECIPE, "gn": GN_RECIPE})
    keys = {k.method: k for k in grid_models(plain["figures"]["defense_comparison"], plain)}
    tuned_keys = {k.method: k for k in grid_models(tuned["figures"]["defense_comparison"], tuned)}
    # without an override: the key and path of before recipes existed
    assert keys["afd"].recipe == "" and keys["afd"] == ModelKey.make(
        "digits_gray", "none", "afd", 1, "na", 0, 0
    )
    assert model_file(keys["afd"]) == "results/models/digits_gray/none/afd/a1_tna_k0/seed0/model.pt"
    assert "recipe" not in keys["afd"].columns()  # the rules' --keys params stay as they were
    assert tuned_keys["none"] == keys["none"]  # a method the grid does not name keeps its key
    # with one: another key, another path, and the recipe in the columns (provenance)
    assert tuned_keys["afd"] != keys["afd"]
    assert model_file(tuned_keys["afd"]) == (
        "results/models/digits_gray/none/afd/"
        "a1_tna_k0_wd0.0001_bs128_ep3_decay0.1_step2/seed0/"
        "model.pt"
    )
    assert tuned_keys["gn"].recipe == "_adam_lr0.001_betas0.8+0.99_decay1"
    assert tuned_keys["gn"].columns()["recipe"] == tuned_keys["gn"].recipe
    # the key alone gives back the overrides
    assert recipe.parse(tuned_keys["gn"].recipe) == {**GN_RECIPE}
    assert recipe.parse(tuned_keys["afd"].recipe) == AFD_RECIPE


def test_a_pack_of_recipe_models_keeps_the_recipe():
    from simreg.paths import pack_dir
    from simreg.train.packs import Pack

    first = key_of(digits_config({"gn": GN_RECIPE}), "gn")
    members = (first, dataclasses.replace(first, seed="1"))
    pack = Pack(members)
    assert pack_dir(pack).endswith("/gn/a1_tna_k0_adam_lr0.001_betas0.8+0.99_decay1/seeds0-1")
    wildcards = {**members[0].as_dict(), "seeds": "0-1"}
    assert Pack.from_wildcards(wildcards) == pack


def test_a_recipe_text_round_trips_and_matches_the_wildcard():
    pattern = re.compile(WILDCARDS["recipe"])
    base = validate_config({})["training"]
    for overrides in (
        {},
        AFD_RECIPE,
        GN_RECIPE,
        {"lr": 1e-5, "momentum": 0.5},
        {"optimizer": "adam", "weight_decay": 5e-4, "epochs": 1000},
    ):
        text = recipe.token(recipe.canonical(overrides, base))
        assert pattern.fullmatch(text), text
        assert recipe.parse(text) == recipe.canonical(overrides, base)
        assert recipe.normalize(text) == text
    with pytest.raises(ValueError, match="unknown"):
        recipe.parse("_wd0.1_nesterov1")


def test_overrides_that_change_nothing_leave_the_key_alone():
    base = validate_config({})["training"]
    # equal to the training section, or what the optimizer ignores
    assert recipe.canonical({"optimizer": "sgd", "lr": 0.1, "batch_size": 64}, base) == {}
    assert recipe.canonical({"betas": [0.5, 0.9]}, base) == {}  # SGD ignores betas
    assert recipe.canonical({"optimizer": "adam", "momentum": 0.5}, base) == {"optimizer": "adam"}
    config = digits_config({"afd": {"lr": 0.1, "momentum": 0.9}})
    assert key_of(config, "afd") == key_of(digits_config(), "afd")


def test_the_rules_params_of_a_model_without_override_hold_no_optimizer():
    """The train rule's settings JSON of a plain model is what it was before the optimizer
    was a setting (Snakemake's params trigger would retrain every model otherwise); a model
    with an Adam recipe names it."""
    plain = digits_config()
    record = settings_record(settings_from_config(plain, key_of(plain, "gn")))
    assert "optimizer" not in record and "betas" not in record
    tuned = digits_config({"gn": GN_RECIPE})
    record = settings_record(settings_from_config(tuned, key_of(tuned, "gn")))
    assert record["optimizer"] == "adam" and record["betas"] == [0.8, 0.99]


def test_a_recipe_for_a_method_outside_the_grid_is_refused():
    with pytest.raises(ConfigError, match="pixel"):
        digits_config({"pixel": {"epochs": 2}})
    with pytest.raises(ConfigError, match="nesterov"):
        digits_config({"afd": {"nesterov": True}})


# the papers' recipes (docs/methods.md, "Each method's own recipe"): epochs and the epochs
# after which the learning rate drops
PAPER_EPOCHS = {
    "sgr": (50, ()),
    "gn": (50, ()),
    "afd": (900, (400, 800)),
    "pgd_at": (900, (400, 800)),
}
ATTIAS_EPOCHS = 40


def test_the_native_config_scales_every_paper_by_the_same_factor():
    config = load_config(ROOT / "config.yaml", SUBSET, NATIVE)
    factor = config["training"]["epochs"] / ATTIAS_EPOCHS
    raw = yaml.safe_load(NATIVE.read_text())["figures"]
    for grid in ("defense_comparison", "lrc_accuracy", "robustness_vs_exponent"):
        assert config["figures"][grid]["training"] == raw["defense_comparison"]["training"]
    native = config["figures"]["defense_comparison"]["training"]
    assert set(native) == set(PAPER_EPOCHS)
    for method, (epochs, drops) in PAPER_EPOCHS.items():
        r = native[method]
        assert r["epochs"] == math.ceil(epochs * factor), method
        if drops:  # lr * decay^(epoch // step) over one cycle: drops at step, 2 step, ...
            assert r["lr_cycle_epochs"] >= r["epochs"]
            assert [d * factor for d in drops] == [
                r["lr_step_epochs"] * (i + 1) for i in range(len(drops))
            ]
        else:
            assert r["lr_decay"] == 1.0


def test_the_native_config_validates_and_plans():
    cmd = [
        sys.executable,
        "-m",
        "simreg.cli",
        "check-config",
        "config.yaml",
        str(SUBSET),
        str(NATIVE),
    ]
    checked = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0 and "valid" in checked.stdout, checked.stderr
    planned = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--configfile", str(SUBSET), str(NATIVE)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    text = planned.stdout + planned.stderr
    assert planned.returncode == 0, text[-3000:]
    models = set(re.findall(r"results/models/\S+/model\.pt", text))
    assert any(
        "/afd/a1_tna_k0_wd0.0001_bs128_ep225_decay0.1_step100_cycle225/" in m for m in models
    )
    assert any("/sgr/a0.5_tna_k0_adam_lr0.001_bs128_ep13_decay1/" in m for m in models)
    # the methods without a recipe keep the subset config's paths
    assert any("/none/none/a0_tna_k0/seed0/" in m for m in models)
    assert any("/jacobian/a1_tna_k0/seed0/" in m for m in models)
