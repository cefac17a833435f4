"""ResNet18/34 for small (32x32) inputs with 1 or 3 channels.

Stem as in the authors' code (7x7 conv, stride 1, no max-pool), four stages of basic blocks. The
network takes pixels in [0, 1] and normalizes them itself (per-channel mean/std buffers),
so attacks and noise act on the image the user sees.

The K = 5 candidate layers of the similarity regularizer (paper eq. 4) are the stem
output and the output of each of the four stages; for ResNet18 these are layers 1, 5, 9,
13 and 17 counted in convolutions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

BLOCKS = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3)}
N_SIMILARITY_LAYERS = 5


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(
        self,
        architecture: str = "resnet18",
        in_channels: int = 1,
        n_classes: int = 10,
        width: int = 64,
    ):
        super().__init__()
        if architecture not in BLOCKS:
            raise ValueError(f"architecture must be one of {sorted(BLOCKS)}, got {architecture!r}")
        self.register_buffer("input_mean", torch.zeros(1, in_channels, 1, 1))
        self.register_buffer("input_std", torch.ones(1, in_channels, 1, 1))
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 7, 1, 3, bias=False), nn.BatchNorm2d(width), nn.ReLU()
        )
        stages, cin = [], width
        for i, n_blocks in enumerate(BLOCKS[architecture]):
            cout, stride = width * 2**i, 1 if i == 0 else 2
            blocks = []
            for b in range(n_blocks):
                blocks.append(BasicBlock(cin, cout, stride if b == 0 else 1))
                cin = cout
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.head = nn.Linear(cin, n_classes)

    def set_input_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.input_mean.copy_(mean.reshape(self.input_mean.shape))
        self.input_std.copy_(std.reshape(self.input_std.shape))

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The K = 5 similarity layers: stem output and each stage's output."""
        h = self.stem((x - self.input_mean) / self.input_std)
        out = [h]
        for stage in self.stages:
            h = stage(h)
            out.append(h)
        return out

    @staticmethod
    def pool(last_features: torch.Tensor) -> torch.Tensor:
        """The penultimate activity: the last stage's output, averaged over space."""
        return F.adaptive_avg_pool2d(last_features, 1).flatten(1)

    def classify(self, last_features: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(last_features))

    def embedding(self, x: torch.Tensor) -> torch.Tensor:
        """E(x): the penultimate activity of inputs ``x`` (what the head classifies)."""
        return self.pool(self.features(x)[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(x)[-1])


def build_model(architecture: str, in_channels: int, n_classes: int, width: int = 64) -> ResNet:
    return ResNet(architecture, in_channels, n_classes, width)
