"""Training methods, one :class:`~simreg.train.regularizers.base.Regularizer` each,
registered by name. A new method is one module (or one package, with the helpers that serve
only it) in this folder, imported here automatically, or a plugin module named in the
config's ``plugins``, that defines and ``@register``s its class, plus its config entry.

    base.py           the protocol (Regularizer, Parameter, Batch, TrainContext), the registry
    none.py           no regularization
    similarity/       the similarity methods (pixel, threshold and its variants): pairs.py
                      draws the pairs,
                      representation.py measures the network's similarity and its loss
    neural.py         the similarity methods towards the predictive model's similarity
    gradient/         the gradient-norm penalty (gn) and SGR; displacement_covariance.py: SGR's Σ
    smoothness.py     the Jacobian and covariance penalties
    adversarial/      PGD-AT and AFD; discriminator.py: AFD's discriminator and its losses
"""

from __future__ import annotations

import importlib
import pkgutil

from simreg.train.regularizers.base import (
    REGULARIZERS,
    Batch,
    Parameter,
    Regularizer,
    TrainContext,
    get_regularizer,
    register,
)

# Every module of this folder registers its methods when imported.
for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _module != "base":
        importlib.import_module(f"{__name__}.{_module}")

__all__ = [
    "REGULARIZERS",
    "Batch",
    "Parameter",
    "Regularizer",
    "TrainContext",
    "get_regularizer",
    "register",
    "load_plugins",
]


def load_plugins(modules) -> None:
    """Import the plugin modules named in the config (``plugins``): each registers its
    regularizers (and evaluations) when imported."""
    for module in modules or []:
        importlib.import_module(module)
