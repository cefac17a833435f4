"""Perturbations made during training: input gradients and PGD-L∞ (Madry et al. 2018).

Used by the methods that train on or learn from adversarial inputs (``pgd_at``, ``afd``,
``sgr``). Crafting runs with the classifier in eval mode, so that its BatchNorm layers use
their running statistics and the crafting passes leave them untouched (docs/choices.md); the
random start comes from the method's own generator, so runs and resumed runs agree.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F


@contextmanager
def eval_mode(model: torch.nn.Module):
    """``model`` in eval mode inside the block, its previous mode restored after."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def loss_gradient(model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """∇ₓ of the summed cross-entropy at ``x`` (no parameter gradients are accumulated)."""
    x = x.detach().requires_grad_(True)
    loss = F.cross_entropy(model(x), y, reduction="sum")
    return torch.autograd.grad(loss, x)[0]


def pgd_linf(
    model,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    *,
    steps: int,
    rel_stepsize: float,
    generator: torch.Generator | None = None,
    random_start: bool = True,
) -> torch.Tensor:
    """PGD-L∞ inputs within ||x' - x||∞ <= eps and [0, 1]: a uniform random start in the
    ε-ball (when ``random_start``), then ``steps`` signed-gradient steps of
    ``rel_stepsize * eps`` on the cross-entropy of the labels ``y``, each projected back."""
    x = x.detach()
    if eps == 0 or steps == 0:
        return x.clone()
    with eval_mode(model):
        if random_start:
            noise = torch.rand(x.shape, generator=generator).to(x.device)
            x_adv = (x + eps * (2 * noise - 1)).clamp(0.0, 1.0)
        else:
            x_adv = x.clone()
        for _ in range(steps):
            grad = loss_gradient(model, x_adv, y)
            x_adv = x_adv + rel_stepsize * eps * grad.sign()
            x_adv = torch.minimum(torch.maximum(x_adv, x - eps), x + eps).clamp(0.0, 1.0)
    return x_adv.detach()
