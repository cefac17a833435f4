"""Every figure and table the pipeline builds: what it reproduces, its file, the models it
needs and the evaluations it reads. The rules, ``rule all``, the CLI and docs/paper.md read
this registry.

A figure draws on the models of the config's figure grid of the same name
(``figures.<name>``); a table on the grid named by its ``grid`` (None: every grid). A target
whose grid the config does not define is not built. A new figure or table is one
:class:`Target` entry here, its drawing function (``@drawing``, named by the target's ``draw``;
in report/draw.py), and (for a figure) its grid in the config.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable

from simreg.code import load_registered, registered_entry
from simreg.evaluate.registry import EVALUATIONS, robustbench_files
from simreg.paths import (
    NO_REGULARIZATION,
    NOT_APPLICABLE,
    RESULTS,
    as_list,
    corruptions_file,
    dataset_file,
    join_pairs,
    metrics_file,
    neural_similarity_file,
    regularization_set,
    similarity_file,
)
from simreg.settings import typed
from simreg.train.model_key import ModelKey

# The training metrics (metrics.csv of each model) are read like an evaluation's table.
METRICS = "metrics"
# The task's dataset file (HDF5), for figures of the images themselves (Fig. 11).
DATASET = "dataset"
# Inputs that belong to no model of the grid: the RobustBench models' tables and the grid
# task's corrupted test set.
ROBUSTBENCH = "robustbench"
CORRUPTED_SET = "corrupted_set"
GRID_READS = (ROBUSTBENCH, CORRUPTED_SET)
# The similarity targets of the grid's regularization sets (pixel file, neural file per
# set), read without training any model (paper Fig. 1).
SIMILARITY_TARGETS = "similarity_targets"


@dataclass(frozen=True)
class Target:
    name: str
    kind: str  # "figure" or "table"
    reproduces: tuple  # ((paper, item), ...), e.g. (("Attias 2024", "Fig. 3 left"),)
    description: str
    reads: tuple  # evaluation names (and METRICS) whose outputs it reads
    draw: str  # the @drawing function that builds it: function(data, out, params)
    grid: str | None = None  # tables: the figure grid whose models they cover; None: all
    grids: tuple = ()  # tables over several figure grids (their union; overrides grid)
    # ((grid key, evaluations), ...): evaluations read only where the target's grid sets that
    # key true, e.g. the defense comparison's CIFAR-10-C mean (``corruptions: true``)
    reads_if: tuple = ()
    # an optional part (its config section's ``enabled``): `all` builds the target only when
    # that is true; asked for by name it is built either way
    opt_in: str | None = None

    @property
    def implementation(self) -> str:
        """``"module:function"`` of its drawing (for the rules' code hash)."""
        return registered_entry(DRAWINGS, "drawing", __package__, self.draw)

    @property
    def optional_reads(self) -> tuple:
        return tuple(kind for _, kinds in self.reads_if for kind in kinds)

    @property
    def file(self) -> str:
        return figure_file(self.name) if self.kind == "figure" else table_file(self.name)

    @property
    def companion(self) -> str:
        """The second file of the target: the PNG of a figure, the Markdown of a table."""
        if self.kind == "figure":
            return figure_file(self.name, ".png")
        return table_file(self.name, ".md")

    def grid_name(self) -> str | None:
        return self.name if self.kind == "figure" else self.grid


def figure_file(name: str, suffix: str = ".pdf") -> str:
    """results/figures/<name><suffix>: .pdf, .png, and .data.csv (the numbers drawn)."""
    return str(RESULTS / "figures" / f"{name}{suffix}")


def table_file(name: str, suffix: str = ".csv") -> str:
    """results/tables/<name><suffix>: .csv and .md."""
    return str(RESULTS / "tables" / f"{name}{suffix}")


TARGETS: dict[str, Target] = {}
# drawing name -> the function that builds a target from its inputs: function(data, out,
# params), registered by @drawing where it is defined (report/draw.py, or a plugin module)
DRAWINGS: dict[str, Callable] = {}


def drawing(function: Callable) -> Callable:
    """Decorator: ``function`` builds the targets whose ``draw`` is its name."""
    if DRAWINGS.get(function.__name__, function) is not function:
        raise ValueError(f"a drawing named {function.__name__!r} is already registered")
    DRAWINGS[function.__name__] = function
    return function


def get_drawing(name: str) -> Callable:
    """The drawing ``name`` (importing its module if need be)."""
    return load_registered(DRAWINGS, "drawing", __package__, name)


def register(target: Target) -> Target:
    known = set(EVALUATIONS) | {METRICS, DATASET, SIMILARITY_TARGETS, *GRID_READS}
    unknown = set(target.reads + target.optional_reads) - known
    if unknown:
        raise ValueError(f"target {target.name!r} reads unknown evaluations {sorted(unknown)}")
    TARGETS[target.name] = target
    return target


ATTIAS = "Attias 2024"
DEFENSE_READS = ("noise", METRICS, "fgsm_transfer", "boundary", "whitebox", "minimal_distance")
# The comparison's CIFAR-10-C column, where the grid asks for it (the task's corrupted set is
# built for it: issue #13 "CIFAR-10-C mean, where built")
DEFENSE_CORRUPTIONS = (("corruptions", ("corruption_accuracy",)),)
LI = "Li 2019 supplement"

for _target in (
    Target(
        "noise_accuracy",
        "figure",
        ((ATTIAS, "Fig. 3 left"),),
        "accuracy vs ε per noise kind and method",
        ("noise",),
        "noise_accuracy",
    ),
    Target(
        "noise_accuracy_variants",
        "figure",
        ((ATTIAS, "Fig. 21"),),
        "the same for the S_Th variants and the shuffle control (App. 7.7)",
        ("noise",),
        "noise_accuracy",
    ),
    Target(
        "selection_plane",
        "figure",
        ((ATTIAS, "Fig. 4"),),
        "R0/U0 vs RD/UD over an (α, Th) grid, one plane per attack at its configured ε",
        ("noise", "fgsm_transfer"),
        "selection_plane",
    ),
    Target(
        "attack_robustness",
        "figure",
        ((ATTIAS, "Fig. 3 centre"), (ATTIAS, "Fig. 3 right")),
        "transferred FGSM accuracy vs ε and Boundary score per method",
        ("fgsm_transfer", "boundary"),
        "robustness",
    ),
    Target(
        "robustness_by_dataset",
        "figure",
        ((ATTIAS, "Fig. 5"),),
        "noise, FGSM and Boundary per regularization image set",
        ("noise", "fgsm_transfer", "boundary"),
        "robustness",
    ),
    Target(
        "robustness_by_pairs",
        "figure",
        ((ATTIAS, "Fig. 8"),),
        "noise, FGSM and Boundary per regularization batch size k",
        ("noise", "fgsm_transfer", "boundary"),
        "robustness",
    ),
    Target(
        "robustness_by_n_images",
        "figure",
        ((ATTIAS, "Fig. 9"),),
        "noise, FGSM and Boundary per number N of regularization images",
        ("noise", "fgsm_transfer", "boundary"),
        "robustness",
    ),
    Target(
        "perturbation_spectrum",
        "figure",
        ((ATTIAS, "Fig. 7 centre"), (ATTIAS, "Fig. 7 right")),
        "mean power spectrum of Boundary perturbations and its radial profile",
        ("spectrum",),
        "perturbation_spectrum",
    ),
    Target(
        "minimal_distance",
        "figure",
        ((LI, "Fig. 2"),),
        "median minimal L0/L1/L2/L∞ distance per method",
        ("minimal_distance",),
        "minimal_distance",
    ),
    Target(
        "neural_pixel_similarity",
        "figure",
        ((ATTIAS, "Fig. 1"),),
        "neural vs pixel similarity of the same pairs (scatter, r) and both matrices",
        (SIMILARITY_TARGETS,),
        "neural_pixel_similarity",
    ),
    Target(
        "neural_robustness",
        "figure",
        ((ATTIAS, "Fig. 2"),),
        "pixel- vs neural-regularized models: noise, transferred FGSM and Boundary",
        ("noise", "fgsm_transfer", "boundary"),
        "robustness",
    ),
    Target(
        "neural_alpha",
        "figure",
        ((LI, "Fig. 1"),),
        "Gaussian-noise accuracy of neural models over an α grid",
        ("noise",),
        "noise_accuracy",
    ),
    Target(
        "neural_minimal_distance",
        "figure",
        ((LI, "Fig. 2"),),
        "median minimal L0/L1/L2/L∞ distance for none, neural_shuffle and neural",
        ("minimal_distance",),
        "minimal_distance",
    ),
    Target(
        "neural_gamma",
        "table",
        ((LI, "Table 1"),),
        "learned layer weights γ of the neural models per α",
        (METRICS,),
        "gamma_table",
        grid="neural_alpha",
    ),
    Target(
        "alpha_threshold",
        "table",
        ((ATTIAS, "Table 1"),),
        "the selected (α, Th) per method",
        ("noise", "fgsm_transfer"),
        "alpha_threshold_table",
        grid="selection_plane",
    ),
    Target(
        "gamma",
        "table",
        ((ATTIAS, "Table 2"),),
        "learned layer weights γ per dataset pair (ResNet18): mean over seeds and the share "
        "of seeds whose γ collapsed onto each layer",
        (METRICS,),
        "gamma_table",
        grids=("robustness_by_dataset", "noise_mnist", "noise_fashionmnist"),
    ),
    Target(
        "gamma_resnet34",
        "table",
        ((ATTIAS, "Table 3"),),
        "the same for the ResNet34 on gray CIFAR-100",
        (METRICS,),
        "gamma_table",
        grids=("noise_cifar100",),
    ),
    Target(
        "results",
        "table",
        (),
        "validation, clean and noise accuracy of every model group",
        ("noise", METRICS),
        "results_table",
        grid=None,
    ),
    Target(
        "models",
        "table",
        (),
        "one row per model with every evaluation",
        ("noise", METRICS, "fgsm_transfer", "boundary", "whitebox", "minimal_distance"),
        "models_table",
        grid="attack_robustness",
    ),
    Target(
        "whitebox",
        "table",
        (),
        "white-box FGSM / PGD-L∞ accuracy in units of 1/255",
        ("whitebox",),
        "whitebox_table",
        grid="attack_robustness",
    ),
    # ---- issue #10: the paper's other figures, on other grids, by the same drawings ----
    Target(
        "noise_pixel",
        "figure",
        ((ATTIAS, "Fig. 12"),),
        "Gaussian, uniform and salt-and-pepper noise accuracy of S_pixel models",
        ("noise",),
        "noise_accuracy",
    ),
    Target(
        "noise_threshold",
        "figure",
        ((ATTIAS, "Fig. 13"),),
        "Gaussian, uniform and salt-and-pepper noise accuracy of S_Th models",
        ("noise",),
        "noise_accuracy",
    ),
    Target(
        "color_cifar10",
        "figure",
        ((ATTIAS, "Fig. 10"),),
        "noise, FGSM and Boundary on color CIFAR-10 per color regularization set",
        ("noise", "fgsm_transfer", "boundary"),
        "robustness",
    ),
    Target(
        "noise_examples",
        "figure",
        ((ATTIAS, "Fig. 11"),),
        "a test image under Gaussian, uniform and salt-and-pepper noise at one ε",
        (DATASET,),
        "noise_examples",
    ),
    Target(
        "noise_mnist",
        "figure",
        ((ATTIAS, "Fig. 14"),),
        "noise accuracy on MNIST per regularization set (MNIST, FashionMNIST)",
        ("noise",),
        "noise_accuracy",
    ),
    Target(
        "noise_fashionmnist",
        "figure",
        ((ATTIAS, "Fig. 15"),),
        "noise accuracy on FashionMNIST per regularization set (MNIST, FashionMNIST)",
        ("noise",),
        "noise_accuracy",
    ),
    Target(
        "noise_cifar100",
        "figure",
        ((ATTIAS, "Fig. 16"),),
        "noise accuracy of ResNet34 on gray CIFAR-100 per regularization set",
        ("noise",),
        "noise_accuracy",
    ),
    Target(
        "attacks_mnist",
        "figure",
        ((ATTIAS, "Fig. 17"),),
        "transferred FGSM and Boundary of the MNIST models of Fig. 14",
        ("fgsm_transfer", "boundary"),
        "robustness",
    ),
    Target(
        "attacks_fashionmnist",
        "figure",
        ((ATTIAS, "Fig. 18"),),
        "transferred FGSM and Boundary of the FashionMNIST models of Fig. 15",
        ("fgsm_transfer", "boundary"),
        "robustness",
    ),
    Target(
        "attacks_cifar100",
        "figure",
        ((ATTIAS, "Fig. 19"),),
        "transferred FGSM and Boundary of the CIFAR-100 models of Fig. 16",
        ("fgsm_transfer", "boundary"),
        "robustness",
    ),
    Target(
        "variants_imagenet",
        "figure",
        ((ATTIAS, "Fig. 20"),),
        "noise, FGSM and Boundary of the App. 7.7 variants, regularized on ImageNet images",
        ("noise", "fgsm_transfer", "boundary"),
        "robustness",
    ),
    Target(
        "variants_cifar10",
        "figure",
        ((ATTIAS, "Fig. 21"),),
        "the same, regularized on CIFAR-10 images",
        ("noise", "fgsm_transfer", "boundary"),
        "robustness",
    ),
    Target(
        "variants_cifar100",
        "figure",
        ((ATTIAS, "Fig. 22"),),
        "the same, regularized on CIFAR-100 images",
        ("noise", "fgsm_transfer", "boundary"),
        "robustness",
    ),
    Target(
        "color_cifar100",
        "figure",
        ((ATTIAS, "Fig. 23"),),
        "noise, FGSM and Boundary of ResNet34 on color CIFAR-100 per color regularization set",
        ("noise", "fgsm_transfer", "boundary"),
        "robustness",
    ),
    # ---- beyond the paper: the related defenses compared (issue #13) ----------------------
    Target(
        "defense_comparison",
        "figure",
        (),
        "every method side by side: clean, noise, FGSM, Boundary, minimal L2, white-box "
        "PGD, training time (and common corruptions where the grid sets corruptions: true)",
        DEFENSE_READS,
        "defense_comparison",
        reads_if=DEFENSE_CORRUPTIONS,
    ),
    Target(
        "defenses",
        "table",
        (),
        "the comparison's measures per method, mean ± SEM over seeds",
        DEFENSE_READS + ("eigenspectrum", "sensitivity", "lrc_noise"),
        "defenses_table",
        grid="defense_comparison",
        reads_if=DEFENSE_CORRUPTIONS,
    ),
    Target(
        "attack_auc",
        "table",
        (),
        "area under each attack's accuracy–ε curve per method (after Bashivan Table 2)",
        ("noise", "fgsm_transfer", "whitebox"),
        "attack_auc_table",
        grid="defense_comparison",
    ),
    Target(
        "lrc_accuracy",
        "figure",
        (),
        "accuracy under long-range-correlated noise vs decay length ζ (after Roth Fig. 3) "
        "and vs ε at ζ = 8 (after Roth App. Fig. 4)",
        ("lrc_noise",),
        "lrc_accuracy",
    ),
    Target(
        "robustness_vs_exponent",
        "figure",
        (),
        "white-box PGD and noise accuracy vs the eigenspectrum exponent (after Schaeffer Fig. 8)",
        ("eigenspectrum", "whitebox", "noise"),
        "robustness_vs_exponent",
    ),
    Target(
        "corruption_severity",
        "figure",
        ((ATTIAS, "Fig. 6 left"),),
        "mean accuracy over the 15 common corruptions vs severity",
        ("corruption_accuracy",),
        "corruption_severity",
    ),
    Target(
        "corruption_types",
        "figure",
        ((ATTIAS, "Fig. 6 right"),),
        "accuracy per common corruption at one severity",
        ("corruption_accuracy",),
        "corruption_types",
    ),
    Target(
        "corruption_frequency",
        "figure",
        ((ATTIAS, "Fig. 7 left"),),
        "accuracy per frequency group of corruptions, per regularization set",
        ("corruption_accuracy",),
        "corruption_frequency",
    ),
    Target(
        "robustbench_comparison",
        "figure",
        ((ATTIAS, "Fig. 24"),),
        "our most robust model against RobustBench models on color CIFAR-10-C",
        ("corruption_accuracy", ROBUSTBENCH),
        "robustbench_comparison",
        opt_in="robustbench",
    ),
    Target(
        "corruption_spectra",
        "figure",
        ((ATTIAS, "Fig. 25"),),
        "mean Fourier magnitude of each corruption, by frequency group",
        (CORRUPTED_SET,),
        "corruption_spectra",
    ),
):
    register(_target)


def grid_alphas(grid: dict, method: str) -> list:
    """The strengths of ``method`` in a grid: its ``alpha`` list, or its entry when ``alpha``
    maps each method to its own strengths (a method without α: [0])."""
    alpha = grid["alpha"]
    if not isinstance(alpha, dict):
        return list(alpha)
    from simreg.train.regularizers import get_regularizer

    if method in alpha:
        return list(alpha[method])
    if get_regularizer(method).uses_alpha:
        raise ValueError(f"the grid's alpha mapping has no strengths for method {method!r}")
    return [0]


def grid_models(grid: dict, config: dict) -> list[ModelKey]:
    """Every model a figure grid needs, unregularized baselines included, each once.

    ``regularization``, ``reg_pairs`` and ``n_images`` may be single values or lists; the
    last two default to the config's ``regularization`` section, whose ``pair_pass`` names the
    similarity methods' pair pass (in the key where it is not the default). A method the
    grid's ``training`` names trains with that recipe (:mod:`simreg.train.recipe`), the
    baseline ``none`` too.
    """
    from simreg.train.recipe import grid_recipe

    settings = typed(config)
    defaults = settings.regularization
    pair_pass = defaults.pair_pass
    per_set = grid.get("per_regularization", {})
    recipe = {
        method: grid_recipe(grid, method, settings.params("training"))
        for method in dict.fromkeys([NO_REGULARIZATION, *grid["methods"]])
    }
    keys = []
    for seed in grid["seeds"]:
        keys.append(
            ModelKey.make(
                grid["task"],
                NO_REGULARIZATION,
                NO_REGULARIZATION,
                0,
                NOT_APPLICABLE,
                0,
                seed,
                recipe[NO_REGULARIZATION],
            )
        )
        for images in as_list(grid["regularization"]):
            # App. Table 1: (α, Th) per classification-regularization pair
            alphas = per_set.get(images, {}).get("alpha")  # None: the grid's (per method)
            thresholds = per_set.get(images, {}).get("threshold", grid["threshold"])
            for n in as_list(grid.get("n_images", defaults.n_images)):
                reg = regularization_set(images, n)
                for pairs in as_list(grid.get("reg_pairs", defaults.reg_pairs)):
                    for method in grid["methods"]:
                        for alpha in alphas if alphas is not None else grid_alphas(grid, method):
                            for threshold in thresholds:
                                keys.append(
                                    ModelKey.make(
                                        grid["task"],
                                        reg,
                                        method,
                                        alpha,
                                        threshold,
                                        join_pairs(pairs, pair_pass),
                                        seed,
                                        recipe[method],
                                    )
                                )
    return list(dict.fromkeys(keys))


def is_built(name: str, config: dict) -> bool:
    """Whether the config asks for target ``name`` (its grid, or one of its grids, is
    configured)."""
    if TARGETS[name].grids:
        return any(g in typed(config).figures for g in TARGETS[name].grids)
    grid = TARGETS[name].grid_name()
    return grid is None or grid in typed(config).figures


def target_models(name: str, config: dict) -> list[ModelKey]:
    grid = TARGETS[name].grid_name()
    figures = typed(config).figures
    if TARGETS[name].grids:
        keys = [
            k for g in TARGETS[name].grids if g in figures for k in grid_models(figures[g], config)
        ]
        return list(dict.fromkeys(keys))
    if grid is not None:
        return grid_models(figures[grid], config) if grid in figures else []
    return all_models(config)


def all_models(config: dict) -> list[ModelKey]:
    """Every model of every configured figure grid, each once, in the grids' order."""
    settings = typed(config)
    keys = [k for g in settings.figures.values() for k in grid_models(g, settings)]
    return list(dict.fromkeys(keys))


def evaluation_files(kind: str, key: ModelKey, config: dict, readers=None) -> list[str]:
    """The tables (one per setting) that evaluation ``kind`` (or METRICS) wrote for ``key``,
    of the settings that ``readers`` (target or grid names; None: any) read; for
    SIMILARITY_TARGETS, the pixel and the neural similarity of its regularization set."""
    if kind == METRICS:
        return [metrics_file(key)]
    if kind == DATASET:
        return [dataset_file(key.task)]
    if kind == SIMILARITY_TARGETS:
        if key.regularization == NO_REGULARIZATION:
            return []
        return [similarity_file(key.regularization), neural_similarity_file(key.regularization)]
    return EVALUATIONS[kind].files(key, config, readers)


def grid_files(kind: str, name: str, config: dict) -> list[str]:
    """The inputs of kind ROBUSTBENCH or CORRUPTED_SET of target ``name``, for its grid's task."""
    task = typed(config).figures[TARGETS[name].grid_name()]["task"]
    if kind == ROBUSTBENCH:
        return robustbench_files(config, task)
    return [corruptions_file(task)]


def target_reads(name: str, config: dict) -> tuple:
    """The evaluations target ``name`` reads under ``config``: its ``reads``, then those of
    its ``reads_if`` whose key its grid sets true."""
    target = TARGETS[name]
    grid = typed(config).figures.get(target.grid_name()) or {}
    return target.reads + tuple(
        kind for key, kinds in target.reads_if if grid.get(key) for kind in kinds
    )


def target_inputs(name: str, config: dict) -> dict[str, list[str]]:
    """Input files of a figure or table, per evaluation it reads."""
    keys = target_models(name, config)
    return {
        kind: grid_files(kind, name, config)
        if kind in GRID_READS
        else list(
            dict.fromkeys(f for key in keys for f in evaluation_files(kind, key, config, (name,)))
        )
        for kind in target_reads(name, config)
    }


def figure_targets(config: dict) -> list[str]:
    """The PDF of every figure the config draws (the figure rule writes its PNG and
    .data.csv with it)."""
    return [path for path in all_targets(config) if path.startswith(str(RESULTS / "figures"))]


def all_targets(config: dict) -> list[str]:
    """Every figure and table the config asks for: optional parts (``opt_in``) only where
    the config enables them."""
    settings = typed(config)
    return [
        target.file
        for name, target in TARGETS.items()
        if is_built(name, settings)
        and (target.opt_in is None or getattr(settings, target.opt_in).enabled)
    ]
