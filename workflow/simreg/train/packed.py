"""Several seeds of one model key trained in one process, as one stacked model.

The P classifiers of a pack (same task, method, α, Th, k, recipe; P seeds), with their
regularizer modules, are stacked parameter by parameter (``torch.func.stack_module_state``)
and one step runs all P through ``torch.func.vmap``. Each convolution of the P models becomes
one grouped convolution and each BatchNorm normalizes, and updates the running statistics of, each
model's own channels over that model's own batch, so the P models stay independent: the
loss is the sum of the P losses, the gradient of each model is its own loss's gradient, and
SGD (with momentum and weight decay) and Adam, both elementwise, update each model as it
would alone.

Every seed keeps what makes it that seed: its train/validation split, its initialization, its
generator and hence its batch order, regularization pairs and augmentation, its kept epoch.
A packed seed follows the trajectory of the same seed trained alone, up to the order of
floating-point sums inside the grouped kernels (``tests/test_packed.py`` checks 3 seeds
against 3 single runs).

Methods whose step is not a pure function of the model and its modules (an adversarial
batch, an optimizer or running state of their own: ``Regularizer.packable`` is False) train
their seeds one after another in the same process; so does a pack of one.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from simreg.models.inference import pick_device
from simreg.outputs import atomic_output
from simreg.train.determinism import use_deterministic_algorithms
from simreg.train.regularizers import Batch, get_regularizer
from simreg.train.settings import TrainSettings, settings_record
from simreg.train.trainer import (
    Trainer,
    build_optimizer,
    checkpoint_path,
    keep_best,
    log_epoch,
    run_fingerprint,
    train,
    write_outputs,
)


class SeedStep(nn.Module):
    """One seed's step as a module (the classifier and the regularizer's modules), so that
    ``torch.func.functional_call`` can run it with any seed's stacked tensors."""

    def __init__(self, trainer: Trainer):
        super().__init__()
        self.model = trainer.model
        self.extra = nn.ModuleDict(trainer.modules)
        self.regularizer = trainer.regularizer  # not a module: its tensors come via ``state``

    def forward(self, x, y, draws):
        features = self.model.features(x)
        logits = self.model.classify(features[-1])
        batch = Batch(self.model, x, y, features, logits, F.cross_entropy(logits, y))
        reg = self.regularizer.loss(batch, draws)
        return batch.ce, torch.zeros_like(batch.ce) if reg is None else reg


