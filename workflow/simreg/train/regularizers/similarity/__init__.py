"""Similarity regularizers: pull the network's representational similarity S_CNN of image
pairs towards a target similarity (paper eqs. 2-5).

Each step samples ``reg_pairs`` pairs of the N regularization images, computes S_CNN over the
K similarity layers (:mod:`simreg.train.regularizers.similarity.representation`) and adds
L_sim = mean (z(S_CNN) - z(S_target))² over the pairs. The methods differ in the target and
in which pairs may be sampled. Definitions follow the authors' code (paper eq. 5, App. 7.7):

- ``pixel``: S_pixel itself.
- ``threshold``: S_Th = +1 where S_pixel > Th, -1 where S_pixel < -Th, 0 otherwise (strict).
- The variants keep S_Th as the target and restrict the pairs that are sampled:
  ``high`` |S| > Th;  ``low`` |S| < Th;  ``positive`` S > Th or |S| < Th;
  ``negative`` S < -Th or |S| < Th;  ``double`` |S| > Th or |S| <= Th_inner (App. 7.7,
  eq. 6: "0, if |S_ij| <= Th2"). Pairs with |S| exactly at Th belong to no variant.
- ``shuffle``: S_Th with its off-diagonal entries permuted at random (a symmetric permutation
  of the upper triangle): the same distribution of target values, the link between images
  and targets destroyed. A control that is not in the paper.
"""

from __future__ import annotations

from simreg.train.regularizers.base import Batch, Parameter, Regularizer, TrainContext, register

PAIRS = Parameter(int, "regularization.reg_pairs", "§4: regularization pairs per step k")
Z_EPS = Parameter(float, "regularization.z_eps", "ε of the Fisher z in eq. 3 (authors' code)")
MEAN_MOMENTUM = Parameter(
    float,
    "regularization.mean_momentum",
    "momentum of the running per-channel feature mean of S_CNN",
)
THRESHOLD = Parameter(float, "regularization.threshold", "eq. 5: threshold Th of S_Th")
PAIR_PASS = Parameter(
    str,
    "regularization.pair_pass",
    "how the k pairs go through the network: split (two batches of k, each "
    "normalized by its own BatchNorm statistics: the authors' code) or fused "
    "(one batch of 2k)",
    choices=("split", "fused"),
    default="split",
)
INNER_THRESHOLD = Parameter(
    float, "regularization.inner_threshold", "App. 7.7: inner threshold of the double variant"
)


class SimilarityTarget(Regularizer):
    """Base of the similarity methods: subclasses give ``targets`` and, optionally,
    ``eligible`` (the pairs that may be sampled; None: all pairs i != j)."""

    needs = ("similarity",)
    parameters = {
        "reg_pairs": PAIRS,
        "z_eps": Z_EPS,
        "mean_momentum": MEAN_MOMENTUM,
        "pair_pass": PAIR_PASS,
    }
    packable = True
    packed_state = ("target",)  # differs by seed for the shuffled controls

    def targets(self, s_pixel, generator):
        raise NotImplementedError

    def eligible(self, s_pixel):
        """Boolean (N, N) mask of the pairs that may be sampled, or None for all pairs."""
        return None

    def setup(self, context: TrainContext) -> None:
        import torch

        from simreg.data.store import read_split
        from simreg.targets.pixel_similarity import read_similarity
        from simreg.train.regularizers.similarity.pairs import eligible_pair_list
        from simreg.train.regularizers.similarity.representation import RepresentationSimilarity

        from pathlib import Path

        indices, s_pixel, attrs = read_similarity(context.inputs["similarity"])
        # The rule names the images' dataset; by hand, the path recorded in the similarity
        # file (relative to the folder it was built from) is the fallback.
        source = context.inputs.get("regularization_images", attrs["dataset_file"])
        if not Path(source).exists():
            raise FileNotFoundError(
                f"the regularization images of {context.inputs['similarity']} are not at "
                f"{source}; pass their dataset file: --input regularization_images=PATH"
            )
        images = read_split(source, "train").images
        if images.shape[-1] != context.channels:
            raise ValueError(
                f"regularization images have {images.shape[-1]} channels, the task "
                f"has {context.channels}: use the same color mode"
            )
        self.similarity_attrs = attrs
        self.images = torch.from_numpy(images[indices]).to(context.device)
        s_pixel = torch.from_numpy(s_pixel)
        target = self.targets(s_pixel, torch.Generator().manual_seed(context.seed))
        self.target = target.to(context.device)
        mask = self.eligible(s_pixel)
        try:
            self.pair_list = None if mask is None else eligible_pair_list(mask)
        except ValueError:
            raise ValueError(
                f"method {self.name!r} with {self.params()} leaves no eligible pair among the "
                f"{len(s_pixel)} images of {context.inputs['similarity']}: choose another "
                "threshold in the figure grid (figures.<grid>.threshold) or "
                "regularization.inner_threshold"
            ) from None
        widths = [context.model.stem[0].out_channels * 2**i for i in range(4)]
        self.head = RepresentationSimilarity([widths[0], *widths], self.mean_momentum).to(
            context.device
        )

    def modules(self):
        return {"similarity": self.head}

    def plan_epoch(self, n_steps, generator, device):
        import torch

        from simreg.train.regularizers.similarity.pairs import sample_pairs

        count = n_steps * self.reg_pairs
        if self.pair_list is None:
            pairs = sample_pairs(len(self.images), count, generator)
        else:
            drawn = torch.randint(len(self.pair_list), (count,), generator=generator)
            pairs = self.pair_list[drawn]
        return pairs.view(n_steps, self.reg_pairs, 2).to(device)

    def loss(self, batch: Batch, pairs):
        from simreg.train.regularizers.similarity.representation import similarity_loss

        feats_a, feats_b = self.pair_features(batch.model, pairs)
        s_cnn = self.head(feats_a, feats_b)
        s_target = self.target[pairs[:, 0], pairs[:, 1]]
        return similarity_loss(s_cnn, s_target, self.z_eps)

    def pair_features(self, model, pairs):
        """The K layers' features of the pairs' first and second images.

        ``split`` (the authors' code): the two sides go through the network as two batches of
        k images, so in train mode BatchNorm normalizes each side by its own batch statistics
        and updates its running statistics twice per step. ``fused``: one batch of 2k images,
        one set of batch statistics over both sides and one running-statistics update."""
        import torch

        from simreg.models.inference import to_input

        if self.pair_pass == "split":
            return (
                model.features(to_input(self.images[pairs[:, 0]])),
                model.features(to_input(self.images[pairs[:, 1]])),
            )
        k = len(pairs)
        both = model.features(to_input(self.images[torch.cat([pairs[:, 0], pairs[:, 1]])]))
        return [f[:k] for f in both], [f[k:] for f in both]

    def metrics(self):
        gamma = self.head.gamma.detach().cpu().tolist()
        return {f"gamma_{k}": g for k, g in enumerate(gamma)}


