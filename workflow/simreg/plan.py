"""``simreg plan``: what a config's run costs, before running it.

The jobs come from Snakemake itself: ``snakemake --dag --forceall`` (every job of the DAG,
done or not, with its rule and wildcards, and which job feeds which), so the counts are
exactly the ones ``snakemake -n --forceall`` plans. From that graph the plan prints the jobs
per rule and per figure or table (the jobs each one needs, shared jobs counted in each).

Device hours come from measurements, never from guesses:

* the ``benchmark:`` files of a run (``results/benchmarks/<rule>/...tsv``; every job that
  runs simreg writes one), from a calibration on your own machine (``simreg plan
  --calibrate``: a small fixed set of jobs of a config's DAG, the first training of each
  method and the first job of every other rule, by default of ``configs/quick.yaml``; it
  records their sizes and a job's fixed start in ``calibration.json`` beside the files);
* or, for the training jobs, the ``epoch_s`` of a ``benchmarks/run.py`` JSON (seconds per
  CIFAR-10 epoch of each method).

The scaling model (docs/running.md): a job costs a fixed start (Python, torch and simreg
imported; measured by ``--calibrate``) plus work linear in its size: its rule's mean measured
seconds less the start, times (its size in the planned config / the rule's mean size in the
calibration). A rule's size, at a fixed model and image size:

* train (train_pack: times its seeds): epochs x training images of the job's task;
* evaluations: images evaluated (null: the task's test set) x attack steps x repeats x the
  values it runs over (epsilons, draws);
* evaluate_model (``resources.evaluation_jobs: per_model``: every evaluation of one model in
  one job): one start, plus the work of each evaluation it runs, scaled as that kind's job
  would be (a calibration times each kind in a job of its own: PER_KIND_EVALUATIONS);
* every other rule: its measured mean, unscaled.

A job of another model width, image size (pixels of its dataset: a built-in one's, or a
data.npz file's) or architecture than its rule's measurement is not scaled (time per image
does not follow width^2 x pixels from a tiny model, which uses a machine poorly: scaled so,
the quick config's trainings put a CPU run of the paper's grid near a million hours); it is
left out of the hours and counted in its rule's row. Calibrate with the planned model and
data for those (``configs/calibrate.yaml``: the paper's grid with one epoch and fewer
images; ``configs/calibrate-cpu.yaml``: its evaluations on the 32x32 CIFAR-10 subset), or
give the training jobs ``--benchmark-json``. ``cpu=True`` (``--cpu-time``) reads the
benchmark files' CPU seconds instead of their wall seconds (a CPU calibration on a shared
machine). A rule that was not measured counts a job's start per job (or nothing, without a
calibration), and is named below the table.
"""

from __future__ import annotations

import csv
import functools
import json
import re
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from simreg.settings import typed

BENCHMARKS = Path("results") / "benchmarks"
CALIBRATION_CONFIG = "configs/quick.yaml"
# merged over a calibration's configs: each evaluation kind timed in a job of its own, which
# the plan adds up per model for a per_model config (rule evaluate_model)
PER_KIND_EVALUATIONS = "configs/evaluations-per-kind.yaml"

# train images (after the test split) and image side of the built-in datasets; a task not
# listed counts as the calibration's task
TRAIN_IMAGES = {
    "digits": 1438,
    "photos": 1664,
    "cifar10": 50000,
    "cifar100": 50000,
    "mnist": 60000,
    "fashionmnist": 60000,
}
CIFAR10_EPOCH = 49500  # the images of benchmarks/run.py's epoch_s (50,000 less 1% validation)
IMAGE_SIDE = {
    "digits": 8,
    "photos": 16,
    "cifar10": 32,
    "cifar100": 32,
    "mnist": 28,
    "fashionmnist": 28,
}
STAGES = {
    "train": "training",
    "train_pack": "training",
    "train_pack_member": "training",
    "evaluate_model": "evaluation",
    "dataset": "data",
    "download": "data",
    "download_corruptions": "data",
    "corruptions": "data",
    "similarity": "data",
    "neural_similarity": "neural",
    "simulate_recordings": "neural",
    "fit_predictor": "neural",
    "figure": "report",
    "table": "report",
    "all": "report",
}


@dataclass
class Job:
    id: int
    rule: str
    wildcards: dict = field(default_factory=dict)


