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
    out = subprocess.run(
        [sys.executable, "-m", "snakefmt", "--check", "Snakefile", "workflow/rules/"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_rule_logs_its_stdout_and_stderr():
    """Each rule's command appends both streams to its log (``>> {log} 2>&1``): a job's
    prints and its warnings and traceback end up in one file."""
    import re

    common = (ROOT / "workflow/rules/common.smk").read_text()
    evaluation_command = re.search(r"EVALUATION_COMMAND = \((.*?)\n\)", common, re.S).group(1)
    assert ">> {log} 2>&1" in evaluation_command
    rules = 0
    for path in sorted((ROOT / "workflow/rules").glob("*.smk")):
        text = path.read_text()
        assert "2>> {log}" not in text and not re.search(r"[^>]> \{log\}", text), path
        for rule in re.split(r"\n\s*rule\b", "\n" + text)[1:]:
            if "shell:" not in rule:
                continue
            rules += 1
            shell = rule.split("shell:", 1)[1]
            assert ">> {log} 2>&1" in shell or "EVALUATION_COMMAND" in shell, (path, rule[:40])
            if "simreg " in shell or "EVALUATION_COMMAND" in shell:
                # the hash of the code it runs (simreg.code): an edit reruns the job
                assert re.search(r"\n\s+code=(command_code\(|report_code|bundle_code)", rule), (
                    path,
                    rule[:40],
                )
    assert rules >= 14


def test_rules_take_resources_from_the_config_and_every_job_has_a_benchmark():
    """A rule's threads, mem_mb, runtime and gpu come from the config's ``resources`` section
    (no number written in a rule), and every job that runs on the cluster (not a localrule)
    writes a benchmark file: its time and memory are on disk (simreg plan reads them)."""
    import re

    jobs = 0
    for path in sorted((ROOT / "workflow/rules").glob("*.smk")):
        for rule in re.split(r"\n\s*rule\b", "\n" + path.read_text())[1:]:
            name = rule.split(":", 1)[0].strip()
            for resource in ("threads", "mem_mb", "runtime", "gpu"):
                assert not re.search(rf"\b{resource}\s*[:=]\s*[\d(]", rule), (path.name, name)
            if "shell:" in rule and "localrule: True" not in rule:
                jobs += 1
                assert "benchmark:" in rule, (path.name, name)
    assert jobs >= 11
