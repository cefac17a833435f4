"""Corrupted test sets (CIFAR-10-C and the like) as HDF5, in gray or rgb: the official
release where there is one, else generated with the CIFAR constants
(:mod:`simreg.data.corruptions`).

**Official files.** Hendrycks & Dietterich's releases on Zenodo (record 2535967:
CIFAR-10-C; 3555552: CIFAR-100-C) unpack to a folder ``CIFAR-10-C/`` holding one
``<corruption>.npy`` per corruption, uint8 (50000, 32, 32, 3) = severities 1-5 stacked in
blocks of 10000 test images, and ``labels.npy``. RobustBench's ``<data_dir>/CIFAR-10-C/``
is the same layout. :func:`find_official` accepts that folder or the folder above it;
:func:`download_official` fetches and checks the archive (MD5 as listed on Zenodo).

**Generated.** For a dataset without a release (MNIST, FashionMNIST, digits, ...) or when
the files cannot be had: every corruption at every severity of the test split, in the
source's own color mode (RGB for CIFAR, as the release was made), then converted.

Either way the images are converted with :func:`simreg.data.store.to_color`, the conversion
of training, and stored as::

    /clean/images   uint8 (N, H, W, C)   the test split, as in the dataset file
    /clean/labels   int64 (N,)
    /corruptions/<name>  uint8 (5, N, H, W, C)   severities 1-5
    attrs: origin (official | generated), source, source_checksums, constants, color, ...
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tarfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from simreg.data import corruptions as C
from simreg.data.sources import DatasetUnavailable
from simreg.data.store import array_sha256, read_split, to_color
from simreg.outputs import atomic_output, provenance

N_PER_SEVERITY = 10000   # the official files: 5 blocks of the 10000 test images
CHUNK = 1000             # generated in chunks of this many images, each with its own seed
ORIGINS = ("official", "generated")
SOURCES = ("auto", "official", "generated")


@dataclass(frozen=True)
class Release:
    folder: str
    record: str
    archive_md5: str
    file_md5: dict = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"https://zenodo.org/records/{self.record}/files/{self.folder}.tar?download=1"


# Archive MD5s as listed on the Zenodo records; per-file MD5s as listed by
# ENSTA-U2IS-AI/torch-uncertainty (torch_uncertainty/datasets/classification/cifar/cifar_c.py).
RELEASES = {
    "cifar10": Release("CIFAR-10-C", "2535967", "56bf5dcef84df0e2308c6dcbcbbd8499", {
        "labels": "c439b113295ed5254878798ffe28fd54",
        "gaussian_noise": "ecaf8b9a2399ffeda7680934c33405fd",
        "shot_noise": "3a7239bb118894f013d9bf1984be7f11",
        "impulse_noise": "2090e01c83519ec51427e65116af6b1a",
        "defocus_blur": "7d1322666342a0702b1957e92f6254bc",
        "glass_blur": "7361fb4019269e02dbf6925f083e8629",
        "motion_blur": "fffa5f852ff7ad299cfe8a7643f090f4",
        "zoom_blur": "6ea8e63f1c5cdee1517533840641641b",
        "snow": "bb238de8555123da9c282dea23bd6e55",
        "frost": "31f6ab3bce1d9934abfb0cc13656f141",
        "fog": "7b397314b5670f825465fbcd1f6e9ccd",
        "brightness": "0a81ef75e0b523c3383219c330a85d48",
        "contrast": "3c8262171c51307f916c30a3308235a8",
        "elastic_transform": "9421657c6cd452429cf6ce96cc412b5f",
        "pixelate": "0f14f7e2db14288304e1de10df16832f",
        "jpeg_compression": "2b9cc4c864e0193bb64db8d7728f8187",
    }),
    "cifar100": Release("CIFAR-100-C", "3555552", "11f0ed0f1191edbf9fa23466ae6021d3", {
        "labels": "bb4026e9ce52996b95f439544568cdb2",
        "gaussian_noise": "ecc4d366eac432bdf25c024086f5e97d",
        "shot_noise": "b0a1fa6e1e465a747c1b204b1914048a",
        "impulse_noise": "3b3c210ddfa0b5cb918ff4537a429fef",
        "defocus_blur": "d923e3d9c585a27f0956e2f2ad832564",
        "glass_blur": "0bf384f38e5ccbf8dd479d9059b913e1",
        "motion_blur": "732a7e2e54152ff97c742d4c388c5516",
        "zoom_blur": "0204613400c034a81c4830d5df81cb82",
        "snow": "0237be164583af146b7b144e73b43465",
        "frost": "3a39c6823bdfaa0bf8b12fe7004b8117",
        "fog": "4efc7ebd5e82b028bdbe13048e3ea564",
        "brightness": "f22d7195aecd6abb541e27fca230c171",
        "contrast": "322bb385f1d05154ee197ca16535f71e",
        "elastic_transform": "a0792bd6581f6810878be71acedfc65a",
        "pixelate": "96c00c60f144539e14cffb02ddbd0640",
        "jpeg_compression": "c851b7f1324e1d2ffddeb76920576d11",
    }),
}


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def md5_file(path: str | Path, block: int = 1 << 22) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            digest.update(chunk)
    return digest.hexdigest()


# ---- official files ------------------------------------------------------------------------
def find_official(dataset: str, directory: str | Path | None) -> Path | None:
    """The folder of ``dataset``'s official -C files under ``directory`` (that folder itself,
    or ``directory/CIFAR-10-C`` as the archive and RobustBench lay it out), or None."""
    if dataset not in RELEASES or not directory:
        return None
    directory = Path(directory)
    for folder in (directory / RELEASES[dataset].folder, directory):
        if (folder / "labels.npy").is_file():
            return folder
    return None


def download_official(dataset: str, root: str | Path, timeout: float = 60) -> Path:
    """Download and unpack ``dataset``'s -C archive into ``root`` (MD5-checked); its folder."""
    release = RELEASES[dataset]
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    archive = root / f"{release.folder}.tar"
    if not archive.exists() or md5_file(archive) != release.archive_md5:
        partial = archive.with_suffix(".tar.partial")
        _log(f"downloading {release.url} -> {archive}")
        try:
            with urllib.request.urlopen(release.url, timeout=timeout) as response, \
                    open(partial, "wb") as out:
                shutil.copyfileobj(response, out, 1 << 22)
        except OSError as error:
            partial.unlink(missing_ok=True)
            raise DatasetUnavailable(
                f"{release.folder} could not be downloaded from {release.url} ({error}). Put "
                f"the unpacked folder at {root / release.folder} (Zenodo record "
                f"{release.record}, {release.folder}.tar, MD5 {release.archive_md5}).") from error
        got = md5_file(partial)
        if got != release.archive_md5:
            partial.unlink()
            raise DatasetUnavailable(f"{release.url}: MD5 {got}, expected {release.archive_md5}")
        partial.replace(archive)
    with tarfile.open(archive) as tar:
        tar.extractall(root, filter="data")
    return root / release.folder


