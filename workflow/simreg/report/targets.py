"""Every figure and table the pipeline builds: what it reproduces, its file, the models it
needs and the evaluations it reads. The rules, ``rule all``, the CLI and docs/paper.md read
this registry.

A figure draws on the models of the config's figure grid of the same name
(``figures.<name>``); a table on the grid named by its ``grid`` (None: every grid). A target
whose grid the config does not define is not built. A new figure or table is one
:class:`Target` entry here, its drawing function, and (for a figure) its grid in the config.
"""

from __future__ import annotations

from dataclasses import dataclass

from simreg.evaluate.registry import EVALUATIONS
from simreg.paths import (NO_REGULARIZATION, NOT_APPLICABLE, RESULTS, as_list,
                          neural_similarity_file, regularization_set, similarity_file)
from simreg.train.model_key import ModelKey, metrics_file

# The training metrics (metrics.csv of each model) are read like an evaluation's table.
METRICS = "metrics"
# The similarity targets of the grid's regularization sets (pixel file, neural file per
# set), read without training any model (paper Fig. 1).
SIMILARITY_TARGETS = "similarity_targets"


@dataclass(frozen=True)
class Target:
    name: str
    kind: str                  # "figure" or "table"
    reproduces: tuple          # ((paper, item), ...), e.g. (("Attias 2024", "Fig. 3 left"),)
    description: str
    reads: tuple               # evaluation names (and METRICS) whose outputs it reads
    implementation: str        # "module:function", called as function(data, out, params)
    grid: str | None = None    # tables: the figure grid whose models they cover; None: all

    @property
    def file(self) -> str:
        if self.kind == "figure":
            return str(RESULTS / "figures" / f"{self.name}.pdf")
        return str(RESULTS / "tables" / f"{self.name}.csv")

    @property
    def companion(self) -> str:
        """The second file of the target: the PNG of a figure, the Markdown of a table."""
        return self.file.rsplit(".", 1)[0] + (".png" if self.kind == "figure" else ".md")

    def grid_name(self) -> str | None:
        return self.name if self.kind == "figure" else self.grid


TARGETS: dict[str, Target] = {}


def register(target: Target) -> Target:
    unknown = set(target.reads) - set(EVALUATIONS) - {METRICS, SIMILARITY_TARGETS}
    if unknown:
        raise ValueError(f"target {target.name!r} reads unknown evaluations {sorted(unknown)}")
    TARGETS[target.name] = target
    return target


ATTIAS = "Attias 2024"
LI = "Li 2019 supplement"
_FIG = "simreg.report.draw"

