"""Downloads, apart from the jobs that read them.

A dataset or corrupted test set that comes from the internet is fetched by its own job (rules
``download`` and ``download_corruptions``, both ``localrule``): on a cluster Snakemake runs
them where it runs itself, on the login node, which has internet, and the compute jobs
(``dataset``, ``corruptions``) only read what they left under ``data.root`` or
``corruptions.dir``. Each writes a small JSON record of what it fetched (the job's output):

    results/downloads/{dataset}.json      torchvision's files of the dataset (MD5-checked)
    results/downloads/{dataset}_c.json    the official corrupted test set (CIFAR-10-C, ...)

Nothing is fetched, and no download job is planned, when ``data.download`` is false: then
the files must already be there (docs/running.md).
"""

from __future__ import annotations

import json
from pathlib import Path

from simreg.outputs import provenance, write_text
from simreg.settings import typed

RESULTS = Path("results") / "downloads"
# The Snakefile reads these names when it plans, so they are written out here rather than
# imported with numpy and h5py (tests/test_plan.py checks them against simreg.data.sources'
# torchvision sources and simreg.data.corrupted's releases): the datasets fetched from the
# internet (the others are embedded, a user's NPZ or an ImageNet folder), and those with an
# official corrupted test set.
DOWNLOADABLE = ("cifar10", "cifar100", "mnist", "fashionmnist", "imagenette")
OFFICIAL_CORRUPTIONS = ("cifar10", "cifar100")


def marker_file(dataset: str) -> str:
    """The record of ``dataset``'s download (the output of rule ``download``)."""
    return str(RESULTS / f"{dataset}.json")


def corruptions_marker_file(dataset: str) -> str:
    """The record of ``dataset``'s official corrupted test set (rule ``download_corruptions``)."""
    return str(RESULTS / f"{dataset}_c.json")


def downloads_dataset(config: dict, dataset: str) -> bool:
    """Whether the config fetches ``dataset`` from the internet (a download job is planned)."""
    return bool(typed(config).data.download) and dataset in DOWNLOADABLE


def downloads_corruptions(config: dict, dataset: str) -> bool:
    """Whether the config fetches ``dataset``'s official corrupted test set."""
    settings = typed(config)
    return (bool(settings.data.download) and dataset in OFFICIAL_CORRUPTIONS
            and settings.corruptions.source in ("auto", "official"))


def fetch_dataset(name: str, data_root: str | Path) -> dict:
    """Download ``name``'s files into ``data_root`` (torchvision checks each archive's MD5;
    files already there are only checked). Returns what was fetched."""
    from simreg.data.sources import IMAGENETTE_SIZE, TORCHVISION_SOURCES

    if name in TORCHVISION_SOURCES:
        import torchvision

        cls = getattr(torchvision.datasets, TORCHVISION_SOURCES[name])
        for train in (True, False):
            cls(root=str(data_root), train=train, download=True)
        return {"source": f"torchvision.datasets.{cls.__name__}"}
    if name == "imagenette":
        from torchvision.datasets import Imagenette

        try:  # torchvision refuses to download into an existing folder: then it only reads
            Imagenette(str(data_root), split="train", size=IMAGENETTE_SIZE, download=True)
        except RuntimeError:
            Imagenette(str(data_root), split="train", size=IMAGENETTE_SIZE, download=False)
        return {"source": f"torchvision.datasets.Imagenette ({IMAGENETTE_SIZE})"}
    raise ValueError(f"{name} is not downloaded (downloadable: {list(DOWNLOADABLE)})")


def fetch_corruptions(dataset: str, directory: str | Path, source: str) -> dict:
    """Download ``dataset``'s official corrupted test set into ``directory`` unless it is
    there. With ``source: auto`` a failed download is recorded, not raised: the corruptions
    job then generates them, as it would have."""
    from simreg.data.corrupted import download_official, find_official
    from simreg.data.sources import DatasetUnavailable

    folder = find_official(dataset, directory)
    if folder is not None:
        return {"official": str(folder), "fetched": False}
    try:
        folder = download_official(dataset, directory)
    except DatasetUnavailable as error:
        if source == "official":
            raise
        return {"official": None, "error": str(error)}
    return {"official": str(folder), "fetched": True}


def write_record(record: dict, out: str | Path) -> None:
    write_text(json.dumps(provenance(**record), indent=1, sort_keys=True) + "\n", out)