def load_official(folder: str | Path, corruptions=C.CORRUPTIONS,
                  checksums: dict | None = None) -> tuple[dict, np.ndarray, dict]:
    """The official files in ``folder``: ({corruption: uint8 (5, N, H, W, 3) memmap},
    labels (N,), {file: md5}). ``checksums`` (name -> MD5), when given, must match."""
    folder = Path(folder)
    files = {name: folder / f"{name}.npy" for name in ("labels", *corruptions)}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise DatasetUnavailable(f"official corruption files missing: {missing}")
    found = {}
    for name, path in files.items():
        found[name] = md5_file(path)
        if checksums and name in checksums and found[name] != checksums[name]:
            raise ValueError(f"{path}: MD5 {found[name]}, expected {checksums[name]} (the "
                             "official release); set corruptions.verify: false to use it anyway")
    labels = np.load(files["labels"]).astype(np.int64)
    if labels.ndim != 1 or len(labels) % 5:
        raise ValueError(f"{files['labels']}: expected 5 blocks of labels, got shape {labels.shape}")
    n = len(labels) // 5
    blocks = labels.reshape(5, n)
    if not (blocks == blocks[0]).all():
        raise ValueError(f"{files['labels']}: the 5 severity blocks do not hold the same labels")
    images = {}
    for name in corruptions:
        array = np.load(files[name], mmap_mode="r")
        if array.dtype != np.uint8 or array.ndim != 4 or array.shape[0] != 5 * n:
            raise ValueError(f"{files[name]}: expected uint8 ({5 * n}, H, W, C), got "
                             f"{array.dtype} {array.shape}")
        images[name] = array.reshape(5, n, *array.shape[1:])
    return images, blocks[0], found


