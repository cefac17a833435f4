"""Per-job time of a finished run, by kind: the rule, with the Boundary setting for Boundary
jobs and the method for trainings. From the ``benchmark:`` files Snakemake wrote
(``results/benchmarks/<rule>/...tsv``): jobs, median wall seconds, median CPU seconds (what a
job costs on an idle core; wall time also counts waiting for a core), and their sums.

    python benchmarks/job_times.py [--benchmarks results/benchmarks] [--since FILE]
        [--markdown] [--startup]

``--since FILE`` keeps only the files newer than FILE (e.g. a run's first output), so that
benchmarks of earlier runs in the same folder do not count. Prints JSON (or a Markdown
table with ``--markdown``).

``--startup`` prints instead what share of the jobs' CPU time is their fixed start (a fresh
Python importing torch, pandas, foolbox and simreg: ``simreg.plan.startup_cpu_seconds``,
measured here, now), and how many starts one evaluation job per model (all its kinds in one
process) would save: each model's evaluation jobs less one.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from collections import defaultdict
from pathlib import Path

from simreg.plan import STAGES, read_benchmarks

# the path part after <rule>/<rule>/ that names a job's kind, per rule
KIND_PART = {"boundary": 0, "train": 2}  # boundary/<setting>/..., train/<task>/<reg>/<method>/


def job_kind(path: Path, root: Path) -> str:
    parts = path.relative_to(root).parts
    rule = parts[0]
    rest = parts[2:] if len(parts) > 2 and parts[1] == rule else parts[1:]
    if rule in KIND_PART and len(rest) > KIND_PART[rule] + 1:
        return f"{rule} ({rest[KIND_PART[rule]]})"
    return rule


def job_times(root: Path, since: Path | None = None) -> list[dict]:
    found = defaultdict(list)
    measured = read_benchmarks(root, since.stat().st_mtime if since else None)
    for jobs in measured.values():
        for job in jobs:
            cpu = math.nan if job["cpu_time"] is None else job["cpu_time"]
            found[job_kind(Path(job["path"]), root)].append((job["s"], cpu))
    rows = []
    for kind, times in sorted(found.items()):
        wall, cpu = zip(*times)
        rows.append(
            {
                "kind": kind,
                "jobs": len(times),
                "median_wall_s": round(statistics.median(wall), 1),
                "median_cpu_s": round(statistics.median(cpu), 1),
                "total_wall_s": round(sum(wall), 1),
                "total_cpu_s": round(sum(cpu), 1),
            }
        )
    return rows


def model_of(job: str) -> str | None:
    """The model a per-model job's benchmark file names (its path under the benchmarks folder,
    ``<rule>/<rule>/[<setting>/]<task>/<set>/<method>/<keys>/seed<k>.tsv``), None for other
    jobs (such as ``fgsm_perturbations/<task>/seed<k>.tsv``)."""
    parts = Path(job).with_suffix("").parts
    return "/".join(parts[-5:]) if parts[-1].startswith("seed") and len(parts) >= 7 else None


def startup_share(root: Path, startup_cpu_s: float, since: Path | None = None) -> dict:
    """The fixed start's share of the jobs' CPU seconds, and the starts that one
    evaluation job per model would save (its evaluation jobs less one, per model). A job's
    start counts as ``startup_cpu_s`` or, where the job took less CPU in all (Snakemake
    samples a short job's CPU time and undercounts it), as the job's own CPU seconds. What
    one process per model saves, measured: benchmarks/evaluation_processes.py."""
    measured = read_benchmarks(root, since.stat().st_mtime if since else None)
    jobs = [(rule, job) for rule, found in measured.items() for job in found]
    cpu = sum(job["cpu_time"] or 0.0 for _, job in jobs)
    per_model = defaultdict(int)
    for rule, job in jobs:
        model = model_of(job["job"])
        if STAGES.get(rule, "evaluation") == "evaluation" and model is not None:
            per_model[model] += 1
    saved = sum(n - 1 for n in per_model.values())
    starts = sum(min(startup_cpu_s, job["cpu_time"] or 0.0) for _, job in jobs)
    evaluation_cpu = sum(
        job["cpu_time"] or 0.0
        for rule, job in jobs
        if STAGES.get(rule, "evaluation") == "evaluation"
    )
    return {
        "jobs": len(jobs),
        "job_cpu_s": round(cpu, 1),
        "startup_cpu_s": startup_cpu_s,
        "startup_total_cpu_s": round(starts, 1),
        "startup_share": round(starts / cpu, 3),
        "evaluation_jobs": sum(per_model.values()),
        "models_evaluated": len(per_model),
        "evaluation_job_cpu_s": round(evaluation_cpu, 1),
        "starts_saved_by_one_job_per_model": saved,
        "cpu_s_saved_by_one_job_per_model": round(saved * startup_cpu_s, 1),
        "saved_share_of_job_cpu": round(saved * startup_cpu_s / cpu, 3),
    }


def markdown(rows: list[dict]) -> str:
    lines = [
        "| kind | jobs | median CPU s | median wall s | total CPU min |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {r['kind']} | {r['jobs']} | {r['median_cpu_s']:g} | {r['median_wall_s']:g} | "
        f"{r['total_cpu_s'] / 60:.1f} |"
        for r in rows
    ]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--benchmarks", default="results/benchmarks")
    p.add_argument("--since", default=None)
    p.add_argument("--markdown", action="store_true")
    p.add_argument(
        "--startup",
        action="store_true",
        help="the fixed start's share of the jobs' CPU time (measured now)",
    )
    a = p.parse_args()
    if a.startup:
        from simreg.plan import startup_cpu_seconds

        print(
            json.dumps(
                startup_share(
                    Path(a.benchmarks), startup_cpu_seconds(), Path(a.since) if a.since else None
                ),
                indent=1,
            )
        )
        return
    rows = job_times(Path(a.benchmarks), Path(a.since) if a.since else None)
    print(markdown(rows) if a.markdown else json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
