"""Workflow hygiene: `snakemake --lint` finds nothing and snakefmt leaves the files as they are."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("configfile", [None, "configs/quick.yaml"])
def test_snakemake_lint_is_clean(configfile):
    cmd = [sys.executable, "-m", "snakemake", "--lint"]
    if configfile:
        cmd += ["--configfile", configfile]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
    text = out.stdout + out.stderr
    assert "Lints for" not in text, text
    assert out.returncode == 0, text


def test_snakefmt_check_passes():
    out = subprocess.run([sys.executable, "-m", "snakefmt", "--check", "Snakefile", "workflow/rules/"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
