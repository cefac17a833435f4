"""--device auto on a machine with several GPUs: each process claims its own (simreg.devices)."""

import subprocess
import sys
import time

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
        [sys.executable, "-c",
         "import sys, time; from simreg import devices; "
         f"print(devices.claim_gpu(n_gpus=2, lock_dir={str(tmp_path)!r}, environ={{}}), flush=True); "
         "time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
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
        [sys.executable, "-c",
         "from simreg import devices; "
         f"print(devices.claim_gpu(n_gpus=1, lock_dir={str(tmp_path)!r}, environ={{}}, poll_s=0.05))"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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
