"""Downloads have their own local jobs (the login node on a cluster); compute jobs only read."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from test_datasets import _fake_imagenette
from test_environment import workflow_rules

from simreg import cli
from simreg.data import download

ROOT = Path(__file__).resolve().parents[1]


def dry_run(*args) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "-p", "--forceall", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_download_jobs_are_local_and_compute_jobs_only_read():
    """The paper's config: CIFAR-10 and its corruptions are fetched by local jobs that the
    dataset and corruptions jobs wait for; those run with --no-download."""
    rules = workflow_rules()
    assert "localrule=True" in rules["download"]
    assert "localrule=True" in rules["download_corruptions"]
    assert "localrule=True" not in rules["dataset"] | rules["corruptions"]
    text = dry_run("results/datasets/cifar10_gray_c.h5")
    commands = [
        line.removeprefix("Shell command: ")
        for line in text.splitlines()
        if line.startswith("Shell command: simreg ")
    ]
    fetching = [c for c in commands if c.startswith("simreg download ")]
    assert len(fetching) == 2 and any("--corruptions" in c for c in fetching)
    reading = [c for c in commands if c.startswith(("simreg dataset ", "simreg corruptions "))]
    assert len(reading) == 3  # cifar10 gray and rgb, the corrupted gray set
    assert all("--no-download" in c and " --download" not in c for c in reading)
    # --until the download rules: only the downloads (what a login node runs first)
    text = dry_run("--until", "download", "download_corruptions")
    planned = {
        line.split()[-1].rstrip(":")
        for line in text.splitlines()
        if line.startswith(("rule ", "localrule "))
    }
    assert planned == {"download", "download_corruptions"}


def test_no_download_job_without_data_download(tmp_path):
    (tmp_path / "offline.yaml").write_text("data: {download: false}\n")
    text = dry_run(
        "results/datasets/cifar10_gray_c.h5", "--configfile", str(tmp_path / "offline.yaml")
    )
    assert "rule download" not in text and "rule dataset" in text


def test_download_command_with_the_files_there_reads_them_offline(tmp_path):
    """Imagenette already extracted (torchvision refuses to download over it): the job
    checks it and writes its record, without the network."""
    _fake_imagenette(tmp_path)
    out = tmp_path / "record.json"
    cli.main(["download", "--name", "imagenette", "--data-root", str(tmp_path), "--out", str(out)])
    record = json.loads(out.read_text())
    assert record["dataset"] == "imagenette" and "Imagenette" in record["source"]
    assert "simreg_version" in record
    assert download.marker_file("imagenette") == "results/downloads/imagenette.json"