def snakemake_dag(
    configfiles=(), targets=("all",), snakefile="Snakefile", cwd=None, extra=()
) -> tuple[dict[int, Job], list[tuple[int, int]]]:
    """Every job of the DAG (``--forceall``) and its edges (input job -> job), from
    ``snakemake --dag``."""
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "--dag",
        "--forceall",
        *targets,
        "-s",
        str(snakefile),
        *extra,
    ]
    if configfiles:
        command += ["--configfile", *configfiles]
    out = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"snakemake --dag failed:\n{out.stderr[-3000:]}")
    return parse_dot(out.stdout)


def parse_dot(text: str) -> tuple[dict[int, Job], list[tuple[int, int]]]:
    jobs, edges = {}, []
    for line in text.splitlines():
        if m := re.match(r'\s*(\d+)\[label = "([^"]*)"', line):
            rule, *pairs = m.group(2).split("\\n")
            jobs[int(m.group(1))] = Job(
                int(m.group(1)), rule, dict(p.split(": ", 1) for p in pairs)
            )
        elif m := re.match(r"\s*(\d+) -> (\d+)", line):
            edges.append((int(m.group(1)), int(m.group(2))))
    return jobs, edges


MODEL_JOBS = ("train", "train_pack", "train_pack_member")


def full_wildcards(jobs: dict[int, Job], edges) -> dict[int, dict]:
    """Each job's wildcards with those it shares with its inputs' jobs (the DOT labels show
    only a job's new ones): an evaluation gets its model's task, method and seed (its model's
    training merged last, over other inputs' wildcards such as the FGSM source's seed)."""
    parents = defaultdict(list)
    for a, b in edges:
        parents[b].append(a)
    memo: dict[int, dict] = {}

    def of(i):
        if i not in memo:
            merged = {}
            for p in sorted(parents[i], key=lambda p: jobs[p].rule in MODEL_JOBS):
                merged.update(of(p))
            merged.update(jobs[i].wildcards)
            memo[i] = merged
        return memo[i]

    sys.setrecursionlimit(max(10000, sys.getrecursionlimit()))
    return {i: of(i) for i in jobs}


def per_rule(jobs: dict[int, Job]) -> Counter:
    return Counter(job.rule for job in jobs.values())


def per_target(jobs: dict[int, Job], edges) -> dict[str, Counter]:
    """For each figure and table: the jobs it needs (itself included), per rule."""
    parents = defaultdict(list)
    for a, b in edges:
        parents[b].append(a)
    result = {}
    for job in jobs.values():
        if job.rule not in ("figure", "table"):
            continue
        seen, stack = set(), [job.id]
        while stack:
            i = stack.pop()
            if i not in seen:
                seen.add(i)
                stack.extend(parents[i])
        result[f"{job.rule} {job.wildcards.get('name', job.id)}"] = Counter(
            jobs[i].rule for i in seen
        )
    return result


# ---- sizes ----------------------------------------------------------------------------------
@functools.cache
def _npz_counts(path: str) -> dict:
    """Pixels per image and train/test image counts of a data.npz file, from its arrays'
    headers (nothing is loaded): ``images`` is split 80/20 by simreg.data.sources.load_npz."""
    import zipfile

    import numpy as np

    shapes = {}
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            with archive.open(name) as f:
                major, _ = np.lib.format.read_magic(f)
                header = (
                    np.lib.format.read_array_header_1_0
                    if major == 1
                    else np.lib.format.read_array_header_2_0
                )
                shapes[name.removesuffix(".npy")] = header(f)[0]
    images = shapes.get("train_images") or shapes["images"]
    if "train_images" in shapes:
        train, test = shapes["train_images"][0], shapes["test_images"][0]
    else:
        test = round(images[0] * 0.2)
        train = images[0] - test
    return {"pixels": images[1] * images[2], "train": train, "test": test}


def _npz(config: dict | None, dataset: str) -> dict | None:
    """What :func:`_npz_counts` reads of the config's NPZ dataset ``dataset`` (None: not one,
    or its file is not here)."""
    path = (typed(config).data.npz or {}).get(dataset) if config else None
    if path is None or not Path(path).is_file():
        return None
    return _npz_counts(str(Path(path).resolve()))


def _task_volume(task: str | None, default: float, config: dict | None = None) -> float:
    """Pixels per image of the task's dataset (a built-in one's, or a data.npz file's), which
    fix the work per image with the model; ``default`` where unknown."""
    dataset = (task or "").split("_")[0]
    if dataset in IMAGE_SIDE:
        return IMAGE_SIDE[dataset] ** 2  # color changes only the first convolution
    npz = _npz(config, dataset)
    return npz["pixels"] if npz else default


