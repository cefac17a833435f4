# Helpers shared by the rules: model keys from wildcards, inputs and params from the
# registries (simreg.train.regularizers, simreg.evaluate.registry, simreg.report.targets).
# (Kept here, not beside the rules, so that `snakemake --lint` finds no mixed files.)

from simreg.evaluate.registry import EVALUATIONS, fgsm_perturbations_file, fgsm_source
from simreg.paths import dataset_file, similarity_file
from simreg.report.selection import configured_epsilons
from simreg.report.targets import (
    TARGETS,
    all_targets,
    figure_file,
    table_file,
    target_inputs,
)
from simreg.train import regularizers
from simreg.train.model_key import (
    ModelKey,
    checkpoint_dir,
    log_file,
    metrics_file,
    model_file,
)
from simreg.train.settings import TrainSettings, settings_from_config

MODEL = ModelKey.wildcards()  # every model path with its wildcards: rule patterns


def model_key(wildcards):
    return ModelKey.from_wildcards(wildcards)


def optional(flag, value):
    """``--flag value``, or nothing when the config value is null."""
    return "" if value is None else f"{flag} {value}"


def named_files(flag, files):
    """``--flag name=path`` for each named file."""
    return " ".join(f"{flag} {name}={path}" for name, path in files.items())


# neural.smk

NEURAL_SIMULATION = (
    "image_size",
    "neurons",
    "train_images",
    "validation_images",
    "test_images",
    "test_repeats",
    "complex_fraction",
    "simulation_seed",
)


def neural_params(part):
    """JSON of the neural.* keys one neural rule's command takes: the simulation's sizes,
    or the predictor's architecture and fit."""
    neural = config["neural"]
    if part == "simulation":
        keys = NEURAL_SIMULATION
    else:
        keys = [
            k
            for k in neural
            if k not in NEURAL_SIMULATION
            and k not in ("recordings", "stimuli", "scans", "model_seeds")
        ]
    return json.dumps({k: neural[k] for k in keys})


# train.smk


def train_inputs(wildcards):
    return {
        "task": dataset_file(wildcards.task),
        **regularizers.inputs(model_key(wildcards)),
    }


def train_settings(wildcards):
    settings = dataclasses.asdict(settings_from_config(config, model_key(wildcards)))
    # The fast path at its default (off) is left to the trainer's default, so that the
    # params of models trained before it existed do not change (Snakemake would rerun them).
    if settings["fast_path"] == TrainSettings().fast_path:
        del settings["fast_path"]
    return json.dumps(settings)


# evaluate.smk


def evaluation_inputs(evaluation):
    return lambda w: evaluation.inputs(model_key(w), w.get("setting"), config)


# The shell command is the same string for every kind: Snakemake evaluates a rule's shell
# expression when the job runs, after the loop in evaluate.smk has moved on, so everything
# kind-specific travels in params (which are bound when the rule is defined).
EVALUATION_COMMAND = (
    "simreg evaluate {params.kind} {params.inputs} {params.outputs}"
    " --params '{params.params}' --keys '{params.model_keys}'"
    " --device {params.device} 2>> {log}"
)


def evaluation_params(evaluation):
    return lambda w: json.dumps(evaluation.params(config, w.task, w.get("setting")))


# fgsm.smk


def fgsm_source_model(wildcards):
    """The unregularized model of the task with the source seed (fgsm_transfer.source_seed)."""
    return model_file(fgsm_source(wildcards.task, wildcards.seed))


# report.smk


def report_inputs(wildcards):
    return target_inputs(wildcards.name, config)


def report_reads(wildcards, input):
    return " ".join(
        f"--reads {kind} {' '.join(input[kind])}"
        for kind in TARGETS[wildcards.name].reads
    )


def figure_params(wildcards):
    grid = config["figures"][wildcards.name]
    extra = {k: grid[k] for k in ("noise", "min_clean_ratio", "severity") if k in grid}
    # a selection plane: R_D/U_D at the configured ε per attack
    if "min_clean_ratio" in grid:
        extra["epsilons"] = configured_epsilons(config, grid["task"])
    if "epsilon" in grid:  # example images under noise (Fig. 11)
        extra.update(
            epsilon=grid["epsilon"],
            noise_clip=config["noise"]["clip"],
            noise_seed=config["noise"]["seed"],
        )
    return json.dumps({"title": f"{wildcards.name}: {grid['task']}", **extra})


def table_params(wildcards):
    grid = config["figures"].get("selection_plane", {})
    extra = {k: grid[k] for k in ("noise", "min_clean_ratio") if k in grid}
    if grid:
        extra["epsilons"] = configured_epsilons(config, grid["task"])
    return json.dumps(extra)
