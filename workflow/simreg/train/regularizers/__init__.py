"""Training methods, one :class:`~simreg.train.regularizers.base.Regularizer` each,
registered by name. A new method is one module in this folder (imported here automatically)
or a plugin module named in the config's ``plugins``, that defines and ``@register``s its
class, plus its config entry.
"""

from __future__ import annotations

import importlib
import pkgutil

from simreg.paths import (dataset_file, neural_similarity_file, regularization_images,
                          similarity_file)
from simreg.train.regularizers.base import (REGULARIZERS, Batch, Parameter, Regularizer,
                                            TrainContext, get_regularizer, register)

# Every module of this folder registers its methods when imported.
for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _module != "base":
        importlib.import_module(f"{__name__}.{_module}")

__all__ = ["REGULARIZERS", "Batch", "Parameter", "Regularizer", "TrainContext",
           "get_regularizer", "register", "inputs", "load_plugins"]


# Needs that are a similarity target file of the regularization set -> its path (the input
# of that name; the dataset of its images comes with it as "regularization_images").
SIMILARITY_TARGETS = {"similarity": similarity_file, "neural_similarity": neural_similarity_file}


def inputs(key) -> dict[str, str]:
    """The DAG inputs that model ``key``'s method needs, by name (files of the pipeline)."""
    from simreg.train.model_key import baseline_key, model_file

    needs = get_regularizer(key.method).needs
    files = {}
    for need, target_file in SIMILARITY_TARGETS.items():
        if need in needs:
            files[need] = target_file(key.regularization)
            files["regularization_images"] = dataset_file(regularization_images(key.regularization))
    if "source_model" in needs:
        files["source_model"] = model_file(baseline_key(key.task, key.seed))
    return files


def load_plugins(modules) -> None:
    """Import the plugin modules named in the config (``plugins``): each registers its
    regularizers (and evaluations) when imported."""
    for module in modules or []:
        importlib.import_module(module)