def _images(config: dict, dataset: str, split: str) -> float:
    """Training (less the validation split) or test images of a dataset; 1 where unknown."""
    known = (TRAIN_IMAGES if split == "train" else TEST_IMAGES).get(dataset)
    if known is not None:
        return known
    npz = _npz(config, dataset)
    if npz is None:
        return 1.0
    if split == "train":
        return npz["train"] * (1 - (typed(config).training.validation_fraction or 0.0))
    return npz["test"]


def architecture(config: dict, task: str | None) -> str:
    """The model architecture the config trains on the task's dataset."""
    model = typed(config).model
    dataset = (task or "").split("_")[0]
    return (model.dataset_architecture or {}).get(dataset, model.architecture)


def _suite_steps(config: dict) -> float:
    """The steps the minimal-distance suite takes per image: each setting's steps (x binary
    search steps); for the PGD family (fixed ε), x the ε search's grid + bisection levels x
    the suite's repeats (the only randomised attacks: simreg.evaluate.minimal_distance)."""
    suite = typed(config).minimal_distance.suite or {}
    repeats = suite.get("repeats") or 1
    search = {"grid": 9, "bisection": 5, **(suite.get("eps_search") or {})}
    total = 0
    for name, runs in (suite.get("attacks") or {}).items():
        for run in runs or []:
            steps = (run.get("steps") or run.get("max_iter") or 1) * (
                run.get("binary_search_steps") or 1
            )
            if name.startswith(("pgd_", "adam_pgd_")):
                levels = run.get("grid", search["grid"]) + run.get("bisection", search["bisection"])
                steps *= levels * (repeats if run.get("random_start", True) else 1)
            total += steps
    return max(total, 1)


TEST_IMAGES = {
    "digits": 359,
    "photos": 416,
    "cifar10": 10000,
    "cifar100": 10000,
    "mnist": 10000,
    "fashionmnist": 10000,
}
# evaluation rule -> (config section, the section's keys its work is proportional to, besides
# its images: a number, or a list whose length counts)
EVALUATION_SIZES = {
    "noise": ("noise", ()),
    "fgsm_transfer": ("fgsm_transfer", ()),
    "fgsm_perturbations": ("fgsm_transfer", ()),
    "whitebox": ("whitebox", ("pgd_steps", "epsilons_255")),
    "boundary": ("boundary", ("repeats",)),
    "minimal_distance": ("minimal_distance", ()),
    "lrc_noise": ("lrc_noise", ("draws", "zetas")),
    "eigenspectrum": ("eigenspectrum", ()),
    "sensitivity": ("sensitivity", ("pgd_steps", "epsilons_255")),
    "corruption_accuracy": ("corruption_accuracy", ()),
}


def shape(config: dict, wildcards: dict, default_volume: float) -> float:
    """width^2 x pixels of the job's task: a planned job whose shape differs from the
    calibration's is not comparable (module docstring)."""
    return typed(config).model.width ** 2 * _task_volume(
        wildcards.get("task"), default_volume, config
    )


def rule_size(config: dict, rule: str, wildcards: dict, default_volume: float) -> float | None:
    """The size a job's work grows with at a fixed model and image size: epochs x training
    images (x seeds of a pack) for training; images x steps (x repeats, x values) for an
    evaluation; None: not scaled."""
    task = wildcards.get("task")
    dataset = (task or "").split("_")[0]
    if rule in ("train", "train_pack"):
        seeds = len(wildcards.get("seeds", "0").split("-"))
        return typed(config).training.epochs * _images(config, dataset, "train") * seeds
    if rule not in EVALUATION_SIZES:
        return None
    name, keys = EVALUATION_SIZES[rule]
    section = typed(config).params(name)
    size = section.get("n_images") or _images(config, dataset, "test")  # null: the test set
    for key in keys:
        value = section.get(key)
        size *= len(value) if isinstance(value, (list, tuple)) else value or 1
    if rule == "boundary":
        settings = section.get("settings") or {}
        steps = (settings.get(wildcards.get("setting")) or {}).get("steps")
        if steps is None and settings:
            steps = sum((v or {}).get("steps", 1) for v in settings.values()) / len(settings)
        # each repeat's walk, after the blended-noise start's line search (init_steps)
        size *= (steps or 1) + section.get("init_steps", 0)
    elif rule == "minimal_distance":
        size *= _suite_steps(config)
    return size


