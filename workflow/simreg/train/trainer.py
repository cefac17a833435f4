"""Regularized training: L = CE + alpha * L_reg (paper eq. 2), for any registered method.

Reads top to bottom: data on the device, one step, one epoch, the loop with
checkpoint/resume. The trainer names no method: everything method-specific comes from the
run's :class:`~simreg.train.regularizers.base.Regularizer` (its loss, its draws, its modules,
its state).

Checkpoints go to a directory Snakemake does not own, so a failed or killed job keeps
them; a rerun resumes from the last finished epoch and ends with the same weights as an
uninterrupted run (on CPU, where the kernels are deterministic). A checkpoint is keyed to the
settings and to the content of the inputs (``run_fingerprint``), so a run with other settings
or data starts afresh, and it is deleted once the model is written.
"""

from __future__ import annotations

import copy
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from simreg.data.store import read_split
from simreg.models.inference import loss_and_accuracy, pick_device, to_input
from simreg.models.resnet import build_model
from simreg.outputs import atomic_output, provenance, write_csv
from simreg.paths import NOT_APPLICABLE
from simreg.train.augment import crop_flip, draw_crop_flip
from simreg.train.determinism import use_deterministic_algorithms
from simreg.train.fast_path import FastPath
from simreg.train.regularizers import Batch, TrainContext, get_regularizer
from simreg.train.settings import TrainSettings, learning_rate, settings_record


