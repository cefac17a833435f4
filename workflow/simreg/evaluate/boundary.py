"""Decision-based Boundary Attack (Brendel et al. 2018) and the robustness score of the paper
(App. 7.1):

    S(M) = median over images of ||x - x_adv||² / d,   d = C·H·W (all channels), pixels in [0, 1]

The attack (foolbox 3's ``BoundaryAttack``) only queries the model's decision. Its criterion is
the model's *own* prediction on the clean image, as in the authors' code, so every image of the
fixed subset is attacked, whether the model classifies it correctly or not.

Starting points. The attack starts from an adversarial point found by blending the image with
uniform noise (foolbox's ``LinearSearchBlendedUniformNoiseAttack``, its default init). foolbox
raises for the whole batch when that init fails for one image; here the images it fails on are
retried from new noise draws, then from a test image of the subset that the model classifies
differently (blended in by a line search), and only images that all of these fail on stay
unsolved: they are counted (``n_unsolved``) and left out of the median.

Two settings are configured (docs/attacks.md): the paper's 50 steps, which mostly measures how
far the blended-noise starting point lies (the walk has barely begun), and a converged one with
thousands of steps, meant to approach the minimal L2 adversarial distance. Its step sizes adapt
from every step's success statistics (``update_stats_every_k: 1``): with foolbox's default of
10 they first adapt after 300 steps, and from a steep start the walk stalls until then.
:class:`WalkRecorder` records each image's accepted steps and final step sizes.
"""

from __future__ import annotations

import contextlib
import sys
import time
import warnings
from dataclasses import dataclass, field

import foolbox as fb
import h5py
import numpy as np
import pandas as pd
import torch

from simreg.evaluate.registry import implements
from simreg.models.inference import predict
from simreg.outputs import atomic_output, write_csv
from simreg.settings import Boundary

DEFAULTS = Boundary()

ATTACK_PARAMETERS = (
    "steps",
    "spherical_step",
    "source_step",
    "source_step_convergance",
    "step_adaptation",
    "update_stats_every_k",
)


@dataclass
class BoundaryResult:
    adversarials: torch.Tensor  # (N, C, H, W); equals the input where not solved
    solved: torch.Tensor  # (N,) bool
    init_attempts: torch.Tensor  # (N,) int: starting-point tries the image needed (0 = unsolved)
    # the walk, per image (zeros where unsolved; see WalkRecorder)
    accepted: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.long))
    spherical_step: torch.Tensor = field(default_factory=lambda: torch.zeros(0))
    source_step: torch.Tensor = field(default_factory=lambda: torch.zeros(0))
    # steps -> ||δ||² per value of the solved images after that many steps (``checkpoints``)
    trajectory: dict = field(default_factory=dict)


class WalkRecorder:
    """Records foolbox's Boundary walk per image: how many steps were accepted (the distance
    to the image fell) and the last spherical and source step sizes.

    foolbox's ``BoundaryAttack.run`` calls the module-level ``draw_proposals`` once per step
    with the current best point's distance to the image and both step sizes; within the
    ``with`` block that function is wrapped to read them (nothing else changes)."""

    def __init__(self, checkpoints=()):
        self.previous = self.spherical = self.source = None
        self.accepted = None
        self.checkpoints, self.trajectory, self.calls = set(checkpoints), {}, 0

    @contextlib.contextmanager
    def recording(self):
        module = fb.attacks.boundary_attack
        original = module.draw_proposals

        def recorded(
            bounds,
            originals,
            perturbed,
            unnormalized,
            directions,
            source_norms,
            spherical_steps,
            source_steps,
        ):
            self.observe(source_norms.raw, spherical_steps.raw, source_steps.raw)
            return original(
                bounds,
                originals,
                perturbed,
                unnormalized,
                directions,
                source_norms,
                spherical_steps,
                source_steps,
            )

        module.draw_proposals = recorded
        try:
            yield self
        finally:
            module.draw_proposals = original

    def observe(self, distance: torch.Tensor, spherical: torch.Tensor, source: torch.Tensor):
        distance = distance.detach().double().cpu()
        if self.calls in self.checkpoints:  # the call of step s sees the point after s - 1
            self.trajectory[self.calls] = distance
        self.calls += 1
        if self.previous is None:
            self.accepted = torch.zeros(len(distance), dtype=torch.long)
        else:
            self.accepted += (distance < self.previous).long()
        self.previous = distance
        self.spherical, self.source = spherical.detach().cpu(), source.detach().cpu()

    def finish(self, final_distance: torch.Tensor) -> None:
        """Counts the last step, whose outcome no later call sees."""
        final_distance = final_distance.detach().double().cpu()
        if self.previous is not None:
            self.accepted += (final_distance < self.previous).long()
        for steps in self.checkpoints:  # past the last step run: where the walk stopped
            if steps >= self.calls:
                self.trajectory[steps] = final_distance