def planned_work(config: dict, jobs: dict[int, Job], edges) -> dict[str, float]:
    """Per scaled rule, the sum of its jobs' sizes (:func:`rule_size`): training images seen
    (epochs x images x seeds) for trainings; images x steps x repeats x values for an
    evaluation. What the scaling multiplies, so what a change of the grid's sizes changes."""
    wildcards = full_wildcards(jobs, edges)
    work = defaultdict(float)
    for i, job in jobs.items():
        size = rule_size(config, job.rule, wildcards[i], 0.0)
        if size:
            work[job.rule] += size
    return dict(work)


# ---- measurements ---------------------------------------------------------------------------
def read_benchmarks(
    root: str | Path = BENCHMARKS, since: float | None = None
) -> dict[str, list[dict]]:
    """Every benchmark TSV under ``root`` (Snakemake's ``benchmark:`` files,
    ``root/<rule>/...tsv``), per rule, in path order: the last row's wall seconds (``s``), CPU
    seconds (``cpu_time``) and max RSS (``max_rss``, MB; None where Snakemake wrote none), and
    the file's ``path`` and its ``job`` (the path under ``root``, POSIX: the rule's folder, then
    the job's wildcards; what a DAG's ``benchmark:`` names under results/benchmarks/). With
    ``since`` (a time stamp), only
    files modified at or after it. The one reader of these files (``simreg plan``,
    ``simreg export``, benchmarks/job_times.py)."""
    root = Path(root)
    found = defaultdict(list)
    for path in sorted(root.glob("*/**/*.tsv")):
        if since is not None and path.stat().st_mtime < since:
            continue
        with open(path) as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        if not rows:
            continue
        last = rows[-1]
        job = path.relative_to(root)
        found[job.parts[0]].append(
            {
                "s": float(last["s"]),
                "cpu_time": _float(last.get("cpu_time")),
                "max_rss": _float(last.get("max_rss")),
                "path": str(path),
                "job": job.as_posix(),
            }
        )
    return dict(found)


