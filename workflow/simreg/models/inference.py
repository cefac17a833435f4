"""Using a trained classifier: load it, put images on its device, predict, score.

The one module every evaluation (and the trainer's validation) goes through, so that a model
is rebuilt, fed and scored the same way everywhere.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from simreg.models.resnet import build_model


def pick_device(requested: str = "auto") -> torch.device:
    """``auto``: CUDA when present (after :func:`simreg.devices.claim_gpu`), else the CPU."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def to_input(images_u8: torch.Tensor) -> torch.Tensor:
    """uint8 NHWC on the device -> float NCHW in [0, 1] (torch's default float type: float32
    unless a test runs in float64)."""
    return images_u8.permute(0, 3, 1, 2).to(torch.get_default_dtype()).div_(255.0)


def load_model(path, device="cpu"):
    """Rebuild a trained classifier from ``model.pt``; returns (model in eval mode, metadata)."""
    saved = torch.load(path, map_location=device, weights_only=False)
    model = build_model(
        saved["architecture"], saved["in_channels"], saved["n_classes"], saved["width"]
    )
    model.load_state_dict(saved["model"])
    return model.to(device).eval(), saved["provenance"]


@torch.no_grad()
def predict(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Predicted classes of float inputs ``x``, in batches of ``batch_size``."""
    return torch.cat([model(x[i : i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])


@torch.no_grad()
def loss_and_accuracy(
    model, images_u8: torch.Tensor, labels: torch.Tensor, batch_size: int = 1024, transform=None
) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of ``model`` on device-resident uint8 images.

    ``transform`` maps a float batch in [0, 1] to the batch actually shown (noise, ...).
    """
    was_training = model.training
    model.eval()
    loss, correct = torch.zeros((), device=labels.device), torch.zeros((), device=labels.device)
    for start in range(0, len(labels), batch_size):
        x = to_input(images_u8[start : start + batch_size])
        if transform is not None:
            x = transform(x)
        logits = model(x)
        y = labels[start : start + batch_size]
        loss += F.cross_entropy(logits, y, reduction="sum")
        correct += (logits.argmax(1) == y).sum()
    model.train(was_training)
    n = max(1, len(labels))
    return (loss / n).item(), (correct / n).item()