def flip_distance(model, x, target_x, labels, steps: int = 25) -> torch.Tensor:
    """Per image, the smallest blend t in [0, 1] found by bisection such that
    (1 - t)·x + t·target_x is classified differently from ``labels`` (target_x must be)."""
    low = torch.zeros(len(x), device=x.device)
    high = torch.ones(len(x), device=x.device)
    shape = (-1,) + (1,) * (x.ndim - 1)
    for _ in range(steps):
        mid = (low + high) / 2
        t = mid.view(shape)
        flipped = predict(model, (1 - t) * x + t * target_x) != labels
        high = torch.where(flipped, mid, high)
        low = torch.where(flipped, low, mid)
    return high


def other_class_starts(model, x, labels, pool_x, generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Start from a pool image predicted differently, blended towards x as far as it stays
    adversarial. Returns (starting points, found mask)."""
    pool_pred = predict(model, pool_x)
    starts, found = x.clone(), torch.zeros(len(x), dtype=torch.bool, device=x.device)
    targets = x.clone()
    for i in range(len(x)):
        candidates = torch.nonzero(pool_pred != labels[i]).flatten()
        if len(candidates):
            pick = candidates[torch.randint(len(candidates), (1,), generator=generator)]
            targets[i], found[i] = pool_x[pick.to(pool_x.device)][0], True
    if found.any():
        t = flip_distance(model, x[found], targets[found], labels[found])
        blend = t.view((-1,) + (1,) * (x.ndim - 1))
        starts[found] = (1 - blend) * x[found] + blend * targets[found]
    return starts, found


def starting_points(
    model,
    x: torch.Tensor,
    labels: torch.Tensor,
    *,
    seed: int,
    retries: int,
    init_directions: int,
    init_steps: int,
    pool_x: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Adversarial starting points for each image, and the attempt that found it (0 = none).

    Attempts 1..``retries``: blended uniform noise, each from new random draws;
    attempt ``retries`` + 1: blended other-class image of the pool.
    """
    fmodel = fb.PyTorchModel(model, bounds=(0.0, 1.0))
    starts, attempt = x.clone(), torch.zeros(len(x), dtype=torch.long, device=x.device)
    init = fb.attacks.LinearSearchBlendedUniformNoiseAttack(
        directions=init_directions, steps=init_steps
    )
    for k in range(1, retries + 1):
        todo = attempt == 0
        if not todo.any():
            break
        torch.manual_seed(seed * 1009 + k)
        with warnings.catch_warnings():  # foolbox warns on failures; we count them instead
            warnings.simplefilter("ignore")
            found = init.run(fmodel, x[todo], fb.criteria.Misclassification(labels[todo]))
        ok = predict(model, found) != labels[todo]
        index = torch.nonzero(todo).flatten()[ok]
        starts[index], attempt[index] = found[ok], k
    todo = attempt == 0
    if todo.any():
        generator = torch.Generator().manual_seed(seed)
        found, ok = other_class_starts(model, x[todo], labels[todo], pool_x, generator)
        ok &= predict(model, found) != labels[todo]
        index = torch.nonzero(todo).flatten()[ok]
        starts[index], attempt[index] = found[ok], retries + 1
    return starts, attempt


def boundary_attack(
    model,
    x: torch.Tensor,
    *,
    seed: int,
    params: dict,
    retries: int = DEFAULTS.init_retries,
    init_directions: int = DEFAULTS.init_directions,
    init_steps: int = DEFAULTS.init_steps,
    pool_x: torch.Tensor | None = None,
    checkpoints=(),
) -> BoundaryResult:
    """Boundary Attack on a batch ``x`` (float NCHW in [0, 1]) against the model's own
    predictions; ``params`` are BoundaryAttack's (``steps``, step sizes, ...). The result's
    ``trajectory`` holds ||δ||²/d of the solved images after each step count in
    ``checkpoints`` (at most ``steps``; where foolbox stopped early, its last point)."""
    unknown = set(params) - set(ATTACK_PARAMETERS)
    if unknown:
        raise ValueError(
            f"unknown Boundary Attack parameters {sorted(unknown)}; "
            f"allowed: {', '.join(ATTACK_PARAMETERS)}"
        )
    model.eval()
    labels = predict(model, x)
    pool_x = x if pool_x is None else pool_x
    starts, attempt = starting_points(
        model,
        x,
        labels,
        seed=seed,
        retries=retries,
        init_directions=init_directions,
        init_steps=init_steps,
        pool_x=pool_x,
    )
    solved = attempt > 0
    adversarials = x.clone()
    accepted = torch.zeros(len(x), dtype=torch.long)
    spherical, source, trajectory = torch.zeros(len(x)), torch.zeros(len(x)), {}
    if solved.any():
        fmodel = fb.PyTorchModel(model, bounds=(0.0, 1.0))
        attack = fb.attacks.BoundaryAttack(**params)
        torch.manual_seed(seed)
        recorder = WalkRecorder(checkpoints)
        with recorder.recording():
            found = attack.run(
                fmodel,
                x[solved],
                fb.criteria.Misclassification(labels[solved]),
                starting_points=starts[solved],
            )
        recorder.finish((found - x[solved]).flatten(1).norm(dim=1))
        adversarials[solved] = confirm_adversarial(
            model, x[solved], found.clamp(0.0, 1.0), labels[solved], starts[solved]
        )
        if recorder.accepted is not None:
            index = solved.cpu()
            accepted[index] = recorder.accepted
            spherical[index] = recorder.spherical.float()
            source[index] = recorder.source.float()
            values = x[0].numel()
            trajectory = {s: d.pow(2) / values for s, d in sorted(recorder.trajectory.items())}
    return BoundaryResult(adversarials, solved, attempt, accepted, spherical, source, trajectory)


def confirm_adversarial(model, x, x_adv, labels, fallback, factors=(1.001, 1.01, 1.1)):
    """Points the attack returns lie on the decision boundary, where a re-evaluation in
    another batch can round to the other side. Such a point is moved a little further from x
    (δ scaled by ``factors``) until adversarial again, or replaced by its (adversarial)
    starting point; every returned point is checked adversarial."""

    def as_stored(x_part, points):  # what a reader rebuilds from x and the stored δ
        return x_part + (points - x_part)

    out = as_stored(x, x_adv)
    for factor in (1.0, *factors):
        bad = predict(model, out) == labels
        if not bad.any():
            return out
        if factor > 1.0:
            print(
                f"boundary: {int(bad.sum())} point(s) on the boundary moved out by δ·{factor}",
                file=sys.stderr,
            )
        moved = (x[bad] + factor * (x_adv[bad] - x[bad])).clamp(0.0, 1.0)
        out[bad] = as_stored(x[bad], moved)
    bad = predict(model, out) == labels
    out[bad] = as_stored(x[bad], fallback[bad])
    if (predict(model, out) == labels).any():
        raise RuntimeError("a starting point stopped being adversarial")
    return out


def squared_distance_per_dim(x: torch.Tensor, x_adv: torch.Tensor) -> torch.Tensor:
    """||x - x_adv||² / d per image, d = number of values (channels included)."""
    delta = (x_adv - x).flatten(1)
    return delta.pow(2).sum(1) / delta.shape[1]


def boundary_score(distances: np.ndarray, solved: np.ndarray) -> float:
    """The paper's S(M): median over the solved images (NaN when none is solved)."""
    solved_distances = distances[solved]
    return float(np.median(solved_distances)) if len(solved_distances) else float("nan")


@implements("boundary")
def run(
    context,
    *,
    setting: str,
    attack: dict,
    n_images: int | None,
    repeats: int,
    subset_seed: int,
    batch_size: int,
    init_retries: int,
    init_directions: int,
    init_steps: int,
) -> None:
    """Attack a fixed random test subset ``repeats`` times (seeds subset_seed, +1, ...).

    CSV: one row per repeat (score, n_solved, n_unsolved, ...; ``start_score``, the median
    ||δ||²/d of the starting points, and ``accepted_median``, the median number of accepted
    steps per image) plus ``mean_score`` over repeats. HDF5: per repeat and image, the
    perturbation x_adv - x (NaN where unsolved) and ||δ||²/d, for the Fourier analysis
    (simreg.evaluate.spectrum), and the walk: ||δ||²/d of the starting point, the accepted
    steps and the final spherical and source step sizes (0 where unsolved).
    """
    model, params, seed = context.model, attack, subset_seed
    indices = context.subset(n_images, seed)
    x_all, _ = context.inputs_float(indices)
    n, rows = len(indices), []
    perturbations = np.full((repeats, *x_all.shape), np.nan, dtype=np.float32)
    distances = np.full((repeats, n), np.nan, dtype=np.float64)
    attempts = np.zeros((repeats, n), dtype=np.int64)
    starts = np.full((repeats, n), np.nan, dtype=np.float64)
    accepted = np.zeros((repeats, n), dtype=np.int64)
    step_sizes = np.zeros((2, repeats, n), dtype=np.float64)  # spherical, source
    for r in range(repeats):
        started = time.perf_counter()
        for start in range(0, n, batch_size):
            x = x_all[start : start + batch_size]
            result = boundary_attack(
                model,
                x,
                seed=(seed + r) * 100_003 + start,
                params=params,
                retries=init_retries,
                init_directions=init_directions,
                init_steps=init_steps,
                pool_x=x_all,
                checkpoints=(0,),
            )
            solved = result.solved.cpu().numpy()
            block = slice(start, start + len(x))
            delta = (result.adversarials - x).cpu().numpy()
            perturbations[r, block][solved] = delta[solved]
            d = squared_distance_per_dim(x, result.adversarials).cpu().numpy()
            distances[r, block] = np.where(solved, d, np.nan)
            attempts[r, block] = result.init_attempts.cpu().numpy()
            if 0 in result.trajectory:
                starts[r, block][solved] = result.trajectory[0].numpy()
            accepted[r, block] = result.accepted.numpy()
            step_sizes[:, r, block] = [result.spherical_step.numpy(), result.source_step.numpy()]
            print(
                f"boundary {setting}: repeat {r + 1}/{repeats}, images {start + len(x)}/{n}, "
                f"{time.perf_counter() - started:.1f} s",
                file=sys.stderr,
            )
        solved = attempts[r] > 0
        rows.append(
            {
                "setting": setting,
                "repeat": r,
                "score": boundary_score(distances[r], solved),
                "n_images": n,
                "n_solved": int(solved.sum()),
                "n_unsolved": int((~solved).sum()),
                "n_init_retried": int((attempts[r] > 1).sum()),
                "start_score": boundary_score(starts[r], solved),
                "accepted_median": float(np.median(accepted[r][solved]))
                if solved.any()
                else float("nan"),
                "seconds": time.perf_counter() - started,
            }
        )
    frame = pd.DataFrame(rows)
    frame["mean_score"] = frame["score"].mean()
    info = context.provenance(
        subset_seed=seed,
        steps=params.get("steps"),
        attack_params=params,
        init_retries=init_retries,
        init_directions=init_directions,
        init_steps=init_steps,
        criterion="model's own prediction",
    )
    frame = frame.assign(**info)
    with atomic_output(context.outputs["h5"]) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("indices", data=indices)
        f.create_dataset("perturbation", data=perturbations, compression="gzip")
        f.create_dataset("distance", data=distances)
        f.create_dataset("init_attempt", data=attempts)
        f.create_dataset("start_distance", data=starts)
        f.create_dataset("accepted_steps", data=accepted)
        f.create_dataset("final_spherical_step", data=step_sizes[0])
        f.create_dataset("final_source_step", data=step_sizes[1])
        f.attrs.update({k: v for k, v in info.items()})
        f.attrs["setting"] = setting
    write_csv(frame, context.outputs["csv"])
    for row in rows:
        print(
            f"boundary {setting}: repeat {row['repeat']} score={row['score']:.3g} "
            f"unsolved={row['n_unsolved']}",
            file=sys.stderr,
        )