def _float(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


@dataclass
class Estimate:
    rows: list  # (stage, rule, jobs, hours or None, basis)
    hours: dict  # stage -> hours
    unmeasured: list
    extrapolated: list = field(default_factory=list)


def _stand_in(method: str, epoch_s: dict) -> str:
    """The timed method whose epoch an untimed one counts at: ``threshold`` for a method that
    regularizes on a similarity target (its step has the same pair passes), else ``none``."""
    if method in epoch_s:
        return method
    from simreg.train.regularizers import get_regularizer

    try:
        needs = get_regularizer(method).needs
    except (KeyError, ValueError):
        needs = ()
    if {"similarity", "neural_similarity"} & set(needs) and "threshold" in epoch_s:
        return "threshold"
    return "none"


JSON_SHAPE = {"architecture": "resnet18", "volume": 32 * 32}  # what benchmarks/run.py trains


def comparable(config: dict, wildcards: dict, reference: dict, default_volume: float) -> bool:
    """Whether a job runs the model and image size a measurement was made at
    (``reference``: its ``shape``, width^2 x pixels, and ``architecture``; module
    docstring)."""
    if reference.get("architecture") not in (None, architecture(config, wildcards.get("task"))):
        return False
    return abs(shape(config, wildcards, default_volume) / reference["shape"] - 1) <= 1e-9


def estimate(
    config: dict,
    jobs: dict[int, Job],
    edges,
    measured: dict[str, list[dict]],
    calibration: dict,
    epoch_s: dict | None = None,
    cpu: bool = False,
) -> Estimate:
    """Device hours per rule and stage (module docstring). With ``cpu``, from the benchmark
    files' CPU seconds (``cpu_time``) and the calibration's CPU start (``startup_cpu_s``):
    what the jobs cost on idle cores, when a CPU calibration shared its machine. A job of
    another model width, image size or architecture than its measurement is left out and
    counted in its row."""
    wildcards = full_wildcards(jobs, edges)
    cal_sizes = calibration.get("sizes", {})
    cal_volume = calibration.get("volume", 64.0)
    by_rule = defaultdict(list)
    for i, job in jobs.items():
        by_rule[job.rule].append(wildcards[i])
    rows, hours, unmeasured, extrapolations = [], defaultdict(float), [], []

    def left_out(basis, n_left, n_all, rule):
        if n_left:
            extrapolations.append(rule)
            basis += (
                f"; {n_left} of {n_all} jobs at another width, image size or architecture left out"
            )
        return basis

    for rule, jobs_wc in sorted(by_rule.items(), key=lambda kv: -len(kv[1])):
        stage = STAGES.get(rule, "evaluation")
        if rule == "evaluate_model":
            row, seconds, missing, n_left = _model_evaluations(
                config, jobs_wc, measured, calibration, cpu
            )
            unmeasured.extend(missing)
            rows.append(
                (
                    stage,
                    rule,
                    len(jobs_wc),
                    seconds / 3600,
                    left_out(row, n_left, len(jobs_wc), rule),
                )
            )
            hours[stage] += seconds / 3600
            continue
        if rule in ("train", "train_pack") and epoch_s:
            reference = {
                **JSON_SHAPE,
                "shape": typed(config).model.width ** 2 * JSON_SHAPE["volume"],
            }
            timed = [wc for wc in jobs_wc if comparable(config, wc, reference, cal_volume)]
            seconds, untimed = 0.0, defaultdict(set)
            for wc in timed:
                method = wc.get("method")
                stand_in = _stand_in(method, epoch_s)
                if stand_in != method:
                    untimed[stand_in].add(method)
                per_epoch = epoch_s[stand_in]
                seeds = len(wc.get("seeds", "0").split("-"))
                # a CIFAR-10 epoch (49,500 images), scaled to the task's training images
                images = TRAIN_IMAGES.get((wc.get("task") or "").split("_")[0], CIFAR10_EPOCH)
                epochs = typed(config).training.epochs
                seconds += per_epoch * images / CIFAR10_EPOCH * epochs * seeds
            basis = "benchmarks/run.py " + ("epoch_cpu_s" if cpu else "epoch_s")
            for stand_in, methods in sorted(untimed.items()):
                basis += f" (not timed, counted as {stand_in}: {', '.join(sorted(methods))})"
            basis = left_out(basis, len(jobs_wc) - len(timed), len(jobs_wc), rule)
            rows.append((stage, rule, len(jobs_wc), seconds / 3600 if timed else None, basis))
            hours[stage] += seconds / 3600
            continue
        column = "cpu_time" if cpu else "s"
        values = [m[column] for m in measured.get(rule, []) if m.get(column) is not None]
        if not values:
            if rule in ("all", "download", "download_corruptions") or rule.endswith("_member"):
                rows.append((stage, rule, len(jobs_wc), None, "not a device job"))
                continue
            start = calibration.get("startup_cpu_s" if cpu else "startup_s")
            unmeasured.append(rule)
            if start is None:
                rows.append((stage, rule, len(jobs_wc), None, "not measured"))
                continue
            rows.append(
                (
                    stage,
                    rule,
                    len(jobs_wc),
                    start * len(jobs_wc) / 3600,
                    "not measured: the start only",
                )
            )
            hours[stage] += start * len(jobs_wc) / 3600
            continue
        mean_s = sum(values) / len(values)
        start = min(calibration.get("startup_cpu_s" if cpu else "startup_s") or 0.0, mean_s)
        base = cal_sizes.get(rule)
        scaled = jobs_wc
        if base and calibration.get("shape"):
            scaled = [wc for wc in jobs_wc if comparable(config, wc, calibration, cal_volume)]
        if not scaled:
            # measured on another model width or image size: not comparable (module docstring)
            rows.append(
                (
                    stage,
                    rule,
                    len(jobs_wc),
                    None,
                    "measured at another width, image size or architecture: calibrate this config",
                )
            )
            extrapolations.append(rule)
            continue
        seconds, basis = 0.0, f"mean of {len(values)}"
        for wc in scaled:
            seconds += start + _work(config, rule, wc, mean_s - start, base, cal_volume)
        if base:
            basis += ", scaled"
        basis = left_out(basis, len(jobs_wc) - len(scaled), len(jobs_wc), rule)
        rows.append((stage, rule, len(jobs_wc), seconds / 3600, basis))
        hours[stage] += seconds / 3600
    return Estimate(rows, dict(hours), unmeasured, extrapolations)


def _work(config, rule, wildcards, measured_work, base, cal_volume) -> float:
    """A job's work: the rule's measured seconds less the start, times the job's size over
    the calibration's mean size (unscaled where either is unknown)."""
    size = rule_size(config, rule, wildcards, cal_volume)
    return measured_work * (size / base if size and base else 1.0)


def _model_evaluations(config, jobs_wc, measured, calibration, cpu):
    """Seconds of the evaluate_model jobs (resources.evaluation_jobs: per_model): each one
    start, plus the work of each evaluation it runs (simreg.evaluate.bundles), scaled from its
    kind's measurement as a job of its own would be. Returns (basis, seconds, kinds not
    measured, jobs left out)."""
    from simreg.report.reads import evaluation_bundles
    from simreg.train.model_key import ModelKey

    bundles = evaluation_bundles(config)
    column = "cpu_time" if cpu else "s"
    start_all = calibration.get("startup_cpu_s" if cpu else "startup_s") or 0.0
    cal_sizes, cal_volume = calibration.get("sizes", {}), calibration.get("volume", 64.0)
    seconds, missing, n_left, n_evaluations = 0.0, set(), 0, 0
    for wc in jobs_wc:
        if calibration.get("shape") and not comparable(config, wc, calibration, cal_volume):
            n_left += 1
            continue
        seconds += start_all
        for kind, setting in bundles.get(ModelKey.from_wildcards(wc).stem, []):
            values = [m[column] for m in measured.get(kind, []) if m.get(column) is not None]
            if not values:
                missing.add(kind)
                continue
            n_evaluations += 1
            mean_s = sum(values) / len(values)
            work = mean_s - min(start_all, mean_s)
            wc_kind = {**wc, "setting": setting}
            seconds += _work(config, kind, wc_kind, work, cal_sizes.get(kind), cal_volume)
    basis = (
        f"{n_evaluations} evaluations: one start per job, each evaluation's work from its "
        "kind's jobs, scaled"
    )
    return basis, seconds, sorted(missing), n_left


def calibration_sizes(config: dict, jobs: list[tuple[str, dict]]) -> dict:
    """The mean size of each scaled rule over the calibration's jobs ((rule, wildcards)),
    the pixels of their task and their width^2 x pixels (the base of the extrapolation)."""
    volumes = Counter(_task_volume(wc.get("task"), 0, config) for _, wc in jobs if wc.get("task"))
    volumes.pop(0, None)
    volume = volumes.most_common(1)[0][0] if volumes else 64.0
    tasks = Counter(wc["task"] for _, wc in jobs if wc.get("task"))
    sums, counts = defaultdict(float), Counter()
    for rule, wc in jobs:
        size = rule_size(config, rule, wc, volume)
        if size:
            sums[rule] += size
            counts[rule] += 1
    return {
        "sizes": {r: sums[r] / counts[r] for r in sums},
        "volume": volume,
        "shape": typed(config).model.width ** 2 * volume,
        "architecture": architecture(config, tasks.most_common(1)[0][0] if tasks else None),
    }


def dry_run_jobs(configfiles=(), targets=("all",), snakefile="Snakefile", cwd=None) -> list[dict]:
    """Each job of ``snakemake -n -p --forceall`` as printed: rule, outputs, wildcards,
    benchmark file and shell command (None for a job without one)."""
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "-n",
        "-p",
        "--forceall",
        *targets,
        "-s",
        str(snakefile),
    ]
    if configfiles:
        command += ["--configfile", *configfiles]
    out = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"snakemake -n failed:\n{out.stderr[-3000:]}")
    jobs, current = [], None
    for line in out.stdout.splitlines():
        if m := re.match(r"^(local)?rule (\w+):$", line):
            current = {
                "rule": m[2],
                "output": [],
                "wildcards": {},
                "benchmark": None,
                "shell": None,
            }
            jobs.append(current)
        elif line.startswith("Shell command: ") and jobs:  # printed after the job's block
            shell = line.removeprefix("Shell command: ")
            jobs[-1]["shell"] = None if shell == "None" else shell
        elif current is not None and (m := re.match(r"^    (\w+): (.*)$", line)):
            if m[1] == "output":
                current["output"] = m[2].split(", ")
            elif m[1] == "wildcards":
                current["wildcards"] = dict(kv.split("=", 1) for kv in m[2].split(", "))
            elif m[1] == "benchmark":
                current["benchmark"] = m[2]
        elif not line.startswith("    "):
            current = None
    return jobs


