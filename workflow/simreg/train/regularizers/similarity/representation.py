"""The network's representational similarity S_CNN and the similarity loss (paper eqs. 3-4).

For a pair of images (a, b) and each of the K candidate layers l, the layer's features are
centred by a running per-channel mean and compared by cosine similarity. The K values are
combined with trainable weights gamma = softmax(logits), all logits starting equal:

    S_CNN(a, b) = sum_l gamma_l * cos(f_l(a) - mu_l, f_l(b) - mu_l)

The loss pulls S_CNN towards a target similarity in Fisher-z space (paper eq. 3):

    L_sim = mean over pairs of (z(S_CNN) - z(S_target))^2,
    z(s) = log((1 + s + eps) / (1 - s + eps)),  eps = 1e-5

This is the authors' code. For eps -> 0, z(s) = 2 atanh(s), so L_sim is 4x the loss as
eq. 3 writes it; we keep the code's form so that alpha means what it meant in the
paper's experiments (docs/choices.md). eps keeps targets of +-1 finite: z(+-1) = +-12.2.
Similarities are clamped to [-1, 1] first, against rounding just outside.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RepresentationSimilarity(nn.Module):
    """S_CNN over K layers with trainable layer weights and running per-channel means."""

    def __init__(self, channels: list[int], mean_momentum: float = 0.1):
        super().__init__()
        self.gamma_logits = nn.Parameter(torch.zeros(len(channels)))
        self.mean_momentum = mean_momentum
        for k, c in enumerate(channels):
            self.register_buffer(f"running_mean_{k}", torch.zeros(c))

    @property
    def gamma(self) -> torch.Tensor:
        return torch.softmax(self.gamma_logits, dim=0)

    def layer_similarities(
        self, feats_a: list[torch.Tensor], feats_b: list[torch.Tensor]
    ) -> torch.Tensor:
        """Cosine similarity per layer, shape (pairs, K)."""
        sims = []
        for k, (fa, fb) in enumerate(zip(feats_a, feats_b)):
            mean = getattr(self, f"running_mean_{k}")
            if self.training:
                with torch.no_grad():
                    batch_mean = torch.cat([fa, fb]).mean(dim=(0, 2, 3))
                    mean.lerp_(batch_mean, self.mean_momentum)
            centre = mean.view(1, -1, 1, 1)
            sims.append(
                F.cosine_similarity((fa - centre).flatten(1), (fb - centre).flatten(1), dim=1)
            )
        return torch.stack(sims, dim=1)

    def forward(self, feats_a: list[torch.Tensor], feats_b: list[torch.Tensor]) -> torch.Tensor:
        return self.layer_similarities(feats_a, feats_b) @ self.gamma


def fisher_z(similarity: torch.Tensor, eps: float) -> torch.Tensor:
    """z(s) = log((1 + s + eps) / (1 - s + eps)) ~ 2 atanh(s); finite for s = +-1."""
    s = similarity.clamp(-1.0, 1.0)
    return torch.log1p(s + eps) - torch.log1p(-s + eps)


def similarity_loss(s_cnn: torch.Tensor, s_target: torch.Tensor, eps: float) -> torch.Tensor:
    """L_sim = mean (z(S_CNN) - z(S_target))^2 over the sampled pairs (paper eq. 3)."""
    return (fisher_z(s_cnn, eps) - fisher_z(s_target.to(s_cnn.dtype), eps)).square().mean()
