"""What one evaluation process per model saves, measured on a finished run: every
evaluation job the config's DAG plans with one job per kind (``resources.evaluation_jobs:
per_kind``), run again from its own command line twice,

- one fresh process per job (as per_kind runs them), and
- one fresh process per model, calling ``simreg.cli.main`` for each of that model's jobs in
  turn (the imports of torch, foolbox and simreg paid for once; each job still loads its own
  model and test split; what per_model's evaluate_model jobs do),

on ``--workers`` processes side by side, each with one thread (as Snakemake gives a
one-thread job). Prints JSON: processes, their CPU seconds (user + system, from the
children's rusage) and the wall seconds of each way.

    python benchmarks/evaluation_processes.py [--configfile configs/quick.yaml] [--workers 2]

Run it in the checkout of a finished run of that config (it needs the run's models and data):
it writes each evaluation's outputs again, from the same inputs; the logs are not touched.
The jobs come from ``snakemake -n -p --forceall all`` (``simreg.plan.dry_run_jobs``, with
configs/evaluations-per-kind.yaml merged last);
Snakemake's own cost per job (its shell, its benchmark) is not in either number.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

from simreg.evaluate.registry import EVALUATIONS
from simreg.plan import PER_KIND_EVALUATIONS, dry_run_jobs

ONE_THREAD = {
    name: "1"
    for name in (
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "NUMEXPR_NUM_THREADS",
    )
}
RUN_IN_TURN = (
    "import json, sys\n"
    "from simreg.cli import main\n"
    "for argv in json.loads(sys.argv[1]):\n"
    "    main(argv)\n"
)


def evaluation_commands(configfiles: list[str]) -> dict[str, list[list[str]]]:
    """Per model (its ``--keys``), the argv of each of its evaluation jobs, in DAG order."""
    by_model = defaultdict(list)
    for job in dry_run_jobs([*configfiles, PER_KIND_EVALUATIONS]):
        if job["rule"] in EVALUATIONS:
            argv = shlex.split(job["shell"].split(" >> ")[0])[1:]  # the log redirect off
            keys = json.loads(argv[argv.index("--keys") + 1])
            by_model[json.dumps(keys, sort_keys=True)].append(argv)
    return dict(by_model)


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_in_one_process(argvs: list[list[str]]) -> None:
    subprocess.run(
        [sys.executable, "-c", RUN_IN_TURN, json.dumps(argvs)],
        check=True,
        env={**os.environ, **ONE_THREAD},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def measure(groups: list[list[list[str]]], workers: int) -> dict:
    cpu, started = children_cpu_seconds(), time.time()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(run_in_one_process, groups))
    return {
        "processes": len(groups),
        "cpu_s": round(children_cpu_seconds() - cpu, 1),
        "wall_s": round(time.time() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configfile", nargs="+", default=["configs/quick.yaml"])
    parser.add_argument("--workers", type=int, default=2)
    a = parser.parse_args()
    by_model = evaluation_commands(a.configfile)
    jobs = [[argv] for argvs in by_model.values() for argv in argvs]
    result = {
        "configfiles": a.configfile,
        "workers": a.workers,
        "evaluation_jobs": len(jobs),
        "models": len(by_model),
        "one_process_per_job": measure(jobs, a.workers),
        "one_process_per_model": measure(list(by_model.values()), a.workers),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
