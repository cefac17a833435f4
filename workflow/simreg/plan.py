"""``simreg plan``: what a config's run costs, before running it.

The jobs come from Snakemake itself: ``snakemake --dag --forceall`` (every job of the DAG,
done or not, with its rule and wildcards, and which job feeds which), so the counts are
exactly the ones ``snakemake -n --forceall`` plans. From that graph the plan prints the jobs
per rule and per figure or table (the jobs each one needs, shared jobs counted in each).

Device hours come from measurements, never from guesses:

* the ``benchmark:`` files of a run (``results/benchmarks/<rule>/...tsv``; every train and
  evaluation rule writes one), from a calibration run on your own machine
  (``simreg plan --calibrate``: runs the DAG of a small config, by default
  ``configs/quick.yaml``, and records that config's sizes beside the files);
* or, for the training jobs, the ``epoch_s`` of a ``benchmarks/run.py`` JSON (seconds per
  CIFAR-10 epoch of each method).

The scaling model (docs/running.md): a job costs its rule's mean measured seconds times
(its size in the planned config / the rule's size in the calibration config). A rule's size
is the product of the settings its work grows with, taken as linear:

* train (train_pack: times its seeds): epochs x model width^2 x training images x pixels of
  the job's task;
* evaluations: images evaluated x attack steps (x repeats) x width^2 x pixels of the task;
* every other rule: its measured mean, unscaled.

Rules that were not measured are reported as such and left out of the hours.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

BENCHMARKS = Path("results") / "benchmarks"
CALIBRATION = BENCHMARKS / "calibration.json"
CALIBRATION_CONFIG = "configs/quick.yaml"

# train images (after the test split) and pixels (H x W x channels in the task's color)
# of the built-in datasets; a task not listed counts as the calibration's task
TRAIN_IMAGES = {"digits": 1438, "photos": 1664, "cifar10": 50000, "cifar100": 50000,
                "mnist": 60000, "fashionmnist": 60000}
IMAGE_SIDE = {"digits": 8, "photos": 16, "cifar10": 32, "cifar100": 32, "mnist": 28,
              "fashionmnist": 28}
STAGES = {"train": "training", "train_pack": "training", "train_pack_member": "training",
          "dataset": "data", "download": "data", "download_corruptions": "data",
          "corruptions": "data", "similarity": "data", "neural_similarity": "neural",
          "simulate_recordings": "neural", "fit_predictor": "neural",
          "figure": "report", "table": "report", "all": "report"}


@dataclass
class Job:
    id: int
    rule: str
    wildcards: dict = field(default_factory=dict)


def snakemake_dag(configfiles=(), targets=("all",), snakefile="Snakefile", cwd=None,
                  extra=()) -> tuple[dict[int, Job], list[tuple[int, int]]]:
    """Every job of the DAG (``--forceall``) and its edges (input job -> job), from
    ``snakemake --dag``."""
    command = [sys.executable, "-m", "snakemake", "--dag", "--forceall", *targets,
               "-s", str(snakefile), *extra]
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
            jobs[int(m.group(1))] = Job(int(m.group(1)), rule,
                                        dict(p.split(": ", 1) for p in pairs))
        elif m := re.match(r"\s*(\d+) -> (\d+)", line):
            edges.append((int(m.group(1)), int(m.group(2))))
    return jobs, edges


def full_wildcards(jobs: dict[int, Job], edges) -> dict[int, dict]:
    """Each job's wildcards with those it shares with its inputs' jobs (the DOT labels show
    only a job's new ones): an evaluation gets its model's task and method."""
    parents = defaultdict(list)
    for a, b in edges:
        parents[b].append(a)
    memo: dict[int, dict] = {}

    def of(i):
        if i not in memo:
            merged = {}
            for p in parents[i]:
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
            jobs[i].rule for i in seen)
    return result


# ---- sizes ----------------------------------------------------------------------------------
def _task_volume(task: str | None, default: float) -> float:
    dataset = (task or "").split("_")[0]
    if dataset not in TRAIN_IMAGES:
        return default
    channels = 3 if (task or "").endswith("_rgb") else 1
    return IMAGE_SIDE[dataset] ** 2 * channels


def _suite_steps(config: dict) -> float:
    suite = config["minimal_distance"].get("suite") or {}
    total = 0
    for runs in (suite.get("attacks") or {}).values():
        for run in runs or []:
            total += (run.get("steps") or run.get("max_iter") or 1) * (
                run.get("binary_search_steps") or 1)
    return max(total, 1) * (suite.get("repeats") or 1)


def rule_size(config: dict, rule: str, wildcards: dict, default_volume: float) -> float | None:
    """The size a job's work grows with (module docstring); None: not scaled."""
    width2 = config["model"]["width"] ** 2
    task = wildcards.get("task")
    pixels = _task_volume(task, default_volume)
    if rule in ("train", "train_pack"):
        dataset = (task or "").split("_")[0]
        images = TRAIN_IMAGES.get(dataset, 1.0)
        seeds = len(wildcards.get("seeds", "0").split("-"))
        return config["training"]["epochs"] * width2 * images * pixels * seeds
    n_images = {"noise": ("noise", 1), "fgsm_transfer": ("fgsm_transfer", 1),
                "fgsm_perturbations": ("fgsm_transfer", 1), "whitebox": ("whitebox", None),
                "boundary": ("boundary", None), "minimal_distance": ("minimal_distance", None)}
    if rule not in n_images:
        return None
    section = config.get(n_images[rule][0]) or {}
    n = section.get("n_images") or 1
    if rule == "whitebox":
        n *= section.get("pgd_steps") or 1
    elif rule == "boundary":
        settings = section.get("settings") or {}
        steps = (settings.get(wildcards.get("setting")) or {}).get("steps")
        if steps is None and settings:
            steps = sum((s or {}).get("steps", 1) for s in settings.values()) / len(settings)
        n *= (steps or 1) * (section.get("repeats") or 1)
    elif rule == "minimal_distance":
        n *= _suite_steps(config)
    return n * width2 * pixels


# ---- measurements ---------------------------------------------------------------------------
def read_benchmarks(root: str | Path = BENCHMARKS) -> dict[str, list[dict]]:
    """Every benchmark TSV under ``root``, per rule (``root/<rule>/...``): seconds, max RSS
    (MB) and the job's wildcards as far as its path tells them."""
    root = Path(root)
    found = defaultdict(list)
    for path in sorted(root.glob("*/**/*.tsv")):
        with open(path) as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        if not rows:
            continue
        rule = path.relative_to(root).parts[0]
        rss = rows[-1].get("max_rss", "")
        found[rule].append({"s": float(rows[-1]["s"]), "max_rss": _float(rss),
                            "path": str(path)})
    return dict(found)


def _float(text):
    try:
        return float(text)
    except ValueError:
        return None


@dataclass
class Estimate:
    rows: list          # (stage, rule, jobs, hours or None, basis)
    hours: dict         # stage -> hours
    unmeasured: list


def estimate(config: dict, jobs: dict[int, Job], edges, measured: dict[str, list[dict]],
             calibration: dict, epoch_s: dict | None = None) -> Estimate:
    """Device hours per rule and stage (module docstring)."""
    wildcards = full_wildcards(jobs, edges)
    cal_sizes = calibration.get("sizes", {})
    cal_volume = calibration.get("volume", 64.0)
    by_rule = defaultdict(list)
    for i, job in jobs.items():
        by_rule[job.rule].append(wildcards[i])
    rows, hours, unmeasured = [], defaultdict(float), []
    for rule, jobs_wc in sorted(by_rule.items(), key=lambda kv: -len(kv[1])):
        stage = STAGES.get(rule, "evaluation")
        if rule in ("train", "train_pack") and epoch_s:
            seconds = 0.0
            for wc in jobs_wc:
                per_epoch = epoch_s.get(wc.get("method"), epoch_s.get("none"))
                seeds = len(wc.get("seeds", "0").split("-"))
                seconds += per_epoch * config["training"]["epochs"] * seeds
            rows.append((stage, rule, len(jobs_wc), seconds / 3600, "benchmarks/run.py epoch_s"))
            hours[stage] += seconds / 3600
            continue
        if rule not in measured:
            rows.append((stage, rule, len(jobs_wc), None, "not measured"))
            if rule not in ("all", "train_pack_member"):
                unmeasured.append(rule)
            continue
        mean_s = sum(m["s"] for m in measured[rule]) / len(measured[rule])
        seconds, basis = 0.0, f"mean of {len(measured[rule])}"
        for wc in jobs_wc:
            size = rule_size(config, rule, wc, cal_volume)
            base = cal_sizes.get(rule)
            factor = size / base if size and base else 1.0
            seconds += mean_s * factor
        if cal_sizes.get(rule):
            basis += ", scaled"
        rows.append((stage, rule, len(jobs_wc), seconds / 3600, basis))
        hours[stage] += seconds / 3600
    return Estimate(rows, dict(hours), unmeasured)


def calibration_sizes(config: dict, jobs, edges) -> dict:
    """The mean size of each scaled rule in the calibration config's DAG, and its pixels."""
    wildcards = full_wildcards(jobs, edges)
    volumes = [_task_volume(wc.get("task"), 0) for wc in wildcards.values() if wc.get("task")]
    volume = Counter(v for v in volumes if v).most_common(1)[0][0] if any(volumes) else 64.0
    sums, counts = defaultdict(float), Counter()
    for i, job in jobs.items():
        size = rule_size(config, job.rule, wildcards[i], volume)
        if size:
            sums[job.rule] += size
            counts[job.rule] += 1
    return {"sizes": {r: sums[r] / counts[r] for r in sums}, "volume": volume}


# ---- the command ----------------------------------------------------------------------------
def load_config(configfiles) -> dict:
    from simreg.config import load_config as load

    return load("config.yaml", *configfiles)


def format_table(headers, rows) -> str:
    text = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in text)) if text else len(h)
              for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, text)])