def split_validation(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    n_val = max(1, int(round(fraction * n)))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def build_optimizer(params, s: TrainSettings) -> torch.optim.Optimizer:
    """The classifier's optimizer: SGD with momentum (the authors' code) or Adam (Roth et al.);
    the learning-rate schedule (``learning_rate``) sets the lr of either every epoch."""
    if s.optimizer == "sgd":
        return torch.optim.SGD(params, lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay)
    if s.optimizer == "adam":
        return torch.optim.Adam(params, lr=s.lr, betas=tuple(s.betas), weight_decay=s.weight_decay)
    raise ValueError(f"training.optimizer: {s.optimizer!r} is not sgd or adam")


class Trainer:
    """Holds the model, the regularizer, the optimizer and the data, all on one device."""

    def __init__(self, task_path, inputs: dict, settings: TrainSettings, device: torch.device):
        self.s, self.device = settings, device
        task = read_split(task_path, "train")
        self.task_attrs = task.attrs
        keep, held = split_validation(len(task.labels), settings.validation_fraction, settings.seed)
        self.x_train = torch.from_numpy(task.images[keep]).to(device)
        self.y_train = torch.from_numpy(task.labels[keep]).to(device)
        self.x_val = torch.from_numpy(task.images[held]).to(device)
        self.y_val = torch.from_numpy(task.labels[held]).to(device)
        if len(self.y_train) < settings.batch_size:
            raise ValueError(
                f"training.batch_size = {settings.batch_size} is larger than the "
                f"{len(self.y_train)} training images of {task_path}: an epoch "
                "would have no step"
            )

        torch.manual_seed(settings.seed)
        channels = task.images.shape[-1]
        self.model = build_model(settings.architecture, channels, task.n_classes, settings.width)
        pixels = self.x_train.float().div(255.0)
        self.model.set_input_normalization(
            pixels.mean(dim=(0, 1, 2)), pixels.std(dim=(0, 1, 2)).clamp_min(1e-3)
        )
        self.model.to(device)
        FastPath.from_settings(settings, device).prepare_model(self.model)

        self.regularizer = get_regularizer(settings.method)(**settings.regularizer)
        missing = [need for need in self.regularizer.needs if need not in inputs]
        if missing:
            raise ValueError(f"method {settings.method!r} needs the inputs {missing}")
        self.regularizer.setup(
            TrainContext(
                self.model,
                device,
                settings.seed,
                channels,
                inputs,
                train_images=self.x_train,
                n_classes=task.n_classes,
                alpha=settings.alpha,
            )
        )
        self.modules = self.regularizer.modules()
        params = list(self.model.parameters())
        for module in self.modules.values():
            params += list(module.parameters())
        self.optimizer = build_optimizer(params, settings)
        self.generator = torch.Generator().manual_seed(settings.seed)

    # ---- one step: L = CE + alpha * L_reg ----------------------------------------------
    def inputs(self, idx: torch.Tensor, augmentation=None) -> tuple[torch.Tensor, torch.Tensor]:
        """The step's classification inputs (augmented, float NCHW) and labels."""
        images = self.x_train[idx]
        if augmentation is not None:
            images = crop_flip(images, *augmentation)
        return to_input(images), self.y_train[idx]

    def batch(self, idx: torch.Tensor, augmentation=None) -> Batch:
        x, y = self.inputs(idx, augmentation)
        x = self.regularizer.adversarial_batch(self.model, x, y)
        if self.regularizer.needs_input_grad:
            x = x.detach().requires_grad_(True)
        features = self.model.features(x)
        logits = self.model.classify(features[-1])
        return Batch(self.model, x, y, features, logits, F.cross_entropy(logits, y))

    def step(self, idx: torch.Tensor, draws, augmentation=None):
        batch = self.batch(idx, augmentation)
        reg = self.regularizer.loss(batch, draws)
        reg = torch.zeros_like(batch.ce) if reg is None else reg
        loss = batch.ce + self.s.alpha * reg
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.regularizer.after_step(batch)
        return batch.ce.detach(), reg.detach()

    # ---- one epoch ---------------------------------------------------------------------
    def plan_epoch(self, epoch: int) -> tuple[float, list]:
        """Begin epoch ``epoch``: set the learning rate and train mode, and draw the epoch's
        batches, the regularizer's draws and the augmentation, in that order, from the run's
        generator. Returns the learning rate and one (indices, draws, augmentation) per step."""
        s = self.s
        lr = learning_rate(epoch, s)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.regularizer.start_epoch(epoch, lr / s.lr)
        self.model.train()
        for module in self.modules.values():
            module.train()
        n = len(self.y_train)
        order = torch.randperm(n, generator=self.generator)
        n_steps = n // s.batch_size  # drop the last partial batch
        batches = order[: n_steps * s.batch_size].view(n_steps, s.batch_size).to(self.device)
        draws = self.regularizer.plan_epoch(n_steps, self.generator, self.device)
        offsets = flips = None
        if s.augment:
            offsets, flips = draw_crop_flip(n_steps, s.batch_size, self.generator)
            offsets, flips = offsets.to(self.device), flips.to(self.device)
        return lr, [
            (
                batches[t],
                None if draws is None else draws[t],
                None if offsets is None else (offsets[t], flips[t]),
            )
            for t in range(n_steps)
        ]

    def epoch_row(
        self, epoch: int, lr: float, ce_sum, reg_sum, n_steps: int, seconds: float
    ) -> dict:
        """End of an epoch: validation and the metrics row."""
        val_loss, val_acc = loss_and_accuracy(
            self.model, self.x_val, self.y_val, self.s.eval_batch_size
        )
        row = {
            "epoch": epoch,
            "lr": lr,
            "train_ce": (ce_sum / max(1, n_steps)).item(),
            "train_reg": (reg_sum / max(1, n_steps)).item(),
            "val_loss": val_loss,
            "val_accuracy": val_acc,
            "seconds": seconds,
        }
        row.update(self.regularizer.metrics())
        return row

    def epoch(self, epoch: int) -> dict:
        lr, steps = self.plan_epoch(epoch)
        ce_sum = torch.zeros((), device=self.device)
        reg_sum = torch.zeros((), device=self.device)
        started = time.perf_counter()
        for idx, draws, augmentation in steps:
            ce, reg = self.step(idx, draws, augmentation)
            ce_sum += ce
            reg_sum += reg
        return self.epoch_row(epoch, lr, ce_sum, reg_sum, len(steps), time.perf_counter() - started)

    # ---- state for checkpoints -----------------------------------------------------------
    def weights(self) -> dict:
        """What model.pt keeps: the classifier's and the regularizer modules' weights."""
        return {
            "model": self.model.state_dict(),
            "modules": {name: m.state_dict() for name, m in self.modules.items()},
        }

    def state(self) -> dict:
        return {
            **self.weights(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "regularizer": self.regularizer.state_dict(),
        }

    def load_state(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        for name, module in self.modules.items():
            module.load_state_dict(state["modules"][name])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.regularizer.load_state_dict(state["regularizer"])


def model_columns(task: str, settings: TrainSettings) -> dict:
    """The model-key columns of a run (``na`` / 0 where the method has no such value)."""
    params = settings.regularizer
    return {
        "task": task,
        "method": settings.method,
        "alpha": settings.alpha,
        "threshold": params.get("threshold", NOT_APPLICABLE),
        "reg_pairs": params.get("reg_pairs", 0),
        "seed": settings.seed,
    }


def train(
    task_path,
    inputs: dict,
    model_out,
    metrics_out,
    checkpoint_dir,
    settings: TrainSettings,
    device: str = "auto",
    threads: int | None = None,
    extra_provenance: dict | None = None,
) -> None:
    """Train one model; resume from ``checkpoint_dir/last.pt`` if a previous run left one.

    ``inputs`` are the files the method needs (by name, see ``Regularizer.needs``).
    """
    if threads:
        torch.set_num_threads(threads)
    use_deterministic_algorithms(compiling=bool(settings.fast_path.get("compile")))
    dev = pick_device(device)
    inputs = {name: str(path) for name, path in inputs.items()}
    trainer = Trainer(task_path, inputs, settings, dev)
    settings_dict = dataclasses.asdict(settings)
    key = run_fingerprint(settings_record(settings), {"task": str(task_path), **inputs})
    checkpoint = checkpoint_path(checkpoint_dir, key)

    rows, best, start = [], {"val_loss": float("inf"), "epoch": -1, "state": None}, 0
    if checkpoint.exists():
        saved = torch.load(checkpoint, map_location=dev, weights_only=False)
        trainer.load_state(saved["trainer"])
        rows, best, start = saved["rows"], saved["best"], saved["epoch"] + 1
        print(f"train: resuming from {checkpoint} after epoch {saved['epoch']}", file=sys.stderr)

    for epoch in range(start, settings.epochs):
        row = trainer.epoch(epoch)
        best = keep_best(best, row, trainer)
        rows.append(row)
        log_epoch(row, settings.epochs)
        with atomic_output(checkpoint) as tmp:
            torch.save(
                {
                    "epoch": epoch,
                    "settings": settings_dict,
                    "fingerprint": key,
                    "trainer": trainer.state(),
                    "rows": rows,
                    "best": best,
                },
                tmp,
            )

    write_outputs(
        trainer,
        rows,
        best,
        model_out,
        metrics_out,
        task_path=task_path,
        inputs=inputs,
        device=dev,
        run_fingerprint=key,
        extra_provenance=extra_provenance,
    )
    checkpoint.unlink()  # the model is written: nothing left to resume


def checkpoint_path(checkpoint_dir, key: str) -> Path:
    """The checkpoint of the run with fingerprint ``key``. The checkpoint is keyed to the
    settings and to the content of every input, so a rerun after a config or data change never
    resumes a run of other inputs: any other checkpoint in the folder is stale and removed."""
    checkpoint = Path(checkpoint_dir) / f"last-{key[:16]}.pt"
    for stale in Path(checkpoint_dir).glob("last*.pt"):
        if stale != checkpoint:
            print(
                f"train: {stale} belongs to other settings or inputs; removing it", file=sys.stderr
            )
            stale.unlink()
    return checkpoint


def keep_best(best: dict, row: dict, trainer: Trainer) -> dict:
    """The kept model is that of the lowest validation loss so far (a NaN loss never wins)."""
    if row["val_loss"] < best["val_loss"]:
        return {
            "val_loss": row["val_loss"],
            "epoch": row["epoch"],
            "state": copy.deepcopy(trainer.weights()),
        }
    return best


def log_epoch(row: dict, n_epochs: int, prefix: str = "train") -> None:
    print(
        "{prefix}: epoch {epoch}/{n} lr {lr:.4g} ce {train_ce:.4f} reg {train_reg:.4f} "
        "val_loss {val_loss:.4f} val_acc {val_accuracy:.4f} ({seconds:.1f} s)".format(
            prefix=prefix, n=n_epochs, **row
        ),
        file=sys.stderr,
        flush=True,
    )


def write_outputs(
    trainer: Trainer,
    rows: list,
    best: dict,
    model_out,
    metrics_out,
    *,
    task_path,
    inputs: dict,
    device,
    run_fingerprint: str,
    extra_provenance: dict | None = None,
    **more_provenance,
) -> None:
    """model.pt (the best epoch's weights, with provenance) and metrics.csv (one row per
    epoch, the model's keys as columns), each written atomically."""
    settings = trainer.s
    if best["state"] is None:
        if rows:
            raise RuntimeError(
                f"the validation loss was not finite in any of the {len(rows)} "
                f"epochs of {settings.method} (seed {settings.seed}): training "
                "diverged; lower alpha or training.lr"
            )
        raise RuntimeError("no epoch was trained (epochs = 0?)")
    settings_dict = dataclasses.asdict(settings)
    task = f"{trainer.task_attrs.get('dataset')}_{trainer.task_attrs.get('color')}"
    keys = {**model_columns(task, settings), **(extra_provenance or {})}
    meta = provenance(
        **{**settings_dict, **settings.regularizer, **keys},
        task_file=str(task_path),
        inputs=inputs,
        best_epoch=best["epoch"],
        device=str(device),
        run_fingerprint=run_fingerprint,
        **more_provenance,
    )
    with atomic_output(model_out) as tmp:
        torch.save(
            {
                **best["state"],
                "architecture": settings.architecture,
                "width": settings.width,
                "in_channels": int(trainer.x_train.shape[-1]),
                "n_classes": int(trainer.model.head.out_features),
                "provenance": meta,
            },
            tmp,
        )
    metrics = pd.DataFrame(rows)
    metrics["best"] = metrics["epoch"] == best["epoch"]
    for column in (*keys, "simreg_version", "simreg_source"):
        metrics[column] = meta[column]
    write_csv(metrics, metrics_out)


def input_fingerprint(path) -> str:
    """What identifies an input's content: for HDF5 files their root attributes (creation
    time, checksums and parameters, written with the data), else the file's bytes."""
    import hashlib

    import h5py

    digest = hashlib.sha256()
    if h5py.is_hdf5(path):
        with h5py.File(path, "r") as h5:
            for name in sorted(h5.attrs):
                digest.update(f"{name}={h5.attrs[name]}".encode())
    else:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def run_fingerprint(settings: dict, inputs: dict) -> str:
    """SHA-256 over the settings and the content fingerprint of each input file."""
    import hashlib
    import json

    record = {
        "settings": settings,
        "inputs": {name: input_fingerprint(path) for name, path in sorted(inputs.items())},
    }
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()