class PackedTrainer:
    """P trainers of one model key, stepped together through one stacked model."""

    def __init__(self, trainers: list[Trainer]):
        from torch.func import stack_module_state

        self.trainers = trainers
        self.steps = [SeedStep(t) for t in trainers]
        first = trainers[0]
        self.s, self.device = first.s, first.device
        params, buffers = stack_module_state(self.steps)
        self.params = {name: p.detach().clone().requires_grad_(True) for name, p in params.items()}
        self.buffers = {name: b.detach().clone() for name, b in buffers.items()}
        names = first.regularizer.packed_state
        self.state = {
            name: torch.stack([getattr(t.regularizer, name) for t in trainers]) for name in names
        }
        self.optimizer = build_optimizer(list(self.params.values()), self.s)

    def _seed_loss(self, params, buffers, state, x, y, draws):
        from torch.func import functional_call

        template = self.steps[0]
        regularizer = template.regularizer
        kept = {name: getattr(regularizer, name) for name in state}
        try:
            for name, value in state.items():
                setattr(regularizer, name, value)
            ce, reg = functional_call(template, (params, buffers), (x, y, draws))
        finally:
            for name, value in kept.items():
                setattr(regularizer, name, value)
        return ce + self.s.alpha * reg, ce, reg

    def stacked_inputs(self, seed_steps: list) -> tuple:
        """Each seed's (indices, draws, augmentation) of one step -> the stacked inputs,
        labels and draws (None for a method that draws nothing) of :meth:`step`."""
        xs, ys, draws = [], [], []
        for trainer, (idx, step_draws, augmentation) in zip(self.trainers, seed_steps):
            x, y = trainer.inputs(idx, augmentation)
            xs.append(x)
            ys.append(y)
            draws.append(step_draws)
        return torch.stack(xs), torch.stack(ys), None if draws[0] is None else torch.stack(draws)

    def step(self, x, y, draws):
        from torch.func import vmap

        in_dims = (0, 0, 0, 0, 0, None if draws is None else 0)
        losses, ce, reg = vmap(self._seed_loss, in_dims=in_dims)(
            self.params, self.buffers, self.state, x, y, draws
        )
        self.optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()
        self.optimizer.step()
        return ce.detach(), reg.detach()

    def epoch(self, epoch: int) -> list[dict]:
        plans = [t.plan_epoch(epoch) for t in self.trainers]  # each seed's own draws
        lr = plans[0][0]
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        n_steps = len(plans[0][1])
        ce_sum = torch.zeros(len(self.trainers), device=self.device)
        reg_sum = torch.zeros(len(self.trainers), device=self.device)
        started = time.perf_counter()
        for t in range(n_steps):
            ce, reg = self.step(*self.stacked_inputs([steps[t] for _, steps in plans]))
            ce_sum += ce
            reg_sum += reg
        seconds = time.perf_counter() - started
        self.write_back()
        return [
            t.epoch_row(epoch, lr, ce_sum[p], reg_sum[p], n_steps, seconds)
            for p, t in enumerate(self.trainers)
        ]

    @torch.no_grad()
    def write_back(self) -> None:
        """Copy the stacked tensors into each seed's own modules (for validation, metrics,
        the kept weights)."""
        for p, step in enumerate(self.steps):
            for name, tensor in step.named_parameters():
                tensor.copy_(self.params[name][p])
            for name, tensor in step.named_buffers():
                tensor.copy_(self.buffers[name][p])

    def state_dict(self) -> dict:
        return {
            "params": {k: v.detach() for k, v in self.params.items()},
            "buffers": self.buffers,
            "optimizer": self.optimizer.state_dict(),
            "generators": [t.generator.get_state() for t in self.trainers],
            "regularizers": [t.regularizer.state_dict() for t in self.trainers],
        }

    @torch.no_grad()
    def load_state_dict(self, state: dict) -> None:
        for name, value in state["params"].items():
            self.params[name].copy_(value)
        for name, value in state["buffers"].items():
            self.buffers[name].copy_(value)
        self.optimizer.load_state_dict(state["optimizer"])
        for trainer, generator, regularizer in zip(
            self.trainers, state["generators"], state["regularizers"]
        ):
            trainer.generator.set_state(generator)
            trainer.regularizer.load_state_dict(regularizer)
        self.write_back()


def check_pack(settings_list: list[TrainSettings]) -> None:
    if not settings_list:
        raise ValueError("a pack needs at least one seed")
    first = dataclasses.replace(settings_list[0], seed=0)
    for s in settings_list[1:]:
        if dataclasses.replace(s, seed=0) != first:
            raise ValueError(
                "the seeds of a pack must share every setting but the seed; got "
                f"{settings_list[0]} and {s}"
            )
    seeds = [s.seed for s in settings_list]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"a pack's seeds must differ, got {seeds}")


def inputs_per_seed(inputs: dict, n: int) -> list[dict]:
    """Each seed's input files: a name maps to one path shared by the pack, or to a list of
    one path per seed (e.g. each seed's own ``source_model``)."""
    seeds = [{} for _ in range(n)]
    for name, value in inputs.items():
        values = list(value) if isinstance(value, (list, tuple)) else [value] * n
        if len(values) != n:
            raise ValueError(f"input {name!r} has {len(values)} paths for a pack of {n} seeds")
        for own, path in zip(seeds, values):
            own[name] = str(path)
    return seeds


