"""--device auto on a machine with several GPUs: each process claims its own (simreg.devices)."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from simreg import devices


@pytest.fixture(autouse=True)
def release():
    yield
    devices.release_all()


def test_claims_distinct_gpus_and_sets_visible_devices(tmp_path):
    envs = [{}, {}, {}]
    got = [devices.claim_gpu(n_gpus=2, lock_dir=tmp_path, environ=e, wait=False) for e in envs]
    assert got == [0, 1, None]  # a third job finds both taken
    assert [e.get("CUDA_VISIBLE_DEVICES") for e in envs] == ["0", "1", None]
    devices.release_all()
    assert devices.claim_gpu(n_gpus=2, lock_dir=tmp_path, environ={}, wait=False) == 0


def test_respects_preset_visible_devices_and_cpu_machines(tmp_path):
    env = {"CUDA_VISIBLE_DEVICES": "3"}  # e.g. set by SLURM --gpus
    assert devices.claim_gpu(n_gpus=4, lock_dir=tmp_path, environ=env) is None
    assert env == {"CUDA_VISIBLE_DEVICES": "3"}
    env = {}
    assert devices.claim_gpu(n_gpus=0, lock_dir=tmp_path, environ=env) is None
    assert env == {}


def test_lock_is_released_when_the_holder_dies(tmp_path):
    """Another process holds GPU 0; this one gets GPU 1, and GPU 0 once that process is gone."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from simreg import devices; "
            f"print(devices.claim_gpu(n_gpus=2, lock_dir={str(tmp_path)!r}, environ={{}}), "
            "flush=True); "
            "time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "0"
        assert devices.claim_gpu(n_gpus=2, lock_dir=tmp_path, environ={}, wait=False) == 1
        devices.release_all()
        assert devices.claim_gpu(n_gpus=1, lock_dir=tmp_path, environ={}, wait=False) is None
    finally:
        holder.kill()
        holder.wait()
    deadline = time.time() + 10
    while (got := devices.claim_gpu(n_gpus=1, lock_dir=tmp_path, environ={}, wait=False)) is None:
        assert time.time() < deadline
        time.sleep(0.1)
    assert got == 0


def test_waits_for_a_free_gpu(tmp_path):
    devices.claim_gpu(n_gpus=1, lock_dir=tmp_path, environ={}, wait=False)
    waiter = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from simreg import devices; "
            f"print(devices.claim_gpu(n_gpus=1, lock_dir={str(tmp_path)!r}, environ={{}}, "
            "poll_s=0.05))",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.5)
    assert waiter.poll() is None  # still waiting
    devices.release_all()
    out, err = waiter.communicate(timeout=20)
    assert out.strip() == "0" and "waiting" in err


def test_cli_auto_claims_before_torch(monkeypatch):
    """`simreg ... --device auto` claims a GPU in main(); cpu and explicit devices do not."""
    from simreg import cli

    calls = []
    monkeypatch.setattr(devices, "claim_gpu", lambda: calls.append(1))
    monkeypatch.setattr(cli, "cmd_evaluate", lambda a: None)  # parser() binds it per call
    args = ["evaluate", "noise", "--input", "model=m", "--out", "csv=o"]
    cli.main(args)
    cli.main(args + ["--device", "cpu"])
    assert calls == [1]


def test_a_job_given_a_gpu_runs_with_cuda_and_cpu_is_an_explicit_choice():
    assert devices.job_device("auto", gpus=1) == "cuda"
    assert devices.job_device("auto", gpus=0, gres="gpu:a100:1") == "cuda"
    assert devices.job_device("auto", gpus=0) == "auto"  # no GPU asked for (configs/quick.yaml)
    assert devices.job_device("cpu", gpus=1) == "cpu"  # training.device: cpu
    assert devices.job_device("cuda", gpus=0) == "cuda"  # training.device: cuda


def test_a_gpu_job_without_cuda_fails_saying_why_and_how_to_fix_it(tmp_path):
    """`simreg train --device cuda` (what the rule runs for a job with `gpu: 1`) on a machine
    whose GPUs are hidden, as apptainer without --nv hides them: it stops before reading any
    input, and the message names the cause and both ways out."""
    missing = tmp_path / "missing.h5"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # no CUDA device, on any machine
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "simreg.cli",
            "train",
            "--task-data",
            str(missing),
            "--model-out",
            str(tmp_path / "m.pt"),
            "--metrics-out",
            str(tmp_path / "m.csv"),
            "--checkpoint-dir",
            str(tmp_path / "ck"),
            "--settings",
            "{}",
            "--device",
            "cuda",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode != 0
    assert "sees no CUDA device" in out.stderr
    assert "--nv" in out.stderr and "training={device: cpu}" in out.stderr
    assert "missing.h5" not in out.stderr  # it stopped at the device, not at the input
    with pytest.raises(SystemExit, match="sees no CUDA device"):
        devices.require_cuda("cuda", available=False)
    devices.require_cuda("cpu", available=False)  # the CPU, chosen: no complaint
    devices.require_cuda("cuda", available=True)


def test_the_rules_give_gpu_jobs_cuda_and_quick_jobs_no_gpu(tmp_path):
    """A dry run's shell commands: the default config's train jobs ask for a GPU and run with
    --device cuda; the quick config asks for none and keeps --device auto (CPU here)."""
    root = Path(__file__).resolve().parents[1]

    def devices_of(*args):
        out = subprocess.run(
            [sys.executable, "-m", "snakemake", "-n", "-p", "--forceall", *args],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == 0, out.stderr[-2000:]
        return {
            line.split("--device ")[1].split()[0]
            for line in out.stdout.splitlines()
            if line.removeprefix("Shell command: ").startswith("simreg train ")
        }

    assert devices_of("results/figures/noise_accuracy.pdf") == {"cuda"}
    assert devices_of(
        "results/figures/noise_accuracy.pdf", "--configfile", "configs/quick.yaml"
    ) == {"auto"}
    assert devices_of(
        "results/figures/noise_accuracy.pdf", "--config", "training={'device': 'cpu'}"
    ) == {"cpu"}