def planned_benchmarks(repository: str | Path, configfiles=(), targets=("all",)) -> set[str]:
    """The benchmark file of every job the DAG of ``targets`` plans under ``configfiles`` (run
    in ``repository``), relative to its benchmarks folder: the jobs a run of it can have."""
    repository = Path(repository).resolve()
    jobs = dry_run_jobs([str(Path(f).resolve()) for f in configfiles], targets, cwd=repository)
    return {Path(j["benchmark"]).relative_to(BENCHMARKS).as_posix() for j in jobs if j["benchmark"]}


# jobs a calibration never runs: targets, downloads, links, and RobustBench (its weights)
NOT_CALIBRATED = {
    "all",
    "figure",
    "table",
    "download",
    "download_corruptions",
    "train_pack_member",
    "robustbench_corruptions",
}


def calibration_targets(jobs: list[dict]) -> list[dict]:
    """The small fixed set a calibration runs: the first training job of each method, and the
    first job of every other rule (on the DAG's most common task and of the unregularized
    model where there is one); their inputs' jobs come along."""
    tasks = Counter(j["wildcards"]["task"] for j in jobs if "task" in j["wildcards"])
    main = tasks.most_common(1)[0][0] if tasks else None
    chosen, seen = [], set()
    ordered = sorted(
        jobs,
        key=lambda j: (
            j["wildcards"].get("task", main) != main,
            j["wildcards"].get("method") != "none",
        ),
    )
    for job in ordered:
        rule = job["rule"]
        if rule in NOT_CALIBRATED or rule.endswith("_member") or not job["output"]:
            continue
        key = (rule, job["wildcards"].get("method")) if rule in ("train", "train_pack") else rule
        if key not in seen:
            seen.add(key)
            chosen.append(job)
    return chosen


