"""Representation sensitivity under white-box PGD-L∞ (Bashivan et al., §3, Fig. 4):
||E(x) − E(x')||₂ / ||E(x)||₂ per image, E the penultimate activity and x' the PGD-L∞
adversarial of x at budget ε (foolbox ``LinfPGD``, as :mod:`simreg.evaluate.whitebox`), and
its median, mean and standard deviation over the test images per ε.
"""

from __future__ import annotations

import sys

import pandas as pd
import torch

from simreg.evaluate.registry import implements
from simreg.evaluate.whitebox import pgd_linf
from simreg.models.inference import to_input


def normalized_change(model, x: torch.Tensor, x_adv: torch.Tensor) -> torch.Tensor:
    """||E(x) − E(x')|| / ||E(x)|| per image."""
    with torch.no_grad():
        clean, perturbed = model.embedding(x), model.embedding(x_adv)
    return (clean - perturbed).norm(dim=1) / clean.norm(dim=1).clamp_min(1e-12)


def representation_sensitivity(
    model,
    images_u8,
    labels,
    epsilons_255,
    *,
    pgd_steps: int,
    pgd_rel_stepsize: float,
    seed: int,
    batch_size: int = 256,
) -> list[dict]:
    model.eval()
    values = {e: [] for e in epsilons_255}
    for start in range(0, len(labels), batch_size):
        x = to_input(images_u8[start : start + batch_size])
        y = labels[start : start + batch_size]
        for e in epsilons_255:
            x_adv = pgd_linf(
                model,
                x,
                y,
                e / 255.0,
                steps=pgd_steps,
                rel_stepsize=pgd_rel_stepsize,
                seed=seed + start,
            )
            values[e].append(normalized_change(model, x, x_adv))
        print(
            f"sensitivity: {min(start + batch_size, len(labels))}/{len(labels)} images",
            file=sys.stderr,
        )
    rows = []
    for e, parts in values.items():
        s = torch.cat(parts).double().cpu()
        rows.append(
            {
                "epsilon_255": float(e),
                "epsilon": e / 255.0,
                "median": s.median().item(),
                "mean": s.mean().item(),
                "std": s.std().item() if len(s) > 1 else 0.0,
            }
        )
    return rows


@implements("sensitivity")
def run(
    context,
    *,
    epsilons_255,
    n_images: int | None,
    pgd_steps: int,
    pgd_rel_stepsize: float,
    seed: int = 0,
    batch_size: int = 256,
) -> None:
    """Tidy CSV: model keys, epsilon_255, epsilon, median, mean, std of the sensitivity."""
    indices = context.subset(n_images)
    images, labels = context.images(indices)
    frame = pd.DataFrame(
        representation_sensitivity(
            context.model,
            images,
            labels,
            epsilons_255,
            pgd_steps=pgd_steps,
            pgd_rel_stepsize=pgd_rel_stepsize,
            seed=seed,
            batch_size=batch_size,
        )
    )
    context.write_table(
        frame,
        n_images=len(indices),
        pgd_steps=pgd_steps,
        pgd_rel_stepsize=pgd_rel_stepsize,
        pgd_seed=seed,
    )
