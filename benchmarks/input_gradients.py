"""The input-gradient penalties' two measurements (issue #23), printed as JSON:

- **BatchNorm coupling**: on one batch of the real CIFAR-10 subset (grayscale, the pipeline's
  ResNet18), how far ∇ₓ taken through training-mode BatchNorm (``input_gradients.batchnorm:
  batch``) is from each image's own gradient (``per_sample``: the batch's statistics held
  constant): relative L2 difference over the batch and per image, and per-image cosine, for
  the loss gradient gᵢ = ∇ₓ log φ_y(xᵢ) (SGR, GN) and for vᵀJ (Jacobian, one random v);
- **the Jacobian estimators**: the exact per-image ||J||_F (K vector-Jacobian products, one
  per class, through the per-sample pass) against the random-projection estimate
  √(K/P Σ_p ||v_pᵀJ||²) at P projections (E[estimate] / exact, from ``--draws`` draws of v
  on the exact J; at P = 1 also from the penalty's own function), the squared estimate's
  E[K/P Σ_p ||v_pᵀJ||²] / ||J||²_F, and ||1ᵀJ|| / ||J||_F (the column sums);
- **step time**: the trainer's own step (augmentation on, the pipeline's defaults) of each
  method under both ``batchnorm`` settings and of ``jacobian`` at several projection counts,
  timed round-robin ``--repeats`` times (median), and each over ``none``.

The model is measured freshly initialized and after ``--train-epochs`` epochs of ``none``.

    python benchmarks/input_gradients.py [--npz ../shared/data/cifar10-subset.npz] [--width 16]
        [--batch 64] [--train-epochs 1] [--draws 400] [--projections 1 2 4 8 16]
        [--steps 5] [--repeats 3] [--threads 1] [--device cpu] [--only coupling|jacobian|time]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from simreg.config import validate_config
from simreg.data.sources import load_npz
from simreg.data.store import write_dataset
from simreg.train.augment import draw_crop_flip
from simreg.train.input_gradients import (
    differentiable_forward,
    loss_input_gradients,
    vector_jacobian,
)
from simreg.train.regularizers import Batch, get_regularizer
from simreg.train.regularizers.smoothness import jacobian_frobenius
from simreg.train.settings import TrainSettings
from simreg.train.trainer import Trainer

DEFAULT_NPZ = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-subset.npz"


def subset_task(npz: Path, path: Path) -> Path:
    write_dataset(load_npz(npz), "gray", path, dataset="cifar10", n_classes=10)
    return path


def settings(method: str, width: int, batch: int, **regularizer) -> TrainSettings:
    params = get_regularizer(method).parameters_from(validate_config({}), dataset="cifar10")
    params.update(regularizer)
    return TrainSettings(
        method=method, alpha=1.0, width=width, batch_size=batch, seed=0, regularizer=params
    )


def training_batch(trainer: Trainer, n: int) -> Batch:
    """The first ``n`` training images as the trainer's step sees them (train mode,
    no augmentation), x requiring grad."""
    trainer.model.train()
    x, y = trainer.inputs(torch.arange(n, device=trainer.device))
    x = x.detach().requires_grad_(True)
    features = trainer.model.features(x)
    logits = trainer.model.classify(features[-1])
    return Batch(trainer.model, x, y, features, logits, F.cross_entropy(logits, y))


def compare(coupled: torch.Tensor, own: torch.Tensor) -> dict:
    a, b = coupled.flatten(1).double(), own.flatten(1).double()
    per_image = (a - b).norm(dim=1) / b.norm(dim=1)
    cosine = F.cosine_similarity(a, b, dim=1)
    return {
        "relative_l2_batch": float((a - b).norm() / b.norm()),
        "relative_l2_per_image_median": float(per_image.median()),
        "relative_l2_per_image_max": float(per_image.max()),
        "cosine_mean": float(cosine.mean()),
        "cosine_median": float(cosine.median()),
        "cosine_min": float(cosine.min()),
    }


def coupling(trainer: Trainer, n: int) -> dict:
    batch = training_batch(trainer, n)
    out = {
        "loss_gradient": compare(
            loss_input_gradients(batch, "batch").detach(),
            loss_input_gradients(batch, "per_sample").detach(),
        )
    }
    v = torch.randn(batch.logits.shape, generator=torch.Generator().manual_seed(0))
    v = (v / v.norm(dim=1, keepdim=True)).to(batch.logits.device)
    vjp = {}
    for mode in ("batch", "per_sample"):
        x, logits = differentiable_forward(batch, mode)
        vjp[mode] = vector_jacobian(x, logits.softmax(1), v).detach()
    out["probabilities_vjp"] = compare(vjp["batch"], vjp["per_sample"])
    x, logits = differentiable_forward(batch, "per_sample")
    difference = (logits - batch.logits).detach().abs().max()
    out["per_sample_logits_max_abs_difference"] = float(difference)
    return out


def exact_jacobians(batch: Batch, output: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x, outputs, J): J (n, K, D) of the per-sample pass, one VJP per class."""
    x, logits = differentiable_forward(batch, "per_sample")
    outputs = logits.softmax(1) if output == "probabilities" else logits
    rows = [
        vector_jacobian(
            x,
            outputs,
            F.one_hot(torch.full((len(x),), c, device=x.device), outputs.shape[1]).to(
                outputs.dtype
            ),
        )
        .flatten(1)
        .detach()
        for c in range(outputs.shape[1])
    ]
    return x, outputs, torch.stack(rows, 1).double()


