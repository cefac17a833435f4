"""FGSM transferred from an unregularized model (paper §5.1, Fig. 3 centre).

The attack of every target model at every ε uses the same perturbation direction: the sign
of the input gradient of the cross-entropy of the *source* model (method ``none``, α = 0,
same task, trained with its own seed ``fgsm_transfer.source_seed`` that no evaluated model
has), evaluated at the true labels:

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

from simreg.data.store import read_split
from simreg.data.subsets import first_images
from simreg.evaluate.registry import implements
from simreg.models.inference import load_model, pick_device, to_input
from simreg.outputs import atomic_output, model_provenance


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


def build_perturbations(
    model_path,
    dataset_path,
    out,
    *,
    n_images: int | None = None,
    batch_size: int = 512,
    device: str = "auto",
    keys: dict | None = None,
) -> None:
    """Store the source model's gradient signs on the test subset (HDF5: /sign, /indices)."""
    dev = pick_device(device)
    model, meta = load_model(model_path, dev)
    if meta.get("method") != "none":
        print(
            f"warning: FGSM source {model_path} has method {meta.get('method')!r}, not 'none'",
            file=sys.stderr,
        )
    test = read_split(dataset_path, "test")
    indices = first_images(len(test.labels), n_images)
    images = torch.from_numpy(test.images[indices]).to(dev)
    labels = torch.from_numpy(test.labels[indices]).to(dev)
    signs = []
    for start in range(0, len(indices), batch_size):
        x = to_input(images[start : start + batch_size])
        signs.append(gradient_sign(model, x, labels[start : start + batch_size]).cpu())
    sign = torch.cat(signs).numpy()
    info = model_provenance(
        meta,
        dataset_file=str(dataset_path),
        source_model_file=str(model_path),
        n_images=len(indices),
        attack="fgsm sign(grad_x CE), true labels",
        **{f"source_{k}": v for k, v in (keys or {}).items()},
    )
    with atomic_output(out) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("sign", data=sign, compression="gzip")
        f.create_dataset("indices", data=indices)
        f.attrs.update(info)
    print(f"fgsm: {len(indices)} gradient signs of {model_path} -> {out}", file=sys.stderr)


def read_perturbations(path) -> tuple[np.ndarray, np.ndarray, dict]:
    with h5py.File(path, "r") as f:
        return f["sign"][...], f["indices"][...], dict(f.attrs)


@torch.no_grad()
def transfer_accuracy(
    model,
    images_u8: torch.Tensor,
    labels: torch.Tensor,
    sign: torch.Tensor,
    epsilons,
    batch_size: int = 1024,
) -> list[dict]:
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


@implements("fgsm_transfer")
def run(context, *, epsilons) -> None:
    """Tidy CSV: model keys, epsilon, accuracy (one row per ε), plus the source model, on the
    test images the perturbation file holds."""
    sign, indices, attrs = read_perturbations(context.inputs["perturbations"])
    images, labels = context.images(indices)
    if sign.shape[0] != len(indices) or sign.shape[1:] != to_input(images[:1]).shape[1:]:
        raise ValueError(
            f"{context.inputs['perturbations']} does not match the test images of "
            f"{context.inputs['dataset']}"
        )
    rows = transfer_accuracy(
        context.model, images, labels, torch.from_numpy(sign).to(context.device), epsilons
    )
    source_keys = {
        k: attrs[k]
        for k in sorted(attrs)
        if k.startswith("source_") and k not in ("source_model_file",)
    }
    context.write_table(
        pd.DataFrame(rows),
        n_images=len(indices),
        perturbations_file=str(context.inputs["perturbations"]),
        source_model_file=attrs.get("source_model_file", ""),
        **source_keys,
    )
    for row in rows:
        print(
            f"fgsm transfer: eps={row['epsilon']:g} accuracy={row['accuracy']:.4f}", file=sys.stderr
        )
