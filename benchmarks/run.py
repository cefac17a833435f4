"""Speed of the two costly steps, printed as JSON (not a test; numbers depend on the machine).

- training steps/s of ``none``, ``threshold`` and every registered method that needs no
  input file (``sgr``, ``gn``, ``jacobian``, ``covariance``, ``afd``, ``pgd_at``;
  ``--methods`` to choose) with the pipeline's defaults
  (batch 64 + 16 regularization pairs, crop + flip augmentation, CIFAR-10's PGD budget),
  ResNet18 on 32x32 grayscale images, and each one's step time relative to ``none``
  (``train_step_time_over_none``: steps/s of none over steps/s of the method);
- wall time of the pixel-similarity build (blocks + HDF5 write) for N = 5000 and 20000;
- attacked images/s of the Boundary Attack (``--boundary-steps`` steps, one batch of
  ``--attack-images``) and of the minimal-distance suite (its quick setting), against a
  ResNet18 trained briefly on oriented gratings (so that it predicts several classes);
- wall time of generating the 15 corruptions x 5 severities (CIFAR-10-C's set) of
  ``--corruption-images`` 32x32 RGB images (CPU, numpy/scipy/PIL), per corruption and in all;
  ``--corruption-images`` below 10000 also reports the time scaled to 10,000, marked as such.

    python benchmarks/run.py [--width 64] [--steps 20] [--device auto] [--sizes 5000 20000]
                             [--attack-images 16] [--boundary-steps 200] [--attack-train-steps 60]
                             [--corruption-images 10000] [--only corruptions]
"""

from __future__ import annotations

import argparse
import json
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
from simreg.targets.pixel_similarity import build_similarity
from simreg.train.augment import draw_crop_flip
from simreg.train.regularizers import REGULARIZERS, get_regularizer
from simreg.train.settings import TrainSettings
from simreg.train.trainer import Trainer


def synthetic_dataset(path: Path, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 32, 32, 1), dtype=np.uint8)
    labels = rng.integers(0, 10, n)
    write_dataset(Splits(images, labels, images[:10], labels[:10]), "gray", path,
                  dataset="synthetic", n_classes=10)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def training_steps_per_second(workdir: Path, method: str, width: int, steps: int, device) -> float:
    """Steps/s of the trainer's own step, with the pipeline's defaults (config.yaml's training
    and regularization settings: augmentation on, 64 images + 16 pairs, Th 0.8)."""
    params = get_regularizer(method).parameters_from(validate_config({}), dataset="cifar10")
    s = TrainSettings(method=method, alpha=10.0, width=width, regularizer=params)
    trainer = Trainer(workdir / "task.h5", {"similarity": workdir / "similarity.h5"}, s, device)
    generator = torch.Generator().manual_seed(0)
    n = len(trainer.y_train)
    batches = torch.randint(n, (steps + 3, s.batch_size), generator=generator).to(device)
    draws = trainer.regularizer.plan_epoch(steps + 3, generator, device)
    offsets, flips = draw_crop_flip(steps + 3, s.batch_size, generator)
    offsets, flips = offsets.to(device), flips.to(device)

    def step(t):
        augmentation = (offsets[t], flips[t]) if s.augment else None
        trainer.step(batches[t], None if draws is None else draws[t], augmentation)

    for t in range(3):  # warm-up: allocator, kernel selection
        step(t)
    sync(device)
    started = time.perf_counter()
    for t in range(3, steps + 3):
        step(t)
    sync(device)
    return steps / (time.perf_counter() - started)


def packed_model_steps_per_second(workdir: Path, method: str, width: int, steps: int, device,
                                  pack: int) -> float:
    """Model-steps/s (pack size x steps/s) of ``pack`` seeds trained as one stacked model
    (simreg.train.packed), same settings as :func:`training_steps_per_second`."""
    from simreg.train.packed import PackedTrainer

    params = get_regularizer(method).parameters_from(validate_config({}), dataset="cifar10")
    trainers = [Trainer(workdir / "task.h5", {"similarity": workdir / "similarity.h5"},
                        TrainSettings(method=method, alpha=10.0, width=width, seed=seed,
                                      regularizer=params), device) for seed in range(pack)]
    packed = PackedTrainer(trainers)
    plans = [t.plan_epoch(0)[1] for t in trainers]
    if len(plans[0]) < steps + 3:
        raise ValueError(f"the benchmark's epoch has {len(plans[0])} steps, fewer than {steps + 3}")

    def step(t):
        xs, ys, draws = [], [], []
        for trainer, plan in zip(trainers, plans):
            idx, step_draws, augmentation = plan[t]
            x, y = trainer.inputs(idx, augmentation)
            xs.append(x)
            ys.append(y)
            draws.append(step_draws)
        packed.step(torch.stack(xs), torch.stack(ys), None if draws[0] is None else torch.stack(draws))

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
    return {"grid_trainings": dict(sorted(counts.items())),
            "grid_training_hours": round(sum(hours.values()), 1),
            "grid_training_hours_note": "trainings of config.yaml's figure grids at the measured "
                                        "seconds per 40-epoch CIFAR-10 model; methods not "
                                        "measured count at threshold's time; evaluations not "
                                        "counted"}


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
    wave = torch.sin(0.6 * (xx * torch.cos(angle)[:, None, None] + yy * torch.sin(angle)[:, None, None])
                     + phase[:, None, None])
    x = 0.5 + 0.35 * wave + 0.1 * torch.randn(n, size, size, generator=generator)
    return x.clamp(0, 1)[:, None], labels