def report(configfiles, benchmarks_root=BENCHMARKS, benchmark_json=None, targets=("all",)) -> str:
    config = load_config(configfiles)
    jobs, edges = snakemake_dag(configfiles, targets)
    counts = per_rule(jobs)
    out = [f"simreg plan: {' + '.join(['config.yaml', *configfiles])}: {len(jobs)} jobs "
           f"(snakemake --dag --forceall {' '.join(targets)})", "",
           "Jobs per rule:", format_table(["rule", "jobs"], counts.most_common()), ""]
    targets_counts = per_target(jobs, edges)
    if targets_counts:
        rules = [r for r, _ in counts.most_common() if r not in ("all",)]
        shown = [r for r in ("train", "train_pack", "noise", "fgsm_transfer", "boundary",
                             "whitebox", "minimal_distance") if r in rules]
        rows = [(name, sum(c.values()), *(c.get(r, 0) for r in shown))
                for name, c in sorted(targets_counts.items())]
        out += ["Jobs each figure or table needs (shared jobs counted in each):",
                format_table(["target", "jobs", *shown], rows), ""]
    measured = read_benchmarks(benchmarks_root)
    calibration_file = Path(benchmarks_root) / "calibration.json"
    calibration = json.loads(calibration_file.read_text()) if calibration_file.is_file() else {}
    epoch_s = None
    if benchmark_json:
        epoch_s = json.loads(Path(benchmark_json).read_text()).get("epoch_s")
    if not measured and not epoch_s:
        out.append(f"No measurements under {benchmarks_root}: run `simreg plan --calibrate` "
                   "(or pass --benchmark-json) for device hours.")
        return "\n".join(out)
    est = estimate(config, jobs, edges, measured, calibration, epoch_s)
    where = calibration.get("machine", "the machine that wrote the benchmark files")
    out += [f"Estimated device hours (measured on {where}; docs/running.md says how):",
            format_table(["stage", "rule", "jobs", "hours", "basis"],
                         [(s, r, n, "-" if h is None else f"{h:.2f}", b)
                          for s, r, n, h, b in est.rows]), ""]
    total = sum(est.hours.values())
    out.append(format_table(["stage", "hours", "share"],
                            [(s, f"{h:.2f}", f"{100 * h / total:.0f}%" if total else "-")
                             for s, h in sorted(est.hours.items(), key=lambda kv: -kv[1])]
                            + [("total", f"{total:.2f}", "100%")]))
    if est.unmeasured:
        out.append(f"Not measured (left out of the hours): {', '.join(sorted(est.unmeasured))}")
    return "\n".join(out)


def calibrate(configfiles=(CALIBRATION_CONFIG,), cores: int = 2, targets=("all",),
              benchmarks_root=BENCHMARKS, extra=()) -> dict:
    """Run the DAG of ``configfiles`` (by default the quick config: every rule, small sizes)
    so that each job writes its benchmark file, and record that config's sizes beside them
    (the base the plan scales from)."""
    import platform

    config = load_config(configfiles)
    jobs, edges = snakemake_dag(configfiles, targets)
    record = {"configfiles": list(configfiles), "targets": list(targets), "cores": cores,
              "machine": f"{platform.node()} ({platform.processor() or platform.machine()}, "
                         f"{cores} cores)", **calibration_sizes(config, jobs, edges)}
    started = time.time()
    command = [sys.executable, "-m", "snakemake", *targets, "--cores", str(cores), *extra,
               "--configfile", *configfiles]
    subprocess.run(command, check=True)
    record["wall_s"] = round(time.time() - started, 1)
    Path(benchmarks_root).mkdir(parents=True, exist_ok=True)
    from simreg.outputs import write_text

    write_text(json.dumps(record, indent=1) + "\n", Path(benchmarks_root) / "calibration.json")
    return record
