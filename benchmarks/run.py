"""Speed of the two costly steps, printed as JSON (not a test; numbers depend on the machine).

- training steps/s of ``none``, ``threshold`` and every registered method that needs no
  input file (``sgr``, ``gn``, ``jacobian``, ``covariance``, ``afd``, ``pgd_at``;
  ``--methods`` to choose) with the pipeline's defaults
  (batch 64 + 16 regularization pairs, crop + flip augmentation, CIFAR-10's PGD budget),
  ResNet18 on 32x32 grayscale images, and each one's step time relative to ``none``
  (``train_step_time_over_none``: steps/s of none over steps/s of the method); on a CPU
  also the process's CPU seconds per step and per CIFAR-10 epoch (``epoch_cpu_s``: what
  an idle core takes, where other work shares the machine);
- wall time of the pixel-similarity build (blocks + HDF5 write) for N = 5000 and 20000;
- attacked images/s of the Boundary Attack (``--boundary-steps`` steps, one batch of
  ``--attack-images``) and of the minimal-distance suite (its quick setting), against a
  ResNet18 trained briefly on oriented gratings (so that it predicts several classes);
- wall time of generating the 15 corruptions x 5 severities (CIFAR-10-C's set) of
  ``--corruption-images`` 32x32 RGB images (CPU, numpy/scipy/PIL), per corruption and in all;
  ``--corruption-images`` below 10000 also reports the time scaled to 10,000, marked as such.

- model-steps/s of ``--pack-sizes`` seeds of ``none`` and ``threshold`` trained as one stacked
  model (simreg.train.packed) and their gain over one model per process; the CIFAR-10 epoch
  and 40-epoch times extrapolated from the steps/s, and the training hours of config.yaml's
  figure grids at those times;
With ``--fast-path`` the training steps are timed under each given ``training.fast_path``
(docs/choices.md, "Training speed"), and ``--repeats`` times each rate round-robin and
keeps the median; ``--only train`` stops after the training steps.

    python benchmarks/run.py [--width 64] [--steps 20] [--device auto] [--sizes 5000 20000]
                             [--attack-images 16] [--boundary-steps 200] [--attack-train-steps 60]
                             [--corruption-images 10000] [--only corruptions|train]
                             [--fast-path off autocast=bfloat16 channels_last=1 compile=1]
                             [--repeats 5] [--methods threshold]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import simreg
from simreg.config import validate_config
from simreg.data.sources import Splits
from simreg.data.store import write_dataset
from simreg.models.inference import pick_device
from simreg.settings import FastPath
from simreg.targets.pixel_similarity import build_similarity
from simreg.train.augment import draw_crop_flip
from simreg.train.regularizers import REGULARIZERS, get_regularizer
from simreg.train.settings import TrainSettings
from simreg.train.trainer import Trainer


def synthetic_dataset(path: Path, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 32, 32, 1), dtype=np.uint8)
    labels = rng.integers(0, 10, n)
    write_dataset(
        Splits(images, labels, images[:10], labels[:10]),
        "gray",
        path,
        dataset="synthetic",
        n_classes=10,
    )


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def parse_fast_path(spec: str) -> dict:
    """``off`` or ``autocast=bfloat16,channels_last=1,compile=1`` (any subset) -> the
    ``TrainSettings.fast_path`` it means (the rest at its default, off)."""
    options = dataclasses.asdict(FastPath())
    if spec == "off":
        return options
    for item in spec.split(","):
        key, _, value = item.partition("=")
        if key not in options or not value:
            raise SystemExit(
                f"--fast-path {spec!r}: expected off or KEY=VALUE,... with KEY "
                f"among {sorted(options)}"
            )
        if isinstance(options[key], bool):
            value = value.lower() in ("1", "true", "yes", "on")
        options[key] = value
    return options


def benchmark_settings(method: str, width: int, seed: int = 0, **changes) -> TrainSettings:
    """The pipeline's defaults (config.yaml's training and regularization settings, CIFAR-10's
    per-dataset values) for ``method`` at α = 10."""
    params = get_regularizer(method).parameters_from(validate_config({}), dataset="cifar10")
    return TrainSettings(
        method=method, alpha=10.0, width=width, seed=seed, regularizer=params, **changes
    )


class TrainingClock:
    """The trainer's own step for ``method`` under ``fast_path``, with the pipeline's
    defaults (config.yaml's training and regularization settings: augmentation on, 64
    images + 16 pairs, Th 0.8). Built and warmed up (3 steps: allocator, kernel selection,
    compilation) once; :meth:`steps_per_second` times ``steps`` further steps, as often as
    asked."""

    def __init__(self, workdir: Path, method: str, width: int, steps: int, device, fast_path: dict):
        s = benchmark_settings(method, width, fast_path=fast_path)
        self.trainer = Trainer(
            workdir / "task.h5", {"similarity": workdir / "similarity.h5"}, s, device
        )
        self.s, self.steps, self.device = s, steps, device
        self.cpu_s_per_step: list[float] = []
        generator = torch.Generator().manual_seed(0)
        n = len(self.trainer.y_train)
        self.batches = torch.randint(n, (steps + 3, s.batch_size), generator=generator).to(device)
        self.draws = self.trainer.regularizer.plan_epoch(steps + 3, generator, device)
        offsets, flips = draw_crop_flip(steps + 3, s.batch_size, generator)
        self.offsets, self.flips = offsets.to(device), flips.to(device)
        started = time.perf_counter()
        for t in range(3):
            self.step(t)
        sync(device)
        self.warmup_s = time.perf_counter() - started

    def step(self, t: int) -> None:
        augmentation = (self.offsets[t], self.flips[t]) if self.s.augment else None
        self.trainer.step(
            self.batches[t], None if self.draws is None else self.draws[t], augmentation
        )

    def steps_per_second(self) -> float:
        """Steps per wall second; the process's CPU seconds of the same steps are kept in
        ``cpu_s_per_step`` (on a CPU device: what a step costs on an idle core, when the
        machine is shared)."""
        sync(self.device)
        started, cpu_started = time.perf_counter(), time.process_time()
        for t in range(3, self.steps + 3):
            self.step(t)
        sync(self.device)
        self.cpu_s_per_step.append((time.process_time() - cpu_started) / self.steps)
        return self.steps / (time.perf_counter() - started)


def training_rates(
    workdir: Path, methods: list, specs: list, width: int, steps: int, device, repeats: int
) -> dict:
    """Training steps/s of each method under each fast-path spec: every (spec, method) is
    built and warmed up once, then timed ``repeats`` times round-robin (so that a load
    change on a shared machine hits all alike); each rate is the median of its timings."""
    clocks = {
        (spec, m): TrainingClock(workdir, m, width, steps, device, parse_fast_path(spec))
        for spec in specs
        for m in methods
    }
    timings = {key: [] for key in clocks}
    load = [round(os.getloadavg()[0], 2)]
    for _ in range(repeats):
        for key, clock in clocks.items():
            timings[key].append(clock.steps_per_second())
    load.append(round(os.getloadavg()[0], 2))
    first = specs[0]
    rates = {spec: {m: float(np.median(timings[spec, m])) for m in methods} for spec in specs}
    result = {
        "train_steps_per_s": {m: round(r, 3) for m, r in rates[first].items()},
        "train_step_time_over_none": {
            m: round(rates[first]["none"] / r, 3) for m, r in rates[first].items()
        },
    }
    if "threshold" in methods:
        result["train_threshold_over_none"] = round(
            rates[first]["threshold"] / rates[first]["none"], 3
        )
    result["train_cpu_s_per_step"] = {
        m: round(float(np.median(clocks[first, m].cpu_s_per_step)), 4) for m in methods
    }
    result["train_fast_path"] = {spec: parse_fast_path(spec) for spec in specs}
    result["train_repeats"] = repeats
    result["train_load_average"] = load  # 1-min load average before and after the timings
    result["train_steps_per_s_runs"] = {
        spec: {m: [round(r, 3) for r in timings[spec, m]] for m in methods} for spec in specs
    }
    # The first steps of each (spec, method): with compile, the graphs of its batch shapes
    # (a later method reuses those an earlier one of the same spec compiled).
    result["train_warmup_s"] = {
        spec: {m: round(clocks[spec, m].warmup_s, 1) for m in methods} for spec in specs
    }
    if len(specs) > 1:
        result["train_steps_per_s_by_fast_path"] = {
            spec: {m: round(r, 3) for m, r in rates[spec].items()} for spec in specs
        }
        result["train_speedup_over_first_fast_path"] = {
            spec: {m: round(rates[spec][m] / rates[first][m], 3) for m in methods} for spec in specs
        }
    return result


def packed_model_steps_per_second(
    workdir: Path, method: str, width: int, steps: int, device, pack: int
) -> float:
    """Model-steps/s (pack size x steps/s) of ``pack`` seeds trained as one stacked model
    (simreg.train.packed), with the settings :class:`TrainingClock` times (fast path off)."""
    from simreg.train.packed import PackedTrainer

    trainers = [
        Trainer(
            workdir / "task.h5",
            {"similarity": workdir / "similarity.h5"},
            benchmark_settings(method, width, seed=seed),
            device,
        )
        for seed in range(pack)
    ]
    packed = PackedTrainer(trainers)
    plans = [t.plan_epoch(0)[1] for t in trainers]
    if len(plans[0]) < steps + 3:
        raise ValueError(f"the benchmark's epoch has {len(plans[0])} steps, fewer than {steps + 3}")

    def step(t):
        packed.step(*packed.stacked_inputs([plan[t] for plan in plans]))

    for t in range(3):
        step(t)
    sync(device)
    started = time.perf_counter()
    for t in range(3, steps + 3):
        step(t)
    sync(device)
    return pack * steps / (time.perf_counter() - started)


def grid_gpu_hours(seconds_per_model: dict) -> dict:
    """Trainings of the full config.yaml grid per method and the hours they take at the
    measured seconds per 40-epoch model (a method not measured counts at threshold's time)."""
    from collections import Counter

    from simreg.config import load_config
    from simreg.report.targets import all_models

    config = load_config(Path(__file__).resolve().parents[1] / "config.yaml")
    counts = Counter(key.method for key in all_models(config))
    fallback = seconds_per_model.get("threshold", max(seconds_per_model.values()))
    hours = {m: n * seconds_per_model.get(m, fallback) / 3600 for m, n in counts.items()}
    return {
        "grid_trainings": dict(sorted(counts.items())),
        "grid_training_hours": round(sum(hours.values()), 1),
        "grid_training_hours_note": "trainings of config.yaml's figure grids at the measured "
        "seconds per 40-epoch CIFAR-10 model; methods not "
        "measured count at threshold's time; evaluations not "
        "counted",
    }


def gratings(n: int, size: int = 32, classes: int = 10, seed: int = 0):
    """Sinusoidal gratings whose orientation is the class, with pixel noise: a task a
    ResNet learns in a few dozen steps, so the attacked model predicts every class (random
    images would all fall in one class and leave nothing to attack)."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(classes, (n,), generator=generator)
    angle = labels.float() * torch.pi / classes
    phase = torch.rand(n, generator=generator) * 2 * torch.pi
    grid = torch.arange(size).float()
    yy, xx = torch.meshgrid(grid, grid, indexing="ij")
    wave = torch.sin(
        0.6 * (xx * torch.cos(angle)[:, None, None] + yy * torch.sin(angle)[:, None, None])
        + phase[:, None, None]
    )
    x = 0.5 + 0.35 * wave + 0.1 * torch.randn(n, size, size, generator=generator)
    return x.clamp(0, 1)[:, None], labels


def attack_images_per_second(
    width: int, device, n_images: int, boundary_steps: int, train_steps: int
) -> dict:
    """Boundary Attack and minimal-distance suite throughput on ``n_images`` gratings, against
    a ResNet18 of ``width`` trained ``train_steps`` steps on gratings."""
    import torch.nn.functional as F

    from simreg.evaluate.boundary import boundary_attack
    from simreg.evaluate.minimal_distance import QUICK_SUITE, attack_distances
    from simreg.models.resnet import build_model

    torch.manual_seed(0)
    model = build_model("resnet18", 1, 10, width).to(device)
    x_train, y_train = gratings(64 * train_steps, seed=1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for step in range(train_steps):
        batch = slice(64 * step, 64 * (step + 1))
        optimizer.zero_grad()
        F.cross_entropy(model(x_train[batch].to(device)), y_train[batch].to(device)).backward()
        optimizer.step()
    model.eval()
    x, y = gratings(n_images, seed=2)
    x, y = x.to(device), y.to(device)
    with torch.no_grad():
        accuracy = (model(x).argmax(1) == y).float().mean().item()
    sync(device)
    started = time.perf_counter()
    result = boundary_attack(model, x, seed=0, params={"steps": boundary_steps})
    sync(device)
    boundary_s = time.perf_counter() - started
    started = time.perf_counter()
    attack_distances(model, x, y, QUICK_SUITE, seed=0)
    sync(device)
    suite_s = time.perf_counter() - started
    return {
        "attack_images": n_images,
        "attack_model_accuracy": round(accuracy, 3),
        "boundary_steps": boundary_steps,
        "boundary_solved": int(result.solved.sum()),
        "boundary_images_per_s": round(n_images / boundary_s, 3),
        "minimal_distance_suite": "QUICK_SUITE",
        "minimal_distance_images_per_s": round(n_images / suite_s, 3),
    }


def corruption_generation_seconds(n_images: int) -> dict:
    """Seconds to generate every corruption at every severity (simreg.data.corrupted.generate,
    as the rule corruptions does) for ``n_images`` 32x32 RGB images: tiles of scikit-learn's
    two embedded photographs, repeated to ``n_images``."""
    from sklearn.datasets import load_sample_images

    from simreg.data.corrupted import frost_textures, generate
    from simreg.data.corruptions import CORRUPTIONS

    tiles = np.concatenate(
        [
            p[:416, :640].reshape(13, 32, 20, 32, 3).transpose(0, 2, 1, 3, 4).reshape(-1, 32, 32, 3)
            for p in load_sample_images().images
        ]
    )
    images = np.ascontiguousarray(np.resize(tiles, (n_images, 32, 32, 3)))
    started, cpu_started = time.perf_counter(), time.process_time()
    textures = frost_textures(0, images.shape)
    seconds = {}
    for corruption in CORRUPTIONS:
        t = time.perf_counter()
        generate(images, corruption, 0, textures)
        seconds[corruption] = round(time.perf_counter() - t, 2)
    total = time.perf_counter() - started
    result = {
        "corruption_images": n_images,
        "corruption_image_shape": [32, 32, 3],
        "corruption_generation_s": round(total, 1),
        "corruption_generation_cpu_s": round(time.process_time() - cpu_started, 1),
        "corruption_generation_s_per_corruption": seconds,
    }
    if n_images != 10000:
        result["corruption_generation_s_for_10000_extrapolated"] = round(
            total * 10000 / n_images, 1
        )
        result["corruption_note"] = (
            f"measured on {n_images} images, not 10,000; the 10,000 figure is scaled linearly"
        )
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--device", default="auto")
    p.add_argument("--sizes", type=int, nargs="*", default=[5000, 20000])
    p.add_argument("--attack-images", type=int, default=16)
    p.add_argument("--attack-train-steps", type=int, default=60)
    p.add_argument("--boundary-steps", type=int, default=200)
    p.add_argument(
        "--methods",
        nargs="*",
        default=None,
        help="methods whose training step is timed (default: threshold and every "
        "method that needs no input file)",
    )
    p.add_argument(
        "--pack-sizes",
        type=int,
        nargs="*",
        default=[3],
        help="seeds per process timed with simreg.train.packed ([] to skip)",
    )
    p.add_argument("--corruption-images", type=int, default=10000)
    p.add_argument(
        "--fast-path",
        nargs="+",
        default=["off"],
        metavar="SPEC",
        help="training.fast_path settings whose training steps are timed, each "
        "'off' or KEY=VALUE,... of autocast (none|bfloat16), channels_last, "
        "compile (0|1), e.g. off autocast=bfloat16 channels_last=1 compile=1; "
        "train_steps_per_s is the first's, the rest are compared with it",
    )
    p.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="timings of each training step rate, round-robin; the median is kept",
    )
    p.add_argument(
        "--only",
        choices=["corruptions", "train"],
        default=None,
        help="run only this part (the other timings are left out)",
    )
    a = p.parse_args()
    # compile refuses the methods that differentiate an input gradient (double backward)
    compiles = any(parse_fast_path(spec)["compile"] for spec in a.fast_path)
    methods = a.methods or ["threshold"] + sorted(
        m
        for m, r in REGULARIZERS.items()
        if not r.needs and m != "none" and not (compiles and r.needs_input_grad)
    )
    device = pick_device(a.device)
    result = {
        "simreg_version": simreg.__version__,
        "torch": torch.__version__,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "width": a.width,
    }
    if a.only == "corruptions":
        result.update(corruption_generation_seconds(a.corruption_images))
        print(json.dumps(result, indent=2))
        return
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        synthetic_dataset(workdir / "task.h5", 5000)
        build_similarity(
            workdir / "task.h5", workdir / "similarity.h5", n_images=5000, image_seed=0
        )
        result.update(
            training_rates(
                workdir,
                list(dict.fromkeys(["none", *methods])),
                a.fast_path,
                a.width,
                a.steps,
                device,
                a.repeats,
            )
        )
        rates = result["train_steps_per_s"]
        if "threshold" in rates:
            result["train_threshold_step_time_over_none"] = round(
                rates["none"] / rates["threshold"], 3
            )
        # One epoch of the paper's task: CIFAR-10's 50,000 training images less the 1%
        # validation split, in batches of 64 (the validation pass is not counted).
        steps_per_epoch = int(50000 * 0.99) // 64
        result["cifar10_steps_per_epoch"] = steps_per_epoch
        result["epoch_s"] = {m: round(steps_per_epoch / r, 1) for m, r in rates.items()}
        if device.type == "cpu":  # the process's CPU seconds: an idle core's epoch
            result["epoch_cpu_s"] = {
                m: round(steps_per_epoch * c, 1) for m, c in result["train_cpu_s_per_step"].items()
            }
        result["model_40_epochs_s_extrapolated"] = {
            m: round(40 * steps_per_epoch / r, 1) for m, r in rates.items()
        }
        packs = {}
        for method in ("none", "threshold"):
            for pack in a.pack_sizes:
                runs = [
                    packed_model_steps_per_second(workdir, method, a.width, a.steps, device, pack)
                    for _ in range(a.repeats)
                ]
                packs[f"{method}_pack{pack}"] = round(float(np.median(runs)), 3)
        if packs:
            result["packed_model_steps_per_s"] = packs
            result["packed_gain_over_single"] = {
                name: round(rate / rates[name.split("_pack")[0]], 3) for name, rate in packs.items()
            }
        result.update(grid_gpu_hours(result["model_40_epochs_s_extrapolated"]))
        if a.only == "train":
            print(json.dumps(result, indent=2))
            return
        result["similarity_build_s"] = {}
        for n in a.sizes:
            synthetic_dataset(workdir / f"images{n}.h5", n, seed=1)
            started = time.perf_counter()
            build_similarity(
                workdir / f"images{n}.h5",
                workdir / f"sim{n}.h5",
                n_images=n,
                image_seed=0,
                device=str(device),
            )
            seconds = time.perf_counter() - started
            result["similarity_build_s"][str(n)] = round(seconds, 2)
            result.setdefault("similarity_pairs_per_s", {})[str(n)] = round(n * n / seconds)
            (workdir / f"sim{n}.h5").unlink()
        result.update(
            attack_images_per_second(
                a.width, device, a.attack_images, a.boundary_steps, a.attack_train_steps
            )
        )
    result.update(corruption_generation_seconds(a.corruption_images))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
