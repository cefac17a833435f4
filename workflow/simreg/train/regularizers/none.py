"""``none``: the unregularized classifier, L = CE."""

from __future__ import annotations

from simreg.train.regularizers.base import Regularizer, register


@register
class NoRegularization(Regularizer):
    name = "none"
    description = "no regularization (L = CE); the baseline of every comparison"
    uses_alpha = False
    packable = True
