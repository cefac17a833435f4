"""Where every output lives, and which models each figure needs.

One place builds every path, so rules, CLI and tests agree. A model is identified by
``ModelKey``; parameters a method does not use are canonicalized (``none`` has no
regularization set and alpha 0; ``pixel`` and ``none`` have no threshold), so that one
model is never trained twice under two names.

    results/datasets/{dataset}_{color}.h5
    results/similarity/{dataset}_{color}_n{N}.h5
    results/models/{task}/{regularization}/{method}/a{alpha}_t{threshold}_k{pairs}/seed{seed}/
        model.pt, metrics.csv
    results/checkpoints/<same>/last.pt          (not a Snakemake output: survives failures)
    results/noise/<same>.csv                           random noise (simreg.noise)
    results/fgsm/perturbations/{task}/seed{seed}.h5    FGSM signs of the `none` model (simreg.fgsm)
    results/fgsm/transfer/<same>.csv                   transferred FGSM accuracy
    results/boundary/{setting}/<same>.csv|h5           Boundary Attack scores, perturbations
    results/spectrum/{setting}/<same>.h5               Fourier spectrum of those perturbations
    results/whitebox/<same>.csv                        white-box FGSM / PGD-L∞ accuracy
    results/minimal_distance/<same>.csv                minimal L0/L1/L2/L∞ distances
    results/figures/{name}.pdf|png, results/tables/{name}.csv|md

Each figure and table draws on the models of one figure grid of the config, and on the
evaluations listed for it in ``FIGURES`` / ``TABLES``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from simreg.methods import get_method

RESULTS = Path("results")
NO_REGULARIZATION = "none"
NOT_APPLICABLE = "na"

# Snakemake wildcard constraints, matching what the paths below produce.
WILDCARDS = {
    "dataset": r"[a-z0-9]+",
    "color": r"gray|rgb",
    "task": r"[a-z0-9]+_(gray|rgb)",
    "regularization": r"none|[a-z0-9]+_(gray|rgb)_n\d+",
    "method": r"[a-z_]+",
    "alpha": r"[0-9.e+-]+",
    "threshold": r"na|[0-9.e+-]+",
    "pairs": r"\d+",
    "seed": r"\d+",
    "n": r"\d+",
    "setting": r"[a-z0-9_]+",
}


def number(x: float) -> str:
    """Short, canonical text of a number for paths: 10 -> '10', 0.8 -> '0.8'."""
    return f"{float(x):g}"


@dataclass(frozen=True)
class ModelKey:
    task: str
    regularization: str
    method: str
    alpha: str
    threshold: str
    pairs: str
    seed: str

    @classmethod
    def make(cls, task, regularization, method, alpha, threshold, pairs, seed) -> "ModelKey":
        """Canonical key: drops what ``method`` does not use."""
        m = get_method(method)
        if not m.regularized:
            regularization, alpha, pairs = NO_REGULARIZATION, 0, 0
        threshold = number(threshold) if m.uses_threshold and threshold != NOT_APPLICABLE else NOT_APPLICABLE
        return cls(task, regularization, method, number(alpha), threshold, str(int(pairs)), str(int(seed)))

    @property
    def stem(self) -> str:
        return (f"{self.task}/{self.regularization}/{self.method}/"
                f"a{self.alpha}_t{self.threshold}_k{self.pairs}/seed{self.seed}")

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def columns(self) -> dict:
        """The key as CSV columns of every per-model output ('na' marks unused values)."""
        d = self.as_dict()
        d["reg_pairs"] = d.pop("pairs")
        return d


# Patterns with wildcards, for rule outputs.
MODEL_STEM = "{task}/{regularization}/{method}/a{alpha}_t{threshold}_k{pairs}/seed{seed}"


def dataset_file(name_color: str) -> str:
    return str(RESULTS / "datasets" / f"{name_color}.h5")


def similarity_file(regularization: str) -> str:
    return str(RESULTS / "similarity" / f"{regularization}.h5")


def regularization_set(dataset_color: str, n_images: int) -> str:
    return f"{dataset_color}_n{int(n_images)}"


def regularization_images(regularization: str) -> str:
    """Inverse of ``regularization_set``: 'cifar10_gray_n5000' -> 'cifar10_gray'."""
    return regularization.rsplit("_n", 1)[0]


def dataset_and_color(dataset_color: str) -> tuple[str, str]:
    """'cifar10_gray' -> ('cifar10', 'gray')."""
    dataset, color = dataset_color.rsplit("_", 1)
    return dataset, color


def model_file(key: ModelKey) -> str:
    return str(RESULTS / "models" / key.stem / "model.pt")


def metrics_file(key: ModelKey) -> str:
    return str(RESULTS / "models" / key.stem / "metrics.csv")


def noise_file(key: ModelKey) -> str:
    return str(RESULTS / "noise" / f"{key.stem}.csv")


def fgsm_source(task: str, seed: str | int) -> ModelKey:
    """The unregularized model whose FGSM perturbations attack every model of ``task`` and
    ``seed``."""
    return ModelKey.make(task, NO_REGULARIZATION, NO_REGULARIZATION, 0, NOT_APPLICABLE, 0, seed)


def fgsm_perturbations_file(task: str, seed: str | int) -> str:
    return str(RESULTS / "fgsm" / "perturbations" / task / f"seed{seed}.h5")


def fgsm_file(key: ModelKey) -> str:
    return str(RESULTS / "fgsm" / "transfer" / f"{key.stem}.csv")


def boundary_file(key: ModelKey, setting: str, suffix: str = ".csv") -> str:
    return str(RESULTS / "boundary" / setting / f"{key.stem}{suffix}")


def spectrum_file(key: ModelKey, setting: str) -> str:
    return str(RESULTS / "spectrum" / setting / f"{key.stem}.h5")


def whitebox_file(key: ModelKey) -> str:
    return str(RESULTS / "whitebox" / f"{key.stem}.csv")


def minimal_distance_file(key: ModelKey) -> str:
    return str(RESULTS / "minimal_distance" / f"{key.stem}.csv")


def figure_file(name: str) -> str:
    return str(RESULTS / "figures" / f"{name}.pdf")


def table_file(name: str) -> str:
    return str(RESULTS / "tables" / f"{name}.csv")


def evaluation_files(kind: str, key: ModelKey, config: dict) -> list[str]:
    """The output files of evaluation ``kind`` for model ``key``."""
    if kind == "noise":
        return [noise_file(key)]
    if kind == "metrics":
        return [metrics_file(key)]
    if kind == "fgsm":
        return [fgsm_file(key)]
    if kind == "boundary":
        return [boundary_file(key, setting) for setting in config["boundary"]["settings"]]
    if kind == "spectrum":
        return [spectrum_file(key, config["spectrum"]["setting"])]
    if kind == "whitebox":
        return [whitebox_file(key)]
    if kind == "minimal_distance":
        return [minimal_distance_file(key)]
    raise ValueError(f"unknown evaluation {kind!r}; known: {', '.join(EVALUATIONS)}")


EVALUATIONS = ("noise", "metrics", "fgsm", "boundary", "spectrum", "whitebox", "minimal_distance")


def as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def grid_models(grid: dict, config: dict) -> list[ModelKey]:
    """Every model a figure grid needs, unregularized baselines included, each once.

    ``regularization``, ``reg_pairs`` and ``n_images`` may be single values or lists; the
    last two default to the config's ``regularization`` section.
    """
    defaults = config["regularization"]
    keys = []
    for seed in grid["seeds"]:
        keys.append(ModelKey.make(grid["task"], NO_REGULARIZATION, NO_REGULARIZATION, 0,
                                  NOT_APPLICABLE, 0, seed))
        for images in as_list(grid["regularization"]):
            for n in as_list(grid.get("n_images", defaults["n_images"])):
                reg = regularization_set(images, n)
                for pairs in as_list(grid.get("reg_pairs", defaults["reg_pairs"])):
                    for method in grid["methods"]:
                        for alpha in grid["alpha"]:
                            for threshold in grid["threshold"]:
                                keys.append(ModelKey.make(grid["task"], reg, method, alpha,
                                                          threshold, pairs, seed))
    return list(dict.fromkeys(keys))


# Figures: the evaluations each one draws (its models: the figure grid of the same name).
FIGURES = {
    "noise_accuracy": ("noise",),                      # Fig. 3 left
    "noise_accuracy_variants": ("noise",),             # App. 7.7, Figs. 12-13
    "selection_plane": ("noise",),                     # Fig. 4
    "attack_robustness": ("fgsm", "boundary"),         # Fig. 3 centre and right
    "robustness_by_dataset": ("noise", "fgsm", "boundary"),   # Fig. 5
    "robustness_by_pairs": ("noise", "fgsm", "boundary"),     # Fig. 8
    "robustness_by_n_images": ("noise", "fgsm", "boundary"),  # Fig. 9
    "perturbation_spectrum": ("spectrum",),            # Fig. 7 centre and right
    "minimal_distance": ("minimal_distance",),         # supplement Fig. 2
}

# Tables: (figure grid whose models they cover, or None for every grid; evaluations).
TABLES = {
    "alpha_threshold": ("selection_plane", ("noise",)),       # App. Table 1
    "gamma": ("noise_accuracy", ("metrics",)),                # App. Table 2
    "results": (None, ("noise", "metrics")),                  # every model group
    "models": ("attack_robustness",                           # one row per model
               ("noise", "metrics", "fgsm", "boundary", "whitebox", "minimal_distance")),
    "whitebox": ("attack_robustness", ("whitebox",)),         # FGSM / PGD-L∞ in 1/255
}


def table_models(name: str, config: dict) -> list[ModelKey]:
    source, _ = TABLES[name]
    figures = config["figures"]
    if source is not None:
        return grid_models(figures[source], config) if source in figures else []
    keys = [k for grid in figures.values() for k in grid_models(grid, config)]
    return list(dict.fromkeys(keys))


def evaluation_inputs(kinds, keys: list[ModelKey], config: dict) -> dict[str, list[str]]:
    """Input files of a figure or table: every evaluation kind -> files ([] if not drawn)."""
    return {kind: [f for key in keys for f in evaluation_files(kind, key, config)]
            if kind in kinds else [] for kind in EVALUATIONS}


def figure_inputs(name: str, config: dict) -> dict[str, list[str]]:
    return evaluation_inputs(FIGURES[name], grid_models(config["figures"][name], config), config)


def table_inputs(name: str, config: dict) -> dict[str, list[str]]:
    return evaluation_inputs(TABLES[name][1], table_models(name, config), config)


def all_targets(config: dict) -> list[str]:
    """Every figure and table the config asks for."""
    targets = [figure_file(name) for name in config["figures"]]
    targets += [table_file(name) for name, (source, _) in TABLES.items()
                if source is None or source in config["figures"]]
    return targets
