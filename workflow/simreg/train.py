"""Similarity-regularized training: L = CE + alpha * L_sim (paper eq. 2).

Reads top to bottom: settings, data on the device, one step, one epoch, the loop with
checkpoint/resume. Each step takes one classification batch and one batch of
regularization pairs sampled from the target matrix.

Checkpoints go to a directory Snakemake does not own, so a failed or killed job keeps
them; a rerun resumes from the last finished epoch and ends with the same weights as an
uninterrupted run (on CPU, where the kernels are deterministic).
"""

from __future__ import annotations

import copy
import dataclasses
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from simreg.cnn_similarity import RepresentationSimilarity, similarity_loss
from simreg.datasets import read_split
from simreg.methods import get_method
from simreg.models import build_model
from simreg.outputs import atomic_output, provenance, write_csv
from simreg.similarity import read_similarity


@dataclass
class TrainSettings:
    method: str = "none"
    alpha: float = 0.0
    threshold: float = 0.8
    seed: int = 0
    architecture: str = "resnet18"
    width: int = 64
    epochs: int = 40
    batch_size: int = 64
    reg_pairs: int = 16
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 0.0
    lr_decay: float = 0.3
    lr_step_epochs: int = 4
    lr_cycle_epochs: int = 20
    validation_fraction: float = 0.01
    inner_threshold: float = 0.4
    augment: bool = False
    z_eps: float = 1e-5
    mean_momentum: float = 0.1
    eval_batch_size: int = 1024


