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


# noise.smk


def noise_grid(wildcards):
    dataset, _ = paths.dataset_and_color(wildcards.task)
    return json.dumps(config["noise"]["epsilons"][dataset])


# figures.smk


def figure_inputs(wildcards):
    grid = config["figures"][wildcards.name]
    return [paths.noise_file(k) for k in paths.grid_models(grid, config)]


def figure_params(wildcards):
    grid = config["figures"][wildcards.name]
    extra = {k: grid[k] for k in ("noise", "min_clean_ratio") if k in grid}
    return json.dumps({"title": f"{wildcards.name}: {grid['task']}", **extra})


def table_inputs(kind):
    def inputs(wildcards):
        keys = paths.table_models(wildcards.name, config)
        build = paths.noise_file if kind == "noise" else paths.metrics_file
        return [build(k) for k in keys]

    return inputs


def table_params(wildcards):
    grid = config["figures"].get("selection_plane", {})
    return json.dumps({k: grid[k] for k in ("noise", "min_clean_ratio") if k in grid})
