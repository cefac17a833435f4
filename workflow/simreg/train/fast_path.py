"""Speed options of the model's forward passes in training (``training.fast_path``).

All three are off by default, and then :meth:`FastPath.prepare_model` leaves the model
untouched: a run's weights are bit for bit those of a run without this module.

- ``autocast: bfloat16``: each forward pass of the model runs under
  ``torch.autocast(device_type, dtype=torch.bfloat16)`` (convolutions and the linear layers
  in bf16), and the K feature maps come back in fp32. The classification head's
  cross-entropy, the regularizers' heads and losses and the optimizer work in fp32 on fp32
  parameters; autograd carries the gradients back through the bf16 kernels.
- ``channels_last``: the model's weights in NHWC memory format, and its inputs converted to
  it on the way in. ``state_dict`` returns contiguous tensors, so model.pt and checkpoints
  hold plain NCHW weights.
- ``compile``: ``torch.compile`` of that forward pass (with the two options above inside the
  compiled function). The first passes of each batch shape and mode (training batch,
  regularization batch, validation) compile; on CPU that needs a C++ compiler. Methods
  whose loss differentiates an input gradient (``gn``, ``sgr``, ``jacobian``: double
  backward) cannot be compiled and are refused.

How: the model's ``features`` method is the one forward pass that the trainer's step, every
regularizer (``batch.model.features``, ``model.embedding``, ``model(x)``), PGD crafting and
validation go through. :meth:`FastPath.prepare_model` shadows it on the model instance by
the fast version of the class's own method. No wrapper module is made, so ``state_dict``
keys stay plain (no ``_orig_mod.`` of a compiled module) and the trainer and the regularizers
hold the model as before.

Why not ``with torch.autocast(...)`` around the whole step: the regularizers would get bf16
features and compute their losses in bf16. The similarity methods' running feature means
are fp32 buffers (``lerp_`` refuses bf16 features), and the Fisher z of eq. 3 is not finite
in bf16 for targets of ±1 (1 - 1 + 1e-5 rounds to 0). Casting at the model's boundary keeps
every loss in fp32 whatever the method.

CUDA graphs are not offered: ``torch.compile(mode="reduce-overhead")`` is the way to them,
and it has not been measured on a GPU (docs/choices.md, "Training speed").
"""

from __future__ import annotations

import torch

AUTOCAST_DTYPES = {"none": None, "bfloat16": torch.bfloat16}


class FastPath:
    """The run's fast-path options (``simreg.settings.FastPath``) on one device."""

    def __init__(
        self, device, autocast: str = "none", channels_last: bool = False, compile: bool = False
    ):
        if autocast not in AUTOCAST_DTYPES:
            raise ValueError(
                f"training.fast_path.autocast must be one of "
                f"{sorted(AUTOCAST_DTYPES)}, got {autocast!r}"
            )
        self.device = torch.device(device)
        self.dtype = AUTOCAST_DTYPES[autocast]
        self.channels_last = bool(channels_last)
        self.compile = bool(compile)

    @classmethod
    def from_settings(cls, settings, device) -> "FastPath":
        """The fast path of a run's :class:`~simreg.train.settings.TrainSettings` (its
        ``fast_path``, the config's ``training.fast_path``)."""
        from simreg.train.regularizers import get_regularizer

        fast = cls(device, **settings.fast_path)
        if fast.compile and get_regularizer(settings.method).needs_input_grad:
            raise ValueError(
                f"training.fast_path.compile cannot train method {settings.method!r}: its loss "
                "differentiates an input gradient (double backward), which torch.compile does "
                "not support; set compile: false for it"
            )
        return fast

    @property
    def active(self) -> bool:
        return self.dtype is not None or self.channels_last or self.compile

    def autocast(self):
        """The autocast context of a forward pass (a no-op context when autocast is none)."""
        return torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None)

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` in the model's memory format."""
        if self.channels_last and x.dim() == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def forward(self, features):
        """``features`` (a function of a float NCHW batch to a list of feature maps) on the
        fast path: inputs in the model's memory format, autocast inside, fp32 out, compiled
        if asked."""

        def fast_features(x):
            with self.autocast():
                out = features(self.inputs(x))
            return out if self.dtype is None else [f.float() for f in out]

        if self.compile:
            # One graph per batch shape and mode (a handful per run: the training batch,
            # the regularization batch, validation), each specialized to its shapes.
            return torch.compile(fast_features, dynamic=False)
        return fast_features

    def prepare_model(self, model: torch.nn.Module) -> torch.nn.Module:
        """Put ``model`` (a :class:`~simreg.models.resnet.ResNet`, on its device) on the fast
        path, in place; with every option off, leave it untouched. Returns ``model``."""
        if not self.active:
            return model
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
            model.register_state_dict_post_hook(_contiguous_state)
        model.features = self.forward(type(model).features.__get__(model))
        return model


def _contiguous_state(module, state_dict, prefix, local_metadata) -> None:
    """State-dict hook: NCHW-contiguous copies of channels_last tensors, so saved weights
    are plain whatever the training memory format."""
    for key, value in state_dict.items():
        if isinstance(value, torch.Tensor) and not value.is_contiguous():
            state_dict[key] = value.contiguous()
