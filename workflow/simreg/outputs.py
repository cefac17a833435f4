"""Writing pipeline outputs: atomically, and with provenance attached.

A job killed half-way must never leave a file that looks complete, so every output is
written to a temporary sibling and moved into place with ``os.replace`` (atomic on POSIX).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import platform
import tempfile
from pathlib import Path
from collections.abc import Iterator

from simreg import __version__
from simreg.code import source_hash


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it onto ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    # mkstemp creates 0600; give the file the mode a plain open() would (0666 minus the
    # umask), so that others on shared storage can read results as the user intends.
    os.chmod(tmp, 0o666 & ~current_umask())
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def provenance(**values) -> dict:
    """Provenance for an output: package version, a hash of the package source (which code
    made it, however many commits share the version), time, Python, plus the given values.

    Values that are not scalars (lists, dicts) are stored as JSON strings so that they fit
    in HDF5 attrs and CSV columns alike.
    """
    record = {
        "simreg_version": __version__,
        "simreg_source": source_hash(),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
    }
    for key, value in values.items():
        if value is None:
            value = "none"
        elif isinstance(value, (list, tuple, dict)):
            value = json.dumps(value, sort_keys=True)
        record[key] = value
    return record


def write_csv(frame, path: str | os.PathLike) -> None:
    """Write a pandas DataFrame to CSV atomically."""
    with atomic_output(path) as tmp:
        frame.to_csv(tmp, index=False)


def write_text(text: str, path: str | os.PathLike) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(text)


MODEL_SETTING_KEYS = ("method", "alpha", "threshold", "seed", "reg_pairs")


def model_provenance(model_meta: dict, **values) -> dict:
    """``provenance(**values)`` of a per-model evaluation, with the model's keys (method,
    alpha, threshold, seed, reg_pairs) taken from the model's own metadata where ``values``
    (usually the rule's model-key columns) do not give them."""
    record = provenance(**values)
    for key in MODEL_SETTING_KEYS:
        record.setdefault(key, model_meta[key])
    return record
