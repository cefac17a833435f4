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
    results/noise/<same>.csv
    results/figures/{name}.pdf|png, results/tables/{name}.csv|md
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


def figure_file(name: str) -> str:
    return str(RESULTS / "figures" / f"{name}.pdf")


def table_file(name: str) -> str:
    return str(RESULTS / "tables" / f"{name}.csv")


def grid_models(grid: dict, config: dict) -> list[ModelKey]:
    """Every model a figure grid needs, unregularized baselines included, each once."""
    pairs = config["regularization"]["reg_pairs"]
    reg = regularization_set(grid["regularization"], config["regularization"]["n_images"])
    keys = []
    for seed in grid["seeds"]:
        keys.append(ModelKey.make(grid["task"], reg, "none", 0, NOT_APPLICABLE, pairs, seed))
        for method in grid["methods"]:
            for alpha in grid["alpha"]:
                for threshold in grid["threshold"]:
                    keys.append(ModelKey.make(grid["task"], reg, method, alpha, threshold, pairs, seed))
    return list(dict.fromkeys(keys))


# Tables and the figure grid they draw on.
TABLES = {"alpha_threshold": "selection_plane", "gamma": "noise_accuracy", "results": None}


def table_models(name: str, config: dict) -> list[ModelKey]:
    source = TABLES[name]
    figures = config["figures"]
    if source is not None:
        return grid_models(figures[source], config) if source in figures else []
    keys = [k for grid in figures.values() for k in grid_models(grid, config)]
    return list(dict.fromkeys(keys))


def all_targets(config: dict) -> list[str]:
    """Every figure and table the config asks for."""
    targets = [figure_file(name) for name in config["figures"]]
    targets += [table_file(name) for name in TABLES
                if TABLES[name] is None or TABLES[name] in config["figures"]]
    return targets
