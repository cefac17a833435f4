"""A method that exists only in this test trains through the real trainer, CLI and rules.

The module below is written to a temporary folder, put on PYTHONPATH and named in a config's
``plugins``; nothing in the repository is edited. It distils the unregularized model of the
same task and seed (``needs = ("source_model",)``: the rule must train that model first and
hand its file over), keeps a running step count (``state_dict``) and logs it (``metrics``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import torch

TOY = textwrap.dedent('''
    """Distil the unregularized model of the same task and seed (a test-only method)."""
    from simreg.train.regularizers import Regularizer, register


    @register
    class ToyDistillation(Regularizer):
        name = "toydistil"
        description = "mean squared difference to the logits of the baseline model"
        needs = ("source_model",)

        def setup(self, context):
            from simreg.models.inference import load_model

            self.source, _ = load_model(context.inputs["source_model"], context.device)
            self.steps = 0

        def loss(self, batch, step):
            import torch

            with torch.no_grad():
                target = self.source(batch.x)
            return (batch.logits - target).square().mean()

        def after_step(self, batch):
            self.steps += 1

        def state_dict(self):
            return {"steps": self.steps}

        def load_state_dict(self, state):
            self.steps = state["steps"]

        def metrics(self):
            return {"toy_steps": self.steps}
''')

ROOT = Path(__file__).resolve().parents[1]
STEM = "digits_gray/none/toydistil/a3_tna_k0/seed0"


@pytest.fixture(scope="module")
def toy_run(quick_run, tmp_path_factory):
    workdir, env = quick_run
    plugin_dir = tmp_path_factory.mktemp("plugin")
    (plugin_dir / "toy_method.py").write_text(TOY)
    (workdir / "toy.yaml").write_text("plugins: [toy_method]\n")
    # the plugin's folder first, before a PYTHONPATH already set (e.g. to a checkout's workflow/)
    env = {
        **env,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(plugin_dir), env.get("PYTHONPATH")])),
    }
    target = f"results/noise/{STEM}.csv"
    command = [
        sys.executable,
        "-m",
        "snakemake",
        target,
        "--cores",
        "2",
        "--configfile",
        "configs/quick.yaml",
        "toy.yaml",
    ]
    result = subprocess.run(
        command, cwd=workdir, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return workdir, result.stdout + result.stderr


def test_a_test_only_method_trains_and_is_evaluated_through_the_rules(toy_run):
    workdir, log = toy_run
    assert "rule train" in log and "rule noise" in log  # both ran as pipeline jobs
    metrics = pd.read_csv(workdir / "results/models" / STEM / "metrics.csv")
    steps_per_epoch = metrics["toy_steps"].diff().dropna().unique()
    assert len(steps_per_epoch) == 1 and steps_per_epoch[0] > 0  # state kept across epochs
    assert (metrics["method"] == "toydistil").all() and (metrics["alpha"] == 3).all()
    saved = torch.load(workdir / "results/models" / STEM / "model.pt", weights_only=False)
    source = "results/models/digits_gray/none/none/a0_tna_k0/seed0/model.pt"
    assert source in saved["provenance"]["inputs"]  # the rule handed the source model over
    baseline = torch.load(workdir / source, weights_only=False)
    assert not torch.equal(saved["model"]["head.weight"], baseline["model"]["head.weight"])
    noise = pd.read_csv(workdir / "results/noise" / f"{STEM}.csv")
    assert set(noise["method"]) == {"toydistil"} and noise["accuracy"].between(0, 1).all()


def test_an_unimportable_plugin_is_named(tmp_path):
    (tmp_path / "bad.yaml").write_text("plugins: [no_such_plugin_module]\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-n",
            "--configfile",
            "configs/quick.yaml",
            str(tmp_path / "bad.yaml"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "no_such_plugin_module" in result.stdout + result.stderr
