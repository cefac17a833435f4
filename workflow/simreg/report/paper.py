"""Every figure and table of the papers simreg reproduces, and how far the pipeline gets.

One :class:`PaperItem` per figure or table of Attias et al. 2024 (arXiv 2410.03952, appendix
included) and of the supplement of Li et al. 2019, in the order they appear: what it shows,
the targets of :data:`simreg.report.targets.TARGETS` that rebuild it, whether they draw what
the paper draws (``status``), and whether its claims (:mod:`simreg.report.claims`) were
checked on the reference run (:data:`CHECKED`).
docs/paper.md is rendered from here::

    python -m simreg.report.paper > docs/paper.md

The pairing is written here by hand from the papers' captions; ``tests/test_paper.py``
checks it against each target's ``reproduces`` and against the caption numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from simreg.report.claims import CLAIMS, HOLDS, NOT_RUN
from simreg.report.targets import ATTIAS, LI, TARGETS

STATUSES = ("drawn", "partly", "not yet")
# The committed reference run's report (docs/results/cifar10-subset/, issue #24), relative to
# docs/. An item is "reproduced" only where every claim on it holds there.
REFERENCE_REPORT = "results/cifar10-subset/claims.md"
REFERENCE_TABLE = Path(__file__).resolve().parents[3] / "docs/results/cifar10-subset/claims.csv"


def reference_verdicts(table: str | Path = REFERENCE_TABLE) -> dict[str, str]:
    """Claim id -> its verdict on the committed reference run, from its claims.csv (empty
    when there is none): the common verdict of the claim's rows at the config's own pair
    pass, or "k of n hold" where they differ; claims the run did not check are left out."""
    if not Path(table).exists():
        return {}
    import pandas as pd

    rows = pd.read_csv(table, keep_default_na=False)
    rows = rows[
        ~rows["comparison"].str.contains("pair pass]", regex=False) & (rows["verdict"] != NOT_RUN)
    ]
    verdicts = {}
    for claim, group in rows.groupby("claim", sort=False):
        kinds = set(group["verdict"])
        verdicts[claim] = (
            kinds.pop()
            if len(kinds) == 1
            else f"{(group['verdict'] == HOLDS).sum()} of {len(group)} hold"
        )
    return verdicts


CHECKED: dict[str, str] = reference_verdicts()
PAPERS = (ATTIAS, LI)


@dataclass(frozen=True)
class PaperItem:
    """One figure or table of a paper.

    ``item`` is "Fig. N" or "Table N" (panels are named in ``shows``); ``targets`` are the
    TARGETS names that rebuild it; ``status`` is one of :data:`STATUSES` (is it drawn as the
    paper draws it?); ``missing`` says what a "partly" target lacks, or which capability
    (issue) a "not yet" item waits for.
    """

    paper: str
    item: str
    shows: str
    targets: tuple[str, ...]
    status: str
    missing: str


# Gaps shared by several items.
IMAGENETTE = (
    "ImageNet regularization images are Imagenette's (10 ImageNet classes) unless "
    "data.imagenet_dir names a full ImageNet tree"
)
SIMULATED = (
    "ours fits the predictive model to a simulated V1 population (Li et al.'s "
    "recordings are not public; neural.recordings takes real ones)"
)
GRID = "a figure grid for it, no new capability (#10)"
GRID_34 = "a ResNet34 CIFAR-100 grid and ImageNet images (#10)"


def _attias(item, shows, targets=(), status="not yet", missing=""):
    return PaperItem(ATTIAS, item, shows, tuple(targets), status, missing)


def _li(item, shows, targets=(), status="not yet", missing=""):
    return PaperItem(LI, item, shows, tuple(targets), status, missing)


PAPER_ITEMS: tuple[PaperItem, ...] = (
    # ---- Attias 2024: §4-5 --------------------------------------------------------------
    _attias(
        "Fig. 1",
        "neural (mouse V1 model) vs pixel similarity of image pairs: their "
        "correlation and the two similarity matrices",
        ("neural_pixel_similarity",),
        "partly",
        f"{SIMULATED}; {IMAGENETTE}",
    ),
    _attias(
        "Fig. 2",
        "S_pixel vs neural regularization, gray CIFAR-10: (a) Gaussian noise, "
        "(b) transferred FGSM, (c) Boundary score",
        ("neural_robustness",),
        "partly",
        f"{SIMULATED}; {IMAGENETTE}",
    ),
    _attias(
        "Fig. 3",
        "Gaussian noise (left), transferred FGSM (centre) and Boundary score "
        "(right) for none, S_pixel, S_Th and neural targets",
        ("noise_accuracy", "attack_robustness"),
        "partly",
        "the neural models in these grids (the `neural` method exists, #12: add it to "
        f"their methods; neural_robustness draws it beside S_pixel); {IMAGENETTE}",
    ),
    _attias(
        "Fig. 4",
        "selection planes R0/U0 vs RD/UD over (α, Th), one per black-box attack "
        "(random noises, FGSM), acceptable region shaded",
        ("selection_plane",),
        "drawn",
        IMAGENETTE,
    ),
    _attias(
        "Fig. 5",
        "noise, FGSM and Boundary robustness when regularizing on CIFAR-10, "
        "CIFAR-100 or ImageNet images",
        ("robustness_by_dataset",),
        "drawn",
        IMAGENETTE,
    ),
    _attias(
        "Fig. 6",
        "gray CIFAR-10-C accuracy per severity over all 15 corruptions (left) "
        "and per corruption at severity 4 (right)",
        ("corruption_severity", "corruption_types"),
        "partly",
        "CIFAR-10-C comes from the official files where they are on disk, else generated "
        "(docs/choices.md); " + IMAGENETTE,
    ),
    _attias(
        "Fig. 7",
        "CIFAR-10-C accuracy per frequency band of corruption (left); power "
        "spectrum of minimal Boundary perturbations (centre) and its radial profile (right)",
        ("corruption_frequency", "perturbation_spectrum"),
        "partly",
        "the left panel's regularization sets are CIFAR-10 and CIFAR-100 here, not ImageNet",
    ),
    _attias(
        "Fig. 8",
        "noise, FGSM and Boundary robustness for regularization batch sizes k = 4, 8, 16, 32",
        ("robustness_by_pairs",),
        "drawn",
        IMAGENETTE,
    ),
    _attias(
        "Fig. 9",
        "noise, FGSM and Boundary robustness for different numbers N of regularization images",
        ("robustness_by_n_images",),
        "partly",
        f"the paper does not give its values of N; ours are 100, 1000, 5000; {IMAGENETTE}",
    ),
    _attias(
        "Fig. 10",
        "noise, FGSM and Boundary robustness on color CIFAR-10, regularized on "
        "color CIFAR-10, CIFAR-100 or ImageNet",
        ("color_cifar10",),
        "drawn",
        f"(α, Th) = (10, 0.8): App. Table 1 lists gray pairs only; {IMAGENETTE}",
    ),
    # ---- Attias 2024: appendix ----------------------------------------------------------
    _attias(
        "Fig. 11",
        "an image under Gaussian (left), uniform (centre) and salt-and-pepper "
        "(right) noise at ε = 0.06",
        ("noise_examples",),
        "drawn",
    ),
    _attias(
        "Fig. 12",
        "Gaussian, uniform and salt-and-pepper noise accuracy of S_pixel models "
        "(gray CIFAR-10, ImageNet images)",
        ("noise_pixel",),
        "drawn",
        IMAGENETTE,
    ),
    _attias(
        "Fig. 13",
        "Gaussian, uniform and salt-and-pepper noise accuracy of S_Th models "
        "(gray CIFAR-10, ImageNet images)",
        ("noise_threshold",),
        "drawn",
        IMAGENETTE,
    ),
    _attias(
        "Fig. 14",
        "noise robustness of ResNet18 on MNIST, regularized on MNIST or FashionMNIST",
        ("noise_mnist",),
        "drawn",
    ),
    _attias(
        "Fig. 15",
        "noise robustness of ResNet18 on FashionMNIST, regularized on MNIST or FashionMNIST",
        ("noise_fashionmnist",),
        "drawn",
    ),
    _attias(
        "Fig. 16",
        "noise robustness of ResNet34 on gray CIFAR-100, regularized on "
        "CIFAR-10, CIFAR-100 or ImageNet",
        ("noise_cifar100",),
        "drawn",
        IMAGENETTE,
    ),
    _attias(
        "Fig. 17",
        "transferred FGSM and Boundary robustness of the MNIST models of Fig. 14",
        ("attacks_mnist",),
        "drawn",
    ),
    _attias(
        "Fig. 18",
        "transferred FGSM and Boundary robustness of the FashionMNIST models of Fig. 15",
        ("attacks_fashionmnist",),
        "drawn",
    ),
    _attias(
        "Fig. 19",
        "transferred FGSM and Boundary robustness of the CIFAR-100 models of Fig. 16",
        ("attacks_cifar100",),
        "drawn",
        IMAGENETTE,
    ),
    _attias(
        "Table 1",
        "the (α, Th) chosen for S_Th per classification–regularization dataset pair",
        ("alpha_threshold",),
        "partly",
        "selected from a grid for the pair of the selection_plane grid (gray CIFAR-10 on "
        "ImageNet images); the other pairs' (α, Th) are App. Table 1's, set as the "
        "defaults of their grids, not selected by the pipeline",
    ),
    _attias(
        "Table 2",
        "learned layer weights γ1, γ5, γ9, γ13, γ17 of ResNet18 per dataset "
        "pair, mean over seven seeds",
        ("gamma",),
        "drawn",
        "with, per layer, the share of seeds whose γ collapsed onto it",
    ),
    _attias(
        "Table 3",
        "learned layer weights γ1, γ7, γ15, γ27, γ33 of ResNet34 on gray "
        "CIFAR-100 per regularization set",
        ("gamma_resnet34",),
        "drawn",
        IMAGENETTE,
    ),
    _attias(
        "Fig. 20",
        "robustness of the App. 7.7 target variants (S_Th split by similarity "
        "range, double threshold), regularized on ImageNet",
        ("variants_imagenet",),
        "partly",
        "the double variant's inner threshold Th2 is our choice (0.4); " + IMAGENETTE,
    ),
    _attias(
        "Fig. 21",
        "the same variants, regularized on gray CIFAR-10 images",
        ("variants_cifar10", "noise_accuracy_variants"),
        "partly",
        "the double variant's inner threshold Th2 is our choice (0.4)",
    ),
    _attias(
        "Fig. 22",
        "the same variants, regularized on gray CIFAR-100 images",
        ("variants_cifar100",),
        "partly",
        "the double variant's inner threshold Th2 is our choice (0.4)",
    ),
    _attias(
        "Fig. 23",
        "noise, FGSM and Boundary robustness of ResNet34 on color CIFAR-100, "
        "regularized on color CIFAR-10, CIFAR-100 or ImageNet",
        ("color_cifar100",),
        "drawn",
        f"(α, Th) = (10, 0.8): App. Table 1 lists gray pairs only; {IMAGENETTE}",
    ),
    _attias(
        "Fig. 24",
        "a color CIFAR-10 model regularized on CIFAR-100 against RobustBench "
        "models (standard, L∞, L2, corruption-robust) on CIFAR-10-C severity 5",
        ("robustbench_comparison",),
        "partly",
        "builds only where CIFAR-10 and the RobustBench weights are on disk "
        "(robustbench.model_dir) and the robustbench extra is installed; not run here. "
        "Its commands are tested end to end on a stand-in set and a small zoo model "
        "(tests/test_robustbench.py)",
    ),
    _attias(
        "Fig. 25",
        "mean Fourier magnitude of each CIFAR-10-C corruption (severity 3), "
        "grouped into low, medium and high frequency",
        ("corruption_spectra",),
        "partly",
        "built from the official CIFAR-10-C where it is on disk, else from generated "
        "corruptions (generated frost texture, re-implemented motion blur: "
        "docs/choices.md)",
    ),
    # ---- Li 2019 supplement -------------------------------------------------------------
    _li(
        "Fig. 1",
        "Gaussian-noise accuracy of neurally regularized models for α from 0 to 32",
        ("neural_alpha",),
        "partly",
        f"{SIMULATED}; {IMAGENETTE}",
    ),
    _li(
        "Table 1",
        "mean layer weights γ1, γ5, γ9, γ13, γ17 of the neural models per α",
        ("neural_gamma",),
        "partly",
        f"{SIMULATED}; our ResNet18 has γ for the stem and 4 stages, and the α = 0 row "
        "(untrained γ = 0.2 each) is left out",
    ),
    _li(
        "Fig. 2",
        "minimal adversarial L0, L1, L2 and L∞ distance over an attack suite for "
        "none, shuffle and neural models, averaged over 1000 images",
        ("minimal_distance", "neural_minimal_distance"),
        "partly",
        f"{SIMULATED}; the figure shows the mean over images, as the supplement does",
    ),
)


@dataclass(frozen=True)
class BeyondItem:
    """A figure or table that is in neither paper: what it shows, after which figure of
    which other paper, and the targets that build it."""

    shows: str
    after: str
    targets: tuple[str, ...]


# Beyond the paper: the related defenses trained and attacked as the paper's methods are
# (issue #13; docs/methods.md).
BEYOND_ITEMS: tuple[BeyondItem, ...] = (
    BeyondItem(
        "every method side by side (similarity, SGR, gradient norm, Jacobian and "
        "covariance penalties, AFD, PGD-AT): clean, noise, transferred FGSM, Boundary, "
        "mean minimal L2, white-box PGD accuracy, training time per epoch / none "
        "(median epoch; wall time, so other jobs on the machine skew it: "
        "benchmarks/run.py times steps alone), "
        "eigenspectrum exponent, representation sensitivity, and the mean accuracy "
        "over the common corruptions where the grid sets corruptions: true; mean ± SEM "
        "over seeds",
        "no paper gives it",
        ("defenses", "defense_comparison"),
    ),
    BeyondItem(
        "area under each attack's accuracy–ε curve per method",
        "Bashivan et al., Table 2",
        ("attack_auc",),
    ),
    BeyondItem(
        "accuracy under long-range-correlated noise (worst of the draws) vs decay "
        "length ζ at fixed ε, and vs ε at ζ = 8",
        "Roth et al. 2018, Fig. 3 left and App. Fig. 4",
        ("lrc_accuracy",),
    ),
    BeyondItem(
        "white-box PGD and noise accuracy vs the penultimate eigenspectrum's power-law exponent",
        "Schaeffer et al., Fig. 8",
        ("robustness_vs_exponent",),
    ),
)


def item_number(item: str) -> tuple[str, int]:
    """("Fig.", 3) for "Fig. 3 left": the kind and number, panel words dropped."""
    kind, number = item.split()[:2]
    return kind, int(number)


def _code(text: str) -> str:
    return f"`{text}`"


ITEM = re.compile(r"(Figs?\.|Table)\s*(\d+)(?:\s*[–-]\s*(\d+))?")


def claim_items(item_text: str) -> set[tuple[str, int]]:
    """The (kind, number) items a claim's ``item`` names: "Figs. 8–9" -> {("Fig.", 8),
    ("Fig.", 9)}; "Fig. 3 left, Fig. 4" -> {("Fig.", 3), ("Fig.", 4)}."""
    found = set()
    for kind, first, last in ITEM.findall(item_text):
        kind = "Table" if kind == "Table" else "Fig."
        found |= {(kind, n) for n in range(int(first), int(last or first) + 1)}
    return found


def item_claims(item: PaperItem) -> list[str]:
    """The ids of the claims (simreg.report.claims) made on this paper item."""
    return list(
        dict.fromkeys(
            c.id
            for c in CLAIMS.values()
            if c.paper == item.paper and item_number(item.item) in claim_items(c.item)
        )
    )


def checked_cell(item: PaperItem, checked: dict | None = None) -> str:
    """The checked column: each claim's verdict on the reference run, **reproduced** where
    all hold; "not yet" before a reference run; "no claim" where none is registered."""
    checked = CHECKED if checked is None else checked
    ids = item_claims(item)
    if not ids:
        return "no claim"
    if not any(i in checked for i in ids):
        return f"not yet ({', '.join(ids)})"
    verdicts = ", ".join(f"{i} {checked.get(i, 'not run')}" for i in ids)
    word = "**reproduced**" if all(checked.get(i) == HOLDS for i in ids) else "**checked**"
    return f"{word}: {verdicts} ([report]({REFERENCE_REPORT}))"


def _row(item: PaperItem, targets: dict) -> str:
    files = [targets[name].file for name in item.targets]
    command = _code(f"snakemake {' '.join(files)} --cores 8") if files else "none"
    status = f"**{item.status}**" + (f": {item.missing}" if item.missing else "")
    cells = [
        item.item,
        item.shows,
        "<br>".join(map(_code, files)) or "none",
        command,
        status,
        checked_cell(item),
    ]
    return "| " + " | ".join(cells) + " |"


INTRO = """\
# The papers' figures and tables