def jacobian_bias(
    trainer: Trainer, n: int, projections: list, draws: int, direct_draws: int
) -> dict:
    batch = training_batch(trainer, n)
    out = {}
    generator = torch.Generator().manual_seed(1)
    for output in ("probabilities", "logits"):
        x, outputs, J = exact_jacobians(batch, output)
        k = J.shape[1]
        exact = J.pow(2).sum((1, 2)).sqrt()
        row = {
            "exact_norm_mean": float(exact.mean()),
            "column_sums_over_frobenius_mean": float((J.sum(1).norm(dim=1) / exact).mean()),
        }
        for p in projections:
            v = torch.randn(draws, n, p, k, generator=generator, dtype=torch.float64)
            v = v / v.norm(dim=-1, keepdim=True)
            squared = k / p * torch.einsum("rnpk,nkd->rnpd", v, J).pow(2).sum((2, 3))
            ratio = squared.sqrt().mean(0) / exact  # E[estimate] / exact, per image
            row[f"P{p}"] = {
                "mean_ratio": float(ratio.mean()),
                "min_ratio": float(ratio.min()),
                "squared_mean_ratio": float((squared.mean(0) / exact**2).mean()),
                "relative_sd": float((squared.sqrt().std(0) / exact).mean()),
            }
        estimates = torch.stack(
            [
                jacobian_frobenius(x, outputs, 1, generator).detach().double()
                for _ in range(direct_draws)
            ]
        )
        row["P1_penalty_function_mean_ratio"] = float((estimates.mean(0) / exact).mean())
        row["P1_penalty_function_draws"] = direct_draws
        out[output] = row
    return out


class StepClock:
    """The trainer's own step of one method under one setting, warmed up (2 steps)."""

    def __init__(self, task: Path, s: TrainSettings, steps: int, device):
        self.trainer = Trainer(task, {}, s, device)
        self.trainer.model.train()
        self.steps, self.device = steps, device
        generator = torch.Generator().manual_seed(0)
        n = len(self.trainer.y_train)
        self.batches = torch.randint(n, (steps + 2, s.batch_size), generator=generator).to(device)
        offsets, flips = draw_crop_flip(steps + 2, s.batch_size, generator)
        self.augmentation = offsets.to(device), flips.to(device)
        for t in range(2):
            self.step(t)

    def step(self, t):
        self.trainer.step(self.batches[t], None, (self.augmentation[0][t], self.augmentation[1][t]))

    def seconds_per_step(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        for t in range(2, self.steps + 2):
            self.step(t)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - started) / self.steps


def step_times(
    task: Path, width: int, batch: int, steps: int, repeats: int, device, projections: list
) -> dict:
    variants = {"none": settings("none", width, batch)}
    for method in ("gn", "sgr", "jacobian"):
        for mode in ("batch", "per_sample"):
            variants[f"{method}/{mode}"] = settings(method, width, batch, batchnorm=mode)
    for p in projections:
        if p != 1:
            variants[f"jacobian/per_sample/P{p}"] = settings(
                "jacobian", width, batch, projections=p
            )
    variants["jacobian_column_sums/per_sample"] = settings("jacobian_column_sums", width, batch)
    clocks = {name: StepClock(task, s, steps, device) for name, s in variants.items()}
    timings = {name: [] for name in clocks}
    load = [round(os.getloadavg()[0], 2)]
    for _ in range(repeats):
        for name, clock in clocks.items():
            timings[name].append(clock.seconds_per_step())
    load.append(round(os.getloadavg()[0], 2))
    median = {name: float(np.median(t)) for name, t in timings.items()}
    out = {
        "seconds_per_step": {name: round(t, 4) for name, t in median.items()},
        "over_none": {name: round(t / median["none"], 3) for name, t in median.items()},
        "per_sample_over_batch": {
            m: round(median[f"{m}/per_sample"] / median[f"{m}/batch"], 3)
            for m in ("gn", "sgr", "jacobian")
        },
        "runs": {name: [round(t, 4) for t in ts] for name, ts in timings.items()},
        "load_average": load,
        "steps": steps,
        "repeats": repeats,
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--npz", type=Path, default=DEFAULT_NPZ)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--train-epochs", type=int, default=1)
    parser.add_argument("--draws", type=int, default=400)
    parser.add_argument("--direct-draws", type=int, default=100)
    parser.add_argument("--projections", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--only", choices=["coupling", "jacobian", "time"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    result = {
        "machine": platform.processor() or platform.machine(),
        "threads": args.threads,
        "device": str(device),
        "torch": torch.__version__,
        "width": args.width,
        "batch": args.batch,
        "npz": str(args.npz),
    }
    with tempfile.TemporaryDirectory() as tmp:
        task = subset_task(args.npz, Path(tmp) / "cifar10_gray.h5")
        if args.only in (None, "coupling", "jacobian"):
            trainer = Trainer(task, {}, settings("none", args.width, args.batch), device)
            for epochs in sorted({0, args.train_epochs}):
                while len(result.get("epochs_trained", [])) < epochs:
                    row = trainer.epoch(len(result.setdefault("epochs_trained", [])))
                    result["epochs_trained"].append(
                        {
                            "val_accuracy": round(row["val_accuracy"], 4),
                            "seconds": round(row["seconds"], 1),
                        }
                    )
                label = "fresh" if epochs == 0 else f"trained_{epochs}_epochs"
                if args.only in (None, "coupling"):
                    result.setdefault("coupling", {})[label] = coupling(trainer, args.batch)
                if args.only in (None, "jacobian"):
                    result.setdefault("jacobian_estimate", {})[label] = jacobian_bias(
                        trainer, args.batch, args.projections, args.draws, args.direct_draws
                    )
        if args.only in (None, "time"):
            result["step_time"] = step_times(
                task, args.width, args.batch, args.steps, args.repeats, device, args.projections
            )
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
