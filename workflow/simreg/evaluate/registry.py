"""The evaluation kinds: one registry that the rules, the CLI, the figures and the tables read.

Each :class:`Evaluation` says where its outputs go, what it reads, which config values it
takes, what its tidy CSV holds, and which function runs it. Every kind runs through
``simreg evaluate <kind>``, whose shared preamble (:mod:`simreg.evaluate.context`) loads the
model and the test subset, derives seeds and attaches the provenance. The declarations here
import no torch, so the Snakefile can read them.

A new evaluation: a module in this package with a function ``@implements("<kind>")`` (called
as ``function(context, **params)``), one ``register(Evaluation(...))`` entry (here, or both in
a plugin module named in the config's ``plugins``), and its config section. The functions are
registered in ``RUNNERS`` when their modules are imported; the declarations here import none
of them (:func:`runner` imports the one a command runs; :mod:`simreg.code` finds it
statically for the rules' code hash).

    results/noise/<model>.csv                          random noise (simreg.evaluate.noise)
    results/fgsm/perturbations/{task}/seed{seed}.h5    FGSM signs of the source model (its seed)
    results/fgsm/transfer/<model>.csv                  transferred FGSM accuracy
    results/boundary/{setting}/<model>.csv|h5          Boundary Attack scores, perturbations
    results/spectrum/{setting}/<model>.h5              Fourier spectrum of those perturbations
    results/whitebox/<model>.csv                       white-box FGSM / PGD-L∞ accuracy
    results/minimal_distance/<model>.csv               minimal L0/L1/L2/L∞ distances
    results/lrc_noise/<model>.csv                      long-range-correlated noise (Roth)
    results/eigenspectrum/<model>.csv                  penultimate eigenspectrum, exponent
    results/sensitivity/<model>.csv                    representation sensitivity (AFD)
    results/corruption_accuracy/<model>.csv            accuracy per corruption and severity

where <model> is the model key's stem (:mod:`simreg.train.model_key`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable

from simreg.code import load_registered, registered_entry
from simreg.paths import RESULTS, corruptions_file, dataset_and_color, dataset_file, model_file
from simreg.settings import typed
from simreg.train.model_key import ModelKey, baseline_key


@dataclass(frozen=True)
class Evaluation:
    """One evaluation kind of every model."""

    name: str  # rule, CLI and config-section name
    description: str
    directory: str  # under results/
    outputs: dict  # output name -> file suffix; the first is the tidy table
    columns: tuple  # the tidy table's own columns (besides keys and provenance)
    params: Callable[[dict, str, str | None], dict]  # (config, task, setting) -> params
    uses_model: bool = True  # loads the model and the task's test split
    extra_inputs: Callable[[ModelKey, str | None], dict] = field(default=lambda key, setting: {})
    # inputs that depend on the config too: (config, key, setting) -> {name: file}
    config_inputs: Callable[[dict, ModelKey, str | None], dict] | None = None
    settings: Callable[[dict], list] | None = None  # per-setting outputs: config -> names
    # settings only some figures and tables read: config -> {setting: [target names]}; a
    # setting not named is read by every target that reads the evaluation
    read_by: Callable[[dict], dict] | None = None
    gpu: bool = True
    runtime: str = "eval_runtime"  # resources key of the job's runtime

    @property
    def implementation(self) -> str:
        """``"module:function"`` of the function that runs it (for the rules' code hash)."""
        return registered_entry(RUNNERS, "implements", __package__, self.name)

    def output_files(self, key: ModelKey, setting: str | None = None) -> dict[str, str]:
        folder = RESULTS / self.directory
        if self.settings is not None:
            folder = folder / str(setting)
        return {name: str(folder / f"{key.stem}{suffix}") for name, suffix in self.outputs.items()}

    def log_file(self, key: ModelKey, setting: str | None = None) -> str:
        """results/logs/<directory>/[<setting>/]<model>.log"""
        table = Path(self.output_files(key, setting)[next(iter(self.outputs))])
        return str(RESULTS / "logs" / table.relative_to(RESULTS).with_suffix(".log"))

    def files(self, key: ModelKey, config: dict, readers=None) -> list[str]:
        """The tidy table (first output) of every setting of model ``key``; with ``readers``
        (the names of the figures, tables or claim grids asking), of the settings they read
        (``read_by``)."""
        first = next(iter(self.outputs))
        return [self.output_files(key, s)[first] for s in self.settings_read(config, readers)]

    def settings_read(self, config: dict, readers=None) -> list:
        """The settings that ``readers`` read (None: every setting; [None] without
        settings)."""
        if self.settings is None:
            return [None]
        read_by = self.read_by(config) if self.read_by is not None else {}
        return [
            s
            for s in self.settings(config)
            if readers is None or s not in read_by or set(readers) & set(read_by[s])
        ]

    def inputs(
        self, key: ModelKey, setting: str | None = None, config: dict | None = None
    ) -> dict[str, str]:
        files = {}
        if self.uses_model:
            files = {"model": model_file(key), "dataset": dataset_file(key.task)}
        files.update(self.extra_inputs(key, setting))
        if self.config_inputs is not None:
            if config is None:
                raise ValueError(f"the inputs of evaluation {self.name!r} depend on the config")
            files.update(self.config_inputs(config, key, setting))
        return files


EVALUATIONS: dict[str, Evaluation] = {}
RUNNERS: dict[str, Callable] = {}  # evaluation name -> the function that runs it


def implements(name: str):
    """Decorator: the function runs evaluation ``name``, called as ``function(context,
    **params)``. Name it with a string literal (simreg.code reads it statically)."""

    def decorate(function):
        if RUNNERS.get(name, function) is not function:
            raise ValueError(f"evaluation {name!r} is already run by {RUNNERS[name].__module__}")
        RUNNERS[name] = function
        return function

    return decorate


def runner(name: str) -> Callable:
    """The function that runs evaluation ``name`` (importing its module if need be)."""
    return load_registered(RUNNERS, "implements", __package__, name)


def register(evaluation: Evaluation) -> Evaluation:
    if evaluation.name in EVALUATIONS and EVALUATIONS[evaluation.name] != evaluation:
        raise ValueError(f"an evaluation named {evaluation.name!r} is already registered")
    EVALUATIONS[evaluation.name] = evaluation
    return evaluation


def get_evaluation(name: str) -> Evaluation:
    try:
        return EVALUATIONS[name]
    except KeyError:
        raise ValueError(f"unknown evaluation {name!r}; known: {sorted(EVALUATIONS)}") from None


def dataset_grid(section, task: str):
    """The per-dataset ε grid of a config section (typed: noise, fgsm_transfer) for a task."""
    return section.epsilons[dataset_and_color(task)[0]]


# FGSM's source perturbations: made once per task by the rule fgsm_perturbations from one
# fixed unregularized model of that task, trained with its own seed
# (``fgsm_transfer.source_seed``, outside every figure grid's seeds: simreg.config checks it),
# and read by every fgsm_transfer evaluation of the task, the ``none`` models included, so
# that each curve is a transfer (paper §5.1: "perturbations from an unregularized model").
def fgsm_source(task: str, seed) -> ModelKey:
    """The unregularized model of ``task`` trained with the source seed ``seed``."""
    return baseline_key(task, seed)


def fgsm_source_seed(config: dict) -> int:
    return int(typed(config).fgsm_transfer.source_seed)


def fgsm_perturbations_file(task: str, seed) -> str:
    return str(RESULTS / "fgsm" / "perturbations" / task / f"seed{seed}.h5")


def noise_params(noise, task: str) -> dict:
    return {
        "epsilons": dataset_grid(noise, task),
        "seed": noise.seed,
        "n_images": noise.n_images,
        "clip": noise.clip,
    }


register(
    Evaluation(
        name="noise",
        description="test accuracy under Gaussian, uniform and salt-and-pepper noise (§5.1)",
        directory="noise",
        outputs={"csv": ".csv"},
        columns=("noise", "epsilon", "accuracy"),
        params=lambda config, task, setting: noise_params(typed(config).noise, task),
    )
)

register(
    Evaluation(
        name="fgsm_transfer",
        description="accuracy under FGSM transferred from one fixed unregularized model (§5.1)",
        directory="fgsm/transfer",
        outputs={"csv": ".csv"},
        columns=("epsilon", "accuracy"),
        params=lambda config, task, setting: {
            "epsilons": dataset_grid(typed(config).fgsm_transfer, task)
        },
        config_inputs=lambda config, key, setting: {
            "perturbations": fgsm_perturbations_file(key.task, fgsm_source_seed(config))
        },
    )
)


def boundary_params(boundary, setting: str) -> dict:
    return {
        "setting": setting,
        "attack": boundary.settings[setting],
        **{
            k: getattr(boundary, k)
            for k in (
                "n_images",
                "repeats",
                "subset_seed",
                "batch_size",
                "init_retries",
                "init_directions",
                "init_steps",
            )
        },
    }


register(
    Evaluation(
        name="boundary",
        description="Boundary Attack score S(M) = median ||δ||²/d and its perturbations (App. 7.1)",
        directory="boundary",
        outputs={"csv": ".csv", "h5": ".h5"},
        columns=(
            "setting",
            "repeat",
            "score",
            "n_images",
            "n_solved",
            "n_unsolved",
            "n_init_retried",
            "start_score",
            "accepted_median",
            "seconds",
            "mean_score",
        ),
        params=lambda config, task, setting: boundary_params(typed(config).boundary, setting),
        settings=lambda config: list(typed(config).boundary.settings),
        read_by=lambda config: typed(config).boundary.read_by or {},
        runtime="attack_runtime",
    )
)

register(
    Evaluation(
        name="spectrum",
        description="Fourier spectrum of the Boundary Attack perturbations (§5.5)",
        directory="spectrum",
        outputs={"h5": ".h5"},
        columns=("power", "radius", "radial_power"),
        params=lambda config, task, setting: {},
        uses_model=False,
        extra_inputs=lambda key, setting: {
            "boundary": EVALUATIONS["boundary"].output_files(key, setting)["h5"]
        },
        settings=lambda config: [typed(config).spectrum.setting],
        gpu=False,
    )
)

register(
    Evaluation(
        name="whitebox",
        description="accuracy under white-box FGSM and PGD-L∞, ε in units of 1/255",
        directory="whitebox",
        outputs={"csv": ".csv"},
        columns=("attack", "epsilon_255", "epsilon", "accuracy"),
        params=lambda config, task, setting: typed(config).params("whitebox"),
    )
)

register(
    Evaluation(
        name="minimal_distance",
        description="smallest L0/L1/L2/L∞ adversarial distance per image over an attack suite",
        directory="minimal_distance",
        outputs={"csv": ".csv"},
        columns=("image", "label", "norm", "distance", "attack", "n_successful"),
        params=lambda config, task, setting: typed(config).params("minimal_distance"),
        runtime="attack_runtime",
    )
)

# ---- related defenses (issue #13) --------------------------------------------------------
register(
    Evaluation(
        name="lrc_noise",
        description="accuracy under long-range-correlated noise, worst of draws, per decay length "
        "ζ (Roth et al. 2018, Fig. 3) and per ε at one ζ (App. Fig. 4)",
        directory="lrc_noise",
        outputs={"csv": ".csv"},
        columns=("curve", "zeta", "epsilon", "unit", "draws", "accuracy"),
        params=lambda config, task, setting: typed(config).params("lrc_noise"),
    )
)

register(
    Evaluation(
        name="eigenspectrum",
        description="power-law exponent of the penultimate-layer covariance eigenspectrum "
        "(Schaeffer et al. §2.3)",
        directory="eigenspectrum",
        outputs={"csv": ".csv"},
        columns=(
            "rank",
            "eigenvalue",
            "in_fit",
            "exponent",
            "intercept",
            "fit_first",
            "fit_last",
            "n_fit",
        ),
        params=lambda config, task, setting: typed(config).params("eigenspectrum"),
    )
)

register(
    Evaluation(
        name="sensitivity",
        description="representation sensitivity ||E(x) − E(x')|| / ||E(x)|| under PGD-L∞ "
        "(Bashivan et al. Fig. 4)",
        directory="sensitivity",
        outputs={"csv": ".csv"},
        columns=("epsilon_255", "epsilon", "median", "mean", "std"),
        params=lambda config, task, setting: typed(config).params("sensitivity"),
    )
)
register(
    Evaluation(
        name="corruption_accuracy",
        description="accuracy per common corruption and severity, CIFAR-10-C style (§5.4-5.5)",
        directory="corruption_accuracy",
        outputs={"csv": ".csv"},
        columns=("corruption", "severity", "frequency_group", "accuracy"),
        params=lambda config, task, setting: typed(config).params("corruption_accuracy"),
        extra_inputs=lambda key, setting: {"corruptions": corruptions_file(key.task)},
    )
)


# RobustBench reference models (App. 7.9, Fig. 24): not models of ours, so not per model key;
# rule robustbench_corruptions scores each on the task's corrupted set
# (simreg.evaluate.robustbench).
def robustbench_file(task: str, threat_model: str, name: str) -> str:
    folder = RESULTS / "corruption_accuracy" / "robustbench" / task / threat_model
    return str(folder / f"{name}.csv")


def robustbench_files(config: dict, task: str) -> list[str]:
    return [
        robustbench_file(task, m["threat_model"], m["name"])
        for m in typed(config).robustbench.models
    ]


def robustbench_weights(model_dir, dataset: str, threat_model: str, name: str) -> Path:
    """Where RobustBench keeps (and simreg reads) a model's weights: its own layout."""
    return Path(model_dir) / dataset / threat_model / f"{name}.pt"


ROBUSTBENCH_EXTRA = 'pip install -e ".[robustbench]"'


def robustbench_missing(config: dict, task: str, extra_installed: bool) -> str | None:
    """What Fig. 24 still lacks to score the RobustBench models on ``task``'s corrupted set:
    one message saying what to install and which weights to fetch to where; None when
    nothing is missing. Models whose table exists already need neither."""
    robustbench = typed(config).robustbench
    model_dir = robustbench.model_dir
    dataset = dataset_and_color(task)[0]
    to_score = [
        m
        for m in robustbench.models
        if not Path(robustbench_file(task, m["threat_model"], m["name"])).exists()
    ]
    weights = [
        robustbench_weights(model_dir, dataset, m["threat_model"], m["name"]) for m in to_score
    ]
    absent = [w for w in weights if not w.is_file()]
    lacks = []
    if to_score and not extra_installed:
        lacks.append(
            f"the robustbench extra: {ROBUSTBENCH_EXTRA} (or run with "
            "--software-deployment-method conda, which uses envs/robustbench.yaml)"
        )
    if absent:
        fetch = ", ".join(
            f"('{m['name']}', '{m['threat_model']}')"
            for m, w in zip(to_score, weights)
            if not w.is_file()
        )
        lacks.append(
            "the RobustBench weights (simreg never downloads them), at\n      "
            + "\n      ".join(str(w.resolve()) for w in absent)
            + "\n    fetched once on a machine with internet and the extra (RobustBench writes "
            "<model_dir>/<dataset>/<threat_model>/<name>.pt):\n"
            f'      python -c "from robustbench.utils import load_model; [load_model(n, '
            f"model_dir='models', dataset='{dataset}', threat_model=t) for n, t in "
            f'[{fetch}]]"\n    then copy that models/ folder to {Path(model_dir).resolve()} '
            "(robustbench.model_dir)"
        )
    if not lacks:
        return None
    return (
        "Fig. 24 (figures.robustbench_comparison) scores RobustBench models, an optional "
        "part of simreg (docs/running.md, section 7). It needs:\n  - "
        + "\n  - ".join(lacks)
        + "\n`snakemake all` builds it only with robustbench.enabled: true."
    )
