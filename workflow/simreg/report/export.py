"""A finished run's report, copied out of ``results/`` so that it can be committed and read
beside a user's own run (``simreg export``; docs/results/cifar10-subset/ is one).

What is copied: results/claims.md and results/tables/claims.csv, and every figure of the
config that the run drew, as its PNG and its ``.data.csv`` (the numbers drawn). Nothing else
of ``results/`` leaves it. A README.md beside them says how they were made: the command, the
commit, the wall time the caller measured, and the job time that Snakemake's ``benchmark:``
files add up to per rule. The folder must stay small enough to commit (``max_bytes``).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pandas as pd

from simreg.outputs import write_text
from simreg.paths import RESULTS

MAX_BYTES = 3_000_000  # issue #24: the committed reference report stays under 3 MB


def run_files(config: dict, results: Path) -> list[Path]:
    """The files of ``results`` to export: the claims report and table, and each configured
    figure's PNG and .data.csv that exist."""
    from simreg.report.claims import CLAIMS_REPORT, CLAIMS_TABLE
    from simreg.report.targets import TARGETS, figure_file, is_built

    def here(path: str) -> Path:  # a results/... path, relative to the results folder given
        return results / Path(path).relative_to(RESULTS)

    files = [here(CLAIMS_REPORT), here(CLAIMS_TABLE)]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        raise FileNotFoundError(
            f"the run has no {', '.join(missing)}: build results/claims.md first"
        )
    for name, target in TARGETS.items():
        if target.kind == "figure" and is_built(name, config):
            files += [
                f
                for f in (here(figure_file(name, ".png")), here(figure_file(name, ".data.csv")))
                if f.exists()
            ]
    return files


def job_times(measured: dict[str, list[dict]], planned=None) -> pd.DataFrame:
    """Per rule: jobs and their summed wall and CPU seconds, from the run's benchmark files as
    ``simreg.plan.read_benchmarks`` reads them (per rule: Snakemake's ``s`` and ``cpu_time``
    and the file's ``job``, its path under the benchmarks folder). With ``planned`` (the same
    paths of every job of the run's DAG: ``simreg.plan.planned_benchmarks``), a file counts
    only where the DAG plans it (a results folder may hold jobs of other configs)."""
    rows = []
    for rule, jobs in measured.items():
        for job in jobs:
            if planned is not None and job["job"] not in planned:
                continue
            cpu = float("nan") if job["cpu_time"] is None else job["cpu_time"]
            rows.append({"rule": rule, "s": job["s"], "cpu": cpu})
    frame = pd.DataFrame(rows, columns=["rule", "s", "cpu"])
    return (
        frame.groupby("rule")
        .agg(jobs=("s", "count"), seconds=("s", "sum"), cpu_seconds=("cpu", "sum"))
        .reset_index()
        .sort_values("cpu_seconds", ascending=False)
    )


def commit_of(folder: Path) -> str:
    """The git commit checked out at ``folder`` ('unknown' outside a git checkout), with
    '+changes' where tracked files differ from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, check=True, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=folder,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if dirty.strip() else "")


def readme(
    files: list[Path], times: pd.DataFrame, command: str, commit: str, wall: str, machine: str
) -> str:
    lines = [
        "# How this report was made",
        "",
        f"- command: `{command}`",
        f"- commit: `{commit}`",
        f"- wall time: {wall}",
        f"- machine: {machine}",
        "",
        "The verdicts are in [claims.md](claims.md) (the method: docs/claims.md). "
        "Each figure is here as its PNG and the numbers it draws (`.data.csv`).",
        "",
    ]
    if len(times):
        lines += [
            f"Job time from the run's benchmark files ({int(times['jobs'].sum())} jobs): "
            f"{times['cpu_seconds'].sum() / 60:.0f} CPU minutes, what the jobs cost on "
            f"idle cores; {times['seconds'].sum() / 60:.0f} minutes of job wall time, "
            "summed over jobs that ran side by side (it also counts waiting for a core):",
            "",
            "| rule | jobs | CPU minutes | wall minutes |",
            "| --- | --- | --- | --- |",
        ]
        lines += [
            f"| {r.rule} | {r.jobs} | {r.cpu_seconds / 60:.1f} | {r.seconds / 60:.1f} |"
            for r in times.itertuples(index=False)
        ]
        lines.append("")
    lines += ["Files:", ""] + [f"- [{f.name}]({f.name})" for f in files]
    return "\n".join(lines) + "\n"


def export_run(
    config: dict,
    results: str | Path,
    out: str | Path,
    command: str,
    wall: str,
    machine: str,
    max_bytes: int = MAX_BYTES,
    measured: dict[str, list[dict]] | None = None,
    planned=None,
) -> list[Path]:
    """Copy the run's report files (:func:`run_files`) into ``out`` with a README.md, whose job
    times come from ``measured`` (the run's benchmark files, as ``simreg.plan.read_benchmarks``
    reads them; none: no job times) of the jobs ``planned`` (:func:`job_times`); refuses,
    copying nothing, when the files would exceed ``max_bytes``."""
    results, out = Path(results), Path(out)
    files = run_files(config, results)
    size = sum(f.stat().st_size for f in files)
    if size > max_bytes:
        raise ValueError(
            f"the report's {len(files)} files take {size:,} bytes, over the {max_bytes:,} allowed"
        )
    out.mkdir(parents=True, exist_ok=True)
    copied = []
    for f in files:
        shutil.copyfile(f, out / f.name)
        copied.append(out / f.name)
    write_text(
        readme(
            copied,
            job_times(measured or {}, planned),
            command,
            commit_of(results.resolve().parent),
            wall,
            machine,
        ),
        out / "README.md",
    )
    return copied
