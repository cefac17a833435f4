"""Experiment sets: a config's `experiments` selects the figure grids `all` builds."""

from pathlib import Path

import pytest
import yaml

from simreg import config as config_module
from simreg.config import ConfigError, load_config
from simreg.report.experiments import ALL, EXPERIMENTS, experiment_targets
from simreg.report.targets import TARGETS, Target, all_models, all_targets

ROOT = Path(__file__).resolve().parents[1]
OWN_DATA = ROOT / "configs" / "own-data.yaml"
FIGURES = {name for name, target in TARGETS.items() if target.kind == "figure"}


def test_every_figure_is_in_an_experiment_set():
    covered = {grid for experiment in EXPERIMENTS.values() for grid in experiment.grids}
    assert covered == FIGURES
    assert set(EXPERIMENTS["paper-core"].grids) <= set(EXPERIMENTS["paper-main"].grids)


def test_the_default_keeps_every_grid_of_config_yaml():
    raw = yaml.safe_load((ROOT / "config.yaml").read_text())
    config = load_config(ROOT / "config.yaml")
    assert config["experiments"] == [ALL]
    assert set(config["figures"]) == set(raw["figures"])


def test_a_selection_keeps_only_its_grids():
    config = load_config(
        ROOT / "config.yaml", overrides={"experiments": ["defenses", "noise_examples"]}
    )
    assert set(config["figures"]) == {*EXPERIMENTS["defenses"].grids, "noise_examples"}
    assert {t.split("/")[-1].split(".")[0] for t in all_targets(config)} >= {
        "defense_comparison",
        "lrc_accuracy",
        "robustness_vs_exponent",
        "noise_examples",
    }
    assert "noise_accuracy" not in "".join(all_targets(config))


def test_unknown_or_unconfigured_selections_name_the_key():
    with pytest.raises(ConfigError, match="experiments"):
        load_config(ROOT / "config.yaml", overrides={"experiments": ["paper-everything"]})
    with pytest.raises(ConfigError, match="experiments.*noise_pixel"):
        load_config(
            ROOT / "config.yaml",
            ROOT / "configs" / "quick.yaml",
            overrides={"experiments": ["noise_pixel"], "figures": {"noise_pixel": None}},
        )


def test_own_data_config_is_short_and_sets_nothing_to_null():
    text = OWN_DATA.read_text()
    assert len(text.splitlines()) <= 20
    assert "null" not in text and "~" not in text

    def values(node):
        if isinstance(node, dict):
            for value in node.values():
                yield from values(value)
        else:
            yield node

    assert None not in values(yaml.safe_load(text))
    config = load_config(ROOT / "config.yaml", OWN_DATA)
    assert set(config["figures"]) == {"noise_accuracy", "attack_robustness", "selection_plane"}
    assert {key.task for key in all_models(config)} == {"mydata_gray"}


def test_a_grid_added_to_config_yaml_does_not_reach_the_own_data_plan(tmp_path, monkeypatch):
    """A figure registered later, with its grid added to (a copy of) config.yaml, plans new
    models under config.yaml and none under the own-data config, whose targets and models
    stay exactly what they were."""
    before = load_config(ROOT / "config.yaml", OWN_DATA)
    plan_before = (all_targets(before), all_models(before))

    name = "noise_accuracy_later"
    monkeypatch.setitem(
        TARGETS,
        name,
        Target(
            name,
            "figure",
            (),
            "a figure added later",
            ("noise",),
            "simreg.report.draw:noise_accuracy",
        ),
    )
    schema = yaml.safe_load(config_module.SCHEMA_PATH.read_text())
    schema["properties"]["figures"]["properties"][name] = {"$ref": "#/definitions/plain_grid"}
    schema_path = tmp_path / "config.schema.yaml"
    schema_path.write_text(yaml.safe_dump(schema, allow_unicode=True))
    monkeypatch.setattr(config_module, "SCHEMA_PATH", schema_path)
    paper = yaml.safe_load((ROOT / "config.yaml").read_text())
    paper["figures"][name] = {
        "task": "cifar10_gray",
        "regularization": "cifar10_gray",
        "methods": ["none", "threshold"],
        "alpha": [3],
        "threshold": [0.7],
        "seeds": [0, 1, 2],
    }
    copy = tmp_path / "config.yaml"
    copy.write_text(yaml.safe_dump(paper, allow_unicode=True))

    grown = load_config(copy)
    assert name in grown["figures"]
    new_models = set(all_models(grown)) - set(all_models(load_config(ROOT / "config.yaml")))
    assert new_models  # the added grid does plan runs where it is selected (by `all`)
    after = load_config(copy, OWN_DATA)
    assert name not in after["figures"]
    assert (all_targets(after), all_models(after)) == plan_before


def test_list_experiments_prints_every_set_with_its_targets(capsys):
    from simreg.cli import main

    main(["list-experiments"])
    out = capsys.readouterr().out
    for experiment in EXPERIMENTS.values():
        assert f"{experiment.name}: {experiment.description}" in out
        assert ", ".join(experiment_targets(experiment)) in out
    assert "defense_comparison, defenses, attack_auc" in out  # the tables of a set's grids
