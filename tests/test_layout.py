"""The package's shape: stages of the DAG as subpackages, imports only downwards, and a
Snakefile that parses without torch."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "workflow" / "simreg"

# Lowest first. A module may import its own layer and the layers below it, never above.
LAYERS = [
    {
        "simreg",
        "simreg.outputs",
        "simreg.paths",
        "simreg.settings",
        "simreg.devices",
        "simreg.code",
    },
    {"simreg.data"},
    {"simreg.neural"},
    {"simreg.targets"},
    {"simreg.models"},
    {"simreg.train"},
    {"simreg.evaluate"},
    {"simreg.report"},
    {"simreg.config", "simreg.config_reference", "simreg.cli", "simreg.plan"},  # entry points
]


def layer_of(module: str) -> int:
    for level, names in enumerate(LAYERS):
        if any(module == n or (n != "simreg" and module.startswith(n + ".")) for n in names):
            return level
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return {m for m in found if m.startswith("simreg")}


def upward_imports() -> list[str]:
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        here = module_name(path)
        for target in imports(path):
            if target == "simreg.__version__":
                continue
            try:
                level = layer_of(target)
            except AssertionError:
                continue  # a name imported from a package (e.g. simreg.settings.Boundary)
            if level > layer_of(here):
                problems.append(f"{here} imports {target}")
    return problems


def test_every_module_belongs_to_a_stage():
    for path in PACKAGE.rglob("*.py"):
        layer_of(module_name(path))


def test_no_module_imports_up_a_stage():
    assert upward_imports() == []


def test_the_stages_are_folders():
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders == {"data", "neural", "targets", "models", "train", "evaluate", "report"}
    assert (PACKAGE / "train" / "regularizers" / "__init__.py").exists()


def test_parsing_the_snakefile_imports_no_torch(tmp_path):
    """A `torch` that fails on import shadows the real one: the dry run must not need it."""
    fake = tmp_path / "torch"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('the Snakefile imported torch')\n")
    # the fake torch first, then whatever PYTHONPATH held (a checkout's workflow/ folder)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(tmp_path), os.environ.get("PYTHONPATH", "")) if p
        ),
    }
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--configfile", "configs/quick.yaml"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "the Snakefile imported torch" not in result.stdout + result.stderr


def test_the_snakefile_does_not_edit_sys_path():
    assert "sys.path" not in (ROOT / "Snakefile").read_text()
