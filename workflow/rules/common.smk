# Helpers shared by the rules: model keys from wildcards, inputs and params from the
# registries (simreg.train.regularizers, simreg.evaluate.registry, simreg.report.targets).
# (Kept here, not beside the rules, so that `snakemake --lint` finds no mixed files.)

from simreg import devices
from simreg.code import code_hash
from simreg.data import download
from simreg.evaluate.bundles import (
    bundle_dir,
    bundle_evaluations,
    bundle_inputs,
    in_bundle,
    made_elsewhere,
)
from simreg.evaluate.bundles import per_model as per_model_evaluations
from simreg.report.reads import evaluation_bundles
from simreg.evaluate.registry import (
    EVALUATIONS,
    fgsm_perturbations_file,
    fgsm_source,
    robustbench_missing,
)
from simreg.paths import (
    as_list,
    checkpoint_dir,
    dataset_file,
    log_file,
    member_files,
    method_inputs,
    metrics_file,
    model_file,
    pack_checkpoint_dir,
    pack_dir,
    pack_log,
    similarity_file,
)
from simreg.report.claims import (
    CLAIMS_REPORT,
    CLAIMS_TABLE,
    claims_inputs,
    claims_params,
)
from simreg.report.selection import configured_epsilons
from simreg.report.targets import (
    ROBUSTBENCH,
    TARGETS,
    all_models,
    all_targets,
    figure_file,
    figure_targets,
    table_file,
    target_inputs,
    target_reads,
)
from simreg.train.model_key import ModelKey, baseline_key
from simreg.train.packs import Pack, pack_of, seed_packs
from simreg.train.regularizers import get_regularizer
from simreg.train.settings import TrainSettings, settings_from_config, settings_record

MODEL = ModelKey.wildcards()  # every model path with its wildcards: rule patterns


def benchmark_file(rule, log):
    """Where a job's time and memory go (Snakemake's benchmark TSV; read by simreg plan):
    results/benchmarks/<rule>/<the job's log path under results/logs/>.tsv"""
    return (
        f"results/benchmarks/{rule}/"
        + str(log).removeprefix("results/logs/").removesuffix(".log")
        + ".tsv"
    )


def job_device(wildcards, resources):
    """--device of a job: cuda when it was given a GPU (gpu resource > 0, or a GPU gres) and
    training.device is auto, so that a GPU job seeing no CUDA device fails (simreg.devices).
    """
    return devices.job_device(
        SETTINGS.training.device, resources.get("gpu", 0), resources.get("gres")
    )


def command_code(command, *implementations):
    """The hash of the package code that `simreg <command>` runs (and the registered
    implementations it calls), as a param: Snakemake reruns the jobs whose code was edited
    (simreg.code)."""
    return code_hash(f"simreg.cli:cmd_{command}", *implementations)


def model_key(wildcards):
    return ModelKey.from_wildcards(wildcards)


def regularizer_inputs(key):
    """The DAG inputs that model ``key``'s method needs, by name (its regularizer's `needs`)."""
    return method_inputs(
        key, get_regularizer(key.method).needs, baseline_key(key.task, key.seed)
    )


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
    neural = SETTINGS.params("neural")
    if part == "simulation":
        keys = NEURAL_SIMULATION
    else:
        keys = [
            k
            for k in neural
            if (k not in NEURAL_SIMULATION or k == "image_size")
            and k not in ("recordings", "stimuli", "scans", "multi_scan", "model_seeds")
        ]
    return json.dumps({k: neural[k] for k in keys})


# train.smk


def train_inputs(wildcards):
    return {
        "task": dataset_file(wildcards.task),
        **regularizer_inputs(model_key(wildcards)),
    }


def train_settings(wildcards):
    settings = settings_record(settings_from_config(config, model_key(wildcards)))
    # The fast path at its default (off) is left to the trainer's default, so that the
    # params of models trained before it existed do not change (Snakemake would rerun them).
    if settings["fast_path"] == TrainSettings().fast_path:
        del settings["fast_path"]
    return json.dumps(without_default_pass(settings))


def without_default_pass(settings):
    """The settings without the similarity methods' pair pass at its default (split), which
    the regularizer takes where none is given: the params of models trained before the
    setting existed stay as they were (a fused model's key and path differ anyway)."""
    if settings["regularizer"].get("pair_pass") == "split":
        del settings["regularizer"]["pair_pass"]
    return settings


