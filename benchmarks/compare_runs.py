"""Compare two results folders of the same config: did a change alter any result?

Every ``model.pt`` present in both folders is compared tensor by tensor (``torch.equal``),
and every ``.csv`` present in both is compared cell by cell, leaving out the columns that
say when and by which code a file was made (provenance) and the ones that time a job. A
restructuring that is meant to change nothing must give no differing file.

    python benchmarks/compare_runs.py BEFORE/results AFTER/results [--json]

Prints one line per differing file and a JSON summary (counts of identical, differing and
one-sided files per kind); exits 1 if any file present in both differs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd
import torch

# Columns that record how and when a file was made, or how long it took: they differ
# between any two runs and are not results.
VOLATILE_COLUMNS = {
    "simreg_version",
    "simreg_source",
    "created",
    "python",
    "seconds",
    "wall_s",
    "time_ratio",
    "time_ratio_sem",
    "code",
    "commit",
    "dirty",
}
# Folders that hold run bookkeeping rather than results.
SKIPPED_TOP = {"benchmarks", "logs", "checkpoints"}


def _files(root: Path, pattern: str) -> set[Path]:
    return {
        p.relative_to(root)
        for p in root.rglob(pattern)
        if p.relative_to(root).parts[0] not in SKIPPED_TOP
    }


def _state(path: Path) -> dict:
    state = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    return state


def _tensors(obj, prefix=""):
    if isinstance(obj, torch.Tensor):
        yield prefix, obj
    elif isinstance(obj, dict):
        for key in sorted(obj, key=str):
            yield from _tensors(obj[key], f"{prefix}/{key}")
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            yield from _tensors(value, f"{prefix}/{i}")


def models_differ(a: Path, b: Path) -> str | None:
    """The first differing tensor's name, or None when every tensor is equal."""
    ta, tb = dict(_tensors(_state(a))), dict(_tensors(_state(b)))
    if ta.keys() != tb.keys():
        return "different tensor names"
    for name in ta:
        if ta[name].shape != tb[name].shape or not torch.equal(ta[name], tb[name]):
            return name
    return None


def csvs_differ(a: Path, b: Path) -> str | None:
    """What differs between two CSVs outside the volatile columns, or None."""
    fa, fb = pd.read_csv(a), pd.read_csv(b)
    fa = fa[[c for c in fa.columns if c not in VOLATILE_COLUMNS]]
    fb = fb[[c for c in fb.columns if c not in VOLATILE_COLUMNS]]
    if list(fa.columns) != list(fb.columns):
        return f"columns {sorted(set(fa.columns) ^ set(fb.columns))}"
    if fa.shape != fb.shape:
        return f"shape {fa.shape} vs {fb.shape}"
    for column in fa.columns:
        if not fa[column].equals(fb[column]):
            return f"column {column}"
    return None


def compare(before: Path, after: Path) -> dict:
    summary = {}
    for kind, pattern, differ in (
        ("model", "model.pt", models_differ),
        ("csv", "*.csv", csvs_differ),
    ):
        a, b = _files(before, pattern), _files(after, pattern)
        differing = {}
        for rel in sorted(a & b):
            why = differ(before / rel, after / rel)
            if why:
                differing[str(rel)] = why
        summary[kind] = {
            "identical": len(a & b) - len(differing),
            "differing": differing,
            "only_before": sorted(map(str, a - b)),
            "only_after": sorted(map(str, b - a)),
        }
    return summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    summary = compare(args.before, args.after)
    for kind, result in summary.items():
        for rel, why in result["differing"].items():
            print(f"DIFFERS {kind} {rel}: {why}")
    print(
        json.dumps(
            {
                kind: {
                    "identical": r["identical"],
                    "differing": len(r["differing"]),
                    "only_before": len(r["only_before"]),
                    "only_after": len(r["only_after"]),
                }
                for kind, r in summary.items()
            }
        )
    )
    return 1 if any(r["differing"] for r in summary.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
