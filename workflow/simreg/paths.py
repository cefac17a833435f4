"""Where the shared inputs live, and the wildcards every path is made of.

Model outputs are named by :mod:`simreg.train.model_key`, evaluation outputs by their entry
in :mod:`simreg.evaluate.registry`, figures and tables by :mod:`simreg.report.targets`; this
module holds what they all build on:

    results/datasets/{dataset}_{color}.h5
    results/similarity/{dataset}_{color}_n{N}.h5
"""

from __future__ import annotations

from pathlib import Path

RESULTS = Path("results")
NO_REGULARIZATION = "none"
NOT_APPLICABLE = "na"

# Snakemake wildcard constraints, matching what the paths produce.
WILDCARDS = {
    "dataset": r"[a-z0-9]+",
    "color": r"gray|rgb",
    "task": r"[a-z0-9]+_(gray|rgb)",
    "regularization": r"none|[a-z0-9]+_(gray|rgb)_n\d+",
    "method": r"[a-z_0-9]+",
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


def as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


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


# The container image every job runs in under --use-singularity / --sdm apptainer (config
# container_image): by default a local file, built once from the recipe; or the image that
# .github/workflows/container.yml publishes on a version tag.
CONTAINER_IMAGE = "containers/simreg.sif"
CONTAINER_BUILD = "apptainer build containers/simreg.sif containers/simreg.def"
PUBLISHED_IMAGE = "docker://ghcr.io/<owner>/simreg:<version>"


def missing_container_image(image: str, workdir: str | Path = ".") -> str | None:
    """Why ``image`` cannot be used, or None. A local image (a path, or file://) must exist
    (relative paths are relative to the working directory, as Apptainer reads them); a
    registry image (docker://, oras://, library://) is pulled by Snakemake itself."""
    from urllib.parse import urlsplit

    scheme = urlsplit(image).scheme
    if scheme not in ("", "file"):
        return None
    path = Path(image.removeprefix("file://"))
    path = path if path.is_absolute() else Path(workdir) / path
    if path.is_file():
        return None
    return (f"config key 'container_image': the image {image} does not exist "
            f"({path.resolve()}). Build it once, from the repository root (about 10 minutes, "
            f"a few GB; add --fakeroot where you are not root):\n    {CONTAINER_BUILD}\n"
            f"or use the published image: --config container_image={PUBLISHED_IMAGE} "
            f"(docs/running.md, section 1).")