# ---- generation ----------------------------------------------------------------------------
def native_images(rgb_file: str | Path) -> np.ndarray:
    """The test split in its source's own color mode, from the dataset's rgb file: one
    channel when the source is grayscale (stored replicated), else RGB."""
    test = read_split(rgb_file, "test")
    if "replicated" in str(test.attrs.get("conversion", "")):
        return np.ascontiguousarray(test.images[..., :1])
    return test.images


def generate(images: np.ndarray, corruption: str, seed: int, textures=None) -> np.ndarray:
    """Every severity of ``corruption`` of ``images``: uint8 (5, N, H, W, C). Images are
    processed in chunks of CHUNK, each with the generator seeded by (seed, corruption,
    severity, chunk), so an image's corruption depends on the seed and its position alone."""
    index = C.CORRUPTIONS.index(corruption)
    out = np.empty((5, *images.shape), dtype=np.uint8)
    options = {"textures": textures} if corruption == "frost" else {}
    for s, severity in enumerate(C.SEVERITIES):
        for chunk, start in enumerate(range(0, len(images), CHUNK)):
            rng = np.random.default_rng([seed, index, severity, chunk])
            out[s, start:start + CHUNK] = C.corrupt(images[start:start + CHUNK], corruption,
                                                    severity, rng, **options)
    return out


def frost_textures(seed: int, shape) -> np.ndarray:
    size = max(C.FROST_TEXTURE_SIZE, shape[1] + 1, shape[2] + 1)
    return C.frost_textures(np.random.default_rng([seed, len(C.CORRUPTIONS)]), size)


def generate_all(images: np.ndarray, seed: int, corruptions=C.CORRUPTIONS):
    """Yield (corruption, uint8 (5, N, H, W, C)) for each corruption."""
    textures = frost_textures(seed, images.shape)
    for corruption in corruptions:
        yield corruption, generate(images, corruption, seed, textures)


