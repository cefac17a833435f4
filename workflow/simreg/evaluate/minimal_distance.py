"""Minimal adversarial distance per image in L0, L1, L2 and L∞ (supplement §3 of the paper,
after Brendel et al. 2019): run many attacks, several settings and repeats each, and keep
per image and norm the smallest distance any of them found, and which attack found it.

Each successful adversarial bounds the minimal distance in *every* norm, so it is measured in
all four (on [0, 1] pixels, all channels, unnormalised; L0 counts changes > L0_TOLERANCE).
Images the model already misclassifies get distance 0 ("misclassified") and are not attacked.
One protocol: an :class:`Attack` maps (model, x, y, settings, seed, start) to (adversarials,
success); PGD gets a per-image ε search; Brendel & Bethge starts from the best adversarial
found before it in its norm, so it runs last. docs/minimal_distance.md has the details.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import eagerpy as ep
import foolbox as fb
import numpy as np
import pandas as pd
import torch
from torch import nn

from simreg.evaluate.registry import implements
from simreg.evaluate.sparse_attacks import jsma, sparsefool
from simreg.models.inference import predict
from simreg.outputs import write_csv

NORMS = ("l0", "l1", "l2", "linf")
# Above float32 round-off of x0 + (x - x0) on [0, 1] (at most 2^-23 ~ 1.2e-7); any change
# above it counts, however small, since the model sees it (a uint8 grey level is ~4e-3).
L0_TOLERANCE = 1e-6
EPS_SEARCH = {"grid": 9, "bisection": 5, "min_fraction": 1e-4}
SUITE_KEYS = {"repeats", "attacks", "eps_search"}

RunFn = Callable[..., tuple[torch.Tensor, torch.Tensor]]


def perturbation_norms(x: torch.Tensor, adv: torch.Tensor) -> torch.Tensor:
    """(N, 4) distances of ``adv`` from ``x`` in NORMS order."""
    delta = (adv - x).flatten(1).double()
    return torch.stack(
        [
            (delta.abs() > L0_TOLERANCE).sum(1).double(),
            delta.abs().sum(1),
            delta.norm(dim=1),
            delta.abs().amax(1),
        ],
        dim=1,
    )


@contextlib.contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch's global generators (which foolbox draws from), restoring them after."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield


# --- fixed-ε attacks: one ε per image, found by a grid and then bisection ------------------


class PerImageEpsilon:
    """Mixin for foolbox's PGD family: ``epsilon`` may be an (N, 1, ..., 1) tensor.

    foolbox takes one float ε per batch. Its random start and projection are written for
    ε = 1 and rescaled per image here (x0 + ε (P_1(x0 + (x - x0) / ε) - x0)); its step size,
    rel_stepsize * ε, broadcasts as it is.
    """

    def get_random_start(self, x0: ep.Tensor, epsilon: ep.Tensor) -> ep.Tensor:
        return x0 + epsilon * (super().get_random_start(x0, 1.0) - x0)

    def project(self, x: ep.Tensor, x0: ep.Tensor, epsilon: ep.Tensor) -> ep.Tensor:
        return x0 + epsilon * (super().project(x0 + (x - x0) / epsilon, x0, 1.0) - x0)


def epsilon_search(
    attack_at: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    norm: str,
    *,
    grid: int,
    bisection: int,
    min_fraction: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image, the smallest ε at which ``attack_at(indices, eps)`` succeeds.

    A geometric grid of ``grid`` values from ``min_fraction`` of the largest possible
    distance up to it (ascending; an image leaves at its first success), then ``bisection``
    geometric bisection steps per image between its last failure and first success. Returns
    the adversarial of smallest actual distance in ``norm`` met on the way, and success.
    """
    d = x[0].numel()
    top = {"l1": float(d), "l2": math.sqrt(d), "linf": 1.0}[norm]  # largest possible distance
    levels = torch.logspace(math.log10(min_fraction * top), math.log10(top), grid).tolist()
    column = NORMS.index(norm)
    best, best_dist = x.clone(), torch.full((len(x),), math.inf, dtype=torch.float64)
    lo = torch.full((len(x),), levels[0] ** 2 / levels[1], dtype=torch.float64)
    hi = torch.full((len(x),), math.nan, dtype=torch.float64)

    def attempt(idx: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        adv = attack_at(idx.to(x.device), eps)
        ok = (predict(model, adv) != y[idx.to(x.device)]).cpu()
        dist = perturbation_norms(x[idx.to(x.device)], adv)[:, column].cpu()
        better = ok & (dist < best_dist[idx])
        best[idx[better].to(x.device)] = adv[better.to(x.device)]
        best_dist[idx[better]] = dist[better]
        hi[idx[ok]], lo[idx[~ok]] = eps[ok], eps[~ok]
        return ok

    for level in levels:
        idx = best_dist.isinf().nonzero().flatten()
        if len(idx) == 0:
            break
        attempt(idx, torch.full((len(idx),), level, dtype=torch.float64))
    idx = best_dist.isfinite().nonzero().flatten()
    for _ in range(bisection if len(idx) else 0):
        attempt(idx, (lo[idx] * hi[idx]).sqrt())
    return best, best_dist.isfinite().to(x.device)


def fixed_epsilon(fb_class: type) -> RunFn:
    """Run function of a foolbox fixed-ε attack, made minimal by :func:`epsilon_search`."""
    attack_class = type(f"PerImage{fb_class.__name__}", (PerImageEpsilon, fb_class), {})
    norm = {1: "l1", 2: "l2", math.inf: "linf"}[fb_class.distance.p]

    def run(model, x, y, settings, seed, start=None):
        search = {**EPS_SEARCH, **{k: v for k, v in settings.items() if k in EPS_SEARCH}}
        attack = attack_class(**{k: v for k, v in settings.items() if k not in EPS_SEARCH})
        fmodel = fb.PyTorchModel(model, bounds=(0, 1), device=x.device)
        shape = (-1,) + (1,) * (x.dim() - 1)

        def attack_at(idx, eps):
            epsilon = ep.astensor(eps.to(x.device, x.dtype).view(shape))
            criterion = fb.criteria.Misclassification(y[idx])
            return attack.run(fmodel, x[idx], criterion, epsilon=epsilon)

        with seeded(seed, x.device):
            return epsilon_search(attack_at, model, x, y, norm, **search)

    return run


def minimization(fb_class: type, needs_start: bool = False) -> RunFn:
    """Run function of a foolbox minimization attack; with ``needs_start`` (Brendel & Bethge)
    only images whose ``start`` is adversarial are attacked, the others fail."""

    def run(model, x, y, settings, seed, start=None):
        attack = fb_class(**settings)
        fmodel = fb.PyTorchModel(model, bounds=(0, 1), device=x.device)
        todo = torch.ones(len(x), dtype=torch.bool, device=x.device)
        kwargs = {}
        if needs_start:
            todo = torch.zeros_like(todo) if start is None else predict(model, start) != y
            kwargs = {"starting_points": start[todo]} if todo.any() else {}
        adv = x.clone()
        if todo.any():
            with seeded(seed, x.device):
                criterion = fb.criteria.Misclassification(y[todo])
                found = attack.run(fmodel, x[todo], criterion, **kwargs)
            adv[todo] = found.detach().clamp(0, 1)
        return adv, todo & (predict(model, adv) != y)

    return run


def sparse(attack_fn: Callable) -> RunFn:
    """Run function of an attack from :mod:`simreg.evaluate.sparse_attacks` (deterministic)."""
    return lambda model, x, y, settings, seed, start=None: attack_fn(model, x, y, **settings)


# --- the registry ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Attack:
    """One attack of the suite: the norm it minimises, who implements it, which settings it
    takes, and ``run(model, x, y, settings, seed, start) -> (adversarials, success)``."""

    name: str
    norm: str
    library: str
    run: RunFn
    parameters: frozenset[str]
    randomized: bool = False
    needs_start: bool = False

    def repeats(self, settings: dict, repeats: int) -> int:
        """Deterministic attacks (and PGD without random start) run once."""
        return repeats if self.randomized and settings.get("random_start", True) else 1


def keyword_parameters(fn: Callable, exclude=()) -> frozenset[str]:
    skip = {"self", "model", "x", "y", *exclude}
    return frozenset(p for p in inspect.signature(fn).parameters if p not in skip)


def build_registry() -> dict[str, Attack]:
    a, entries = fb.attacks, []
    pgd = {
        "l1": (a.L1PGD, a.L1AdamPGD),
        "l2": (a.L2PGD, a.L2AdamPGD),
        "linf": (a.LinfPGD, a.LinfAdamPGD),
    }
    for norm, (plain, adam) in pgd.items():
        for prefix, cls in (("pgd", plain), ("adam_pgd", adam)):
            entries.append(
                Attack(
                    f"{prefix}_{norm}",
                    norm,
                    "foolbox",
                    fixed_epsilon(cls),
                    keyword_parameters(cls) | set(EPS_SEARCH),
                    randomized=True,
                )
            )
    minimizers = {
        "cw_l2": a.L2CarliniWagnerAttack,
        "ddn_l2": a.DDNAttack,
        "fmn_l0": a.L0FMNAttack,
        "fmn_l1": a.L1FMNAttack,
        "fmn_l2": a.L2FMNAttack,
        "fmn_linf": a.LInfFMNAttack,
        "bb_l0": a.L0BrendelBethgeAttack,
        "bb_l1": a.L1BrendelBethgeAttack,
        "bb_l2": a.L2BrendelBethgeAttack,
        "bb_linf": a.LinfinityBrendelBethgeAttack,
    }
    for name, cls in minimizers.items():
        entries.append(
            Attack(
                name,
                name.rsplit("_", 1)[1],
                "foolbox",
                minimization(cls, needs_start=name.startswith("bb_")),
                keyword_parameters(cls, exclude=("init_attack", "tensorboard")),
                needs_start=name.startswith("bb_"),
            )
        )
    for name, fn in {"jsma_l0": jsma, "sparsefool_l0": sparsefool}.items():
        entries.append(
            Attack(name, "l0", "simreg.evaluate.sparse_attacks", sparse(fn), keyword_parameters(fn))
        )
    return {entry.name: entry for entry in entries}


ATTACKS = build_registry()


@dataclass(frozen=True)
class Run:
    """One attack run of a suite: attack, index of its setting, settings, repeat."""

    attack: Attack
    index: int
    settings: dict
    repeat: int

    @property
    def label(self) -> str:
        return f"{self.attack.name}#{self.index}"


def check_eps_search(values: dict) -> None:
    if values["grid"] < 2 or values["bisection"] < 0 or not 0 < values["min_fraction"] < 1:
        raise ValueError(
            f"eps_search needs grid >= 2, bisection >= 0 and 0 < min_fraction < 1, got {values}"
        )


def plan_runs(suite: dict) -> list[Run]:
    """Validate ``suite`` and list its runs in order (attacks needing a start go last)."""
    unknown = set(suite) - SUITE_KEYS
    if unknown:
        raise ValueError(f"unknown suite keys {sorted(unknown)}; allowed: {sorted(SUITE_KEYS)}")
    repeats = int(suite.get("repeats", 1))
    if repeats < 1:
        raise ValueError(f"suite repeats must be >= 1, got {repeats}")
    search = dict(suite.get("eps_search") or {})
    if set(search) - set(EPS_SEARCH):
        raise ValueError(
            f"unknown eps_search keys {sorted(set(search) - set(EPS_SEARCH))}; "
            f"allowed: {sorted(EPS_SEARCH)}"
        )
    check_eps_search({**EPS_SEARCH, **search})
    runs = []
    for name, settings_list in (suite.get("attacks") or {}).items():
        if name not in ATTACKS:
            raise ValueError(f"unknown attack {name!r}; allowed: {sorted(ATTACKS)}")
        if not (
            isinstance(settings_list, list) and all(isinstance(s, dict) for s in settings_list)
        ):
            raise ValueError(
                f"attack {name!r} needs a list of settings (dicts), got {settings_list!r}"
            )
        attack = ATTACKS[name]
        for index, settings in enumerate(settings_list):
            bad = set(settings) - attack.parameters
            if bad:
                raise ValueError(
                    f"unknown parameters {sorted(bad)} for attack {name!r}; "
                    f"allowed: {sorted(attack.parameters)}"
                )
            if attack.parameters & set(EPS_SEARCH):
                settings = {**search, **settings}
                check_eps_search({**EPS_SEARCH, **settings})
            runs += [
                Run(attack, index, dict(settings), r)
                for r in range(attack.repeats(settings, repeats))
            ]
    return sorted(runs, key=lambda run: run.attack.needs_start)


def run_seed(seed: int, run: Run) -> int:
    return zlib.crc32(f"{seed}/{run.label}/{run.repeat}".encode())


# --- distances of one batch ---------------------------------------------------------------


def candidate_rows(
    samples: np.ndarray, attack: str, repeat: int, success: np.ndarray, distances: np.ndarray
) -> pd.DataFrame:
    """Rows (sample, attack, repeat, norm, success, distance) of one run, inf where failed."""
    k = len(NORMS)
    return pd.DataFrame(
        {
            "sample": np.repeat(samples, k),
            "attack": attack,
            "repeat": repeat,
            "norm": np.tile(NORMS, len(samples)),
            "success": np.repeat(success, k),
            "distance": np.where(success[:, None], distances, np.inf).reshape(-1),
        }
    )


def attack_distances(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    suite: dict,
    seed: int,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Every candidate of every run of ``suite`` on the batch ``x``, ``y``.

    One row per (sample, attack run, norm): sample (position in the batch), attack
    ("name#setting-index", 0-based), repeat, norm, success, distance (inf if unsuccessful).
    Misclassified samples get one row per norm with attack "misclassified" and distance 0.
    """
    runs = plan_runs(suite)
    model.eval()
    correct = predict(model, x) == y
    wrong = (~correct).nonzero().flatten().cpu().numpy()
    frames = [
        candidate_rows(
            wrong, "misclassified", 0, np.ones(len(wrong), bool), np.zeros((len(wrong), len(NORMS)))
        )
    ]
    idx = correct.nonzero().flatten()
    xs, ys = x[idx], y[idx]
    best = xs.unsqueeze(0).repeat(len(NORMS), *[1] * x.dim())  # best adversarial per norm
    best_dist = torch.full((len(NORMS), len(idx)), math.inf, dtype=torch.float64)
    for run in runs if len(idx) else []:
        started = time.time()
        start = best[NORMS.index(run.attack.norm)] if run.attack.needs_start else None
        adv, success = run.attack.run(model, xs, ys, dict(run.settings), run_seed(seed, run), start)
        dist = perturbation_norms(xs, adv).cpu().masked_fill(~success.cpu()[:, None], math.inf)
        for column in range(len(NORMS)):
            better = dist[:, column] < best_dist[column]
            best[column, better.to(x.device)] = adv[better.to(x.device)].detach()
            best_dist[column] = torch.minimum(best_dist[column], dist[:, column])
        frames.append(
            candidate_rows(
                idx.cpu().numpy(), run.label, run.repeat, success.cpu().numpy(), dist.numpy()
            )
        )
        if progress:
            progress(
                f"{run.label} repeat {run.repeat}: {int(success.sum())}/{len(idx)} "
                f"successful, {time.time() - started:.1f} s"
            )
    return pd.concat(frames, ignore_index=True).sort_values(
        ["sample"], kind="stable", ignore_index=True
    )


def minimal_distances(candidates: pd.DataFrame) -> pd.DataFrame:
    """Per (sample, norm): the smallest successful distance, the attack that found it (the
    first in suite order on ties; "none" and inf when nothing succeeded), and n_successful,
    the number of successful runs (repeats counted)."""
    samples = np.sort(candidates["sample"].unique())
    grid = pd.DataFrame(
        {"sample": np.repeat(samples, len(NORMS)), "norm": np.tile(NORMS, len(samples))}
    )
    ok = candidates[candidates["success"].astype(bool)].reset_index(drop=True)
    groups = ok.groupby(["sample", "norm"], sort=False)
    best = ok.loc[groups["distance"].idxmin(), ["sample", "norm", "distance", "attack"]]
    best = best.merge(groups.size().rename("n_successful").reset_index(), on=["sample", "norm"])
    out = grid.merge(best, on=["sample", "norm"], how="left")
    return out.fillna({"distance": math.inf, "attack": "none", "n_successful": 0}).astype(
        {"n_successful": int}
    )


# --- the pipeline step ----------------------------------------------------------------------


@implements("minimal_distance")
def run(
    context, *, suite: dict, n_images: int, seed: int, batch_size: int, candidates_out=None
) -> None:
    """Write a tidy CSV, one row per (image, norm): image (test-set index), label, norm,
    distance, attack, n_successful, plus provenance; optionally the candidate table too.

    An empty ``suite`` means PAPER_SUITE. The images are the same ``n_images`` random test
    images for every model (:meth:`simreg.evaluate.context.EvaluationContext.subset`).
    """
    suite = suite or PAPER_SUITE
    plan_runs(suite)  # fail on a bad suite before any work
    model, test = context.model, context.test
    chosen = context.subset(n_images, seed)
    x, y = context.inputs_float(chosen)
    frames, started = [], time.time()
    n_batches = max(1, math.ceil(len(chosen) / batch_size))
    for b in range(n_batches):

        def progress(message: str, b: int = b) -> None:
            print(
                f"[minimal-distance] batch {b + 1}/{n_batches} {message} "
                f"(elapsed {time.time() - started:.0f} s)",
                file=sys.stderr,
                flush=True,
            )

        part = slice(b * batch_size, (b + 1) * batch_size)
        batch = attack_distances(
            model, x[part], y[part], suite, seed=seed + 7919 * b, progress=progress
        )
        frames.append(batch.assign(sample=batch["sample"] + b * batch_size))
    candidates = pd.concat(frames, ignore_index=True)
    info = context.provenance(n_images=len(chosen), attack_seed=seed, suite=suite)
    for frame, path in (
        (minimal_distances(candidates), context.outputs["csv"]),
        (candidates, candidates_out),
    ):
        if path is None:
            continue
        frame.insert(0, "image", chosen[frame["sample"].to_numpy()])
        frame.insert(1, "label", test.labels[frame["image"].to_numpy()])
        write_csv(frame.drop(columns="sample").assign(**info), path)


# Paper scale: supplement §3 of Li et al. 2019 (after Brendel et al. 2019): its attack
# families (PGD, AdamPGD, C&W, DDN, JSMA, SparseFool, Brendel & Bethge; FMN, which it does
# not list, is left out) with several settings each, every setting run five times (only the
# randomised PGD family differs between runs), best per image and norm. It names no step
# counts or settings, so those are our choice: foolbox defaults or their tenfold for the
# step counts, and one more aggressive setting per attack.
PAPER_SUITE = {
    "repeats": 5,
    "eps_search": {"grid": 9, "bisection": 6, "min_fraction": 1e-4},
    "attacks": {
        **{
            f"{prefix}_{norm}": [
                {"steps": 100, "rel_stepsize": 0.025},
                {"steps": 100, "rel_stepsize": 0.1},
            ]
            for prefix in ("pgd", "adam_pgd")
            for norm in ("l1", "l2", "linf")
        },
        "cw_l2": [
            {"steps": 1000, "binary_search_steps": 9, "stepsize": 0.01},
            {"steps": 1000, "binary_search_steps": 9, "stepsize": 0.05, "initial_const": 0.01},
        ],
        "ddn_l2": [{"steps": 1000}, {"steps": 1000, "gamma": 0.1, "init_epsilon": 0.1}],
        **{
            f"bb_{norm}": [{"steps": 1000}, {"steps": 1000, "lr": 0.01}]
            for norm in ("l0", "l1", "l2", "linf")
        },
        "jsma_l0": [{"max_fraction": 0.2}],
        "sparsefool_l0": [{"lambda_": 1.5, "max_iter": 50}, {"lambda_": 3.0, "max_iter": 50}],
    },
}

# Every attack except Brendel & Bethge once, with tiny step counts: the quick pipeline.
# Brendel & Bethge is left out because numba compiles its optimizers anew in every process
# (about 80 s on 2 cores; foolbox's jitclasses cannot be cached); the tests cover it.
QUICK_SUITE = {
    "repeats": 2,
    "eps_search": {"grid": 4, "bisection": 1, "min_fraction": 0.01},
    "attacks": {
        **{
            f"{prefix}_{norm}": [{"steps": 5, "rel_stepsize": 0.1}]
            for prefix in ("pgd", "adam_pgd")
            for norm in ("l1", "l2", "linf")
        },
        "cw_l2": [{"steps": 10, "binary_search_steps": 2, "stepsize": 0.05}],
        "ddn_l2": [{"steps": 10}],
        **{f"fmn_{norm}": [{"steps": 10}] for norm in ("l0", "l1", "l2", "linf")},
        "jsma_l0": [{"max_fraction": 0.2}],
        "sparsefool_l0": [{"lambda_": 2.0, "max_iter": 3, "deepfool_steps": 5}],
        # [] = not run; explicit, because a config merged over config.yaml merges attack by
        # attack and would otherwise keep the paper's settings of these
        **{f"bb_{norm}": [] for norm in ("l0", "l1", "l2", "linf")},
    },
}
