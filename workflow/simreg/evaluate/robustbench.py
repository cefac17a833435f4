"""RobustBench reference models on corrupted test sets (paper App. 7.9, Fig. 24).

The models come from the ``robustbench`` package (optional extra: ``pip install -e
".[robustbench]"``), which builds each architecture and loads its weights. simreg never
downloads weights: RobustBench fetches them from a service that clusters often cannot reach,
so they are read from ``<model_dir>/<dataset>/<threat_model>/<name>.pt`` (RobustBench's own
layout), and a missing file stops the job with that path and how to get the file.

The models take RGB images in [0, 1] and normalize them themselves; they are scored by the
same function as our models (:func:`simreg.evaluate.corruption_accuracy.corruption_accuracy`).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
import types
from pathlib import Path

import numpy as np

from simreg.data.corrupted import read_corruptions
from simreg.evaluate.corruption_accuracy import corruption_accuracy
from simreg.evaluate.registry import robustbench_weights
from simreg.outputs import provenance, write_csv

THREAT_MODELS = ("corruptions", "Linf", "L2")


class RobustbenchUnavailable(ImportError):
    """The robustbench package cannot be imported."""


def weights_path(model_dir, dataset: str, threat_model: str, name: str) -> Path:
    """Where RobustBench keeps (and simreg reads) a model's weights."""
    return robustbench_weights(model_dir, dataset, threat_model, name)


def _install_compatibility_shim() -> None:
    """Make ``import robustbench`` (1.1.1) work in this environment. Two imports break:

    - ``robustbench.loaders`` imports ``pkg_resources``, which setuptools >= 81 no longer
      ships; it only calls ``pkg_resources.resource_filename(__name__, path)``. We register
      a stand-in module with that one function (a file beside the named module).
    - ``robustbench.eval`` imports ``autoattack`` and ``autoattack.state``, while its
      dependency ``pyautoattack`` installs the same code as ``pyautoattack``. We register
      it under the name robustbench asks for.

    Nothing is patched when the real modules exist. Remove this once robustbench fixes both.
    """
    if "pkg_resources" not in sys.modules and importlib.util.find_spec("pkg_resources") is None:
        stand_in = types.ModuleType("pkg_resources")

        def resource_filename(module_name: str, resource: str) -> str:
            module = sys.modules.get(module_name) or importlib.import_module(module_name)
            return str(Path(module.__file__).parent / resource)

        stand_in.resource_filename = resource_filename
        stand_in.__doc__ = "simreg's stand-in for robustbench (simreg.evaluate.robustbench)"
        sys.modules["pkg_resources"] = stand_in
    if (
        "autoattack" not in sys.modules
        and importlib.util.find_spec("autoattack") is None
        and importlib.util.find_spec("pyautoattack") is not None
    ):
        sys.modules["autoattack"] = importlib.import_module("pyautoattack")
        sys.modules["autoattack.state"] = importlib.import_module("pyautoattack.state")


def import_robustbench():
    """``robustbench.utils`` (its ``load_model``), through the shim; a clear error when the
    package cannot be imported."""
    _install_compatibility_shim()
    try:
        return importlib.import_module("robustbench.utils")
    except ImportError as error:
        raise RobustbenchUnavailable(
            f"cannot import robustbench ({error}). It is an optional extra of simreg: "
            'pip install -e ".[robustbench]" (pins in pyproject.toml)'
        ) from error


def load_robustbench_model(name: str, threat_model: str, model_dir, dataset: str = "cifar10"):
    """RobustBench model ``name`` of ``threat_model`` with its weights from ``model_dir``, in
    eval mode on the CPU. Raises FileNotFoundError naming the exact path when the weights
    are not there (they are never downloaded here)."""
    if threat_model not in THREAT_MODELS:
        raise ValueError(f"threat model {threat_model!r}: expected one of {THREAT_MODELS}")
    path = weights_path(model_dir, dataset, threat_model, name)
    if not path.is_file():
        raise FileNotFoundError(
            f"RobustBench weights of {name} ({dataset}, {threat_model}) not found: {path}. "
            "simreg does not download them. On a machine with internet, RobustBench writes "
            f'exactly this file with: python -c "from robustbench.utils import load_model; '
            f"load_model('{name}', model_dir='{model_dir}', dataset='{dataset}', "
            f"threat_model='{threat_model}')\" (its model zoo lists the Google Drive id of "
            f"each model); then copy it to {path.resolve()}."
        )
    utils = import_robustbench()
    try:
        model = utils.load_model(
            name, model_dir=str(model_dir), dataset=dataset, threat_model=threat_model
        )
    except KeyError as error:
        raise ValueError(
            f"RobustBench has no {dataset} model {name!r} for threat model {threat_model!r}"
        ) from error
    except Exception as error:  # e.g. torch.load's weights_only refusing a pickled object
        if "weights_only" in str(error) or "Unpickl" in type(error).__name__:
            raise RuntimeError(
                f"{path}: torch.load (weights_only) refused this checkpoint ({error}). If you "
                "trust the file, set TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 for this job."
            ) from error
        raise
    return model.eval()


def sha256_file(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def evaluate_robustbench(
    name: str,
    threat_model: str,
    model_dir,
    corruptions_h5,
    out,
    *,
    severities=(5,),
    n_images: int | None = None,
    batch_size: int = 500,
    device: str = "auto",
) -> None:
    """Tidy CSV of RobustBench model ``name`` on the corrupted set ``corruptions_h5`` (rgb):
    one row per (corruption, severity) and the clean accuracy (corruption none, severity 0),
    with the model's name, threat model and weights' SHA-256."""
    from simreg.models.inference import pick_device

    corrupted = read_corruptions(corruptions_h5)
    if corrupted.clean.shape[-1] != 3:
        raise ValueError(
            f"{corruptions_h5}: RobustBench models take RGB images; this set is "
            "grayscale (use the dataset's _rgb_c.h5 file)"
        )
    dataset = str(corrupted.attrs.get("dataset", "cifar10"))
    torch_device = pick_device(device)
    model = load_robustbench_model(name, threat_model, model_dir, dataset).to(torch_device)
    n = len(corrupted.labels) if not n_images else min(n_images, len(corrupted.labels))
    table = corruption_accuracy(
        model, corrupted, np.arange(n), torch_device, severities=severities, batch_size=batch_size
    )
    path = weights_path(model_dir, dataset, threat_model, name)
    table = table.assign(model=name, threat_model=threat_model, source="robustbench")
    write_csv(
        table.assign(
            **provenance(
                weights_file=str(path),
                weights_sha256=sha256_file(path),
                n_images=n,
                corruptions_file=str(corruptions_h5),
                corruptions_origin=corrupted.attrs.get("origin", "unknown"),
            )
        ),
        out,
    )
