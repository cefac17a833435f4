"""What a config's targets read: per model, the evaluations its figures, tables and claims
read of it (``resources.evaluation_jobs: per_model`` runs them in one job per model:
:mod:`simreg.evaluate.bundles`)."""

from __future__ import annotations

from collections import defaultdict

from simreg.evaluate.registry import EVALUATIONS
from simreg.report.claims import claims_inputs
from simreg.report.targets import TARGETS, all_models, all_targets, target_inputs


def _requested_files(config: dict) -> list[str]:
    """Every input file of the config's figures, tables and claims, in their order."""
    built = set(all_targets(config))
    files = [
        f
        for name, target in TARGETS.items()
        if target.file in built
        for group in target_inputs(name, config).values()
        for f in group
    ]
    files += [f for group in claims_inputs(config).values() for f in group]
    return list(dict.fromkeys(files))


def evaluation_bundles(config: dict) -> dict[str, list[tuple[str, str | None]]]:
    """Per model stem, the (kind, setting) of each evaluation its job runs, in an order in
    which every evaluation comes after those whose outputs it reads (spectrum after the
    Boundary Attack's perturbations): those the config's targets read, and what they read."""
    made = {}  # every output file an evaluation of a configured model can write
    for key in all_models(config):
        for kind, evaluation in EVALUATIONS.items():
            for setting in evaluation.settings_read(config):
                for path in evaluation.output_files(key, setting).values():
                    made[path] = (key, kind, setting)
    bundles = defaultdict(list)

    def add(key, kind, setting):
        entry = (kind, setting)
        if entry in bundles[key.stem]:
            return
        for path in EVALUATIONS[kind].inputs(key, setting, config).values():
            if path in made and made[path][0] == key:  # read from the same model's job
                add(*made[path])
        bundles[key.stem].append(entry)

    for path in _requested_files(config):
        if path in made:
            add(*made[path])
    return dict(bundles)
