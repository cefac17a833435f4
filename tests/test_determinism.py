"""simreg.train.determinism: a training run sets torch's deterministic switch (warning where
an operation has no deterministic implementation) without importing torch's compiler,
unless it compiles (training.fast_path.compile)."""

from __future__ import annotations

import subprocess
import sys

import pytest

CHECK = """
import sys, torch
from simreg.train.determinism import use_deterministic_algorithms
use_deterministic_algorithms(compiling={compiling})
print(torch.are_deterministic_algorithms_enabled(),
      torch.is_deterministic_algorithms_warn_only_enabled(),
      "torch._inductor" in sys.modules)
if {compiling}:
    import torch._inductor.config as inductor
    print(inductor.deterministic)
"""


@pytest.mark.parametrize("compiling", [False, True])
def test_deterministic_algorithms_import_the_compiler_only_to_compile(compiling):
    out = subprocess.run(
        [sys.executable, "-c", CHECK.format(compiling=compiling)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out[:2] == ["True", "True"]
    assert out[2] == str(compiling)  # the compiler (1.5 CPU s to import) only when used
    if compiling:
        assert out[3] == "True"  # and then its own flag is set too
