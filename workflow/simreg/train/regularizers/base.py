"""The regularizer protocol: what a training method declares and what the trainer calls.

A method is one subclass of :class:`Regularizer`, registered by name with :func:`register`.
The trainer (:mod:`simreg.train.trainer`) names no method: it asks the regularizer for

- its **parameters** (typed, each read from a config key, e.g. ``threshold`` from
  ``regularization.threshold``; ``threshold`` and ``reg_pairs`` are also part of the model
  key, so a figure grid can vary them);
- what it **needs** from the DAG: ``"similarity"`` (a similarity target file and the
  dataset of its images), ``"source_model"`` (the unregularized model of the same task and
  seed), or nothing. The train rule turns these into inputs and hands the files to ``setup``;
- its **per-step loss** ``loss(batch, step)``, which the trainer adds as ``alpha * loss``;
- optional hooks: ``adversarial_batch`` (replace the classification batch, e.g. by PGD),
  ``modules`` (extra modules trained by the classifier's optimizer and saved with it),
  ``after_step`` (the method's own optimizer or running state, e.g. AFD's discriminator or
  SGR's perturbation covariance), ``state_dict``/``load_state_dict`` (what a checkpoint must
  hold of that state) and ``metrics`` (logged per epoch);
- ``start_epoch(epoch, lr_scale)``: the epoch begins and the classifier's learning rate is
  ``lr_scale`` times its base value (a method with its own optimizers, e.g. AFD's
  discriminator and embedding steps, follows the same schedule).

Parameters may depend on the task's dataset (``Parameter(per_dataset=True)``: the config key
holds one value per dataset, e.g. the PGD budget ε = 0.031 on CIFAR, 0.3 on MNIST).

Declarations are plain class attributes and module imports stay free of torch, so the
Snakefile can read the registry without loading torch; tensors arrive as arguments, and
modules that need torch's namespace import it inside the method.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from simreg.paths import split_pairs
from simreg.settings import typed

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

# What a regularizer may need from the DAG (its files: simreg.paths.method_inputs).
# "neural_similarity": the predictive model's similarity of the regularization set (same
# layout as the pixel file).
NEEDS = ("similarity", "source_model", "neural_similarity")


@dataclass(frozen=True)
class Parameter:
    """A typed parameter of a method and the config key its default comes from."""

    type: type
    config: str  # dotted config key, e.g. "regularization.threshold"
    description: str = ""
    per_dataset: bool = False  # the key maps dataset name -> value
    choices: tuple = ()  # the values allowed, where only some are
    # The value where a caller gives none (settings written before the parameter existed, or
    # left out of a model's params at its default so that its Snakemake params stay as they
    # were); None: the caller must give it.
    default: Any = None

    def read(self, config: dict, dataset: str | None = None):
        section, key = self.config.split(".")
        value: Any = getattr(getattr(typed(config), section), key)
        if self.per_dataset:
            if dataset is None:
                raise ValueError(f"config key {self.config!r} is per dataset: name the dataset")
            if dataset not in value:
                raise ValueError(
                    f"config key {self.config!r} has no value for dataset "
                    f"{dataset!r}; add {self.config}.{dataset}"
                )
            value = value[dataset]
        return self.type(value)


@dataclass
class Batch:
    """One classification step as the regularizer sees it: the classifier, the inputs shown to
    it (after augmentation and ``adversarial_batch``), labels, the K similarity layers'
    features, logits and the cross-entropy."""

    model: "nn.Module"
    x: "torch.Tensor"
    y: "torch.Tensor"
    features: list
    logits: "torch.Tensor"
    ce: "torch.Tensor"


@dataclass
class TrainContext:
    """What ``setup`` gets: the classifier, where it runs, the run's seed, the task's channel
    count, the files of ``needs`` by name, the task's training images (uint8 NHWC on the
    device, validation images held out) and class count, and the run's α (for a method that
    weighs a loss of its own update, e.g. AFD's embedding step)."""

    model: "nn.Module"
    device: "torch.device"
    seed: int
    channels: int
    inputs: dict
    train_images: "torch.Tensor | None" = None
    n_classes: int = 0
    alpha: float = 0.0


