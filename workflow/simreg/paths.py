"""Where the shared inputs live, and the wildcards every path is made of.

A model is named by its key (:mod:`simreg.train.model_key`: the key's ``stem``), evaluation
outputs by their entry in :mod:`simreg.evaluate.registry`, figures and tables by
:mod:`simreg.report.targets`; this module holds what they all build on, and the files of a
model, of a pack of seeds (:mod:`simreg.train.packs`) and of what a method needs (the train
package itself builds no path):

    results/models/{task}/{regularization}/{method}/
        a{alpha}_t{threshold}_k{pairs}{recipe}/seed{seed}/model.pt, metrics.csv
    results/checkpoints/<same>/last-<fingerprint>.pt  (not a Snakemake output: survives failed jobs)
    results/packs/<model stem without the seed>/seeds{seeds}/seed{seed}/model.pt, metrics.csv
    results/checkpoints/<same pack folder>/          (the pack's checkpoints)
    results/logs/<step>/<stem>.log
    results/datasets/{dataset}_{color}.h5
    results/similarity/{dataset}_{color}_n{N}.h5
    results/datasets/{dataset}_{color}_c.h5        corrupted test set (CIFAR-10-C and the like)
    results/neural/recordings/{scan}.h5                      simulated scans
    results/neural/predictors/{scan}/seed{seed}/model.pt     predictive models
    results/neural_similarity/{dataset}_{color}_n{N}.h5      their similarity
"""

from __future__ import annotations

from pathlib import Path

from simreg.settings import typed

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


# regularization.pair_pass: how a similarity method's k pairs go through the network (the
# first is the default and is not written into the model key's pairs field)
PAIR_PASSES = ("split", "fused")


def split_pairs(pairs) -> tuple[int, str]:
    """(k, pair pass) of a model key's pairs field: "16" -> (16, "split"),
    "16-fused" -> (16, "fused")."""
    k, _, pair_pass = str(pairs).partition("-")
    pair_pass = pair_pass or PAIR_PASSES[0]
    if pair_pass not in PAIR_PASSES:
        raise ValueError(f"pairs {pairs!r}: pair pass {pair_pass!r} is not one of {PAIR_PASSES}")
    return int(k), pair_pass


def join_pairs(k, pair_pass: str = PAIR_PASSES[0]) -> str:
    """The pairs field of k pairs passed as ``pair_pass``: "16" or "16-fused"."""
    if pair_pass not in PAIR_PASSES:
        raise ValueError(f"pair pass {pair_pass!r} is not one of {PAIR_PASSES}")
    return str(int(k)) if pair_pass == PAIR_PASSES[0] else f"{int(k)}-{pair_pass}"


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


# ---- models: files of a model key or of a pack of seeds (anything with a ``stem``) ---------
def model_file(key) -> str:
    return str(RESULTS / "models" / key.stem / "model.pt")


def metrics_file(key) -> str:
    return str(RESULTS / "models" / key.stem / "metrics.csv")


def checkpoint_dir(key) -> str:
    """A model's or a pack's checkpoints (``key``: a ModelKey or a Pack)."""
    return str(RESULTS / "checkpoints" / key.stem)


def log_file(step: str, key) -> str:
    return str(RESULTS / "logs" / step / f"{key.stem}.log")


def pack_dir(pack) -> str:
    return str(RESULTS / "packs" / pack.stem)


def member_files(pack, key) -> dict[str, str]:
    """Where ``simreg train-pack`` writes member ``key`` of ``pack`` (inside ``pack_dir``)."""
    folder = Path(pack_dir(pack)) / f"seed{key.seed}"
    return {"model": str(folder / "model.pt"), "metrics": str(folder / "metrics.csv")}


def pack_checkpoint_dir(pack) -> str:
    return checkpoint_dir(pack)


def pack_log(pack) -> str:
    return log_file("train_pack", pack)


# ---- the neural arm ----------------------------------------------------------------------
NEURAL = RESULTS / "neural"


def neural_similarity_file(regularization: str) -> str:
    """The predictive model's similarity of a regularization set (the pixel file's layout)."""
    return str(RESULTS / "neural_similarity" / f"{regularization}.h5")


# A method's needs that are a similarity target file of the model's regularization set ->
# that file (the dataset of its images comes with it, as "regularization_images").
SIMILARITY_TARGETS = {"similarity": similarity_file, "neural_similarity": neural_similarity_file}


def method_inputs(key, needs, baseline=None) -> dict[str, str]:
    """The DAG inputs, by name, of model ``key`` whose method ``needs`` them (its
    regularizer's ``needs``); ``baseline``: the unregularized key of the same task and seed,
    for a method that needs its ``source_model``."""
    files = {}
    for need, target_file in SIMILARITY_TARGETS.items():
        if need in needs:
            files[need] = target_file(key.regularization)
            files["regularization_images"] = dataset_file(regularization_images(key.regularization))
    if "source_model" in needs:
        files["source_model"] = model_file(baseline)
    return files


def simulated_recordings_file(scan: str) -> str:
    return str(NEURAL / "recordings" / f"{scan}.h5")


def predictor_files(scan: str, seed) -> dict[str, str]:
    """The fitted predictive model of ``scan`` and ``seed``, and its two reports."""
    folder = NEURAL / "predictors" / scan / f"seed{seed}"
    return {
        "model": str(folder / "model.pt"),
        "neurons": str(folder / "neurons.csv"),
        "summary": str(folder / "summary.csv"),
    }


def neural_scans(config: dict) -> list[str]:
    """The scans the predictors are fitted to: the user's recordings, or simulated ones."""
    neural = typed(config).neural
    if neural.recordings:
        return sorted(neural.recordings)
    return [f"sim{i}" for i in range(neural.scans)]


def recordings_file(config: dict, scan: str) -> str:
    """The recordings of ``scan``: the user's file, or the simulated one."""
    return typed(config).neural.recordings.get(scan) or simulated_recordings_file(scan)


def neural_stimuli(config: dict) -> str:
    """The dataset_color of the simulated population's stimuli (neural.stimuli; default:
    ImageNet when configured, otherwise Imagenette, both gray: Li et al. showed ImageNet)."""
    settings = typed(config)
    if settings.neural.stimuli:
        return settings.neural.stimuli
    return "imagenet_gray" if settings.data.imagenet_dir else "imagenette_gray"


SHARED_CORE = "shared"  # the model name of a shared core over all scans (neural.multi_scan)


def predictor_scans(config: dict, model: str) -> list[str]:
    """The scans a fitted model (``model``: a scan, or SHARED_CORE) is fitted to."""
    return neural_scans(config) if model == SHARED_CORE else [model]


def all_predictor_models(config: dict) -> list[str]:
    scans = neural_scans(config)
    neural = typed(config).neural
    if neural.multi_scan == "shared_core":
        if SHARED_CORE in scans:
            raise ValueError(
                f"neural.recordings: a scan may not be named {SHARED_CORE!r} with "
                "neural.multi_scan: shared_core"
            )
        scans = [SHARED_CORE]
    return [predictor_files(scan, seed)["model"] for scan in scans for seed in neural.model_seeds]


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
    return (
        f"config key 'container_image': the image {image} does not exist "
        f"({path.resolve()}). Build it once, from the repository root (about 10 minutes, "
        f"a few GB; add --fakeroot where you are not root):\n    {CONTAINER_BUILD}\n"
        f"or use the published image: --config container_image={PUBLISHED_IMAGE} "
        f"(docs/running.md, section 1)."
    )
