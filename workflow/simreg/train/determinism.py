"""Deterministic algorithms for a training run, without importing torch's compiler when the
run does not compile.

Compatibility shim (torch 2.15): ``torch.use_deterministic_algorithms`` sets the compiler's
own flag too (``torch._inductor.config.deterministic``), so it imports ``torch._inductor`` and
with it ``torch._dynamo``: about 1.5 CPU seconds of every training job's start on a 2-core
CPU, for a compiler that only ``training.fast_path.compile`` uses (docs/running.md §8,
"Per-job overhead"). Without compile this sets torch's flag alone (the same global switch
``use_deterministic_algorithms`` sets); with compile it calls ``use_deterministic_algorithms``
itself, so that the compiled passes are deterministic too.
"""

from __future__ import annotations

import torch


def use_deterministic_algorithms(compiling: bool, warn_only: bool = True) -> None:
    """Make torch choose deterministic algorithms (warning where an operation has none)."""
    if compiling:
        torch.use_deterministic_algorithms(True, warn_only=warn_only)
    else:
        torch._C._set_deterministic_algorithms(True, warn_only=warn_only)
