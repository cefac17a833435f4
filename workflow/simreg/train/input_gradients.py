"""Input gradients of the penalties that train through them (``sgr``, ``gn``, ``jacobian``):
the one place that says through which forward pass ∇ₓ is taken, and takes it.

With BatchNorm in training mode, image i's output depends on every image of the batch
through the batch's mean and variance, so ∇ₓ of the batch's summed loss is not the stack of
the images' own gradients: row i also carries ∂(loss of image j)/∂xᵢ through the statistics.
Roth's gᵢ = ∇ₓ log φ_y(xᵢ) and Schaeffer's ∇ₓ f(x) are each image's own gradient (Roth's
networks had no BatchNorm). ``input_gradients.batchnorm`` says which is taken:

- ``per_sample`` (the default): a second forward pass of the step's inputs in which every
  BatchNorm layer in training mode normalizes with the statistics of the training pass
  (the trainer's, recorded by :class:`TrainingStatistics`). Its values are those of the
  training pass, but image i's outputs depend on xᵢ alone (the statistics hang on the
  training pass's inputs, not on this pass's), so ∇ₓ of a sum over the batch is each
  image's own gradient, while the penalty's gradient with respect to the weights still flows
  through the statistics. The cross-entropy, its gradient and the running statistics come
  from the training pass as before.
- ``batch``: ∇ₓ through the training pass itself (simreg before issue #23).

docs/choices.md ("Input gradients and BatchNorm") gives the measured difference and cost.

This module imports no torch at load (the regularizers' declarations import it).
"""

from __future__ import annotations

from contextlib import contextmanager

BATCHNORM_MODES = ("per_sample", "batch")  # input_gradients.batchnorm


class TrainingStatistics:
    """The input each BatchNorm layer of ``model`` saw in the last training-mode pass (the
    trainer's), kept by forward pre-hooks, so that the per-sample pass normalizes with
    statistics that depend on the weights (through that pass) but not on its own inputs."""

    def __init__(self, model):
        from torch import nn

        self.inputs: dict = {}
        self.recording = True
        self.handles = [
            m.register_forward_pre_hook(self._record)
            for m in model.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm)
        ]

    def __deepcopy__(self, memo):
        """A copied model (deepcopy copies its hooks) records afresh: the inputs, non-leaf
        tensors of the last pass, are not copied."""
        copy = object.__new__(type(self))
        copy.inputs, copy.recording, copy.handles = {}, self.recording, []
        return copy

    def _record(self, module, args):
        if module.training and self.recording:
            self.inputs[module] = args[0]

    def take(self) -> dict:
        """layer -> (mean, biased variance) of its recorded input; forgets the inputs."""
        out = {m: _moments(x) for m, x in self.inputs.items()}
        self.inputs = {}
        return out


def track_statistics(model, batchnorm: str) -> TrainingStatistics | None:
    """What a method's ``setup`` keeps for :func:`differentiable_forward`: the training
    pass's statistics of ``model`` where ``batchnorm`` is per_sample (and a model is given)."""
    return TrainingStatistics(model) if batchnorm == "per_sample" and model is not None else None


def _moments(x):
    import torch

    dims = [0, *range(2, x.dim())]
    stats = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x  # autocast
    return stats.mean(dims), stats.var(dims, unbiased=False)


def _batch_norm_with(module, moments: dict, x):
    """``module`` (a BatchNorm layer) on ``x``, normalizing with ``moments[module]`` (the
    training pass's statistics), or with ``x``'s own batch statistics detached where the
    training pass left none."""
    import torch

    if module in moments:
        mean, var = moments[module]
    else:
        with torch.no_grad():
            mean, var = _moments(x)
    shape = (1, -1) + (1,) * (x.dim() - 2)
    scale = torch.rsqrt(var + module.eps)
    if module.weight is not None:
        scale = scale * module.weight
    out = (x - mean.reshape(shape).to(x.dtype)) * scale.reshape(shape).to(x.dtype)
    return out if module.bias is None else out + module.bias.reshape(shape).to(x.dtype)


@contextmanager
def frozen_batch_statistics(model, moments: dict | None = None):
    """Within: every BatchNorm layer of ``model`` in training mode normalizes with fixed
    statistics, ``moments[layer]`` (mean, biased variance), or where ``moments`` has none
    the statistics of the batch it sees, detached; no running statistics are updated."""
    from functools import partial

    from torch import nn

    moments = moments or {}
    layers = [
        m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training
    ]
    saved = [m.__dict__.get("forward") for m in layers]
    for m in layers:
        m.forward = partial(_batch_norm_with, m, moments)
    try:
        yield model
    finally:
        for m, forward in zip(layers, saved):
            if forward is None:
                del m.forward
            else:
                m.forward = forward


def differentiable_forward(batch, batchnorm: str, statistics: TrainingStatistics | None = None):
    """(x, logits) of ``batch`` (a :class:`~simreg.train.regularizers.base.Batch`) whose ∇ₓ
    the penalty takes: the training pass's (``batch``), or a pass of the same inputs with
    the batch's statistics fixed (``per_sample``): those ``statistics`` recorded in the
    training pass (so the penalty's gradient reaches the weights through them too), else
    each layer's own, detached."""
    if batchnorm == "batch":
        return batch.x, batch.logits
    if batchnorm != "per_sample":
        raise ValueError(
            f"input_gradients.batchnorm must be one of {BATCHNORM_MODES}, got {batchnorm!r}"
        )
    moments = statistics.take() if statistics is not None else {}
    x = batch.x.detach().requires_grad_(True)
    if statistics is not None:
        statistics.recording = False
    try:
        with frozen_batch_statistics(batch.model, moments):
            features = batch.model.features(x)
            logits = batch.model.classify(features[-1])
    finally:
        if statistics is not None:
            statistics.recording = True
    return x, logits


def vector_jacobian(x, outputs, v):
    """∇ₓ Σ (v · outputs), per image: vᵢᵀ Jᵢ for rows ``v`` (n, K) of ``outputs`` (n, K)
    (differentiable: the penalty trains through it). ``outputs`` must depend on ``x``."""
    import torch

    return torch.autograd.grad((v * outputs).sum(), x, create_graph=True)[0]


def loss_input_gradients(batch, batchnorm: str, statistics: TrainingStatistics | None = None):
    """gᵢ = ∇ₓ log φ_y(xᵢ) for the batch (Roth Alg. 1), differentiable."""
    import torch
    import torch.nn.functional as F

    x, logits = differentiable_forward(batch, batchnorm, statistics)
    if logits is batch.logits:
        total = batch.ce * len(batch.y)  # Σᵢ −log φ_y(xᵢ), the training pass's own
    else:
        total = F.cross_entropy(logits, batch.y, reduction="sum")
    return -vector_jacobian(x, total, torch.ones_like(total))