# ---- the HDF5 file -------------------------------------------------------------------------
def build_corruptions(dataset_file: str | Path, rgb_file: str | Path, out: str | Path, *,
                      dataset: str, color: str, source: str = "auto",
                      directory: str | Path | None = None, download: bool = False,
                      verify: bool = True, seed: int = 0, n_images: int | None = None) -> str:
    """Write the corrupted test set of ``dataset`` in ``color`` to ``out``; return its origin.

    ``dataset_file``: the dataset in ``color`` (its test split is the clean reference);
    ``rgb_file``: the same dataset in rgb (generation starts from the source's colors).
    ``source``: ``official`` (the release, from ``directory`` or downloaded), ``generated``,
    or ``auto`` (official when it can be had, else generated)."""
    if source not in SOURCES:
        raise ValueError(f"corruptions.source must be one of {SOURCES}, got {source!r}")
    test = read_split(dataset_file, "test")
    folder = None
    if source in ("auto", "official"):
        if dataset not in RELEASES:
            if source == "official":
                raise ValueError(f"{dataset} has no official corruption release; known: "
                                 f"{sorted(RELEASES)} (set corruptions.source: generated)")
        else:
            folder = find_official(dataset, directory)
            if folder is None and download:
                try:
                    folder = download_official(dataset, directory)
                except DatasetUnavailable as error:
                    if source == "official":
                        raise
                    _log(f"{error}\n-> generating the corruptions instead (source: auto)")
            if folder is None and source == "official":
                release = RELEASES[dataset]
                raise DatasetUnavailable(
                    f"official {release.folder} not found under {directory} (expected "
                    f"{Path(directory or '.') / release.folder}/<corruption>.npy and labels.npy; "
                    f"Zenodo record {release.record}) and not downloaded")
    meta = {"dataset": dataset, "color": color, "corruptions": list(C.CORRUPTIONS),
            "severities": list(C.SEVERITIES), "frequency_groups": C.FREQUENCY_GROUPS,
            "dataset_file": str(dataset_file)}
    if folder is not None:
        release = RELEASES[dataset]
        images, labels, md5s = load_official(folder, checksums=release.file_md5 if verify else None)
        n = min(len(labels), n_images or len(labels))
        if len(test.labels) < n or not np.array_equal(labels[:n], test.labels[:n]):
            raise ValueError(f"{folder}/labels.npy does not match the test labels of "
                             f"{dataset_file}: the official files belong to another split")
        meta.update(origin="official", source=f"zenodo:{release.record} {release.folder} "
                    f"({folder.resolve()})", source_checksums={"md5": md5s,
                    "archive_md5": release.archive_md5, "verified": bool(verify)},
                    constants=json.loads(C.constants_json()), seed="none")
        stream = ((name, images[name][:, :n]) for name in C.CORRUPTIONS)
    else:
        native = native_images(rgb_file)
        n = min(len(native), n_images or len(native))
        native = native[:n]
        rgb_test = read_split(rgb_file, "test")
        meta.update(origin="generated", source=f"generated from the test split of {rgb_file} "
                    f"(simreg.data.corruptions, constants of {C.SOURCE_SCRIPT})",
                    source_checksums={"rgb_test_images_sha256": array_sha256(rgb_test.images)},
                    constants=json.loads(C.constants_json()), seed=seed,
                    frost="generated texture (docs/choices.md), not the frost photographs",
                    motion_blur="ImageMagick MotionBlurImage re-implemented in numpy")
        stream = generate_all(native, seed)
    clean = test.images[:n]
    with atomic_output(out) as tmp, h5py.File(tmp, "w") as h5:
        h5.create_dataset("clean/images", data=clean)
        h5.create_dataset("clean/labels", data=test.labels[:n])
        conversion = None
        for name, array in stream:
            _log(f"{meta['origin']} {name}: {array.shape[1]} images x 5 severities")
            converted = np.stack([to_color(np.asarray(a), color)[0] for a in array])
            conversion = to_color(np.asarray(array[0, :1]), color)[1]
            if converted.shape[1:] != clean.shape:
                raise ValueError(f"{name}: images of shape {converted.shape[2:]}, the test "
                                 f"split's are {clean.shape[1:]}")
            data = h5.create_dataset(f"corruptions/{name}", data=converted,
                                     chunks=(1, min(CHUNK, n), *clean.shape[1:]))
            data.attrs["constants"] = json.dumps(C.CONSTANTS[name])
            data.attrs["frequency_group"] = C.GROUP_OF[name]
            data.attrs["sha256"] = array_sha256(converted)
        meta.update(n_images=n, conversion=conversion,
                    clean_images_sha256=array_sha256(clean))
        for key, value in provenance(**meta).items():
            h5.attrs[key] = value
    return meta["origin"]


@dataclass
class CorruptedSet:
    """A corrupted test set file, opened: clean images and labels in memory, each
    corruption read on demand as uint8 (5, N, H, W, C)."""

    clean: np.ndarray
    labels: np.ndarray
    attrs: dict
    path: Path

    def corruptions(self) -> list[str]:
        return json.loads(self.attrs["corruptions"])

    def images(self, corruption: str, severity: int | None = None,
               indices: np.ndarray | None = None) -> np.ndarray:
        with h5py.File(self.path, "r") as h5:
            data = h5["corruptions"][corruption]
            array = data[...] if severity is None else data[severity - 1]
        return array if indices is None else array[..., indices, :, :, :]


def read_corruptions(path: str | Path) -> CorruptedSet:
    with h5py.File(path, "r") as h5:
        return CorruptedSet(h5["clean/images"][...], h5["clean/labels"][...], dict(h5.attrs),
                            Path(path))
