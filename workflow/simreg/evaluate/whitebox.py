"""White-box accuracy under FGSM and PGD-L∞, with ε in units of 1/255 (the table that the
SGR and AFD papers report; issue #4 §4).

Both attacks use the model's own gradients and the true labels. FGSM is one signed-gradient
step of size ε (simreg.evaluate.fgsm); PGD-L∞ is foolbox 3's ``LinfPGD`` (random start in the
ε-ball, ``steps`` steps of ``rel_stepsize``·ε, projection on the ε-ball and on [0, 1]). An
image counts as robust when the model still classifies the attacked image correctly, so an
image that is misclassified clean is never robust.
"""

from __future__ import annotations

import sys

import foolbox as fb
import pandas as pd
import torch

from simreg.evaluate.fgsm import fgsm, gradient_sign
from simreg.evaluate.registry import implements
from simreg.models.inference import to_input


def pgd_linf(
    model,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    *,
    steps: int,
    rel_stepsize: float,
    seed: int,
) -> torch.Tensor:
    """PGD-L∞ adversarials (foolbox ``LinfPGD``) within ||x_adv - x||∞ <= eps, in [0, 1]."""
    if eps == 0:
        return x.clone()
    torch.manual_seed(seed)  # the random start
    attack = fb.attacks.LinfPGD(steps=steps, rel_stepsize=rel_stepsize, random_start=True)
    _, clipped, _ = attack(fb.PyTorchModel(model, bounds=(0.0, 1.0)), x, y, epsilons=float(eps))
    return clipped


def whitebox_accuracy(
    model,
    images_u8: torch.Tensor,
    labels: torch.Tensor,
    epsilons_255,
    *,
    pgd_steps: int,
    pgd_rel_stepsize: float,
    seed: int,
    batch_size: int = 256,
) -> list[dict]:
    """Accuracy under white-box FGSM and PGD-L∞ at each ε (given in units of 1/255)."""
    model.eval()
    correct = {(attack, e): 0 for attack in ("fgsm", "pgd_linf") for e in epsilons_255}
    for start in range(0, len(labels), batch_size):
        x = to_input(images_u8[start : start + batch_size])
        y = labels[start : start + batch_size]
        sign = gradient_sign(model, x, y)
        for e in epsilons_255:
            eps = e / 255.0
            attacked = {
                "fgsm": fgsm(x, sign, eps),
                "pgd_linf": pgd_linf(
                    model,
                    x,
                    y,
                    eps,
                    steps=pgd_steps,
                    rel_stepsize=pgd_rel_stepsize,
                    seed=seed + start,
                ),
            }
            with torch.no_grad():
                for attack, x_adv in attacked.items():
                    correct[attack, e] += (model(x_adv).argmax(1) == y).sum().item()
        print(
            f"whitebox: {min(start + batch_size, len(labels))}/{len(labels)} images",
            file=sys.stderr,
        )
    n = max(1, len(labels))
    return [
        {"attack": attack, "epsilon_255": float(e), "epsilon": e / 255.0, "accuracy": c / n}
        for (attack, e), c in correct.items()
    ]


@implements("whitebox")
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
    """Tidy CSV: model keys, attack, epsilon_255, epsilon, accuracy, on the first
    ``n_images`` test images."""
    indices = context.subset(n_images)
    images, labels = context.images(indices)
    frame = pd.DataFrame(
        whitebox_accuracy(
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
