"""Recordings of one scan: the HDF5 format the predictive model is fitted to.

One file per scan (a session of two-photon imaging of one population of V1 neurons)::

    /images                 float32 (I, H, W)  grayscale stimuli in [0, 1] (Li et al.: 36 x 64)
    /responses              float32 (T, N)     response of each neuron on each trial, >= 0
    /image_ids              int64   (T,)       the image (row of /images) shown on each trial
    /tiers                  bytes   (T,)       "train", "validation" or "test"
    /behavior/pupil_x       float32 (T,)       pupil centre, horizontal
    /behavior/pupil_y       float32 (T,)       pupil centre, vertical
    /behavior/pupil_size    float32 (T,)       pupil dilation
    /behavior/running_speed float32 (T,)       treadmill speed
    attrs: scan_id (str), plus anything else (provenance)

The test tier holds repeated presentations of a set of test images (each at least twice,
none of them shown in the train or validation tiers): the repeats measure each neuron's
reliability (oracle correlation) and the held-out images measure the predictor.

A simulated scan (:mod:`simreg.neural.simulate`) adds what real recordings cannot have::

    /simulation/rates       float32 (I, N)     noiseless response to each image at the
                                               neutral behaviour (mean pupil, eye centred,
                                               mean running)
    /simulation/population/ the neurons' parameters and calibration, to run them on other
                            frames (simreg.neural.simulate.saved_population)

:func:`read_recording` checks a file against this format and names the first field that is
missing or malformed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from simreg.outputs import atomic_output, provenance

TIERS = ("train", "validation", "test")
BEHAVIOR = ("pupil_x", "pupil_y", "pupil_size", "running_speed")
PER_TRIAL = ("responses", "image_ids", "tiers", *(f"behavior/{b}" for b in BEHAVIOR))
REQUIRED = ("images", *PER_TRIAL)


class RecordingError(ValueError):
    """A recordings file does not follow the format; the message names the field."""


@dataclass
class Recording:
    """One scan in memory (the fields of the file format)."""

    scan_id: str
    images: np.ndarray  # (I, H, W) float32
    responses: np.ndarray  # (T, N) float32
    image_ids: np.ndarray  # (T,) int64
    tiers: np.ndarray  # (T,) str
    behavior: dict  # name -> (T,) float32, names BEHAVIOR
    rates: np.ndarray | None = None  # (I, N) noiseless rates, simulated scans only
    attrs: dict = field(default_factory=dict)
    population: dict | None = None  # simulated scans: the saved population (name -> array)

    @property
    def n_neurons(self) -> int:
        return self.responses.shape[1]

    def tier(self, name: str) -> np.ndarray:
        """Indices of the trials of tier ``name``."""
        return np.flatnonzero(self.tiers == name)

    def pupil_center(self) -> np.ndarray:
        return np.stack([self.behavior["pupil_x"], self.behavior["pupil_y"]], axis=1)

    def state(self) -> np.ndarray:
        """The behaviour that modulates gain: (T, 2) pupil size and running speed."""
        return np.stack([self.behavior["pupil_size"], self.behavior["running_speed"]], axis=1)

    def test_repeats(self) -> list[np.ndarray]:
        """Per test image, its trials' responses (repeats, N)."""
        test = self.tier("test")
        ids = self.image_ids[test]
        return [self.responses[test[ids == i]] for i in np.unique(ids)]


def write_recording(recording: Recording, path: str | Path, **attrs) -> None:
    """Write ``recording`` atomically in the format above."""
    check_recording(recording, str(path))
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as h5:
        h5.create_dataset("images", data=recording.images.astype(np.float32))
        h5.create_dataset("responses", data=recording.responses.astype(np.float32))
        h5.create_dataset("image_ids", data=recording.image_ids.astype(np.int64))
        h5.create_dataset("tiers", data=recording.tiers.astype("S"))
        for name in BEHAVIOR:
            h5.create_dataset(f"behavior/{name}", data=recording.behavior[name].astype(np.float32))
        if recording.rates is not None:
            h5.create_dataset("simulation/rates", data=recording.rates.astype(np.float32))
        for name, value in (recording.population or {}).items():
            h5.create_dataset(f"simulation/population/{name}", data=value)
        for key, value in provenance(scan_id=recording.scan_id, **recording.attrs, **attrs).items():
            h5.attrs[key] = value


