"""One GPU per job on a machine with several: ``--device auto`` claims a free one.

Snakemake counts GPUs (``--resources gpu=N``) but does not say which device a job gets,
and every process sees every GPU unless ``CUDA_VISIBLE_DEVICES`` is set. So before torch
touches CUDA, ``claim_gpu`` takes an exclusive ``flock`` on ``<lock dir>/simreg-gpu<i>.lock``
for the first free ``i`` and sets ``CUDA_VISIBLE_DEVICES=i``; the job then uses ``cuda``
(= that GPU). The lock is held by the open file until the process exits, so the kernel
releases it even when a job crashes or is killed: no stale lock files to clean up.

Left alone:
* ``CUDA_VISIBLE_DEVICES`` already set (SLURM with ``--gpus``/``--gres`` sets it, or you did);
* machines without NVIDIA GPUs (nothing to claim).

A job that was given a GPU runs with ``--device cuda`` (the rules pass it when the job's
``gpu`` resource is above 0, or ``training.device: cuda``), and :func:`require_cuda` stops it
with the reason and the fix when it sees no CUDA device, instead of training on the CPU for
days. ``--device auto`` (a job given no GPU) uses a GPU when it sees one, else the CPU;
``--device cpu`` is the explicit choice of the CPU.

The lock directory is ``$SIMREG_GPU_LOCK_DIR`` or ``/tmp`` (one machine's jobs share it;
apptainer binds the host's ``/tmp`` by default, so jobs in containers see the same locks).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

LOCK_DIR_ENV = "SIMREG_GPU_LOCK_DIR"
_held: list[int] = []  # open lock files: one per claim, held until the process exits


def count_gpus() -> int:
    """NVIDIA GPUs of this machine, found without initializing CUDA (which would fix the
    visible devices before ``CUDA_VISIBLE_DEVICES`` is set)."""
    proc = Path("/proc/driver/nvidia/gpus")
    if proc.is_dir():
        return len(list(proc.iterdir()))
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return 0
    if out.returncode != 0:
        return 0
    return sum(line.startswith("GPU ") for line in out.stdout.splitlines())


def _try_lock(path: Path) -> int | None:
    import fcntl

    fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o666)  # read-only: fine for flock, any user
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def claim_gpu(
    n_gpus: int | None = None,
    lock_dir: str | os.PathLike | None = None,
    environ=None,
    wait: bool = True,
    poll_s: float = 2.0,
) -> int | None:
    """Claim a free GPU for this process; return its index, or None when nothing is claimed
    (``CUDA_VISIBLE_DEVICES`` already set, or no GPU). With ``wait``, polls until one frees
    (jobs of other users or runs can hold them); without, returns None when all are taken."""
    environ = os.environ if environ is None else environ
    if environ.get("CUDA_VISIBLE_DEVICES") is not None:
        return None
    n_gpus = count_gpus() if n_gpus is None else n_gpus
    if n_gpus <= 0:
        return None
    lock_dir = Path(lock_dir or environ.get(LOCK_DIR_ENV) or "/tmp")
    lock_dir.mkdir(parents=True, exist_ok=True)
    told = False
    while True:
        for index in range(n_gpus):
            fd = _try_lock(lock_dir / f"simreg-gpu{index}.lock")
            if fd is not None:
                _held.append(fd)
                environ["CUDA_VISIBLE_DEVICES"] = str(index)
                print(
                    f"simreg: using GPU {index} (lock {lock_dir}/simreg-gpu{index}.lock)",
                    file=sys.stderr,
                )
                return index
        if not wait:
            return None
        if not told:
            print(
                f"simreg: all {n_gpus} GPUs are claimed (locks in {lock_dir}); waiting",
                file=sys.stderr,
            )
            told = True
        time.sleep(poll_s)


def release_all() -> None:
    """Release every claim of this process (tests; a job just exits)."""
    while _held:
        os.close(_held.pop())


def job_device(configured: str, gpus: int = 0, gres: str | None = None) -> str:
    """The ``--device`` of a job: ``cuda`` when it was given a GPU (``gpu`` resource > 0, or a
    ``gres`` naming a GPU) and the config says ``auto``; else the configured device (``cpu``
    stays the CPU, also on a GPU job)."""
    given_gpu = (gpus or 0) > 0 or "gpu" in str(gres or "")
    return "cuda" if configured == "auto" and given_gpu else configured


GPU_PARTITION_ENV = "SIMREG_GPU_PARTITION"


def slurm_partition(gpus, environ=None) -> str:
    """The SLURM partition of a job (its ``slurm_partition`` resource): for a job with GPUs
    ``$SIMREG_GPU_PARTITION`` when set, else ``$SBATCH_PARTITION``; empty (the plugin's
    default partition) when neither is set. The rules' one place for the GPU partition."""
    environ = os.environ if environ is None else environ
    gpu = environ.get(GPU_PARTITION_ENV) if (gpus or 0) > 0 else None
    return gpu or environ.get("SBATCH_PARTITION", "")


def no_cuda_message(device: str, environ=None) -> str:
    environ = os.environ if environ is None else environ
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    return (
        f"this job was given a GPU (--device {device}: its `gpu` resource is above 0, or "
        f"training.device is cuda) but sees no CUDA device (CUDA_VISIBLE_DEVICES="
        f"{visible if visible is not None else 'unset'}). It will not fall back to the CPU, "
        "where training takes days. Fix: in a container, apptainer needs --nv (run snakemake "
        "from the repository, whose workflow profile profiles/default passes it, or add "
        '--apptainer-args="--nv"); on SLURM, submit to a partition with GPUs '
        "(SIMREG_GPU_PARTITION, docs/running.md); check `nvidia-smi` and that torch is a CUDA "
        "build. To run on the CPU, say so: snakemake --config 'training={device: cpu}' (or "
        "'resources={gpu: 0}' for jobs that should ask for no GPU)."
    )


def require_cuda(device: str, available=None) -> None:
    """Stop a job run with ``--device cuda[:i]`` that sees no CUDA device, saying why and how
    to fix it (``available``: the answer of ``torch.cuda.is_available``, for tests)."""
    if not str(device).startswith("cuda"):
        return
    if available is None:
        import torch

        available = torch.cuda.is_available()
    if not available:
        raise SystemExit(f"simreg: error: {no_cuda_message(device)}")