def train_pack(
    task_path,
    inputs: dict,
    model_outs: list,
    metrics_outs: list,
    checkpoint_dir,
    settings_list: list[TrainSettings],
    device: str = "auto",
    threads: int | None = None,
    extra_provenance_list: list | None = None,
) -> None:
    """Train the seeds of ``settings_list`` (one model key) and write one model and one
    metrics file per seed, in the same order; resume from ``checkpoint_dir`` if a previous run
    of the same pack left a checkpoint."""
    check_pack(settings_list)
    n = len(settings_list)
    extras = extra_provenance_list or [None] * n
    if not len(model_outs) == len(metrics_outs) == len(extras) == n:
        raise ValueError(
            f"{n} seeds need {n} model paths, metrics paths and key records, got "
            f"{len(model_outs)}, {len(metrics_outs)} and {len(extras)}"
        )
    seed_inputs = inputs_per_seed(inputs, n)
    method = get_regularizer(settings_list[0].method)
    shared = all(seed_inputs[0] == other for other in seed_inputs)
    # vmap takes neither a compiled forward nor channels_last inputs (torch 2.15: "NYI:
    # querying is_contiguous inside of vmap for memory_format other than contiguous_format").
    fast = settings_list[0].fast_path
    unvmappable = [k for k in ("compile", "channels_last") if fast.get(k)]
    if n == 1 or not method.packable or not shared or unvmappable:
        if n > 1:
            why = (
                "cannot be packed (Regularizer.packable)"
                if not method.packable
                else "has inputs that differ by seed"
                if not shared
                else f"uses training.fast_path {unvmappable}, which vmap does not take"
            )
            print(
                f"train_pack: {method.name!r} {why}; training its {n} seeds one after another",
                file=sys.stderr,
            )
        for s, model_out, metrics_out, extra, own in zip(
            settings_list, model_outs, metrics_outs, extras, seed_inputs
        ):
            train(
                task_path,
                own,
                model_out,
                metrics_out,
                Path(checkpoint_dir) / f"seed{s.seed}",
                s,
                device=device,
                threads=threads,
                extra_provenance=extra,
            )
        return
    inputs = seed_inputs[0]

    if threads:
        torch.set_num_threads(threads)
    use_deterministic_algorithms(compiling=bool(settings_list[0].fast_path.get("compile")))
    dev = pick_device(device)
    inputs = {name: str(path) for name, path in inputs.items()}
    trainers = [Trainer(task_path, inputs, s, dev) for s in settings_list]
    packed = PackedTrainer(trainers)
    settings_dicts = [settings_record(s) for s in settings_list]
    named_inputs = {"task": str(task_path), **inputs}
    key = run_fingerprint({"pack": settings_dicts}, named_inputs)
    checkpoint = checkpoint_path(checkpoint_dir, key)
    seeds = [s.seed for s in settings_list]

    empty = {"val_loss": float("inf"), "epoch": -1, "state": None}
    rows, best, start = [[] for _ in trainers], [dict(empty) for _ in trainers], 0
    if checkpoint.exists():
        saved = torch.load(checkpoint, map_location=dev, weights_only=False)
        packed.load_state_dict(saved["packed"])
        rows, best, start = saved["rows"], saved["best"], saved["epoch"] + 1
        print(
            f"train_pack: resuming from {checkpoint} after epoch {saved['epoch']}", file=sys.stderr
        )

    epochs = settings_list[0].epochs
    for epoch in range(start, epochs):
        for p, (trainer, row) in enumerate(zip(trainers, packed.epoch(epoch))):
            best[p] = keep_best(best[p], row, trainer)
            rows[p].append(row)
            log_epoch(row, epochs, prefix=f"train_pack: seed {trainer.s.seed}")
        with atomic_output(checkpoint) as tmp:
            torch.save(
                {
                    "epoch": epoch,
                    "settings": settings_dicts,
                    "fingerprint": key,
                    "packed": packed.state_dict(),
                    "rows": rows,
                    "best": best,
                },
                tmp,
            )

    for p, trainer in enumerate(trainers):
        write_outputs(
            trainer,
            rows[p],
            best[p],
            model_outs[p],
            metrics_outs[p],
            task_path=task_path,
            inputs=inputs,
            device=dev,
            run_fingerprint=run_fingerprint(settings_dicts[p], named_inputs),
            extra_provenance=extras[p],
            pack_seeds=seeds,
        )
    checkpoint.unlink()  # every model is written: nothing left to resume