class Regularizer:
    """Base class: a method without regularization. Subclasses override what they use."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    needs: ClassVar[tuple[str, ...]] = ()
    uses_alpha: ClassVar[bool] = True
    parameters: ClassVar[dict[str, Parameter]] = {}
    # The batch's inputs require grad (input-gradient penalties such as SGR, Jacobian).
    needs_input_grad: ClassVar[bool] = False
    # Several seeds can train in one stacked model (simreg.train.packed): the method's step is
    # a pure function of the classifier, its modules and the tensor attributes named in
    # ``packed_state`` (which may differ by seed), with no adversarial batch, no own optimizer
    # and no state kept outside its modules' buffers.
    packable: ClassVar[bool] = False
    packed_state: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **params):
        unknown = set(params) - set(self.parameters)
        missing = {n for n, spec in self.parameters.items() if spec.default is None} - set(params)
        if unknown or missing:
            raise ValueError(
                f"method {self.name!r} takes parameters {sorted(self.parameters)}; "
                f"unknown: {sorted(unknown)}, missing: {sorted(missing)}"
            )
        for name, spec in self.parameters.items():
            value = spec.type(params.get(name, spec.default))
            if spec.choices and value not in spec.choices:
                raise ValueError(
                    f"config key {spec.config!r}: {value!r} is not one of {spec.choices}"
                )
            setattr(self, name, value)

    # ---- declarations -----------------------------------------------------------------
    @classmethod
    def parameters_from(cls, config: dict, key=None, dataset: str | None = None) -> dict:
        """The method's parameters for model ``key`` under ``config``: the model key's own
        ``threshold`` and ``pairs`` where it holds them, the config's values otherwise
        (per-dataset values for the key's dataset, or ``dataset`` without a key)."""
        if key is not None:
            dataset = key.task.rsplit("_", 1)[0]
        values = {name: spec.read(config, dataset) for name, spec in cls.parameters.items()}
        if key is not None:
            if "threshold" in values and key.threshold != "na":
                values["threshold"] = cls.parameters["threshold"].type(key.threshold)
            k, pair_pass = split_pairs(key.pairs)
            if "reg_pairs" in values and k:
                values["reg_pairs"] = k
            if "pair_pass" in values and k:
                values["pair_pass"] = pair_pass
        return values

    @property
    def regularized(self) -> bool:
        return self.uses_alpha

    def params(self) -> dict:
        return {name: getattr(self, name) for name in self.parameters}

    # ---- the trainer's calls ------------------------------------------------------------
    def setup(self, context: TrainContext) -> None:
        """Read what ``needs`` provides, build state and modules (on ``context.device``)."""

    def modules(self) -> dict[str, "nn.Module"]:
        """Modules trained together with the classifier (same optimizer) and saved with it."""
        return {}

    def start_epoch(self, epoch: int, lr_scale: float) -> None:
        """The epoch begins; the classifier's learning rate is ``lr_scale`` times its base."""

    def plan_epoch(self, n_steps: int, generator: "torch.Generator", device) -> list | None:
        """Draws for the whole epoch, one entry per step (drawn once, from the trainer's
        generator, before the augmentation draws); None when the method draws nothing."""
        return None

    def adversarial_batch(self, model: "nn.Module", x: "torch.Tensor", y: "torch.Tensor"):
        """The inputs to train the classifier on this step (default: ``x`` unchanged)."""
        return x

    def loss(self, batch: Batch, step) -> "torch.Tensor | None":
        """This step's regularization loss (the trainer adds ``alpha *`` it); None: none."""
        return None

    def after_step(self, batch: Batch) -> None:
        """After the classifier's optimizer step: own optimizers, running state."""

    def state_dict(self) -> dict:
        """Running state and own optimizers, for checkpoints (modules() are saved apart)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def metrics(self) -> dict[str, float]:
        """Values to log at the end of each epoch (columns of metrics.csv)."""
        return {}


REGULARIZERS: dict[str, type[Regularizer]] = {}


def register(cls: type[Regularizer]) -> type[Regularizer]:
    """Class decorator: make ``cls`` a method of the pipeline under ``cls.name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    if cls.name in REGULARIZERS and REGULARIZERS[cls.name] is not cls:
        raise ValueError(
            f"a regularizer named {cls.name!r} is already registered "
            f"({REGULARIZERS[cls.name].__module__})"
        )
    bad = set(cls.needs) - set(NEEDS)
    if bad:
        raise ValueError(f"{cls.name}: unknown needs {sorted(bad)}; known: {NEEDS}")
    REGULARIZERS[cls.name] = cls
    return cls


def get_regularizer(name: str) -> type[Regularizer]:
    try:
        return REGULARIZERS[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; known: {sorted(REGULARIZERS)}") from None