def read_recording(path: str | Path, image_size=(36, 64)) -> Recording:
    """Load one scan and check it against the format; raise RecordingError naming the field.
    A Sensorium/Lurz static dataset (folder or zip) is read by :func:`read_static`, its
    frames made ``image_size``."""
    if is_static_dataset(path):
        return read_static(path, image_size)
    path = str(path)
    try:
        h5 = h5py.File(path, "r")
    except OSError as error:
        raise RecordingError(f"recordings file {path} cannot be read as HDF5 ({error})") from None
    with h5:
        for name in REQUIRED:
            if name not in h5:
                raise RecordingError(
                    f"recordings file {path}: field '/{name}' is missing "
                    "(format: simreg.neural.recordings)"
                )
            if not isinstance(h5[name], h5py.Dataset):
                raise RecordingError(f"recordings file {path}: field '/{name}' is not a dataset")
        if "scan_id" not in h5.attrs:
            raise RecordingError(f"recordings file {path}: attribute 'scan_id' is missing")
        tiers = h5["tiers"][...]
        tiers = np.array([t.decode() if isinstance(t, bytes) else str(t) for t in tiers])
        recording = Recording(
            scan_id=str(h5.attrs["scan_id"]),
            images=h5["images"][...].astype(np.float32),
            responses=h5["responses"][...].astype(np.float32),
            image_ids=h5["image_ids"][...],
            tiers=tiers,
            behavior={b: h5[f"behavior/{b}"][...].astype(np.float32) for b in BEHAVIOR},
            rates=h5["simulation/rates"][...] if "simulation/rates" in h5 else None,
            attrs=dict(h5.attrs),
        )
    check_recording(recording, path)
    return recording


def check_recording(r: Recording, path: str = "recording") -> None:
    """Shapes, ranges and tiers of a recording; RecordingError names the first bad field."""

    def bad(name, problem):
        raise RecordingError(f"recordings file {path}: field '/{name}' {problem}")

    if r.images.ndim != 3:
        bad("images", f"must be (images, height, width) grayscale, has shape {r.images.shape}")
    if not np.isfinite(r.images).all() or r.images.min() < 0 or r.images.max() > 1:
        bad("images", "must hold finite values in [0, 1]")
    if r.responses.ndim != 2 or r.responses.shape[1] < 1:
        bad("responses", f"must be (trials, neurons), has shape {r.responses.shape}")
    if not np.isfinite(r.responses).all() or r.responses.min() < 0:
        bad("responses", "must hold finite, non-negative values")
    n_trials = len(r.responses)
    for name in PER_TRIAL[1:]:
        values = (
            r.behavior[name.split("/")[1]] if name.startswith("behavior/") else getattr(r, name)
        )
        if values.shape != (n_trials,):
            bad(name, f"must have one entry per trial ({n_trials}), has shape {values.shape}")
        if name.startswith("behavior/") and not np.isfinite(values).all():
            bad(name, "must hold finite values")
    if not np.issubdtype(r.image_ids.dtype, np.integer):
        bad("image_ids", f"must be integers, is {r.image_ids.dtype}")
    if r.image_ids.min() < 0 or r.image_ids.max() >= len(r.images):
        bad("image_ids", f"must index /images (0..{len(r.images) - 1})")
    unknown = sorted(set(r.tiers) - set(TIERS))
    if unknown:
        bad("tiers", f"holds {unknown}; allowed: {list(TIERS)}")
    for tier in TIERS:
        if not (r.tiers == tier).any():
            bad("tiers", f"has no '{tier}' trial")
    test_ids = r.image_ids[r.tiers == "test"]
    _, counts = np.unique(test_ids, return_counts=True)
    if counts.min() < 2:
        bad("tiers", "test images must be repeated (each shown at least twice)")
    if np.isin(test_ids, r.image_ids[r.tiers != "test"]).any():
        bad("tiers", "test images must not be shown in the train or validation tiers")
    if r.rates is not None and r.rates.shape != (len(r.images), r.responses.shape[1]):
        bad("simulation/rates", f"must be (images, neurons), has shape {r.rates.shape}")