@register
class PixelSimilarity(SimilarityTarget):
    name = "pixel"
    description = "target S_pixel (§4)"

    def targets(self, s_pixel, generator):
        return s_pixel


@register
class ThresholdedPixelSimilarity(SimilarityTarget):
    name = "threshold"
    description = "target S_Th, S_pixel thresholded at Th (eq. 5)"
    parameters = {**SimilarityTarget.parameters, "threshold": THRESHOLD}

    def targets(self, s_pixel, generator):
        from simreg.targets.threshold import threshold_targets

        return threshold_targets(s_pixel, self.threshold)


class PairSubset(ThresholdedPixelSimilarity):
    """S_Th on a subset of pairs, chosen by the magnitude and sign of S_pixel."""

    def select(self, s):
        raise NotImplementedError

    def eligible(self, s_pixel):
        return self.select(s_pixel)


@register
class HighSimilarity(PairSubset):
    name = "high"
    description = "S_Th on pairs with |S_pixel| > Th (App. 7.7)"

    def select(self, s):
        return s.abs() > self.threshold


@register
class LowSimilarity(PairSubset):
    name = "low"
    description = "S_Th on pairs with |S_pixel| < Th (App. 7.7)"

    def select(self, s):
        return s.abs() < self.threshold


@register
class PositiveSimilarity(PairSubset):
    name = "positive"
    description = "S_Th on pairs with S_pixel > Th or |S_pixel| < Th (App. 7.7)"

    def select(self, s):
        return (s > self.threshold) | (s.abs() < self.threshold)


@register
class NegativeSimilarity(PairSubset):
    name = "negative"
    description = "S_Th on pairs with S_pixel < -Th or |S_pixel| < Th (App. 7.7)"

    def select(self, s):
        return (s < -self.threshold) | (s.abs() < self.threshold)


@register
class DoubleThreshold(PairSubset):
    name = "double"
    description = "S_Th on pairs with |S_pixel| > Th or |S_pixel| <= Th_inner (App. 7.7, eq. 6)"
    parameters = {**PairSubset.parameters, "inner_threshold": INNER_THRESHOLD}

    def select(self, s):
        if not self.inner_threshold < self.threshold:
            raise ValueError(
                "double thresholding needs inner_threshold < threshold, got "
                f"{self.inner_threshold} >= {self.threshold}"
            )
        return (s.abs() > self.threshold) | (s.abs() <= self.inner_threshold)


@register
class ShuffledThreshold(ThresholdedPixelSimilarity):
    name = "shuffle"
    description = "S_Th with its off-diagonal entries permuted (control, not in the paper)"

    def targets(self, s_pixel, generator):
        return shuffle_off_diagonal(super().targets(s_pixel, generator), generator)


def shuffle_off_diagonal(target, generator):
    """``target`` (N, N, changed in place) with its upper-triangle entries permuted at random
    and mirrored: the same values, the link between image pairs and values destroyed."""
    import torch

    n = len(target)
    rows, cols = torch.triu_indices(n, n, offset=1)
    values = target[rows, cols]
    values = values[torch.randperm(len(values), generator=generator)]
    target[rows, cols] = values
    target[cols, rows] = values
    return target