def recipe_epochs_factor(key):
    """How many times the config's training epochs model ``key`` trains (its recipe may set
    more), rounded up: its training job's runtime is scaled by it."""
    epochs = settings_from_config(config, key).epochs
    return max(1, -(-epochs // SETTINGS.training.epochs))


def train_runtime(wildcards, attempt):
    factor = recipe_epochs_factor(model_key(wildcards))
    return SETTINGS.resources.train_runtime * factor * attempt


# training.pack_size > 1: one job (train_pack) trains a pack of seeds of one model key; each
# seed's model and metrics files are linked from its pack (train_pack_member).
PACK_SIZE = SETTINGS.training.pack_size
PACKS = seed_packs(all_models(config), PACK_SIZE) if PACK_SIZE > 1 else {}
PACK = Pack.wildcards()  # every pack path with its wildcards: rule patterns


def pack(wildcards):
    return Pack.from_wildcards(wildcards)


def train_pack_inputs(wildcards):
    """The task, and each file the method needs: one path if the seeds share it, else a list
    of one per seed (source_model), in the seeds' order."""
    members = [regularizer_inputs(key) for key in pack(wildcards).members]
    files = {name: [m[name] for m in members] for name in members[0]}
    return {
        "task": dataset_file(wildcards.task),
        **{k: v[0] if len(set(v)) == 1 else v for k, v in files.items()},
    }


def train_pack_flags(wildcards):
    """``--input name=path`` per file: once if shared, else once per seed."""
    files = {k: v for k, v in train_pack_inputs(wildcards).items() if k != "task"}
    return " ".join(
        f"--input {k}={path}" for k, v in files.items() for path in as_list(v)
    )


def train_pack_outputs(kind):
    """The members' files of one kind (model or metrics), in the seeds' order."""
    return lambda w: " ".join(member_files(pack(w), m)[kind] for m in pack(w).members)


def train_pack_settings(wildcards):
    members = pack(wildcards).members
    return json.dumps(
        [
            without_default_pass(settings_record(settings_from_config(config, m)))
            for m in members
        ]
    )


def train_pack_resource(name):
    """A per-seed resource (resources.train_mem_mb, train_runtime) times the pack's seeds
    (and the runtime times the recipe's epochs over the config's, rounded up)."""

    def resource(w, attempt):
        members = pack(w).members
        factor = recipe_epochs_factor(members[0]) if name == "train_runtime" else 1
        return getattr(SETTINGS.resources, name) * len(members) * factor * attempt

    return resource


def packed_model(wildcards):
    """The folder of the pack that trains this model."""
    return pack_dir(pack_of(model_key(wildcards), PACKS))


def packed_file(kind):
    """Where the pack wrote this model's file of ``kind`` (model or metrics)."""
    return lambda w: member_files(pack_of(model_key(w), PACKS), model_key(w))[kind]


# evaluate.smk


def evaluation_inputs(evaluation):
    """The evaluation's inputs; under per_model, for a file that a model's evaluate_model job
    writes, an input no rule makes instead (its <kind>_member job links it)."""

    def inputs(w):
        if EVALUATION_BUNDLES and bundled(evaluation, w):
            return {
                "bundled": made_elsewhere(
                    evaluation.name, model_key(w), w.get("setting")
                )
            }
        return evaluation.inputs(model_key(w), w.get("setting"), config)

    return inputs


# The shell command is the same string for every kind: Snakemake evaluates a rule's shell
# expression when the job runs, after the loop in evaluate.smk has moved on, so everything
# kind-specific travels in params (which are bound when the rule is defined).
EVALUATION_COMMAND = (
    "simreg evaluate {params.kind} {params.inputs} {params.outputs}"
    " --params '{params.params}' --keys '{params.model_keys}'"
    " --device {params.device} >> {log} 2>&1"
)


def evaluation_params(evaluation):
    return lambda w: json.dumps(evaluation.params(config, w.task, w.get("setting")))


# resources.evaluation_jobs: per_model: one job per model runs every evaluation the targets
# read of it (evaluate_model, into its bundle folder), and <kind>_member links each file to
# its usual path (simreg.evaluate.bundles).
EVALUATION_BUNDLES = evaluation_bundles(config) if per_model_evaluations(config) else {}


def bundle_entries(wildcards):
    return EVALUATION_BUNDLES.get(model_key(wildcards).stem, [])


def model_evaluations(wildcards):
    return bundle_evaluations(config, model_key(wildcards), bundle_entries(wildcards))


def bundle_job_inputs(wildcards):
    return bundle_inputs(model_evaluations(wildcards))


def bundle_job_evaluations(wildcards):
    return json.dumps(model_evaluations(wildcards))


def bundle_gpu(wildcards):
    """resources.gpu where one of its evaluations uses a GPU, else 0."""
    uses = any(EVALUATIONS[kind].gpu for kind, _ in bundle_entries(wildcards))
    return SETTINGS.resources.gpu if uses else 0


def bundle_runtime(wildcards):
    """The sum of its evaluations' runtimes (resources.eval_runtime, attack_runtime)."""
    return sum(
        getattr(SETTINGS.resources, EVALUATIONS[kind].runtime)
        for kind, _ in bundle_entries(wildcards)
    )


def bundle_code(wildcards):
    kinds = dict.fromkeys(kind for kind, _ in bundle_entries(wildcards))
    return command_code(
        "evaluate_model", *(EVALUATIONS[k].implementation for k in kinds)
    )


def bundled(evaluation, wildcards):
    return (evaluation.name, wildcards.get("setting")) in bundle_entries(wildcards)


def member_bundle(evaluation):
    """The bundle folder of the model whose job writes this file; where none does (no target
    reads the file), an input no rule makes, so that the kind's own rule makes it."""

    def bundle(wildcards):
        key, setting = model_key(wildcards), wildcards.get("setting")
        if bundled(evaluation, wildcards):
            return bundle_dir(key)
        return made_elsewhere(f"{evaluation.name}_member", key, setting)

    return bundle


def member_links(evaluation):
    """`ln` (else `cp`) of each of the file's outputs from the model's bundle folder."""

    def links(wildcards, output):
        key = model_key(wildcards)
        return " && ".join(
            f"(ln -f {in_bundle(key, path)} {path} || cp {in_bundle(key, path)} {path})"
            for path in output
        )

    return links


# fgsm.smk


def fgsm_source_model(wildcards):
    """The unregularized model of the task with the source seed (fgsm_transfer.source_seed)."""
    return model_file(fgsm_source(wildcards.task, wildcards.seed))


# report.smk


def report_inputs(wildcards):
    if ROBUSTBENCH in target_reads(wildcards.name, config):
        # an optional part: one message on what to install and fetch, before any job runs
        task = SETTINGS.figures[wildcards.name]["task"]
        if problem := robustbench_missing(config, task, robustbench_installed()):
            raise WorkflowError(problem)
    return target_inputs(wildcards.name, config)


def robustbench_installed():
    """Whether the RobustBench scoring jobs find the robustbench extra (in this environment,
    or in their own envs/robustbench.yaml under --software-deployment-method conda)."""
    from importlib.util import find_spec

    methods = workflow.deployment_settings.deployment_method
    return (
        any(m.name == "CONDA" for m in methods) or find_spec("robustbench") is not None
    )


def report_code(wildcards):
    return command_code("report", TARGETS[wildcards.name].implementation)


def report_reads(wildcards, input):
    return " ".join(
        f"--reads {kind} {' '.join(input[kind])}"
        for kind in target_reads(wildcards.name, config)
    )


def figure_params(wildcards):
    grid = SETTINGS.figures[wildcards.name]
    extra = {k: grid[k] for k in ("noise", "min_clean_ratio", "severity") if k in grid}
    # a selection plane: R_D/U_D at the configured ε per attack
    if "min_clean_ratio" in grid:
        extra["epsilons"] = configured_epsilons(config, grid["task"])
    if "epsilon" in grid:  # example images under noise (Fig. 11)
        extra.update(
            epsilon=grid["epsilon"],
            noise_clip=SETTINGS.noise.clip,
            noise_seed=SETTINGS.noise.seed,
        )
    return json.dumps({"title": f"{wildcards.name}: {grid['task']}", **extra})


def table_params(wildcards):
    grid = SETTINGS.figures.get("selection_plane", {})
    extra = {k: grid[k] for k in ("noise", "min_clean_ratio") if k in grid}
    if grid:
        extra["epsilons"] = configured_epsilons(config, grid["task"])
    return json.dumps(extra)


def claims_inputs_of_config(wildcards):
    return claims_inputs(config)


def claims_json(wildcards):
    return json.dumps(claims_params(config))


def claims_reads(wildcards, input):
    return " ".join(
        f"--reads {name} {' '.join(input[name])}"
        for name in claims_inputs(config)
        if input[name]
    )
