"""Checkpoint/resume: a training run killed mid-way and resumed ends with the same weights."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from simreg.data.store import build_dataset
from simreg.targets.pixel_similarity import build_similarity
from simreg.train.settings import TrainSettings
from simreg.train.trainer import train

SETTINGS = TrainSettings(
    method="threshold",
    alpha=10.0,
    width=4,
    epochs=4,
    validation_fraction=0.1,
    batch_size=32,
    augment=False,
    regularizer={"threshold": 0.4, "reg_pairs": 16, "z_eps": 1e-5, "mean_momentum": 0.1},
)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("resume")
    task = folder / "digits_gray.h5"
    sim = folder / "similarity.h5"
    build_dataset("digits", "gray", task)
    build_similarity(task, sim, n_images=200, image_seed=0)
    return task, sim


def run_train(task, sim, out, checkpoint_dir, settings=SETTINGS):
    train(
        task,
        {"similarity": sim},
        out / "model.pt",
        out / "metrics.csv",
        checkpoint_dir,
        settings,
        device="cpu",
        threads=1,
    )


def file_id(path):
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns)


def test_resume_after_kill_gives_identical_weights(data, tmp_path):
    task, sim = data

    # A: uninterrupted, in this process
    out_a = tmp_path / "a"
    run_train(task, sim, out_a, tmp_path / "ckpt_a")
    saved_a = torch.load(out_a / "model.pt", weights_only=False)

    # B: started in a subprocess, killed after the second checkpoint, resumed here
    out_b, ckpt_b = tmp_path / "b", tmp_path / "ckpt_b"
    script = textwrap.dedent(f"""
        from simreg.train.settings import TrainSettings
        from simreg.train.trainer import train
        settings = TrainSettings(**{dataclasses.asdict(SETTINGS)!r})
        train({str(task)!r}, {{"similarity": {str(sim)!r}}}, {str(out_b / "model.pt")!r},
              {str(out_b / "metrics.csv")!r}, {str(ckpt_b)!r}, settings, device="cpu", threads=1)
    """)
    log = open(tmp_path / "child.log", "w")
    child = subprocess.Popen([sys.executable, "-c", script], stdout=log, stderr=subprocess.STDOUT)
    first = None  # (inode, mtime) of the first checkpoint seen
    deadline = time.monotonic() + 120
    try:
        while True:
            found = sorted(ckpt_b.glob("last-*.pt"))
            checkpoint = found[0] if found else ckpt_b / "none.pt"
            current = file_id(checkpoint)
            if first is None:
                first = current  # stays None until the first checkpoint appears
            elif current != first:  # replaced at least once: epoch >= 1 is stored
                break
            if child.poll() is not None:
                pytest.fail(
                    f"training subprocess ended (rc {child.returncode}) before it was "
                    f"killed:\n{(tmp_path / 'child.log').read_text()}"
                )
            assert time.monotonic() < deadline, "no checkpoint was replaced in time"
            time.sleep(0.002)
        child.send_signal(signal.SIGKILL)
        child.wait()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        log.close()
    assert child.returncode == -signal.SIGKILL
    assert not (out_b / "model.pt").exists()
    assert not (out_b / "metrics.csv").exists()
    stored = torch.load(checkpoint, weights_only=False)
    assert 1 <= stored["epoch"] < SETTINGS.epochs - 1  # interrupted with work left to do

    run_train(task, sim, out_b, ckpt_b)
    saved_b = torch.load(out_b / "model.pt", weights_only=False)

    assert saved_a["provenance"]["best_epoch"] == saved_b["provenance"]["best_epoch"]
    for part in ("model", "similarity"):
        a = saved_a["model"] if part == "model" else saved_a["modules"][part]
        b = saved_b["model"] if part == "model" else saved_b["modules"][part]
        assert a.keys() == b.keys() and len(a) > 0
        for key in a:
            assert torch.equal(a[key], b[key]), f"{part}.{key} differs after resume"


def test_a_checkpoint_of_other_settings_or_data_is_never_resumed(data, tmp_path):
    """A checkpoint left by a killed run with other settings (or other input content) is
    discarded: the new run equals a fresh one. A finished run leaves no checkpoint."""
    task, sim = data
    one_epoch = dataclasses.replace(SETTINGS, epochs=1)
    fresh = tmp_path / "fresh"
    run_train(task, sim, fresh, tmp_path / "ckpt_fresh", dataclasses.replace(one_epoch, alpha=5.0))
    assert list((tmp_path / "ckpt_fresh").glob("*.pt")) == []  # deleted after success

    ckpt = tmp_path / "ckpt"
    trainer_state = {"epoch": 0, "trainer": {"model": {}}, "rows": [], "best": {}}
    ckpt.mkdir()
    for name in ("last.pt", "last-0123456789abcdef.pt"):  # an old-style and a foreign one
        torch.save(trainer_state, ckpt / name)
    run_train(task, sim, tmp_path / "second", ckpt, dataclasses.replace(one_epoch, alpha=5.0))
    assert list(ckpt.glob("*.pt")) == []
    a = torch.load(fresh / "model.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "second" / "model.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_checkpoint_key_follows_settings_and_input_content(data, tmp_path):
    from simreg.data.store import build_dataset
    from simreg.train.trainer import run_fingerprint

    task, sim = data
    settings = dataclasses.asdict(SETTINGS)
    base = run_fingerprint(settings, {"task": task, "similarity": sim})
    assert base == run_fingerprint(settings, {"task": task, "similarity": sim})
    other = dataclasses.replace(SETTINGS, alpha=5.0)
    assert base != run_fingerprint(dataclasses.asdict(other), {"task": task, "similarity": sim})
    resplit = tmp_path / "digits_gray.h5"
    build_dataset("digits", "gray", resplit, split_seed=1)  # data.split_seed changed
    assert base != run_fingerprint(settings, {"task": resplit, "similarity": sim})


def test_a_batch_larger_than_the_training_set_is_refused(data, tmp_path):
    task, sim = data
    too_big = dataclasses.replace(SETTINGS, batch_size=100_000, epochs=1)
    with pytest.raises(ValueError, match="batch_size"):
        run_train(task, sim, tmp_path / "out", tmp_path / "ckpt", too_big)
    assert not (tmp_path / "out" / "model.pt").exists()


def test_a_run_whose_validation_loss_is_never_finite_says_it_diverged(tmp_path):
    from types import SimpleNamespace

    from simreg.train.trainer import write_outputs

    trainer = SimpleNamespace(s=SETTINGS)
    rows = [{"epoch": e, "val_loss": float("nan")} for e in range(3)]
    never = {"val_loss": float("inf"), "epoch": -1, "state": None}
    with pytest.raises(RuntimeError, match="not finite in any of the 3 epochs"):
        write_outputs(
            trainer,
            rows,
            never,
            tmp_path / "m.pt",
            tmp_path / "m.csv",
            task_path="t.h5",
            inputs={},
            device="cpu",
            run_fingerprint="x",
        )
    with pytest.raises(RuntimeError, match="no epoch was trained"):
        write_outputs(
            trainer,
            [],
            never,
            tmp_path / "m.pt",
            tmp_path / "m.csv",
            task_path="t.h5",
            inputs={},
            device="cpu",
            run_fingerprint="x",
        )
    assert not (tmp_path / "m.pt").exists()