def learning_rate(epoch: int, s: TrainSettings) -> float:
    """Step schedule of the paper's source code: lr * decay^((epoch mod cycle) // step)."""
    return s.lr * s.lr_decay ** ((epoch % s.lr_cycle_epochs) // s.lr_step_epochs)


def pick_device(requested: str = "auto") -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def to_input(images_u8: torch.Tensor) -> torch.Tensor:
    """uint8 NHWC on the device -> float NCHW in [0, 1]."""
    return images_u8.permute(0, 3, 1, 2).float().div_(255.0)


def sample_pairs(n: int, count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` index pairs (i, j), i != j, uniform over ordered pairs of ``n`` images.

    Returns a (count, 2) int64 tensor on the CPU (the generator's device).
    """
    if n < 2:
        raise ValueError("need at least 2 regularization images to form a pair")
    i = torch.randint(n, (count,), generator=generator)
    j = (i + torch.randint(1, n, (count,), generator=generator)) % n
    return torch.stack([i, j], dim=1)


def eligible_pair_list(mask: torch.Tensor) -> torch.Tensor:
    """The (M, 2) pairs i < j where ``mask`` holds."""
    pairs = torch.nonzero(torch.triu(mask, diagonal=1))
    if len(pairs) == 0:
        raise ValueError("no pair of regularization images satisfies this method's condition")
    return pairs


def crop_flip(images_u8: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor, pad: int = 4):
    """Random-crop (reflect padding ``pad``) and horizontally flip a uint8 NHWC batch.

    ``offsets`` (B, 2) in [0, 2 pad] and ``flips`` (B,) bool come from the caller's generator,
    so augmentation is reproducible; everything else is one batched gather on the device.
    """
    b, h, w, _ = images_u8.shape
    padded = F.pad(images_u8.permute(0, 3, 1, 2).float(), (pad, pad, pad, pad), mode="reflect")
    rows = offsets[:, 0, None] + torch.arange(h, device=images_u8.device)
    cols = offsets[:, 1, None] + torch.arange(w, device=images_u8.device)
    cols = torch.where(flips[:, None], cols.flip(1), cols)
    batch = torch.arange(b, device=images_u8.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]
    return out.to(torch.uint8)


def split_validation(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    n_val = max(1, int(round(fraction * n)))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


@torch.no_grad()
def evaluate(model, images_u8: torch.Tensor, labels: torch.Tensor, batch_size: int = 1024,
             transform=None) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of ``model`` on device-resident uint8 images.

    ``transform`` maps a float batch in [0, 1] to the batch actually shown (noise, ...).
    """
    was_training = model.training
    model.eval()
    loss, correct = torch.zeros((), device=labels.device), torch.zeros((), device=labels.device)
    for start in range(0, len(labels), batch_size):
        x = to_input(images_u8[start : start + batch_size])
        if transform is not None:
            x = transform(x)
        logits = model(x)
        y = labels[start : start + batch_size]
        loss += F.cross_entropy(logits, y, reduction="sum")
        correct += (logits.argmax(1) == y).sum()
    model.train(was_training)
    n = max(1, len(labels))
    return (loss / n).item(), (correct / n).item()


class Trainer:
    """Holds the model, the similarity head, the optimizer and the data, all on one device."""

    def __init__(self, task_path, similarity_path, settings: TrainSettings, device: torch.device):
        self.s, self.device = settings, device
        self.method = get_method(settings.method)
        task = read_split(task_path, "train")
        self.task_attrs = task.attrs
        keep, held = split_validation(len(task.labels), settings.validation_fraction, settings.seed)
        self.x_train = torch.from_numpy(task.images[keep]).to(device)
        self.y_train = torch.from_numpy(task.labels[keep]).to(device)
        self.x_val = torch.from_numpy(task.images[held]).to(device)
        self.y_val = torch.from_numpy(task.labels[held]).to(device)

        torch.manual_seed(settings.seed)
        channels = task.images.shape[-1]
        self.model = build_model(settings.architecture, channels, task.n_classes, settings.width)
        pixels = self.x_train.float().div(255.0)
        self.model.set_input_normalization(pixels.mean(dim=(0, 1, 2)),
                                           pixels.std(dim=(0, 1, 2)).clamp_min(1e-3))
        self.model.to(device)
        widths = [settings.width * 2**i for i in range(4)]
        self.similarity = RepresentationSimilarity([settings.width, *widths],
                                                   settings.mean_momentum).to(device)
        params = list(self.model.parameters())
        if self.method.regularized:
            params += list(self.similarity.parameters())
        self.optimizer = torch.optim.SGD(params, lr=settings.lr, momentum=settings.momentum,
                                         weight_decay=settings.weight_decay)
        self.generator = torch.Generator().manual_seed(settings.seed)

        self.reg_images = self.targets = self.eligible = None
        self.similarity_attrs = {}
        if self.method.regularized:
            if similarity_path is None:
                raise ValueError(f"method {settings.method!r} needs a similarity file")
            indices, s_pixel, self.similarity_attrs = read_similarity(similarity_path)
            reg_set = read_split(self.similarity_attrs["dataset_file"], "train")
            if reg_set.images.shape[-1] != channels:
                raise ValueError(f"regularization images have {reg_set.images.shape[-1]} channels, "
                                 f"the task has {channels}: use the same color mode")
            self.reg_images = torch.from_numpy(reg_set.images[indices]).to(device)
            s_pixel = torch.from_numpy(s_pixel)
            targets = self.method.targets(s_pixel, settings.threshold,
                                          torch.Generator().manual_seed(settings.seed))
            self.targets = targets.to(device)
            mask = self.method.eligible(s_pixel, settings.threshold, settings.inner_threshold)
            self.eligible = None if mask is None else eligible_pair_list(mask)

    # ---- one step: L = CE + alpha * L_sim --------------------------------------------
    def task_loss(self, idx: torch.Tensor, augmentation=None) -> torch.Tensor:
        images = self.x_train[idx]
        if augmentation is not None:
            images = crop_flip(images, *augmentation)
        return F.cross_entropy(self.model(to_input(images)), self.y_train[idx])

    def regularization_loss(self, pairs: torch.Tensor) -> torch.Tensor:
        feats = self.model.features(to_input(self.reg_images[pairs.T.reshape(-1)]))
        k = len(pairs)
        s_cnn = self.similarity([f[:k] for f in feats], [f[k:] for f in feats])
        s_target = self.targets[pairs[:, 0], pairs[:, 1]]
        return similarity_loss(s_cnn, s_target, self.s.z_eps)

    def step(self, idx: torch.Tensor, pairs: torch.Tensor | None, augmentation=None):
        ce = self.task_loss(idx, augmentation)
        sim = self.regularization_loss(pairs) if pairs is not None else torch.zeros_like(ce)
        loss = ce + self.s.alpha * sim
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return ce.detach(), sim.detach()

    def sample_pairs(self, count: int) -> torch.Tensor:
        if self.eligible is None:
            return sample_pairs(len(self.reg_images), count, self.generator)
        return self.eligible[torch.randint(len(self.eligible), (count,), generator=self.generator)]

    # ---- one epoch ---------------------------------------------------------------------
    def epoch(self, epoch: int) -> dict:
        s = self.s
        lr = learning_rate(epoch, s)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.model.train()
        self.similarity.train()
        n = len(self.y_train)
        order = torch.randperm(n, generator=self.generator)
        n_steps = n // s.batch_size  # drop the last partial batch
        batches = order[: n_steps * s.batch_size].view(n_steps, s.batch_size).to(self.device)
        pairs = offsets = flips = None
        if self.method.regularized:
            pairs = self.sample_pairs(n_steps * s.reg_pairs).view(n_steps, s.reg_pairs, 2)
            pairs = pairs.to(self.device)
        if s.augment:
            offsets = torch.randint(0, 9, (n_steps, s.batch_size, 2), generator=self.generator)
            flips = torch.rand((n_steps, s.batch_size), generator=self.generator) < 0.5
            offsets, flips = offsets.to(self.device), flips.to(self.device)
        ce_sum = torch.zeros((), device=self.device)
        sim_sum = torch.zeros((), device=self.device)
        started = time.perf_counter()
        for t in range(n_steps):
            ce, sim = self.step(batches[t], None if pairs is None else pairs[t],
                                None if offsets is None else (offsets[t], flips[t]))
            ce_sum += ce
            sim_sum += sim
        val_loss, val_acc = evaluate(self.model, self.x_val, self.y_val, s.eval_batch_size)
        gamma = self.similarity.gamma.detach().cpu().tolist()
        row = {"epoch": epoch, "lr": lr, "train_ce": (ce_sum / max(1, n_steps)).item(),
               "train_sim": (sim_sum / max(1, n_steps)).item(), "val_loss": val_loss,
               "val_accuracy": val_acc, "seconds": time.perf_counter() - started}
        row.update({f"gamma_{k}": g for k, g in enumerate(gamma)})
        return row

    # ---- state for checkpoints -----------------------------------------------------------
    def state(self) -> dict:
        return {"model": self.model.state_dict(), "similarity": self.similarity.state_dict(),
                "optimizer": self.optimizer.state_dict(), "generator": self.generator.get_state()}

    def load_state(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.similarity.load_state_dict(state["similarity"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])


def train(task_path, similarity_path, model_out, metrics_out, checkpoint_dir,
          settings: TrainSettings, device: str = "auto", threads: int | None = None,
          extra_provenance: dict | None = None) -> None:
    """Train one model; resume from ``checkpoint_dir/last.pt`` if a previous run left one."""
    if threads:
        torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    dev = pick_device(device)
    trainer = Trainer(task_path, similarity_path, settings, dev)
    checkpoint = Path(checkpoint_dir) / "last.pt"
    settings_dict = dataclasses.asdict(settings)

    rows, best, start = [], {"val_loss": float("inf"), "epoch": -1, "state": None}, 0
    if checkpoint.exists():
        saved = torch.load(checkpoint, map_location=dev, weights_only=False)
        if saved["settings"] != settings_dict:
            raise RuntimeError(f"{checkpoint} was written with other settings "
                               f"({saved['settings']}); delete it to start over.")
        trainer.load_state(saved["trainer"])
        rows, best, start = saved["rows"], saved["best"], saved["epoch"] + 1
        print(f"train: resuming from {checkpoint} after epoch {saved['epoch']}", file=sys.stderr)

    for epoch in range(start, settings.epochs):
        row = trainer.epoch(epoch)
        if row["val_loss"] < best["val_loss"]:
            best = {"val_loss": row["val_loss"], "epoch": epoch,
                    "state": copy.deepcopy({"model": trainer.model.state_dict(),
                                            "similarity": trainer.similarity.state_dict()})}
        rows.append(row)
        print("train: epoch {epoch}/{n} lr {lr:.4g} ce {train_ce:.4f} sim {train_sim:.4f} "
              "val_loss {val_loss:.4f} val_acc {val_accuracy:.4f} ({seconds:.1f} s)".format(
                  n=settings.epochs, **row), file=sys.stderr, flush=True)
        with atomic_output(checkpoint) as tmp:
            torch.save({"epoch": epoch, "settings": settings_dict, "trainer": trainer.state(),
                        "rows": rows, "best": best}, tmp)

    if best["state"] is None:
        raise RuntimeError("no epoch was trained (epochs = 0?)")
    keys = {"task": str(trainer.task_attrs.get("dataset")) + "_" + str(trainer.task_attrs.get("color")),
            "method": settings.method, "alpha": settings.alpha, "threshold": settings.threshold,
            "reg_pairs": settings.reg_pairs, "seed": settings.seed, **(extra_provenance or {})}
    meta = provenance(**{**settings_dict, **keys}, task_file=str(task_path),
                      similarity_file=str(similarity_path), best_epoch=best["epoch"], device=str(dev))
    with atomic_output(model_out) as tmp:
        torch.save({"model": best["state"]["model"], "similarity": best["state"]["similarity"],
                    "architecture": settings.architecture, "width": settings.width,
                    "in_channels": int(trainer.x_train.shape[-1]),
                    "n_classes": int(trainer.model.head.out_features), "provenance": meta}, tmp)
    metrics = pd.DataFrame(rows)
    metrics["best"] = metrics["epoch"] == best["epoch"]
    for key in (*keys, "simreg_version"):
        metrics[key] = meta[key]
    write_csv(metrics, metrics_out)


def settings_from_config(config: dict, key) -> dict:
    """TrainSettings fields for model ``key`` (a paths.ModelKey) under ``config``."""
    t, r, m = config["training"], config["regularization"], config["model"]
    threshold = float(key.threshold) if key.threshold != "na" else r["threshold"]
    return dataclasses.asdict(TrainSettings(
        method=key.method, alpha=float(key.alpha), threshold=threshold, seed=int(key.seed),
        reg_pairs=int(key.pairs) or r["reg_pairs"], inner_threshold=r["inner_threshold"],
        z_eps=r["z_eps"], mean_momentum=r["mean_momentum"], architecture=m["architecture"],
        width=m["width"], epochs=t["epochs"], batch_size=t["batch_size"], lr=t["lr"],
        momentum=t["momentum"], weight_decay=t["weight_decay"], lr_decay=t["lr_decay"],
        lr_step_epochs=t["lr_step_epochs"], lr_cycle_epochs=t["lr_cycle_epochs"],
        validation_fraction=t["validation_fraction"], augment=t["augment"]))


def load_model(path, device="cpu"):
    """Rebuild a trained classifier from ``model.pt``; returns (model in eval mode, metadata)."""
    saved = torch.load(path, map_location=device, weights_only=False)
    model = build_model(saved["architecture"], saved["in_channels"], saved["n_classes"], saved["width"])
    model.load_state_dict(saved["model"])
    return model.to(device).eval(), saved["provenance"]
