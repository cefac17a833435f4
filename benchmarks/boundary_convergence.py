"""Does the Boundary Attack converge? The score S(M) = median ||δ||²/d against the number of
steps, on one small trained model, beside the minimal L2 distance a white-box suite finds for
the same images. Printed as JSON (not a test; the numbers depend on the model).

Per attack setting, one walk of the largest step count, read after each step count (and
after 0 steps: the starting point): the median score; at the end the median and quartiles of
the accepted steps per image, how many images never moved, and the median final spherical and
source step sizes (simreg.evaluate.boundary.WalkRecorder). The white-box suite (DDN, FMN and
C&W, all L2) attacks the model's own prediction, as the Boundary Attack does, and its score is
the median over the same images of (smallest L2 distance found)²/d. ``--hsj-steps`` adds
foolbox's HopSkipJump (L2), a second decision-based attack, from the same starting points.

The model: ``--model model.pt --dataset task.h5`` (as ``simreg train`` and ``simreg dataset``
write them), or else a ResNet18 of ``--width`` trained here for ``--epochs`` epochs on the
gray CIFAR-10 subset (``--npz``; saved to ``--save`` and reused when that file exists).

    python benchmarks/boundary_convergence.py [--images 50] [--steps 50 300 1000 10000]
        [--settings '{"foolbox": {}, "every_step": {"update_stats_every_k": 1}}']
        [--hsj-steps 5 20] [--no-boundary] [--no-whitebox]
        [--width 16 --epochs 3 --save /tmp/boundary_model.pt]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from simreg.evaluate.boundary import boundary_attack, squared_distance_per_dim
from simreg.models.inference import load_model, predict, to_input

NPZ = "/work/shared/data/cifar10-subset.npz"
WHITEBOX_L2 = {
    "repeats": 1,
    "attacks": {
        "ddn_l2": [{"steps": 200}],
        "fmn_l2": [{"steps": 200}],
        "cw_l2": [{"steps": 100, "binary_search_steps": 5, "stepsize": 0.01}],
    },
}


def train_quick(npz: str, width: int, epochs: int, save: Path):
    """A ResNet18 on the gray CIFAR-10 subset (SGD, batch 64, no augmentation), saved as
    ``simreg train`` saves a model; with the test images (float NCHW in [0, 1])."""
    from simreg.data.store import build_dataset, read_split
    from simreg.models.resnet import build_model

    dataset = save.with_suffix(".h5")
    if not dataset.exists():
        build_dataset("cifar10subset", "gray", dataset, npz={"cifar10subset": npz})
    if not save.exists():
        train = read_split(dataset, "train")
        x, y = to_input(torch.from_numpy(train.images)), torch.from_numpy(train.labels)
        torch.manual_seed(0)
        model = build_model("resnet18", 1, 10, width=width)
        model.set_input_normalization(x.mean(dim=(0, 2, 3)), x.std(dim=(0, 2, 3)))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        for _epoch in range(epochs):
            order = torch.randperm(len(y))
            for start in range(0, len(y), 64):
                idx = order[start : start + 64]
                optimizer.zero_grad()
                F.cross_entropy(model(x[idx]), y[idx]).backward()
                optimizer.step()
        torch.save(
            {
                "model": model.state_dict(),
                "architecture": "resnet18",
                "width": width,
                "in_channels": 1,
                "n_classes": 10,
                "provenance": {
                    "method": "none",
                    "alpha": 0.0,
                    "threshold": "na",
                    "seed": 0,
                    "reg_pairs": 0,
                },
            },
            save,
        )
    return save, dataset


def boundary_curve(model, x, steps_list, settings: dict, seed: int) -> list[dict]:
    """Per setting, one walk of max(steps_list) steps, read after each of steps_list (the
    walk after s steps is the s-step run's: same seed, same draws)."""
    rows = []
    for name, extra in settings.items():
        started = time.perf_counter()
        params = {**extra, "steps": max(steps_list)}
        result = boundary_attack(model, x, seed=seed, params=params, checkpoints=[0, *steps_list])
        solved = result.solved.cpu()
        final = squared_distance_per_dim(x, result.adversarials)[result.solved].cpu().numpy()
        accepted = result.accepted[solved].numpy()
        rows.append(
            {
                "setting": name,
                "attack_params": params,
                "images": len(x),
                "solved": int(solved.sum()),
                "score_after": {
                    s: float(np.median(d.numpy())) for s, d in result.trajectory.items()
                },
                "score_final": float(np.median(final)),
                "accepted_median": float(np.median(accepted)),
                "accepted_quartiles": [float(q) for q in np.percentile(accepted, [25, 75])],
                "never_moved": int((accepted == 0).sum()),
                "spherical_step_median": float(result.spherical_step[solved].median()),
                "source_step_median": float(result.source_step[solved].median()),
                "seconds": round(time.perf_counter() - started, 1),
                "per_image_after": {s: d.tolist() for s, d in result.trajectory.items()},
            }
        )
    return rows


def hopskipjump(model, x, steps_list, seed: int) -> dict:
    """foolbox's HopSkipJump (L2), a second decision-based attack, from the same starting
    points as the Boundary Attack; median ||δ||²/d after each of ``steps_list`` (a run
    each)."""
    import foolbox as fb

    from simreg.evaluate.boundary import starting_points
    from simreg.settings import Boundary

    labels, defaults = predict(model, x), Boundary()
    starts, attempt = starting_points(
        model,
        x,
        labels,
        seed=seed,
        retries=defaults.init_retries,
        init_directions=defaults.init_directions,
        init_steps=defaults.init_steps,
        pool_x=x,
    )
    solved = attempt > 0
    fmodel = fb.PyTorchModel(model, bounds=(0.0, 1.0))
    out = {}
    for steps in steps_list:
        started = time.perf_counter()
        torch.manual_seed(seed)
        found = fb.attacks.HopSkipJumpAttack(steps=steps).run(
            fmodel,
            x[solved],
            fb.criteria.Misclassification(labels[solved]),
            starting_points=starts[solved],
        )
        ok = predict(model, found) != labels[solved]
        d = squared_distance_per_dim(x[solved], found).cpu().numpy()
        out[steps] = {
            "score": float(np.median(d)),
            "adversarial": int(ok.sum()),
            "seconds": round(time.perf_counter() - started, 1),
            "per_image": d.tolist(),
        }
    return out


def whitebox_l2(model, x, seed: int) -> dict:
    from simreg.evaluate.minimal_distance import attack_distances, minimal_distances

    started = time.perf_counter()
    labels = predict(model, x)  # the model's own prediction, as the Boundary Attack
    best = minimal_distances(attack_distances(model, x, labels, WHITEBOX_L2, seed))
    l2 = best[best["norm"] == "l2"].sort_values("sample")["distance"].to_numpy()
    per_dim = l2**2 / x[0].numel()
    return {
        "suite": WHITEBOX_L2,
        "score": float(np.median(per_dim)),
        "seconds": round(time.perf_counter() - started, 1),
        "per_image": per_dim.tolist(),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model"), p.add_argument("--dataset")
    p.add_argument("--npz", default=NPZ)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--save", default=str(Path(tempfile.gettempdir()) / "boundary_model.pt"))
    p.add_argument("--images", type=int, default=50)
    p.add_argument("--steps", type=int, nargs="+", default=[50, 300, 1000])
    p.add_argument(
        "--settings",
        default='{"foolbox": {}}',
        help="JSON: setting name -> BoundaryAttack arguments besides steps",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-whitebox", action="store_true")
    p.add_argument("--no-boundary", action="store_true")
    p.add_argument(
        "--hsj-steps",
        type=int,
        nargs="*",
        default=[],
        help="HopSkipJump iterations to compare (a run each); none: not run",
    )
    a = p.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    if a.model:
        model_path, dataset = Path(a.model), Path(a.dataset)
    else:
        model_path, dataset = train_quick(a.npz, a.width, a.epochs, Path(a.save))
    from simreg.data.store import read_split

    model, _ = load_model(model_path)
    test = read_split(dataset, "test")
    x_all = to_input(torch.from_numpy(test.images))
    x = x_all[: a.images]
    settings = json.loads(a.settings)
    out = {
        "model": str(model_path),
        "test_accuracy": float(
            (predict(model, x_all) == torch.from_numpy(test.labels)).float().mean()
        ),
        "torch_threads": torch.get_num_threads(),
    }
    if not a.no_boundary:
        out["curve"] = boundary_curve(model, x, a.steps, settings, a.seed)
    if a.hsj_steps:
        out["hopskipjump"] = hopskipjump(model, x, a.hsj_steps, a.seed)
    if not a.no_whitebox:
        out["whitebox_l2"] = whitebox_l2(model, x, a.seed)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
