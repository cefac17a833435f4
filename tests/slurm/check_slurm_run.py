"""Helpers of tests/slurm/run_slurm_test.sh (run there, against a live test cluster).

check_slurm_run.py kill SLURM_WORKDIR
    wait until the threshold model's training checkpoint has been replaced once (epoch >= 1
    stored), then `scancel` that training job; print what was cancelled (JSON).
check_slurm_run.py check LOCAL_WORKDIR SLURM_WORKDIR SLURM_LOG
    the sbatch submissions (Snakemake's --verbose log + slurmdbd's records) against the
    rules' resources, the cancelled job's retry and resume, and the outputs against the
    local run's.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[2]
CHECKPOINT_GLOB = "results/checkpoints/**/threshold/**/last*.pt"  # last-<fingerprint>.pt
# provenance time stamps and durations differ run to run, and so does the fingerprint of a
# run (it hashes its input files' attrs, creation times included)
VOLATILE = {"created", "seconds", "run_fingerprint"}
# the rules that ask for `gpu: <config resources.gpu>` (1 in tests/slurm/config.yaml): those
# written out in workflow/rules/, and the evaluations whose registry entry asks for one
GPU_RULES = {
    "train",
    "train_pack",
    "fit_predictor",
    "fgsm_perturbations",
    "robustbench_corruptions",
    "noise",
    "fgsm_transfer",
    "boundary",
    "whitebox",
    "minimal_distance",
    "lrc_noise",
    "eigenspectrum",
    "sensitivity",
    "corruption_accuracy",
}


def slurm(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


# ---- kill --------------------------------------------------------------------------------


def kill(workdir: Path, timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    first = None  # (path, inode, mtime) of the first checkpoint seen
    while True:
        assert time.monotonic() < deadline, "no training checkpoint was replaced in time"
        found = sorted(workdir.glob(CHECKPOINT_GLOB))
        if found:
            try:
                stat = found[0].stat()
            except FileNotFoundError:
                continue
            current = (found[0], stat.st_ino, stat.st_mtime_ns)
            if first is None:
                first = current
            elif current != first:
                break  # replaced: at least epoch 1 is stored, and epochs remain
        time.sleep(0.05)
    jobs = [
        line.split("|", 1) for line in slurm("squeue", "-h", "-t", "RUNNING", "-o", "%i|%k").split()
    ]
    train = [
        job for job, comment in jobs if comment.startswith("rule_train_") and "threshold" in comment
    ]
    assert len(train) == 1, f"running threshold training jobs: {jobs}"
    slurm("scancel", train[0])
    print(json.dumps({"cancelled": train[0], "checkpoint": str(first[0])}))


# ---- check: submissions -------------------------------------------------------------------


def job_blocks(text: str) -> list[dict]:
    """The jobs Snakemake printed (a dry run, or a run's log): rule, whether local, jobid,
    wildcards, threads and resources (strings), in order; a retried job appears again."""
    blocks = []
    current: dict | None = None
    for line in text.splitlines():
        if match := re.match(r"^(local)?rule (\w+):$", line):
            current = {"rule": match[2], "local": bool(match[1]), "threads": 1, "wildcards": ""}
            blocks.append(current)
        elif current is not None and (match := re.match(r"^    (\w+): (.*)$", line)):
            if match[1] == "resources":
                current.update(dict(item.split("=", 1) for item in match[2].split(", ")))
            else:
                current[match[1]] = int(match[2]) if match[1] == "threads" else match[2]
        elif not line.startswith("    "):
            current = None
    return blocks


def parse_log(text: str) -> list[dict]:
    """Each sbatch submission in Snakemake's log: the job as Snakemake printed it just
    before (rule, threads, resources) and its SLURM job id."""
    latest: dict[str, dict] = {}  # snakemake job id -> the job's latest printed block
    blocks = iter(job_blocks(text))
    submissions = []
    for line in text.splitlines():
        if re.match(r"^(local)?rule \w+:$", line):
            block = next(blocks)
        elif line.startswith("    jobid: "):
            latest[line.split(": ", 1)[1]] = block
        elif match := re.search(r"Job (\d+) has been submitted with SLURM jobid (\d+)", line):
            submissions.append({**latest[match[1]], "slurm": match[2]})
    return submissions


def minutes(limit: str) -> int:
    """SLURM time limit ([D-]HH:MM:SS) in minutes."""
    days, _, clock = limit.rpartition("-")
    h, m, s = (int(x) for x in clock.split(":"))
    return (int(days or 0) * 24 + h) * 60 + m + (s > 0)


def accounting(ids: list[str]) -> dict[str, dict]:
    fields = [
        "JobIDRaw",
        "Account",
        "Partition",
        "ReqCPUS",
        "ReqMem",
        "Timelimit",
        "ReqTRES",
        "State",
        "Comment",
    ]
    out = slurm("sacct", "-X", "-P", "-n", "--format=" + ",".join(fields), "-j", ",".join(ids))
    rows = [dict(zip(fields, line.split("|"))) for line in out.splitlines() if line]
    return {row["JobIDRaw"]: row for row in rows}


def check_submissions(log: str, config: dict, cancelled: str) -> list[dict]:
    subs = parse_log(log)
    records = accounting([s["slurm"] for s in subs])
    rules = sorted(s["rule"] for s in subs)
    assert rules == ["dataset", "noise", "noise", "similarity", "train", "train", "train"], rules
    assert "localrule figure:" in log and "rule figure:" not in log.replace("localrule", "")
    for sub in subs:
        rec = records[sub["slurm"]]
        what = f"{sub['rule']} {sub['wildcards']} (SLURM job {sub['slurm']}): {rec}"
        gpu = int(sub.get("gpu", 0))
        assert rec["Account"] == sub["slurm_account"] == "simreg", what
        assert rec["Partition"] == sub["slurm_partition"] == "debug", what
        assert int(rec["ReqCPUS"]) == sub["threads"] * max(gpu, 1), what
        assert rec["ReqMem"] == f"{sub['mem_mb']}M", what
        assert minutes(rec["Timelimit"]) == int(sub["runtime"]), what
        tres = dict(item.split("=", 1) for item in rec["ReqTRES"].split(","))
        assert tres.get("gres/gpu") == (str(gpu) if gpu else None), what
        assert rec["Comment"].startswith(f"rule_{sub['rule']}"), what
        # the profile's GPU rules ask for one GPU, the others for none
        assert gpu == (1 if sub["rule"] in GPU_RULES else 0), what
        assert rec["State"] == ("CANCELLED by 0" if sub["slurm"] == cancelled else "COMPLETED") or (
            sub["slurm"] == cancelled and rec["State"].startswith("CANCELLED")
        ), what

    # the rules' own numbers (configs/quick.yaml resources), attempt 1 and the retry
    res = config["resources"]
    trains = [s for s in subs if s["rule"] == "train"]
    first = [s for s in trains if s["slurm"] == cancelled]
    assert len(first) == 1, f"the cancelled job {cancelled} is not a training job"
    retry = [s for s in trains if s["jobid"] == first[0]["jobid"] and s is not first[0]]
    assert len(retry) == 1, "the cancelled training job was not resubmitted exactly once"
    for sub in trains:
        attempt = 2 if sub is retry[0] else 1
        assert sub["threads"] == res["train_threads"]
        assert int(sub["mem_mb"]) == res["train_mem_mb"] * attempt, sub
        assert int(sub["runtime"]) == res["train_runtime"] * attempt, sub
    for sub in (s for s in subs if s["rule"] == "noise"):
        assert sub["threads"] == res["eval_threads"]
        assert int(sub["mem_mb"]) == res["eval_mem_mb"]
        assert int(sub["runtime"]) == res["eval_runtime"]
    return subs


# ---- check: outputs ----------------------------------------------------------------------


def compare_outputs(local: Path, remote: Path) -> int:
    import h5py
    import numpy as np
    import pandas as pd
    import torch

    def files(root):
        return {
            p.relative_to(root)
            for p in (root / "results").rglob("*")
            if p.is_file()
            and p.parts[len(root.parts) + 1] not in ("logs", "checkpoints")
            and p.suffix not in (".pdf", ".png")
        }

    names = files(local)
    assert names == files(remote), sorted(names ^ files(remote))
    assert any(n.suffix == ".pt" for n in names) and any(n.suffix == ".csv" for n in names)
    # every job left its benchmark file (simreg plan reads them) on both sides: the same
    # names (checked above), but times and memory differ run to run
    assert any(n.parts[1] == "benchmarks" for n in names)
    for name in sorted(names):
        a, b = local / name, remote / name
        if name.parts[1] == "benchmarks":
            continue
        if name.suffix == ".csv":
            fa, fb = (pd.read_csv(p) for p in (a, b))
            fa, fb = (f.drop(columns=[c for c in VOLATILE if c in f]) for f in (fa, fb))
            pd.testing.assert_frame_equal(fa, fb, check_exact=True, obj=str(name))
        elif name.suffix == ".pt":
            sa, sb = (torch.load(p, weights_only=False) for p in (a, b))
            for part in ("model", "modules"):
                flat_a = {k: v for k, v in _flatten(sa[part])}
                flat_b = {k: v for k, v in _flatten(sb[part])}
                assert flat_a.keys() == flat_b.keys(), name
                for key in flat_a:
                    assert torch.equal(flat_a[key], flat_b[key]), f"{name}: {part}.{key}"
            pa, pb = (
                {k: v for k, v in s["provenance"].items() if k not in VOLATILE} for s in (sa, sb)
            )
            assert pa == pb, (name, pa, pb)
        elif name.suffix == ".h5":
            with h5py.File(a) as ha, h5py.File(b) as hb:

                def visit(ga, gb, path=""):
                    assert {k: str(v) for k, v in ga.attrs.items() if k not in VOLATILE} == {
                        k: str(v) for k, v in gb.attrs.items() if k not in VOLATILE
                    }, f"{name}{path} attrs"
                    assert set(ga) == set(gb), f"{name}{path}"
                    for key in ga:
                        if isinstance(ga[key], h5py.Group):
                            visit(ga[key], gb[key], f"{path}/{key}")
                        else:
                            assert np.array_equal(ga[key][()], gb[key][()]), f"{name}{path}/{key}"

                visit(ha, hb)
        else:
            assert a.read_bytes() == b.read_bytes(), name
    return len(names)


def _flatten(tree, prefix=""):
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _flatten(value, f"{prefix}{key}.")
    else:
        yield prefix.rstrip("."), tree


def check(local: Path, remote: Path, log_path: Path) -> None:
    from simreg.config import load_config

    config = load_config(
        ROOT / "config.yaml", ROOT / "configs/quick.yaml", ROOT / "tests/slurm/config.yaml"
    )
    kill_log = log_path.parent / "kill.log"
    cancelled = json.loads(kill_log.read_text().strip().splitlines()[-1])["cancelled"]
    subs = check_submissions(log_path.read_text(), config, cancelled)
    print(
        f"slurm-test: {len(subs)} sbatch submissions match the rules' resources "
        f"(CPUs, memory, runtime, GPUs, account, partition)",
        file=sys.stderr,
    )
    for sub in subs:
        print(
            f"  {sub['rule']:<11} SLURM job {sub['slurm']:>3}: {sub['threads']} CPU, "
            f"{sub['mem_mb']} MB, {sub['runtime']} min, gpu={sub.get('gpu', 0)}",
            file=sys.stderr,
        )

    train_logs = [
        p for p in (remote / "results/logs/train").rglob("*.log") if "threshold" in str(p)
    ]
    assert len(train_logs) == 1, train_logs
    resumed = re.search(r"resuming from \S+ after epoch (\d+)", train_logs[0].read_text())
    assert resumed and int(resumed[1]) >= 1, f"no resume in {train_logs[0]}"
    print(
        f"slurm-test: job {cancelled} cancelled mid-training, resubmitted with twice the "
        f"memory and runtime, resumed after epoch {resumed[1]}",
        file=sys.stderr,
    )

    n = compare_outputs(local, remote)
    print(f"slurm-test: {n} outputs (weights, CSVs, HDF5) equal the local run's", file=sys.stderr)


if __name__ == "__main__":
    if sys.argv[1] == "kill":
        kill(Path(sys.argv[2]))
    elif sys.argv[1] == "check":
        check(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))
    else:
        sys.exit(__doc__)
