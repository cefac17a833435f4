"""The neural regularizer of Li et al. 2019 (paper §3, eqs. 2-4) and its shuffled control.

- ``neural``: the target is S_neural, the representational similarity of the predictive
  model of mouse V1 on the regularization images (:mod:`simreg.targets.neural_similarity`),
  used as is.
- ``neural_shuffle``: S_neural with its off-diagonal entries permuted at random (the Li et
  al. supplement's "regularized to shuffled similarity matrix", Fig. 2 'Shuffle'): the same
  target values, the link between image pairs and values destroyed.

Both train exactly as the pixel methods do (:class:`SimilarityTarget`): only the file of
the target differs, which the ``neural_similarity`` need names (``simreg train --input
neural_similarity=PATH``).
"""

from __future__ import annotations

import dataclasses

from simreg.train.regularizers.base import TrainContext, register
from simreg.train.regularizers.similarity import SimilarityTarget, shuffle_off_diagonal


@register
class NeuralSimilarity(SimilarityTarget):
    name = "neural"
    description = "target S_neural, the mouse V1 predictive model's similarity (Li et al. 2019)"
    needs = ("neural_similarity",)

    def setup(self, context: TrainContext) -> None:
        # the neural file has the pixel file's layout: train on it as SimilarityTarget does
        inputs = {**context.inputs, "similarity": context.inputs["neural_similarity"]}
        super().setup(dataclasses.replace(context, inputs=inputs))

    def targets(self, s_neural, generator):
        return s_neural


@register
class ShuffledNeuralSimilarity(NeuralSimilarity):
    name = "neural_shuffle"
    description = "S_neural with its off-diagonal entries permuted (Li et al. supplement Fig. 2)"

    def targets(self, s_neural, generator):
        return shuffle_off_diagonal(s_neural.clone(), generator)
