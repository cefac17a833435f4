"""What one training run is: the method, its strength and parameters, and the optimization.

Defaults come from :mod:`simreg.settings` (the config's one source), so a run built here, in
the benchmark or in a test trains as the pipeline does unless told otherwise.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from simreg import settings as config_settings

_MODEL = config_settings.Model()
_TRAINING = config_settings.Training()


@dataclass
class TrainSettings:
    method: str = "none"
    alpha: float = 0.0
    seed: int = 0
    regularizer: dict = field(default_factory=dict)  # the method's own parameters (by name)
    architecture: str = _MODEL.architecture
    width: int = _MODEL.width
    epochs: int = _TRAINING.epochs
    batch_size: int = _TRAINING.batch_size
    optimizer: str = _TRAINING.optimizer  # "sgd" or "adam" (simreg.train.trainer.build_optimizer)
    lr: float = _TRAINING.lr
    momentum: float = _TRAINING.momentum
    betas: list = field(default_factory=lambda: list(_TRAINING.betas))
    weight_decay: float = _TRAINING.weight_decay
    lr_decay: float = _TRAINING.lr_decay
    lr_step_epochs: int = _TRAINING.lr_step_epochs
    lr_cycle_epochs: int = _TRAINING.lr_cycle_epochs
    validation_fraction: float = _TRAINING.validation_fraction
    augment: bool = True  # training.augment resolved for the task (settings.augments)
    eval_batch_size: int = 1024
    # Speed options of the forward passes (simreg.settings.FastPath; simreg.train.fast_path)
    fast_path: dict = field(default_factory=lambda: dict(_TRAINING.fast_path))


def learning_rate(epoch: int, s: TrainSettings) -> float:
    """Step schedule of the paper's source code: lr * decay^((epoch mod cycle) // step)."""
    return s.lr * s.lr_decay ** ((epoch % s.lr_cycle_epochs) // s.lr_step_epochs)


def settings_from_config(config: dict, key) -> TrainSettings:
    """The settings of model ``key`` (a :class:`simreg.train.model_key.ModelKey`) under a
    validated ``config``: the key's method, alpha and seed, the method's parameters (from the
    key where it holds them, else from their config keys) and the training section, with the
    key's recipe (its grid's overrides for the method, :mod:`simreg.train.recipe`) over it."""
    from simreg.train.recipe import parse
    from simreg.train.regularizers import get_regularizer

    regularizer = get_regularizer(key.method)
    settings = config_settings.typed(config)
    m = settings.model
    t = dataclasses.replace(settings.training, **parse(getattr(key, "recipe", "")))
    dataset = key.task.rsplit("_", 1)[0]
    return TrainSettings(
        method=key.method,
        alpha=float(key.alpha),
        seed=int(key.seed),
        regularizer=regularizer.parameters_from(config, key),
        architecture=m.dataset_architecture.get(dataset, m.architecture),
        width=m.width,
        epochs=t.epochs,
        batch_size=t.batch_size,
        optimizer=t.optimizer,
        lr=t.lr,
        momentum=t.momentum,
        betas=list(t.betas),
        weight_decay=t.weight_decay,
        lr_decay=t.lr_decay,
        lr_step_epochs=t.lr_step_epochs,
        lr_cycle_epochs=t.lr_cycle_epochs,
        validation_fraction=t.validation_fraction,
        augment=config_settings.augments(t.augment, dataset),
        fast_path=dataclasses.asdict(config_settings.FastPath(**t.fast_path)),
    )


def settings_record(settings: TrainSettings) -> dict:
    """The settings as the rules pass them and as a run's fingerprint hashes them: every
    field, except ``optimizer`` and ``betas`` for SGD (which ignores the betas), so that the
    params and checkpoints of the runs made before the optimizer was a setting stay valid
    (Snakemake's params trigger would retrain them otherwise)."""
    record = dataclasses.asdict(settings)
    if record["optimizer"] == "sgd":
        del record["optimizer"], record["betas"]
    return record