# ---- the command ----------------------------------------------------------------------------
def load_config(configfiles) -> dict:
    from simreg.config import load_config as load

    return load("config.yaml", *configfiles)


def hours_text(h: float) -> str:
    return f"{h:.0f}" if h >= 100 else f"{h:.2f}" if h >= 1 else f"{h:.3f}"


def format_table(headers, rows) -> str:
    text = [[str(c) for c in row] for row in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in text)) if text else len(h) for i, h in enumerate(headers)
    ]

    def line(cells):
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, text)])


def report(
    configfiles,
    benchmarks_root=BENCHMARKS,
    benchmark_json=None,
    targets=("all",),
    cpu: bool = False,
) -> str:
    config = load_config(configfiles)
    jobs, edges = snakemake_dag(configfiles, targets)
    counts = per_rule(jobs)
    work = planned_work(config, jobs, edges)
    out = [
        f"simreg plan: {' + '.join(['config.yaml', *configfiles])}: {len(jobs)} jobs "
        f"(snakemake --dag --forceall {' '.join(targets)})",
        "",
        "Jobs per rule, and the work they plan (trainings: images seen; evaluations: images x "
        "steps x repeats x values):",
        format_table(
            ["rule", "jobs", "work"],
            [(r, n, f"{work[r]:.3g}" if r in work else "") for r, n in counts.most_common()],
        ),
        "",
    ]
    targets_counts = per_target(jobs, edges)
    if targets_counts:
        rules = [r for r, _ in counts.most_common() if r not in ("all",)]
        shown = [
            r
            for r in (
                "train",
                "train_pack",
                "evaluate_model",
                "noise",
                "fgsm_transfer",
                "boundary",
                "whitebox",
                "minimal_distance",
            )
            if r in rules
        ]
        rows = [
            (name, sum(c.values()), *(c.get(r, 0) for r in shown))
            for name, c in sorted(targets_counts.items())
        ]
        out += [
            "Jobs each figure or table needs (shared jobs counted in each):",
            format_table(["target", "jobs", *shown], rows),
            "",
        ]
    measured = read_benchmarks(benchmarks_root)
    calibration_file = Path(benchmarks_root) / "calibration.json"
    calibration = json.loads(calibration_file.read_text()) if calibration_file.is_file() else {}
    epoch_s, notes = None, []
    if benchmark_json:
        timed = json.loads(Path(benchmark_json).read_text())
        width = typed(config).model.width
        if timed.get("width") not in (None, width):
            notes.append(
                f"{benchmark_json} timed width {timed['width']}, this config trains "
                f"width {width}: not used"
            )
        else:
            epoch_s = timed.get("epoch_cpu_s") if cpu else timed.get("epoch_s")
            if cpu and epoch_s is None:
                notes.append(
                    f"{benchmark_json} has no epoch_cpu_s (a CPU run of "
                    "benchmarks/run.py writes it): not used"
                )
    out += notes
    if not measured and not epoch_s:
        out.append(
            f"No measurements under {benchmarks_root}: run `simreg plan --calibrate` "
            "(or pass --benchmark-json) for device hours."
        )
        return "\n".join(out)
    est = estimate(config, jobs, edges, measured, calibration, epoch_s, cpu=cpu)
    where = calibration.get("machine", "the machine that wrote the benchmark files")
    what = (
        "CPU hours (the benchmark files' CPU seconds: what the jobs take on idle cores)"
        if cpu
        else "device hours"
    )
    out += [
        f"Estimated {what} (measured on {where}; docs/running.md says how):",
        format_table(
            ["stage", "rule", "jobs", "hours", "basis"],
            [(s, r, n, "-" if h is None else hours_text(h), b) for s, r, n, h, b in est.rows],
        ),
        "",
    ]
    total = sum(est.hours.values())
    cores = calibration.get("cores")
    out.append(
        format_table(
            ["stage", "hours", "share"],
            [
                (s, hours_text(h), f"{100 * h / total:.0f}%" if total else "-")
                for s, h in sorted(est.hours.items(), key=lambda kv: -kv[1])
            ]
            + [("total", hours_text(total), "100%")],
        )
    )
    if cores:
        out.append(
            f"Wall time on that machine's {cores} core(s): about "
            f"{hours_text(total / cores)} h ({total * 3600 / cores:.0f} s; total / "
            "cores, if the jobs keep every core busy)"
        )
    if est.extrapolated:
        out.append(
            "Jobs left out, of another model width, image size or architecture than "
            "their measurement (" + ", ".join(sorted(set(est.extrapolated))) + "): "
            "calibrate with this config's model and data (configs/calibrate.yaml), or "
            "--benchmark-json for training."
        )
    if est.unmeasured:
        out.append(
            "Not measured (counted at a job's start only, or left out): "
            f"{', '.join(sorted(est.unmeasured))}"
        )
    return "\n".join(out)


