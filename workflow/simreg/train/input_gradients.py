"""Input gradients of the penalties that train through them (``sgr``, ``gn``, ``jacobian``):
the one place that says through which forward pass ∇ₓ is taken, and takes it.

With BatchNorm in training mode, image i's output depends on every image of the batch
through the batch's mean and variance, so ∇ₓ of the batch's summed loss is not the stack of
the images' own gradients: row i also carries ∂(loss of image j)/∂xᵢ through the statistics.
Roth's gᵢ = ∇ₓ log φ_y(xᵢ) and Schaeffer's ∇ₓ f(x) are each image's own gradient (Roth's
networks had no BatchNorm). ``input_gradients.batchnorm`` says which is taken:

- ``per_sample`` (the default): a second forward pass of the step's inputs in which every
  BatchNorm layer in training mode normalizes with this batch's statistics held constant
  (computed from the layer's input, detached). Its values are those of the training pass
  (the same statistics), but image i's outputs depend on xᵢ alone, so ∇ₓ of a sum over the
  batch is each image's own gradient. The cross-entropy, its gradient and the running
  statistics still come from the training pass; the penalty's gradient with respect to the
  weights does not flow through the statistics.
- ``batch``: ∇ₓ through the training pass itself (simreg before issue #23).

docs/choices.md ("Input gradients and BatchNorm") gives the measured difference and cost.

This module imports no torch at load (the regularizers' declarations import it).
"""

from __future__ import annotations

from contextlib import contextmanager

BATCHNORM_MODES = ("per_sample", "batch")  # input_gradients.batchnorm


def _frozen_batch_norm(module, x):
    """``module`` (a BatchNorm layer) on ``x`` with ``x``'s batch statistics as constants."""
    import torch
    import torch.nn.functional as F

    dims = [0, *range(2, x.dim())]
    with torch.no_grad():
        stats = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x  # autocast
        mean, var = stats.mean(dims), stats.var(dims, unbiased=False)
    return F.batch_norm(x, mean, var, module.weight, module.bias, False, 0.0, module.eps)


@contextmanager
def frozen_batch_statistics(model):
    """Within: every BatchNorm layer of ``model`` in training mode normalizes with the
    statistics of the batch it sees, detached, and updates no running statistics."""
    from functools import partial

    from torch import nn

    layers = [m for m in model.modules()
              if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training]
    saved = [m.__dict__.get("forward") for m in layers]
    for m in layers:
        m.forward = partial(_frozen_batch_norm, m)
    try:
        yield model
    finally:
        for m, forward in zip(layers, saved):
            if forward is None:
                del m.forward
            else:
                m.forward = forward


def differentiable_forward(batch, batchnorm: str):
    """(x, logits) of ``batch`` (a :class:`~simreg.train.regularizers.base.Batch`) whose ∇ₓ
    the penalty takes: the training pass's (``batch``), or a pass of
    the same inputs with the batch's statistics held constant (``per_sample``)."""
    if batchnorm == "batch":
        return batch.x, batch.logits
    if batchnorm != "per_sample":
        raise ValueError(f"input_gradients.batchnorm must be one of {BATCHNORM_MODES}, "
                         f"got {batchnorm!r}")
    x = batch.x.detach().requires_grad_(True)
    with frozen_batch_statistics(batch.model):
        features = batch.model.features(x)
        logits = batch.model.classify(features[-1])
    return x, logits


def vector_jacobian(x, outputs, v):
    """∇ₓ Σ (v · outputs), per image: vᵢᵀ Jᵢ for rows ``v`` (n, K) of ``outputs`` (n, K)
    (differentiable: the penalty trains through it). ``outputs`` must depend on ``x``."""
    import torch

    return torch.autograd.grad((v * outputs).sum(), x, create_graph=True)[0]


def loss_input_gradients(batch, batchnorm: str):
    """gᵢ = ∇ₓ log φ_y(xᵢ) for the batch (Roth Alg. 1), differentiable."""
    import torch
    import torch.nn.functional as F

    x, logits = differentiable_forward(batch, batchnorm)
    if logits is batch.logits:
        total = batch.ce * len(batch.y)  # Σᵢ −log φ_y(xᵢ), the training pass's own
    else:
        total = F.cross_entropy(logits, batch.y, reduction="sum")
    return -vector_jacobian(x, total, torch.ones_like(total))
