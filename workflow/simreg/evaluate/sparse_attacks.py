"""Sparse (L0) attacks that foolbox 3 lacks: JSMA and SparseFool, batched, in torch.

Both take a classifier mapping float NCHW images in [0, 1] to logits, images ``x`` in
[0, 1] and true labels ``y``, work on the whole batch at once (images that are already
adversarial drop out of the computation), and return ``(adversarials, success)``:
adversarials in [0, 1] of the shape of ``x`` and a bool mask, prediction != ``y``.
Written from the papers (Papernot et al. 2016; Modas et al. 2019); the departures are
listed in each docstring.
"""

from __future__ import annotations

import torch
from torch import nn

from simreg.models.inference import predict


def best_other_class(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The most likely class other than ``y``, per row."""
    return logits.detach().scatter(1, y[:, None], float("-inf")).argmax(1)


def jsma(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    max_fraction: float = 0.1,
    pair_candidates: int = 256,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Jacobian saliency-map attack (Papernot et al. 2016), untargeted.

    Each iteration changes two input values (a pair) per image, each pushed to a bound (0 or
    1), chosen by the paper's saliency: with ``a`` the gradient of the target logit and ``b``
    that of the sum of all other logits, a pair (p, q) is admissible when its predicted change
    of the target, alpha = a_p d_p + a_q d_q, is positive and of the others, beta, negative;
    the pair maximising alpha * |beta| is taken. Changed values leave the search domain. It
    stops per image at misclassification or once ``max_fraction`` of the input values
    (all channels) have changed.

    Departures from the paper: untargeted, the target is re-chosen every iteration as the most
    likely class other than ``y``; gradients of logits, not of softmax outputs (JSMA-Z of
    Carlini & Wagner 2017); each value may go up (to 1) or down (to 0), whichever raises
    target minus others (the paper's two variants in one); pairs are searched among the
    ``pair_candidates`` values of largest alpha - beta (exact for inputs of at most that many
    values); when no pair is admissible the pair of largest alpha - beta is taken instead of
    giving up.
    """
    n, shape = len(x), x.shape[1:]
    d = x[0].numel()
    adv = x.detach().flatten(1).clone()
    used = torch.zeros(n, d, dtype=torch.bool, device=x.device)
    success = predict(model, x) != y
    k = min(pair_candidates, d)
    not_self = ~torch.eye(k, dtype=torch.bool, device=x.device)
    for _ in range(int(max_fraction * d) // 2):
        active = (~success).nonzero().flatten()
        if len(active) == 0:
            break
        xa = adv[active].clone().requires_grad_(True)
        logits = model(xa.view(-1, *shape))
        target = best_other_class(logits, y[active])
        (a,) = torch.autograd.grad(logits.gather(1, target[:, None]).sum(), xa, retain_graph=True)
        (total,) = torch.autograd.grad(logits.sum(), xa)
        b = total - a
        bound = (a > b).to(adv.dtype)  # the bound each value moves to
        step = bound - xa.detach()
        alpha, beta = a * step, b * step
        free = ~used[active] & (step != 0)
        gain = (alpha - beta).masked_fill(~free, float("-inf"))
        idx = gain.topk(k, dim=1).indices
        al, be, ok = alpha.gather(1, idx), beta.gather(1, idx), free.gather(1, idx)
        pair_alpha = al[:, :, None] + al[:, None, :]
        pair_beta = be[:, :, None] + be[:, None, :]
        pair_ok = ok[:, :, None] & ok[:, None, :] & not_self
        admissible = pair_ok & (pair_alpha > 0) & (pair_beta < 0)
        score = torch.where(admissible, pair_alpha * -pair_beta, float("-inf"))
        fallback = torch.where(pair_ok, pair_alpha - pair_beta, float("-inf"))
        none_admissible = ~admissible.flatten(1).any(1)
        score[none_admissible] = fallback[none_admissible]
        best = score.flatten(1).argmax(1)
        has_pair = pair_ok.flatten(1).any(1)
        rows = active[has_pair]
        for position in (best // k, best % k):
            feature = idx.gather(1, position[:, None]).squeeze(1)[has_pair]
            adv[rows, feature] = bound[has_pair, feature]
            used[rows, feature] = True
        success[active] = predict(model, adv[active].view(-1, *shape)) != y[active]
    return adv.view_as(x), success


def deepfool_boundary(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    steps: int,
    overshoot: float,
    candidates: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """L2 DeepFool (Moosavi-Dezfooli et al. 2016) from ``x``: a point just across the nearest
    linearised boundary, and the normal of the boundary there (gradient of the logit of the
    leading other class minus that of ``y``).

    Only the ``candidates`` most likely other classes at ``x`` are considered (as foolbox's
    DeepFool does), so the cost does not grow with the number of classes.
    """
    with torch.no_grad():
        classes = model(x).scatter(1, y[:, None], float("-inf"))
    classes = classes.topk(min(candidates, classes.shape[1] - 1), dim=1).indices
    total = torch.zeros_like(x)
    for _ in range(steps):
        xi = (x + (1 + overshoot) * total).requires_grad_(True)
        logits = model(xi)
        still = logits.argmax(1) == y
        if not still.any():
            break
        f = logits.gather(1, classes) - logits.gather(1, y[:, None])
        grads = torch.stack(
            [
                torch.autograd.grad(f[:, j].sum(), xi, retain_graph=True)[0]
                for j in range(classes.shape[1])
            ],
            dim=1,
        )
        norms = grads.flatten(2).norm(dim=2) + 1e-8
        nearest = (f.detach().abs() / norms).argmin(1)
        rows = torch.arange(len(x), device=x.device)
        w, size = grads[rows, nearest], f.detach()[rows, nearest].abs() + 1e-4
        step = (size / norms[rows, nearest] ** 2).view(-1, *[1] * (x.dim() - 1)) * w
        total = total + step * still.view(-1, *[1] * (x.dim() - 1))
    boundary = (x + (1 + overshoot) * total).detach().requires_grad_(True)
    logits = model(boundary)
    other = best_other_class(logits, y)
    margin = logits.gather(1, other[:, None]) - logits.gather(1, y[:, None])
    (normal,) = torch.autograd.grad(margin.sum(), boundary)
    return boundary.detach(), normal


def l1_step_to_hyperplane(
    x: torch.Tensor,
    normal: torch.Tensor,
    point: torch.Tensor,
    lower: float = 0.0,
    upper: float = 1.0,
) -> torch.Tensor:
    """SparseFool's LinearSolver: move ``x`` onto the plane normal·(x' - point) = 0 changing
    as few values as possible, largest |normal| first, each as far as the box allows.

    The paper's loop (one coordinate per iteration) in closed form: sort by |normal|, the
    cumulative reach of the leading coordinates tells which go to a bound and which one
    moves part-way.
    """
    xf, w = x.flatten(1), normal.flatten(1)
    need = ((point.flatten(1) - xf) * w).sum(1)
    direction = torch.sign(need)[:, None] * torch.sign(w)
    room = torch.where(direction > 0, upper - xf, xf - lower).clamp_min(0)
    size, order = w.abs().sort(dim=1, descending=True)
    reach = size * room.gather(1, order)
    left = need.abs()[:, None] - (reach.cumsum(1) - reach)
    safe = torch.where(size > 0, size, torch.ones_like(size))
    move = torch.where(size > 0, left.clamp_min(0) / safe, torch.zeros_like(size))
    move = torch.minimum(move, room.gather(1, order))
    delta = torch.zeros_like(xf).scatter(1, order, move) * direction
    return (xf + delta).clamp(lower, upper).view_as(x)


def sparsefool(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    lambda_: float = 3.0,
    max_iter: int = 20,
    deepfool_steps: int = 50,
    overshoot: float = 0.02,
    candidates: int = 10,
) -> tuple[torch.Tensor, torch.Tensor]:
    """SparseFool (Modas et al. 2019): linearise the decision boundary with DeepFool at the
    current point, push the boundary point away from the clean image by ``lambda_``
    (x_B = x0 + lambda_ (x_B - x0)), step onto that hyperplane with the box-constrained L1
    solver, and repeat from there until misclassified or ``max_iter`` iterations.

    Departures: DeepFool looks at the ``candidates`` most likely other classes only; no
    final rescaling of the perturbation (``lambda_`` already overshoots the boundary).
    """
    adv = x.detach().clone()
    success = predict(model, x) != y
    for _ in range(max_iter):
        active = (~success).nonzero().flatten()
        if len(active) == 0:
            break
        x0, xa, ya = x[active], adv[active], y[active]
        boundary, normal = deepfool_boundary(
            model, xa, ya, steps=deepfool_steps, overshoot=overshoot, candidates=candidates
        )
        target = x0 + lambda_ * (boundary - x0)
        adv[active] = l1_step_to_hyperplane(xa, normal, target)
        success[active] = predict(model, adv[active]) != ya
    return adv, success