Every figure and table of Attias, Pehlevan & Obeid 2024, "A Brain-Inspired Regularizer for
Adversarial Robustness" (arXiv 2410.03952, appendix included), and of the supplement of
Li et al. 2019, "Learning from brains how to regularize machines": what each shows, the
pipeline target that rebuilds it, and how close that target comes.

This page is generated from `workflow/simreg/report/paper.py`; edit that file and run
`python -m simreg.report.paper > docs/paper.md` (`tests/test_paper.py` fails while the two
differ).

Rebuild one item by naming its file: `snakemake <file> --cores 8`. With another config, put
the files before `--configfile`, which takes several values and would swallow them:
`snakemake results/figures/noise_accuracy.pdf --cores 8 --configfile configs/quick.yaml`.
The models a figure draws on are its grid in the config (`figures.<name>`).

Two columns say how far each item gets. **Drawn**: **drawn**, the target draws what the
paper draws; **partly**, a target exists but draws less, and the note says what is missing;
**not yet**, no target, and the note names the issue it waits for: #10 paper-fidelity fixes
and figures that need no new capability, #11 CIFAR-10-C common corruptions, #12 the neural
predictive model of mouse V1 and the `neural` method, #13 related defenses (SGR, gradient
norm, Jacobian, covariance, AFD, PGD-AT).

