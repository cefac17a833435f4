"""FGSM transferred from the unregularized model (paper §5.1, Fig. 3 centre).

The attack of every target model at every ε uses the same perturbation direction: the sign
of the input gradient of the cross-entropy of the *source* model (method ``none``, α = 0,
same task and seed), evaluated at the true labels:

    x_adv(ε) = clip(x + ε · sign(∇ₓ CE(source(x), y)), 0, 1)

Since x_adv(ε) is fixed by x and the sign, the sign is all that is stored (int8 HDF5, once per
source model); each target model is then evaluated on x_adv(ε) over the ε grid.
"""

from __future__ import annotations

import sys

import h5py
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from simreg.datasets import first_images, read_split
from simreg.outputs import atomic_output, model_provenance, write_csv
from simreg.train import load_model, pick_device, to_input


def gradient_sign(model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """sign(∇ₓ CE(model(x), y)) for float inputs in [0, 1]; int8 in {-1, 0, 1}."""
    x = x.detach().clone().requires_grad_(True)
    loss = F.cross_entropy(model(x), y, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x)
    return grad.sign().to(torch.int8)


def fgsm(x: torch.Tensor, sign: torch.Tensor, eps: float) -> torch.Tensor:
    """x + eps * sign, clipped to [0, 1]: every pixel with a nonzero sign moves by eps
    unless the bound stops it."""
    return (x + float(eps) * sign.to(x.dtype)).clamp_(0.0, 1.0)


def build_perturbations(model_path, dataset_path, out, *, n_images: int | None = None,
                        batch_size: int = 512, device: str = "auto", keys: dict | None = None) -> None:
    """Store the source model's gradient signs on the test subset (HDF5: /sign, /indices)."""
    dev = pick_device(device)
    model, meta = load_model(model_path, dev)
    if meta.get("method") != "none":
        print(f"warning: FGSM source {model_path} has method {meta.get('method')!r}, "
              "not 'none'", file=sys.stderr)
    test = read_split(dataset_path, "test")
    indices = first_images(len(test.labels), n_images)
    images = torch.from_numpy(test.images[indices]).to(dev)
    labels = torch.from_numpy(test.labels[indices]).to(dev)
    signs = []
    for start in range(0, len(indices), batch_size):
        x = to_input(images[start : start + batch_size])
        signs.append(gradient_sign(model, x, labels[start : start + batch_size]).cpu())
    sign = torch.cat(signs).numpy()
    info = model_provenance(meta, dataset_file=str(dataset_path), source_model_file=str(model_path),
                      n_images=len(indices), attack="fgsm sign(grad_x CE), true labels",
                      **{f"source_{k}": v for k, v in (keys or {}).items()})
    with atomic_output(out) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("sign", data=sign, compression="gzip")
        f.create_dataset("indices", data=indices)
        f.attrs.update(info)
    print(f"fgsm: {len(indices)} gradient signs of {model_path} -> {out}", file=sys.stderr)


def read_perturbations(path) -> tuple[np.ndarray, np.ndarray, dict]:
    with h5py.File(path, "r") as f:
        return f["sign"][...], f["indices"][...], dict(f.attrs)


@torch.no_grad()
def transfer_accuracy(model, images_u8: torch.Tensor, labels: torch.Tensor, sign: torch.Tensor,
                      epsilons, batch_size: int = 1024) -> list[dict]:
    """Accuracy of ``model`` on the transferred FGSM images at each ε."""
    model.eval()
    rows = []
    for eps in epsilons:
        correct = 0
        for start in range(0, len(labels), batch_size):
            end = start + batch_size
            x = fgsm(to_input(images_u8[start:end]), sign[start:end], eps)
            correct += (model(x).argmax(1) == labels[start:end]).sum().item()
        rows.append({"epsilon": float(eps), "accuracy": correct / max(1, len(labels))})
    return rows


def evaluate_transfer(model_path, perturbations_path, dataset_path, out, *, epsilons,
                      device: str = "auto", keys: dict | None = None) -> None:
    """Tidy CSV: model keys, epsilon, accuracy (one row per ε), plus the source model."""
    dev = pick_device(device)
    model, meta = load_model(model_path, dev)
    sign, indices, attrs = read_perturbations(perturbations_path)
    test = read_split(dataset_path, "test")
    images = torch.from_numpy(test.images[indices]).to(dev)
    labels = torch.from_numpy(test.labels[indices]).to(dev)
    if sign.shape[0] != len(indices) or sign.shape[1:] != to_input(images[:1]).shape[1:]:
        raise ValueError(f"{perturbations_path} does not match the test images of {dataset_path}")
    rows = transfer_accuracy(model, images, labels, torch.from_numpy(sign).to(dev), epsilons)
    frame = pd.DataFrame(rows)
    info = model_provenance(meta, n_images=len(indices), dataset_file=str(dataset_path),
                      model_file=str(model_path), perturbations_file=str(perturbations_path),
                      source_model_file=attrs.get("source_model_file", ""), **(keys or {}))
    frame = frame.assign(**info)
    write_csv(frame, out)
    for row in rows:
        print(f"fgsm transfer: eps={row['epsilon']:g} accuracy={row['accuracy']:.4f}", file=sys.stderr)
