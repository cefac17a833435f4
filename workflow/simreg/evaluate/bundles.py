"""One evaluation job per model (``resources.evaluation_jobs: per_model``): which evaluations
each model's job runs, and where it writes them.

By default every evaluation of every model is a job of its own (one rule per kind,
``simreg evaluate <kind>``). On a CPU run of small models most of such a job is the process
starting (Python, torch, foolbox imported; docs/running.md, "Per-job overhead"), so with
``per_model`` one job per model (rule ``evaluate_model``, ``simreg evaluate-model``) runs, in
one process, every evaluation the config's figures, tables and claims read of that model, into
its bundle folder::

    results/evaluation_bundles/<model>/<the file's path under results/>

and one local job per file (rule ``<kind>_member``) links it to its usual path, where the
figures read it. The outputs are the same files, made by the same functions from the same
inputs, so the results do not change (tests/test_evaluation_bundles.py).

What a bundle holds is decided when the DAG is built, from the config's targets (the files
their inputs list: :func:`simreg.report.reads.evaluation_bundles`). An evaluation file that
no target reads (a model outside the grids, named on the command line) is made by its kind's
own rule, one job for it alone, as under ``per_kind``: both ways are defined, and each file
has exactly one of them (:func:`made_elsewhere`). Naming a bundled file reruns its link only;
deleting the bundle folder (or ``--forcerun evaluate_model``) reruns the model's
evaluations.
"""

from __future__ import annotations

from pathlib import Path

from simreg.evaluate.registry import EVALUATIONS
from simreg.paths import RESULTS
from simreg.settings import typed
from simreg.train.model_key import ModelKey

BUNDLES = RESULTS / "evaluation_bundles"
PER_MODEL = "per_model"


def per_model(config: dict) -> bool:
    return typed(config).resources.evaluation_jobs == PER_MODEL


def bundle_dir(key: ModelKey) -> str:
    return str(BUNDLES / key.stem)


def in_bundle(key: ModelKey, path: str) -> str:
    """Where the job of model ``key`` writes the file that is read at ``path``."""
    return str(Path(bundle_dir(key)) / Path(path).relative_to(RESULTS))


def bundle_evaluations(
    config: dict, key: ModelKey, entries: list[tuple[str, str | None]]
) -> list[dict]:
    """What ``simreg evaluate-model`` runs for model ``key``: per evaluation its kind,
    setting, inputs (an output of an earlier one read from the bundle), outputs (in the
    bundle) and params."""
    written = {}
    evaluations = []
    for kind, setting in entries:
        evaluation = EVALUATIONS[kind]
        outputs = evaluation.output_files(key, setting)
        evaluations.append(
            {
                "kind": kind,
                "setting": setting,
                "inputs": {
                    name: written.get(path, path)
                    for name, path in evaluation.inputs(key, setting, config).items()
                },
                "outputs": {name: in_bundle(key, path) for name, path in outputs.items()},
                "params": evaluation.params(config, key.task, setting),
            }
        )
        written.update({path: in_bundle(key, path) for path in outputs.values()})
    return evaluations


def bundle_inputs(evaluations: list[dict]) -> dict[str, str]:
    """The job's DAG inputs (:func:`bundle_evaluations`'s list): its evaluations' inputs but
    those that one of them writes into the bundle."""
    own = {path for evaluation in evaluations for path in evaluation["outputs"].values()}
    inputs = {}
    for evaluation in evaluations:
        for name, path in evaluation["inputs"].items():
            if path not in own and path not in inputs.values():
                kind, setting = evaluation["kind"], evaluation["setting"]
                inputs[name if name not in inputs else f"{kind}_{setting}_{name}"] = path
    return inputs


def made_elsewhere(rule: str, key: ModelKey, setting: str | None) -> str:
    """An input that no rule makes and no file is, given to ``rule``'s job for model ``key``
    where the other way makes the file: Snakemake then drops ``rule`` as a candidate and takes
    the one rule left, so the two ways (a kind's own rule, a bundle's link) never both apply."""
    return str(RESULTS / "evaluation_bundles.elsewhere" / rule / key.stem / str(setting))