# ---- published static datasets: Sensorium 2022 / Lurz et al. 2021 ---------------------------
# The Sinz lab publishes its static-image scans (grayscale ImageNet) as a file tree, or its zip
# (static<animal>-<session>-<scan>-GrayImageNet-<hash>.zip, holding that folder):
#
#     data/images/<trial>.npy      (1, H, W) the frame shown on the trial (0-255)
#     data/responses/<trial>.npy   (N,)      each neuron's response
#     data/behavior/<trial>.npy    (3,)      pupil dilation, its derivative, running speed
#     data/pupil_center/<trial>.npy (2,)     pupil centre (x, y); optional here
#     meta/trials/tiers.npy        (T,)      train / validation / test / final_test
#     meta/trials/frame_image_id.npy (T,)    the image shown (repeats share an id); optional
#     meta/neurons/unit_ids.npy    (N,)
#     meta/statistics/...                    per-key summary statistics
#
# It is read with neuralpredictors' own FileTreeDataset (which also unpacks the zip beside
# itself, as in the Sinz lab's loaders); the frames are made our stimulus size by the one frame
# procedure (simreg.neural.images.to_stimuli), so real scans, simulated scans and Fig. 1 share
# it. Trials of other tiers (Sensorium's held-out final_test) are left out.
STATIC_TIERS = {"train": "train", "validation": "validation", "test": "test"}


def is_static_dataset(path) -> bool:
    """A Sensorium/Lurz file tree or its zip (not our HDF5 format)."""
    path = Path(path)
    return path.suffix == ".zip" or (path.is_dir() and (path / "data").is_dir())


def read_static(path, image_size=(36, 64), scan_id: str | None = None) -> Recording:
    """One scan of a Sensorium 2022 / Lurz et al. 2021 static dataset (folder or zip) as a
    :class:`Recording` with frames of ``image_size``; checked like our own format."""
    from simreg.neural.compat import neuralpredictors
    from simreg.neural.images import to_stimuli

    datasets = neuralpredictors("neuralpredictors.data.datasets")
    path = str(path)
    folder = Path(path[:-4] if path.endswith(".zip") else path)
    if not path.endswith(".zip") and not (folder / "data").is_dir():
        raise RecordingError(
            f"static dataset {path}: no 'data' folder (expected the Sensorium "
            "layout data/images, data/responses, data/behavior, meta/trials)"
        )
    keys = ["images", "responses", "behavior"]
    has_pupil = (folder / "data" / "pupil_center").is_dir() or path.endswith(".zip")
    try:
        dataset = datasets.FileTreeDataset(path, *keys, "pupil_center") if has_pupil else None
    except Exception:  # noqa: BLE001 - the zip held no pupil_center: read without it
        dataset = None
    if dataset is None:
        has_pupil = False
        dataset = datasets.FileTreeDataset(path, *keys)
    trial_info = dataset.trial_info
    if "tiers" not in trial_info.keys():
        raise RecordingError(f"static dataset {path}: 'meta/trials/tiers.npy' is missing")
    tiers = np.array([str(t) for t in trial_info.tiers])
    keep = np.flatnonzero(np.isin(tiers, list(STATIC_TIERS)))
    ids = (
        np.asarray(trial_info.frame_image_id)
        if "frame_image_id" in trial_info.keys()
        else np.arange(len(tiers))
    )
    images, responses, behavior, pupil = [], [], [], []
    for i in keep:
        point = dataset[int(i)]
        images.append(np.asarray(point.images, np.float32).reshape(point.images.shape[-2:]))
        responses.append(np.asarray(point.responses, np.float32).ravel())
        behavior.append(np.asarray(point.behavior, np.float32).ravel())
        pupil.append(
            np.asarray(point.pupil_center, np.float32).ravel() if has_pupil else np.zeros(2)
        )
    images, behavior, pupil = np.stack(images), np.stack(behavior), np.stack(pupil)
    if images.max() > 1.0:
        images = images / 255.0  # the published frames are 0-255
    unique, first, image_ids = np.unique(ids[keep], return_index=True, return_inverse=True)
    frames = to_stimuli(np.clip(images[first], 0.0, 1.0), image_size)
    name = scan_id or folder.name
    recording = Recording(
        scan_id=name,
        images=frames,
        responses=np.maximum(np.stack(responses), 0.0),
        image_ids=image_ids.astype(np.int64),
        tiers=tiers[keep],
        behavior={
            "pupil_x": pupil[:, 0],
            "pupil_y": pupil[:, 1],
            "pupil_size": np.maximum(behavior[:, 0], 1e-6),
            "running_speed": behavior[:, -1],
        },
        attrs={
            "source": f"static dataset (Sensorium/Lurz layout): {Path(path).resolve()}",
            "loader": "neuralpredictors.data.datasets.FileTreeDataset",
            "unit_ids": [int(u) for u in getattr(dataset.neurons, "unit_ids", [])],
            "frames": f"simreg.neural.images.to_stimuli -> {list(image_size)}",
        },
    )
    check_recording(recording, path)
    return recording