**Checked**: the verdict of the item's claims (`docs/claims.md`; the claim ids in brackets)
on the reference run on real images; **reproduced** only where every claim of the item holds
there, "not yet" until a reference run is committed, "no claim" where no claim is registered
for the item. Drawing what the paper draws is not reproducing it: no item is called
reproduced before its numbers are checked."""


def paper_markdown(targets: dict | None = None) -> str:
    """docs/paper.md: the intro, then one table per paper."""
    targets = TARGETS if targets is None else targets
    parts = [INTRO]
    for paper in PAPERS:
        items = [item for item in PAPER_ITEMS if item.paper == paper]
        counts = ", ".join(f"{sum(i.status == s for i in items)} {s}" for s in STATUSES)
        checked = sum(any(c in CHECKED for c in item_claims(i)) for i in items)
        parts += [
            f"\n## {paper}\n",
            f"{len(items)} items: {counts}; checked on a reference run: {checked}.\n",
            "| item | what it shows | target file(s) | rebuild command | drawn | checked |",
            "| --- | --- | --- | --- | --- | --- |",
            *(_row(item, targets) for item in items),
        ]
    parts += [
        "\n## Beyond the paper\n",
        "Figures and tables in neither paper: the related defenses (issue #13), each a "
        "method of the same grid (`figures.defense_comparison`), trained and attacked "
        "alike; methods and strengths in `docs/methods.md`.\n",
        "| what it shows | after | target file(s) | rebuild command |",
        "| --- | --- | --- | --- |",
    ]
    for item in BEYOND_ITEMS:
        files = [targets[name].file for name in item.targets if name in targets]
        command = _code(f"snakemake {' '.join(files)} --cores 8") if files else "none"
        parts.append(
            "| "
            + " | ".join(
                [item.shows, item.after, "<br>".join(map(_code, files)) or "none", command]
            )
            + " |"
        )
    return "\n".join(parts) + "\n"


def _reproduces(target) -> str:
    items = [item if paper == ATTIAS else f"{paper} {item}" for paper, item in target.reproduces]
    return f" ({', '.join(items)})" if items else ""


def _cell(text: str) -> str:
    return text.replace("|", "\\|")  # a table cell: a bar would end it


def readme_outputs(targets: dict | None = None) -> str:
    """README's rows of the outputs table for every evaluation, figure and table, from the
    registries: ``python -m simreg.report.paper --readme`` (tests/test_paper.py fails while
    README lacks them)."""
    from simreg.evaluate.registry import EVALUATIONS

    targets = TARGETS if targets is None else targets
    evaluations = [
        f"| `{e.directory}/{'{setting}/' if e.settings else ''}…/seed{{s}}"
        f"{', '.join(e.outputs.values())}` | {_cell(e.description)} |"
        for e in EVALUATIONS.values()
    ]

    def listing(kind: str) -> str:
        return ", ".join(
            f"`{name}`{_reproduces(t)}" for name, t in targets.items() if t.kind == kind
        )

    tables = "; ".join(
        f"`{name}`{_reproduces(t)}: {_cell(t.description)}"
        for name, t in targets.items()
        if t.kind == "table"
    )

    return "\n".join(
        [
            *evaluations,
            f"| `figures/{{name}}.pdf/.png/.data.csv` | the figure, and the numbers it was drawn "
            f"from: {listing('figure')}; the paper's items with rebuild commands: "
            "[docs/paper.md](docs/paper.md) |",
            f"| `tables/{{name}}.csv/.md` | {tables} |",
        ]
    )


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["--readme"]:
        print(readme_outputs())
    else:
        print(paper_markdown(), end="")
