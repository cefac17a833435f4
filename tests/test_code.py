"""Code-aware reruns (simreg.code): a rule's code param changes exactly when a module its
command runs is edited, and is the same on every checkout."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from simreg.code import ImportGraph, source_hash

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "workflow" / "simreg"

FAKE = {
    "__init__.py": '__version__ = "1"\n',
    "settings.py": "EPOCHS = 3\n",
    "cli.py": (
        "from simreg import settings\n\n\n"
        "def cmd_a(args):\n    from simreg.a import fa\n\n    fa()\n\n\n"
        "def cmd_b(args):\n    from simreg import b\n\n    b.run()\n\n\n"
        "def parser():\n    return None\n"
    ),
    "common.py": "X = 1\n",
    "a.py": (
        "from simreg.common import X\n\n\n"
        "def fa():\n    from simreg.helper import h\n\n    return helper_of_fa() + h()\n\n\n"
        "def helper_of_fa():\n    from simreg.deep import d\n\n    return d()\n\n\n"
        "def ga():\n    from simreg.other import o\n\n    return o()\n"
    ),
    "helper.py": "def h():\n    return 1\n",
    "deep.py": "def d():\n    return 2\n",
    "other.py": "def o():\n    return 3\n",
    "b.py": "def run():\n    return 4\n",
    "plugins/__init__.py": (
        "import importlib\nimport pkgutil\n\n"
        "for m in pkgutil.iter_modules(__path__):\n"
        "    importlib.import_module(f'{__name__}.{m.name}')\n"
    ),
    "plugins/one.py": "Y = 1\n",
}
COMMANDS = {"a": ("simreg.cli:cmd_a",), "b": ("simreg.cli:cmd_b",), "plugins": ("simreg.plugins",)}


def write_package(root: Path, files: dict) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def hashes(root: Path, commands=COMMANDS) -> dict:
    graph = ImportGraph(root, "simreg")
    return {name: graph.code_hash(*entries) for name, entries in commands.items()}


def changed_by(root: Path, module_file: str, commands=COMMANDS, edit="\n# an edit\n") -> set:
    before = hashes(root, commands)
    path = root / module_file
    text = path.read_text()
    path.write_text(text + edit)
    try:
        after = hashes(root, commands)
    finally:
        path.write_text(text)
    return {name for name in commands if before[name] != after[name]}


@pytest.mark.parametrize(
    "module_file, rerun",
    [
        ("a.py", {"a"}),
        ("common.py", {"a"}),  # imported at a's top level
        ("helper.py", {"a"}),  # imported inside fa
        ("deep.py", {"a"}),  # inside a helper that fa calls
        ("other.py", set()),  # inside ga, which cmd_a never reaches
        ("b.py", {"b"}),
        ("__init__.py", {"a", "b", "plugins"}),  # every import runs it
        ("settings.py", set()),  # CONFIG_ONLY: reaches jobs through the config (params)
        ("plugins/one.py", {"plugins"}),  # imported by name through pkgutil
    ],
)
def test_editing_a_module_changes_the_hash_of_exactly_the_commands_that_run_it(
    tmp_path, module_file, rerun
):
    root = write_package(tmp_path / "simreg", FAKE)
    assert changed_by(root, module_file) == rerun


def test_the_dispatcher_counts_only_the_commands_own_function(tmp_path):
    root = write_package(tmp_path / "simreg", FAKE)
    cli = root / "cli.py"
    before = hashes(root)
    cli.write_text(cli.read_text().replace("return None", "return 0"))  # the parser: nobody
    assert hashes(root) == before
    cli.write_text(cli.read_text().replace("b.run()", "b.run()  # now"))
    assert {n for n, h in hashes(root).items() if h != before[n]} == {"b"}


def test_the_hash_is_the_same_on_another_checkout(tmp_path):
    """File contents and module names, not paths or times (nor Windows line endings)."""
    one = write_package(tmp_path / "one" / "simreg", FAKE)
    two = write_package(
        tmp_path / "elsewhere" / "deeper" / "simreg",
        {k: v.replace("\n", "\r\n") for k, v in FAKE.items()},
    )
    for path in two.rglob("*.py"):
        os.utime(path, (1, 1))
    assert hashes(one) == hashes(two)
    assert source_hash(one) == source_hash(two)
    (two / "b.py").write_text("def run():\n    return 5\n")
    assert source_hash(one) != source_hash(two)


# The rules' commands (workflow/rules/*.smk: command_code, report_code)
def rule_entries() -> dict:
    from simreg.evaluate.registry import EVALUATIONS
    from simreg.report.targets import TARGETS

    entries = {
        command: (f"simreg.cli:cmd_{command}",)
        for command in (
            "dataset",
            "corruptions",
            "similarity",
            "train",
            "train_pack",
            "fgsm_perturbations",
            "simulate_recordings",
            "fit_predictor",
            "neural_similarity",
        )
    }
    entries.update(
        {
            f"evaluate {e.name}": ("simreg.cli:cmd_evaluate", e.implementation)
            for e in EVALUATIONS.values()
        }
    )
    entries.update(
        {f"report {t.name}": ("simreg.cli:cmd_report", t.implementation) for t in TARGETS.values()}
    )
    return entries


@pytest.fixture(scope="module")
def package_copy(tmp_path_factory):
    return Path(
        shutil.copytree(
            PACKAGE,
            tmp_path_factory.mktemp("checkout") / "simreg",
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    )


def test_editing_a_figure_module_reruns_only_its_figures(package_copy):
    entries = rule_entries()
    assert changed_by(package_copy, "report/similarity_figures.py", entries) == {
        "report neural_pixel_similarity"
    }
    assert changed_by(package_copy, "report/defenses.py", entries) == {
        "report defense_comparison",
        "report defenses",
        "report attack_auc",
        "report lrc_accuracy",
        "report robustness_vs_exponent",
    }


def test_editing_the_trainer_reruns_the_trainings_only(package_copy):
    # what reads the trained models reruns too, through Snakemake's updated inputs
    assert changed_by(package_copy, "train/trainer.py", rule_entries()) == {"train", "train_pack"}


def test_editing_an_evaluation_reruns_that_evaluation_and_what_draws_with_it(package_copy):
    changed = changed_by(package_copy, "evaluate/boundary.py", rule_entries())
    assert changed == {"evaluate boundary"}


def test_a_registration_is_found_statically_and_follows_its_module(tmp_path):
    """A rule hashes a registered callable's module without importing it: the decorator in
    the source names the registration (``@runs("x")``, or a bare ``@drawing`` under the
    function's own name)."""
    root = write_package(
        tmp_path / "simreg",
        {
            **FAKE,
            "impl.py": (
                "from simreg.common import X\n\n\n"
                "def runs(name):\n    return lambda f: f\n\n\n"
                '@runs("x")\ndef go(context):\n    return X\n\n\n'
                "def drawing(f):\n    return f\n\n\n"
                "@drawing\ndef curve(data):\n    return 0\n\n\n"
                "def helper():\n    return 1\n"
            ),
            "unrelated.py": "def runs(f):\n    return f\n",
        },
    )
    graph = ImportGraph(root, "simreg")
    assert graph.decorated("runs") == {"x": "simreg.impl:go"}
    assert graph.decorated("drawing") == {"curve": "simreg.impl:curve"}
    assert graph.decorated("runs", under="simreg.unrelated") == {}
    commands = {"x": ("simreg.cli:cmd_b", graph.decorated("runs")["x"])}
    assert changed_by(root, "impl.py", commands) == {"x"}
    assert changed_by(root, "common.py", commands) == {"x"}
    (root / "dup.py").write_text('@runs("x")\ndef again(context):\n    pass\n')
    with pytest.raises(ValueError, match="twice"):
        ImportGraph(root, "simreg").decorated("runs")


def test_the_code_hashed_is_the_code_run():
    """Each registry's callable (what a command runs) is the one the static scan names (what
    its rule hashes)."""
    from simreg.evaluate.registry import EVALUATIONS, runner
    from simreg.report.targets import TARGETS, get_drawing

    for entry, function in [
        *((e.implementation, runner(e.name)) for e in EVALUATIONS.values()),
        *((t.implementation, get_drawing(t.draw)) for t in TARGETS.values()),
    ]:
        assert entry == f"{function.__module__}:{function.__qualname__}"
