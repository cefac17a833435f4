"""The one compatibility shim for ``neuralpredictors`` 0.3.0 (its last release).

What it works around: neuralpredictors 0.3.0 does ``from collections import Iterable``
(layers/cores/conv2d.py, data/transforms.py). Python 3.10 removed the ABC aliases from
``collections`` (they live in ``collections.abc``), so the package fails to import on
Python >= 3.10. Restoring the aliases ``collections.Iterable`` and ``collections.Mapping``
before the first import of neuralpredictors fixes it; nothing else in the library needed a
change with torch 2.15 and numpy 2. Every simreg module imports neuralpredictors through
:func:`neuralpredictors` here, so the shim lives in one place.
"""

from __future__ import annotations

import collections
import collections.abc
import importlib

ALIASES = ("Iterable", "Mapping")


def neuralpredictors(module: str = "neuralpredictors"):
    """Import ``module`` (a neuralpredictors module) after restoring the aliases."""
    for name in ALIASES:
        if not hasattr(collections, name):
            setattr(collections, name, getattr(collections.abc, name))
    return importlib.import_module(module)