def startup_seconds(repeats: int = 3) -> float:
    """The fixed start of a job: a fresh Python importing what `simreg train` and
    `simreg evaluate` import before they work (torch included); the fastest of ``repeats``."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import simreg.cli, simreg.train.trainer, simreg.evaluate.context",
            ],
            check=True,
        )
        times.append(time.perf_counter() - started)
    return round(min(times), 2)


def startup_cpu_seconds(repeats: int = 3) -> float:
    """The CPU seconds of the same fixed start (:func:`startup_seconds`): user + system time
    of the child process, the fewest of ``repeats``; unlike wall time, it does not grow when
    other work shares the machine."""
    import resource

    times = []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import simreg.cli, simreg.train.trainer, simreg.evaluate.context",
            ],
            check=True,
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        times.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return round(min(times), 2)


def calibrate(
    configfiles=(CALIBRATION_CONFIG,),
    cores: int = 2,
    targets=("all",),
    benchmarks_root=BENCHMARKS,
    extra=(),
) -> dict:
    """Run the small fixed set of jobs (:func:`calibration_targets`) of the DAG of
    ``configfiles`` so that each writes its benchmark file, and record the set's sizes beside
    them (the base the plan scales from) and a job's fixed start. Evaluations run one job per
    kind (PER_KIND_EVALUATIONS merged last), so that each kind's file times it alone."""
    import platform

    configfiles = [*configfiles, PER_KIND_EVALUATIONS]
    config = load_config(configfiles)
    chosen = calibration_targets(dry_run_jobs(configfiles, targets))
    record = {
        "configfiles": list(configfiles),
        "cores": cores,
        "jobs": {
            j["rule"]
            + (f" {j['wildcards']['method']}" if j["rule"].startswith("train") else ""): j[
                "output"
            ][0]
            for j in chosen
        },
        "machine": f"{platform.node()} ({platform.processor() or platform.machine()}, "
        f"{cores} cores)",
        **calibration_sizes(config, [(j["rule"], j["wildcards"]) for j in chosen]),
    }
    record["startup_s"] = startup_seconds()
    record["startup_cpu_s"] = startup_cpu_seconds()
    started = time.time()
    command = [
        sys.executable,
        "-m",
        "snakemake",
        *[j["output"][0] for j in chosen],
        "--cores",
        str(cores),
        *extra,
        "--configfile",
        *configfiles,
    ]
    subprocess.run(command, check=True)
    record["wall_s"] = round(time.time() - started, 1)
    Path(benchmarks_root).mkdir(parents=True, exist_ok=True)
    from simreg.outputs import write_text

    write_text(json.dumps(record, indent=1) + "\n", Path(benchmarks_root) / "calibration.json")
    return record