def attack_images_per_second(width: int, device, n_images: int, boundary_steps: int,
                             train_steps: int) -> dict:
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
    return {"attack_images": n_images, "attack_model_accuracy": round(accuracy, 3),
            "boundary_steps": boundary_steps, "boundary_solved": int(result.solved.sum()),
            "boundary_images_per_s": round(n_images / boundary_s, 3),
            "minimal_distance_suite": "QUICK_SUITE",
            "minimal_distance_images_per_s": round(n_images / suite_s, 3)}


def corruption_generation_seconds(n_images: int) -> dict:
    """Seconds to generate every corruption at every severity (simreg.data.corrupted.generate,
    as the rule corruptions does) for ``n_images`` 32x32 RGB images: tiles of scikit-learn's
    two embedded photographs, repeated to ``n_images``."""
    from sklearn.datasets import load_sample_images

    from simreg.data.corrupted import frost_textures, generate
    from simreg.data.corruptions import CORRUPTIONS

    tiles = np.concatenate([
        p[:416, :640].reshape(13, 32, 20, 32, 3).transpose(0, 2, 1, 3, 4).reshape(-1, 32, 32, 3)
        for p in load_sample_images().images])
    images = np.ascontiguousarray(np.resize(tiles, (n_images, 32, 32, 3)))
    started, cpu_started = time.perf_counter(), time.process_time()
    textures = frost_textures(0, images.shape)
    seconds = {}
    for corruption in CORRUPTIONS:
        t = time.perf_counter()
        generate(images, corruption, 0, textures)
        seconds[corruption] = round(time.perf_counter() - t, 2)
    total = time.perf_counter() - started
    result = {"corruption_images": n_images, "corruption_image_shape": [32, 32, 3],
              "corruption_generation_s": round(total, 1),
              "corruption_generation_cpu_s": round(time.process_time() - cpu_started, 1),
              "corruption_generation_s_per_corruption": seconds}
    if n_images != 10000:
        result["corruption_generation_s_for_10000_extrapolated"] = round(total * 10000 / n_images, 1)
        result["corruption_note"] = (f"measured on {n_images} images, not 10,000; the 10,000 "
                                     "figure is scaled linearly")
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
    p.add_argument("--methods", nargs="*", default=None,
                   help="methods whose training step is timed (default: threshold and every "
                        "method that needs no input file)")
    p.add_argument("--pack-sizes", type=int, nargs="*", default=[3],
                   help="seeds per process timed with simreg.train.packed ([] to skip)")
    p.add_argument("--corruption-images", type=int, default=10000)
    p.add_argument("--only", choices=["corruptions", "training"], default=None,
                   help="run only this part (the other timings are left out)")
    a = p.parse_args()
    methods = a.methods or ["threshold"] + sorted(m for m, r in REGULARIZERS.items()
                                                  if not r.needs and m != "none")
    device = pick_device(a.device)
    result = {"simreg_version": simreg.__version__, "torch": torch.__version__,
              "device": str(device), "threads": torch.get_num_threads(),
              "machine": platform.machine(), "width": a.width}
    if a.only == "corruptions":
        result.update(corruption_generation_seconds(a.corruption_images))
        print(json.dumps(result, indent=2))
        return
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        synthetic_dataset(workdir / "task.h5", 5000)
        build_similarity(workdir / "task.h5", workdir / "similarity.h5", n_images=5000, image_seed=0)
        rates = {m: training_steps_per_second(workdir, m, a.width, a.steps, device)
                 for m in dict.fromkeys(["none", *methods])}
        result["train_steps_per_s"] = {m: round(r, 3) for m, r in rates.items()}
        result["train_step_time_over_none"] = {m: round(rates["none"] / r, 3)
                                               for m, r in rates.items()}
        if "threshold" in rates:
            result["train_threshold_over_none"] = round(rates["threshold"] / rates["none"], 3)
            result["train_threshold_step_time_over_none"] = round(rates["none"] / rates["threshold"], 3)
        # One epoch of the paper's task: CIFAR-10's 50,000 training images less the 1%
        # validation split, in batches of 64 (the validation pass is not counted).
        steps_per_epoch = int(50000 * 0.99) // 64
        result["cifar10_steps_per_epoch"] = steps_per_epoch
        result["epoch_s"] = {m: round(steps_per_epoch / r, 1) for m, r in rates.items()}
        result["model_40_epochs_s_extrapolated"] = {m: round(40 * steps_per_epoch / r, 1)
                                                    for m, r in rates.items()}
        packs = {}
        for method in ("none", "threshold"):
            for pack in a.pack_sizes:
                rate = packed_model_steps_per_second(workdir, method, a.width, a.steps, device, pack)
                packs[f"{method}_pack{pack}"] = round(rate, 3)
        if packs:
            result["packed_model_steps_per_s"] = packs
            result["packed_gain_over_single"] = {
                name: round(rate / rates[name.split("_pack")[0]], 3) for name, rate in packs.items()}
        result.update(grid_gpu_hours(result["model_40_epochs_s_extrapolated"]))
        result["similarity_build_s"] = {}
        result["similarity_build_s"] = {}
        for n in a.sizes:
            synthetic_dataset(workdir / f"images{n}.h5", n, seed=1)
            started = time.perf_counter()
            build_similarity(workdir / f"images{n}.h5", workdir / f"sim{n}.h5", n_images=n,
                             image_seed=0, device=str(device))
            seconds = time.perf_counter() - started
            result["similarity_build_s"][str(n)] = round(seconds, 2)
            result.setdefault("similarity_pairs_per_s", {})[str(n)] = round(n * n / seconds)
            (workdir / f"sim{n}.h5").unlink()
        if a.only == "training":
            print(json.dumps(result, indent=2))
            return
        result.update(attack_images_per_second(a.width, device, a.attack_images,
                                               a.boundary_steps, a.attack_train_steps))
    result.update(corruption_generation_seconds(a.corruption_images))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