for _target in (
    Target("noise_accuracy", "figure",
           ((ATTIAS, "Fig. 3 left"), (ATTIAS, "Fig. 12"), (ATTIAS, "Fig. 13")),
           "accuracy vs ε per noise kind and method", ("noise",), f"{_FIG}:noise_accuracy"),
    Target("noise_accuracy_variants", "figure", ((ATTIAS, "Fig. 21"),),
           "the same for the S_Th variants and the shuffle control (App. 7.7)", ("noise",),
           f"{_FIG}:noise_accuracy"),
    Target("selection_plane", "figure", ((ATTIAS, "Fig. 4"),),
           "R0/U0 vs RD/UD over an (α, Th) grid", ("noise",), f"{_FIG}:selection_plane"),
    Target("attack_robustness", "figure", ((ATTIAS, "Fig. 3 centre"), (ATTIAS, "Fig. 3 right")),
           "transferred FGSM accuracy vs ε and Boundary score per method",
           ("fgsm_transfer", "boundary"), f"{_FIG}:robustness"),
    Target("robustness_by_dataset", "figure", ((ATTIAS, "Fig. 5"),),
           "noise, FGSM and Boundary per regularization image set",
           ("noise", "fgsm_transfer", "boundary"), f"{_FIG}:robustness"),
    Target("robustness_by_pairs", "figure", ((ATTIAS, "Fig. 8"),),
           "noise, FGSM and Boundary per regularization batch size k",
           ("noise", "fgsm_transfer", "boundary"), f"{_FIG}:robustness"),
    Target("robustness_by_n_images", "figure", ((ATTIAS, "Fig. 9"),),
           "noise, FGSM and Boundary per number N of regularization images",
           ("noise", "fgsm_transfer", "boundary"), f"{_FIG}:robustness"),
    Target("perturbation_spectrum", "figure",
           ((ATTIAS, "Fig. 7 centre"), (ATTIAS, "Fig. 7 right")),
           "mean power spectrum of Boundary perturbations and its radial profile",
           ("spectrum",), f"{_FIG}:perturbation_spectrum"),
    Target("minimal_distance", "figure", ((LI, "Fig. 2"),),
           "median minimal L0/L1/L2/L∞ distance per method", ("minimal_distance",),
           f"{_FIG}:minimal_distance"),
    Target("neural_pixel_similarity", "figure", ((ATTIAS, "Fig. 1"),),
           "neural vs pixel similarity of the same pairs (scatter, r) and both matrices",
           (SIMILARITY_TARGETS,), f"{_FIG}:neural_pixel_similarity"),
    Target("neural_robustness", "figure", ((ATTIAS, "Fig. 2"),),
           "pixel- vs neural-regularized models: noise, transferred FGSM and Boundary",
           ("noise", "fgsm_transfer", "boundary"), f"{_FIG}:robustness"),
    Target("neural_alpha", "figure", ((LI, "Fig. 1"),),
           "Gaussian-noise accuracy of neural models over an α grid", ("noise",),
           f"{_FIG}:noise_accuracy"),
    Target("neural_minimal_distance", "figure", ((LI, "Fig. 2"),),
           "median minimal L0/L1/L2/L∞ distance for none, neural_shuffle and neural",
           ("minimal_distance",), f"{_FIG}:minimal_distance"),
    Target("neural_gamma", "table", ((LI, "Table 1"),),
           "learned layer weights γ of the neural models per α", (METRICS,),
           f"{_FIG}:gamma_table", grid="neural_alpha"),
    Target("alpha_threshold", "table", ((ATTIAS, "Table 1"),),
           "the selected (α, Th) per method", ("noise",), f"{_FIG}:alpha_threshold_table",
           grid="selection_plane"),
    Target("gamma", "table", ((ATTIAS, "Table 2"),),
           "learned layer weights γ per method", (METRICS,), f"{_FIG}:gamma_table",
           grid="noise_accuracy"),
    Target("results", "table", (),
           "validation, clean and noise accuracy of every model group", ("noise", METRICS),
           f"{_FIG}:results_table", grid=None),
    Target("models", "table", (),
           "one row per model with every evaluation",
           ("noise", METRICS, "fgsm_transfer", "boundary", "whitebox", "minimal_distance"),
           f"{_FIG}:models_table", grid="attack_robustness"),
    Target("whitebox", "table", (),
           "white-box FGSM / PGD-L∞ accuracy in units of 1/255", ("whitebox",),
           f"{_FIG}:whitebox_table", grid="attack_robustness"),
):
    register(_target)


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


def is_built(name: str, config: dict) -> bool:
    """Whether the config asks for target ``name`` (its grid is configured)."""
    grid = TARGETS[name].grid_name()
    return grid is None or grid in config["figures"]


def target_models(name: str, config: dict) -> list[ModelKey]:
    grid = TARGETS[name].grid_name()
    figures = config["figures"]
    if grid is not None:
        return grid_models(figures[grid], config) if grid in figures else []
    keys = [k for g in figures.values() for k in grid_models(g, config)]
    return list(dict.fromkeys(keys))


def evaluation_files(kind: str, key: ModelKey, config: dict) -> list[str]:
    """The tables (one per setting) that evaluation ``kind`` (or METRICS) wrote for ``key``;
    for SIMILARITY_TARGETS, the pixel and the neural similarity of its regularization set."""
    if kind == METRICS:
        return [metrics_file(key)]
    if kind == SIMILARITY_TARGETS:
        if key.regularization == NO_REGULARIZATION:
            return []
        return [similarity_file(key.regularization), neural_similarity_file(key.regularization)]
    return EVALUATIONS[kind].files(key, config)


def target_inputs(name: str, config: dict) -> dict[str, list[str]]:
    """Input files of a figure or table, per evaluation it reads."""
    keys = target_models(name, config)
    return {kind: list(dict.fromkeys(f for key in keys for f in evaluation_files(kind, key, config)))
            for kind in TARGETS[name].reads}


def all_targets(config: dict) -> list[str]:
    """Every figure and table the config asks for."""
    return [target.file for name, target in TARGETS.items() if is_built(name, config)]
