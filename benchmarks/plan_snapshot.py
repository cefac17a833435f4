"""What each shipped config plans, recorded so that a refactoring can show it changed nothing.

For config.yaml alone, config.yaml + each file in configs/, and the layered ones (LAYERED),
writes into OUT:

- ``<name>.config.json``: the merged and validated config (``simreg.config.load_config``);
- ``<name>.jobs.txt``: every job of ``snakemake -n -p all`` (rule, output, log, wildcards,
  resources and shell command), sorted, without what differs between two dry runs of the
  same plan (dates, job ids, reasons);
- ``<name>.seconds``: the wall time of that dry run (the machine's load included).

``--compare BEFORE AFTER`` prints the differences between two such folders and exits 1 when
there is one. Config keys named by ``--ignore-key`` (dotted, e.g. ``experiments``) are left
out of the comparison, for keys a change adds on purpose.

    python benchmarks/plan_snapshot.py OUT [--configs quick cifar10-subset ...]
    python benchmarks/plan_snapshot.py --compare BEFORE AFTER [--ignore-key experiments]
"""

from __future__ import annotations

import argparse
import difflib
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEPT = ("rule ", "    output:", "    log:", "    wildcards:", "    resources:", "Shell command:")


# configs layered over another config file, as their headers say
LAYERED = ["cifar10-subset+cifar10-subset-native"]


def config_names() -> list[str]:
    return ["default", *sorted(p.stem for p in (ROOT / "configs").glob("*.yaml")), *LAYERED]


def config_files(name: str) -> list[Path]:
    """default: config.yaml alone; a+b: configs/a.yaml then configs/b.yaml over it."""
    return [] if name == "default" else [ROOT / "configs" / f"{n}.yaml" for n in name.split("+")]


def jobs(dry_run: str) -> list[str]:
    """One line per job: the kept fields of its block, joined; sorted."""
    blocks, current = [], []
    for line in dry_run.splitlines():
        if line.startswith("rule ") or line.startswith("localrule "):
            if current:
                blocks.append(" | ".join(current))
            current = [line.replace("localrule ", "rule ")]
        elif current and line.startswith(KEPT):
            current.append(line.strip())
    if current:
        blocks.append(" | ".join(current))
    return sorted(blocks)


def snapshot(out: Path, names: list[str]) -> None:
    sys.path.insert(0, str(ROOT / "workflow"))
    from simreg.config import load_config

    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        files = config_files(name)
        config = load_config(ROOT / "config.yaml", *files)
        (out / f"{name}.config.json").write_text(json.dumps(config, indent=1, sort_keys=True))
        command = ["snakemake", "-n", "-p", "all", "--cores", "1"]
        if files:
            command += ["--configfile", *map(str, files)]
        # a template's own NPZ (configs/own-data.yaml) need not exist to plan: an empty
        # placeholder stands in for the dry run and is removed after it
        placeholders = [
            ROOT / path for path in config["data"]["npz"].values() if not (ROOT / path).exists()
        ]
        for path in placeholders:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
        try:
            start = time.perf_counter()
            result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
            seconds = time.perf_counter() - start
        finally:
            for path in placeholders:
                path.unlink()
        if result.returncode:
            raise SystemExit(f"{name}: {' '.join(command)} failed:\n{result.stdout[-3000:]}")
        planned = jobs(result.stdout)
        (out / f"{name}.jobs.txt").write_text("\n".join(planned) + "\n")
        (out / f"{name}.seconds").write_text(f"{seconds:.1f}\n")
        print(f"{name}: {len(planned)} jobs, dry run {seconds:.1f} s", flush=True)


def _drop(config: dict, dotted: str) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        config = config.get(part, {})
    config.pop(last, None)


def compare(before: Path, after: Path, ignore: list[str]) -> int:
    differ = 0
    names = sorted(p.name[: -len(".jobs.txt")] for p in before.glob("*.jobs.txt"))
    for name in names:
        for suffix in (".config.json", ".jobs.txt"):
            a, b = (before / f"{name}{suffix}").read_text(), (after / f"{name}{suffix}").read_text()
            if suffix == ".config.json":
                ca, cb = json.loads(a), json.loads(b)
                for key in ignore:
                    _drop(ca, key)
                    _drop(cb, key)
                a, b = (json.dumps(c, indent=1, sort_keys=True) for c in (ca, cb))
            diff = list(
                difflib.unified_diff(
                    a.splitlines(),
                    b.splitlines(),
                    f"before/{name}{suffix}",
                    f"after/{name}{suffix}",
                    lineterm="",
                    n=0,
                )
            )
            count = len(b.splitlines()) if suffix == ".jobs.txt" else None
            print(
                f"{name}{suffix}: {'identical' if not diff else 'DIFFERS'}"
                + (f" ({count} jobs)" if count is not None else "")
            )
            if diff:
                differ = 1
                print("\n".join(diff[:40]))
    return differ


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path)
    parser.add_argument("--configs", nargs="+", default=None)
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    parser.add_argument("--ignore-key", action="append", default=[])
    args = parser.parse_args(argv)
    if args.compare:
        return compare(*args.compare, args.ignore_key)
    if args.out is None:
        parser.error("give OUT or --compare BEFORE AFTER")
    snapshot(args.out, args.configs or config_names())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
