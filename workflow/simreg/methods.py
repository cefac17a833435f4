"""Regularization methods: what target similarity a model is pulled towards, on which pairs.

Every method implements one protocol (``Method``): ``targets`` turns the pixel similarity
matrix into the target matrix, and ``eligible`` says which pairs (i < j) may be sampled
(``None``: all of them). Adding a method means adding one class here and naming it in the
config.

Definitions follow the authors' code (paper eq. 5 and App. 7.7):

- ``threshold``: S_Th = +1 where S_pixel > Th, -1 where S_pixel < -Th, 0 otherwise
  (strict inequalities).
- The variants keep S_Th as the target and restrict the pairs that are sampled:
  ``high`` |S| > Th;  ``low`` |S| < Th;  ``positive`` S > Th or |S| < Th;
  ``negative`` S < -Th or |S| < Th;  ``double`` |S| > Th or |S| < Th_inner.
  Pairs with |S| exactly at a threshold belong to no variant.
- ``shuffle``: S_Th with its off-diagonal entries permuted at random (a symmetric
  permutation of the upper triangle): the same distribution of target values, the link
  between images and targets destroyed. A control that is not in the paper.
"""

from __future__ import annotations

import torch


class Method:
    name: str = ""
    regularized: bool = True
    uses_threshold: bool = True

    def targets(self, s_pixel: torch.Tensor, threshold: float, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def eligible(self, s_pixel: torch.Tensor, threshold: float, inner_threshold: float):
        """Boolean (N, N) mask of the pairs that may be sampled, or None for all pairs."""
        return None


def threshold_targets(s_pixel: torch.Tensor, threshold: float) -> torch.Tensor:
    """S_Th in {-1, 0, +1} as int8 (paper eq. 5), with 1 on the diagonal as in the authors' code."""
    out = torch.zeros(s_pixel.shape, dtype=torch.int8)
    out[s_pixel > threshold] = 1
    out[s_pixel < -threshold] = -1
    out.fill_diagonal_(1)
    return out


class NoRegularization(Method):
    name, regularized, uses_threshold = "none", False, False


class PixelSimilarity(Method):
    name, uses_threshold = "pixel", False

    def targets(self, s_pixel, threshold, generator):
        return s_pixel


class ThresholdedPixelSimilarity(Method):
    name = "threshold"

    def targets(self, s_pixel, threshold, generator):
        return threshold_targets(s_pixel, threshold)


class PairSubset(ThresholdedPixelSimilarity):
    """S_Th on a subset of pairs, chosen by the magnitude and sign of S_pixel."""

    def select(self, s, threshold, inner_threshold) -> torch.Tensor:
        raise NotImplementedError

    def eligible(self, s_pixel, threshold, inner_threshold):
        return self.select(s_pixel, threshold, inner_threshold)


class HighSimilarity(PairSubset):
    name = "high"

    def select(self, s, th, inner):
        return s.abs() > th


class LowSimilarity(PairSubset):
    name = "low"

    def select(self, s, th, inner):
        return s.abs() < th


class PositiveSimilarity(PairSubset):
    name = "positive"

    def select(self, s, th, inner):
        return (s > th) | (s.abs() < th)


class NegativeSimilarity(PairSubset):
    name = "negative"

    def select(self, s, th, inner):
        return (s < -th) | (s.abs() < th)


class DoubleThreshold(PairSubset):
    name = "double"

    def select(self, s, th, inner):
        if not inner < th:
            raise ValueError(f"double thresholding needs inner_threshold < threshold, got {inner} >= {th}")
        return (s.abs() > th) | (s.abs() < inner)


class ShuffledThreshold(Method):
    name = "shuffle"

    def targets(self, s_pixel, threshold, generator):
        target = threshold_targets(s_pixel, threshold)
        n = len(target)
        rows, cols = torch.triu_indices(n, n, offset=1)
        values = target[rows, cols]
        values = values[torch.randperm(len(values), generator=generator)]
        target[rows, cols] = values
        target[cols, rows] = values
        return target


METHODS: dict[str, Method] = {
    m.name: m
    for m in (NoRegularization(), PixelSimilarity(), ThresholdedPixelSimilarity(), HighSimilarity(),
              LowSimilarity(), PositiveSimilarity(), NegativeSimilarity(), DoubleThreshold(),
              ShuffledThreshold())
}


def get_method(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; known: {sorted(METHODS)}") from None
