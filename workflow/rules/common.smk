# Helpers shared by the rules: model keys from wildcards, input and params functions.
# (Kept here, not beside the rules, so that `snakemake --lint` finds no mixed files.)

from simreg.paths import ModelKey
from simreg.train import settings_from_config


def model_key(wildcards):
    """The model key of a rule's wildcards; refuses non-canonical paths (no duplicate models)."""
    key = ModelKey(**{f: wildcards[f] for f in ModelKey.__dataclass_fields__})
    canonical = ModelKey.make(**key.as_dict())
    if key != canonical:
        raise ValueError(f"non-canonical model path {key.stem}; use {canonical.stem}")
    return key


# train.smk


def regularization_input(wildcards):
    if wildcards.regularization == paths.NO_REGULARIZATION:
        return []
    return paths.similarity_file(wildcards.regularization)


def regularization_images(wildcards):
    """The dataset the regularization images are read from (named in the similarity file)."""
    if wildcards.regularization == paths.NO_REGULARIZATION:
        return []
    return paths.dataset_file(paths.regularization_images(wildcards.regularization))


def optional(flag, value):
    """``--flag value``, or nothing when the config value is null."""
    return "" if value is None else f"{flag} {value}"


def dataset_grid(section, task):
    """The per-dataset grid of a config section (noise, fgsm_transfer) for a task."""
    dataset, _ = paths.dataset_and_color(task)
    return section["epsilons"][dataset]


# noise.smk


def noise_grid(wildcards):
    return json.dumps(dataset_grid(config["noise"], wildcards.task))


# attacks.smk


def fgsm_source_model(wildcards):
    """The unregularized model of the same task and seed (method none, alpha 0)."""
    return paths.model_file(paths.fgsm_source(wildcards.task, wildcards.seed))


# figures.smk


def figure_inputs(wildcards):
    return paths.figure_inputs(wildcards.name, config)


def figure_params(wildcards):
    grid = config["figures"][wildcards.name]
    extra = {k: grid[k] for k in ("noise", "min_clean_ratio") if k in grid}
    return json.dumps({"title": f"{wildcards.name}: {grid['task']}", **extra})


def table_inputs(wildcards):
    return paths.table_inputs(wildcards.name, config)


def table_params(wildcards):
    grid = config["figures"].get("selection_plane", {})
    return json.dumps({k: grid[k] for k in ("noise", "min_clean_ratio") if k in grid})
