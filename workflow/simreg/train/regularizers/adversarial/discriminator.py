"""AFD's adversarial discriminator Da(h, y) on the penultimate representation (Bashivan et
al., §3.2): three fully connected layers with LeakyReLU, spectral normalization on every
layer, and a projection output that brings in the label (Miyato & Koyama 2018):
Da(h, y) = wᵀφ(h) + embed(y)ᵀφ(h). Positive: "clean"."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


class ProjectionDiscriminator(nn.Module):
    def __init__(self, features: int, n_classes: int, width: int = 512, slope: float = 0.2):
        super().__init__()
        self.body = nn.Sequential(
            spectral_norm(nn.Linear(features, width)),
            nn.LeakyReLU(slope),
            spectral_norm(nn.Linear(width, width)),
            nn.LeakyReLU(slope),
            spectral_norm(nn.Linear(width, width)),
            nn.LeakyReLU(slope),
        )
        self.out = spectral_norm(nn.Linear(width, 1))
        self.embed = spectral_norm(nn.Embedding(n_classes, width))

    def forward(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        phi = self.body(h)
        return self.out(phi).squeeze(1) + (self.embed(y) * phi).sum(1)


def discriminator_loss(discriminator, h_clean, h_perturbed, y) -> torch.Tensor:
    """L_Da = mean softplus(−Da(E(x), y)) + softplus(Da(E(x'), y)) (AFD Alg. 1)."""
    import torch.nn.functional as F

    return (
        F.softplus(-discriminator(h_clean, y)) + F.softplus(discriminator(h_perturbed, y))
    ).mean()


def embedding_loss(discriminator, h_perturbed, y) -> torch.Tensor:
    """L_E = mean softplus(−Da(E(x'), y)): the embedding fools Da on perturbed inputs."""
    import torch.nn.functional as F

    return F.softplus(-discriminator(h_perturbed, y)).mean()
