"""Experiment sets: named selections of figure grids that a config asks `all` to build.

A config's ``experiments`` list names sets from :data:`EXPERIMENTS` or single figures; the
grids under ``figures`` that none of them selects are dropped when the config is validated
(:func:`simreg.config.validate_config`), so a grid that config.yaml gains later never plans
runs in a config that selects other experiments. ``all`` (the default) keeps every grid the
config gives. A new set is one :class:`Experiment` entry here; ``simreg list-experiments``
prints them with their targets, and docs/config.md lists them.
"""

from __future__ import annotations

from dataclasses import dataclass

from simreg.report.targets import TARGETS

ALL = "all"


@dataclass(frozen=True)
class Experiment:
    name: str
    description: str
    grids: tuple  # figure grid names (= figure target names)


EXPERIMENTS: dict[str, Experiment] = {}


def register(experiment: Experiment) -> Experiment:
    figures = {n for n, t in TARGETS.items() if t.kind == "figure"}
    unknown = sorted(set(experiment.grids) - figures)
    if unknown:
        raise ValueError(f"experiment {experiment.name!r} names unknown figures {unknown}")
    if experiment.name == ALL or experiment.name in figures:
        raise ValueError(f"experiment name {experiment.name!r} is taken (by 'all' or a figure)")
    EXPERIMENTS[experiment.name] = experiment
    return experiment


for _experiment in (
    Experiment(
        "paper-core",
        "the paper's main analyses on one task: noise and attack "
        "robustness per method (Fig. 3) and the (α, Th) selection (Fig. 4, Table 1); "
        "what configs/own-data.yaml runs on your data",
        ("noise_accuracy", "attack_robustness", "selection_plane"),
    ),
    Experiment(
        "paper-main",
        "every figure of the paper's main text (Figs. 1-7)",
        (
            "neural_pixel_similarity",
            "neural_robustness",
            "noise_accuracy",
            "attack_robustness",
            "selection_plane",
            "robustness_by_dataset",
            "corruption_severity",
            "corruption_types",
            "corruption_frequency",
            "perturbation_spectrum",
        ),
    ),
    Experiment(
        "paper-appendix",
        "every figure of the paper's appendix (Figs. 8-25)",
        (
            "robustness_by_pairs",
            "robustness_by_n_images",
            "color_cifar10",
            "noise_examples",
            "noise_pixel",
            "noise_threshold",
            "noise_mnist",
            "noise_fashionmnist",
            "noise_cifar100",
            "attacks_mnist",
            "attacks_fashionmnist",
            "attacks_cifar100",
            "noise_accuracy_variants",
            "variants_imagenet",
            "variants_cifar10",
            "variants_cifar100",
            "color_cifar100",
            "robustbench_comparison",
            "corruption_spectra",
        ),
    ),
    Experiment(
        "li2019",
        "the figures after Li et al. 2019's supplement: minimal adversarial "
        "distances and the neural models' α grid",
        ("minimal_distance", "neural_alpha", "neural_minimal_distance"),
    ),
    Experiment(
        "neural",
        "the neural arm: V1 similarity and the models regularized on it "
        "(Figs. 1, 2; Li et al. supplement Figs. 1, 2)",
        ("neural_pixel_similarity", "neural_robustness", "neural_alpha", "neural_minimal_distance"),
    ),
    Experiment(
        "corruptions",
        "common corruptions, CIFAR-10-C (Figs. 6, 7 left, 25)",
        ("corruption_severity", "corruption_types", "corruption_frequency", "corruption_spectra"),
    ),
    Experiment(
        "defenses",
        "the related defenses side by side (beyond the paper)",
        ("defense_comparison", "lrc_accuracy", "robustness_vs_exponent"),
    ),
    Experiment(
        "robustbench",
        "RobustBench's reference models on CIFAR-10-C (Fig. 24; also "
        "needs robustbench.enabled, the extra and the weights)",
        ("robustbench_comparison",),
    ),
):
    register(_experiment)


def selectable() -> list[str]:
    """The names a config's ``experiments`` may hold: all, the sets, the figures."""
    return [ALL, *EXPERIMENTS, *(n for n, t in TARGETS.items() if t.kind == "figure")]


def selected_grids(experiments: list[str]) -> set[str] | None:
    """The figure grids that ``experiments`` select; None when they hold ``all``."""
    if ALL in experiments:
        return None
    return {
        grid
        for name in experiments
        for grid in (EXPERIMENTS[name].grids if name in EXPERIMENTS else (name,))
    }


def experiment_targets(experiment: Experiment) -> list[str]:
    """The figures and tables an experiment set builds where its grids are configured (a
    table over every grid, e.g. ``results``, with any)."""
    grids = set(experiment.grids)
    return [
        name
        for name, target in TARGETS.items()
        if (
            set(target.grids) & grids
            if target.grids
            else target.grid_name() is None or target.grid_name() in grids
        )
    ]
