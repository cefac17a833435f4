"""Where the shared inputs live, and the wildcards every path is made of.

Model outputs are named by :mod:`simreg.train.model_key`, evaluation outputs by their entry
in :mod:`simreg.evaluate.registry`, figures and tables by :mod:`simreg.report.targets`; this
module holds what they all build on:

    results/datasets/{dataset}_{color}.h5
    results/similarity/{dataset}_{color}_n{N}.h5
    results/datasets/{dataset}_{color}_c.h5        corrupted test set (CIFAR-10-C and the like)
    results/neural/recordings/{scan}.h5                      simulated scans
    results/neural/predictors/{scan}/seed{seed}/model.pt     predictive models
    results/neural_similarity/{dataset}_{color}_n{N}.h5      their similarity
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
    "pairs": r"\d+(-fused)?",  # k, and the pair pass where not the default (model_key)
    "seed": r"\d+",
    "recipe": r"(_[a-z]+[0-9.e+-]*)*",  # a method's own training recipe; '' none (train/recipe.py)
    "seeds": r"\d+(-\d+)*",  # the seeds of a pack (simreg.train.packs)
    "n": r"\d+",
    "setting": r"[a-z0-9_]+",
    "scan": r"[a-z0-9_]+",
}


def number(x: float) -> str:
    """Short, canonical text of a number for paths: 10 -> '10', 0.8 -> '0.8'."""
    return f"{float(x):g}"


def as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def dataset_file(name_color: str) -> str:
    return str(RESULTS / "datasets" / f"{name_color}.h5")


def corruptions_file(name_color: str) -> str:
    """The corrupted test set of a dataset in one color (simreg.data.corrupted)."""
    return str(RESULTS / "datasets" / f"{name_color}_c.h5")


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


# ---- the neural arm ----------------------------------------------------------------------
NEURAL = RESULTS / "neural"


def neural_similarity_file(regularization: str) -> str:
    """The predictive model's similarity of a regularization set (the pixel file's layout)."""
    return str(RESULTS / "neural_similarity" / f"{regularization}.h5")


def simulated_recordings_file(scan: str) -> str:
    return str(NEURAL / "recordings" / f"{scan}.h5")


def predictor_files(scan: str, seed) -> dict[str, str]:
    """The fitted predictive model of ``scan`` and ``seed``, and its two reports."""
    folder = NEURAL / "predictors" / scan / f"seed{seed}"
    return {"model": str(folder / "model.pt"), "neurons": str(folder / "neurons.csv"),
            "summary": str(folder / "summary.csv")}


def neural_scans(config: dict) -> list[str]:
    """The scans the predictors are fitted to: the user's recordings, or simulated ones."""
    recordings = config["neural"]["recordings"]
    return sorted(recordings) if recordings else [f"sim{i}" for i in range(config["neural"]["scans"])]


def recordings_file(config: dict, scan: str) -> str:
    """The recordings of ``scan``: the user's file, or the simulated one."""
    return config["neural"]["recordings"].get(scan) or simulated_recordings_file(scan)


def neural_stimuli(config: dict) -> str:
    """The dataset_color of the simulated population's stimuli (neural.stimuli; default:
    ImageNet when configured, otherwise Imagenette, both gray: Li et al. showed ImageNet)."""
    chosen = config["neural"]["stimuli"]
    if chosen:
        return chosen
    return "imagenet_gray" if config["data"]["imagenet_dir"] else "imagenette_gray"


SHARED_CORE = "shared"  # the model name of a shared core over all scans (neural.multi_scan)


def predictor_scans(config: dict, model: str) -> list[str]:
    """The scans a fitted model (``model``: a scan, or SHARED_CORE) is fitted to."""
    return neural_scans(config) if model == SHARED_CORE else [model]


def all_predictor_models(config: dict) -> list[str]:
    scans = neural_scans(config)
    if config["neural"].get("multi_scan") == "shared_core":
        if SHARED_CORE in scans:
            raise ValueError(f"neural.recordings: a scan may not be named {SHARED_CORE!r} with "
                             "neural.multi_scan: shared_core")
        scans = [SHARED_CORE]
    return [predictor_files(scan, seed)["model"] for scan in scans
            for seed in config["neural"]["model_seeds"]]


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
