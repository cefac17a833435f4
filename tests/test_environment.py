"""The software environment does not drift: pyproject.toml's pins are the one source of
truth for envs/simreg.yaml and the container recipes; every rule declares its software
environment, a log and resources; the SLURM profile sets account/partition in one place."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
RULE_FILES = [ROOT / "Snakefile", *sorted((ROOT / "workflow" / "rules").glob("*.smk"))]
ACTIONS = {"shell", "run", "script", "notebook", "wrapper", "template_engine", "cwl"}
PIN = re.compile(r"^([A-Za-z0-9_.\-\[\],]+)==([^\s;]+)$")


def name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", requirement.split("[")[0]).lower()


def pins(requirements) -> dict:
    """name -> version of ``pkg==version`` requirements; anything else is an error."""
    out = {}
    for req in requirements:
        match = PIN.match(req.strip())
        assert match, f"not an exact pin: {req!r}"
        assert name(match[1]) not in out, f"{match[1]} pinned twice"
        out[name(match[1])] = match[2]
    return out


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def env_file() -> dict:
    return yaml.safe_load((ROOT / "envs" / "simreg.yaml").read_text())


# --- pins ---------------------------------------------------------------------------------


def test_pyproject_dependencies_are_all_exact_pins():
    deps = pyproject()["project"]["dependencies"]
    assert len(pins(deps)) == len(deps) > 0
    for extra, reqs in pyproject()["project"].get("optional-dependencies", {}).items():
        assert len(pins(reqs)) == len(reqs), extra


def test_conda_env_pins_equal_pyproject_pins():
    deps = env_file()["dependencies"]
    pip_sections = [d["pip"] for d in deps if isinstance(d, dict) and "pip" in d]
    assert len(pip_sections) == 1, "envs/simreg.yaml needs exactly one pip: section"
    assert pins(pip_sections[0]) == pins(pyproject()["project"]["dependencies"])
    conda = [d for d in deps if isinstance(d, str)]
    python = [d for d in conda if re.match(r"python\b", d)]
    assert python == ["python=3.11"], python
    assert "pip" in conda
    # The conda part holds no library that could shadow a pip pin.
    assert set(conda) == {"python=3.11", "pip"}, conda


def test_robustbench_env_is_the_main_env_plus_its_extra():
    """envs/robustbench.yaml (rule robustbench_corruptions) = the main pins + the extra's."""
    env = yaml.safe_load((ROOT / "envs" / "robustbench.yaml").read_text())
    pip_sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    project = pyproject()["project"]
    expected = {
        **pins(project["dependencies"]),
        **pins(project["optional-dependencies"]["robustbench"]),
    }
    assert pins(pip_sections[0]) == expected
    assert [d for d in env["dependencies"] if isinstance(d, str)] == ["python=3.11", "pip"]
    script = (ROOT / "envs" / "robustbench.post-deploy.sh").read_text()
    assert re.search(r"pip install --no-deps -e \.(\s|$)", script)


def test_conda_env_installs_the_project():
    # envs/simreg.yaml documents why the project comes from the post-deploy script.
    script = (ROOT / "envs" / "simreg.post-deploy.sh").read_text()
    assert re.search(r"pip install --no-deps -e \.(\s|$)", script)


@pytest.mark.parametrize("recipe", ["Dockerfile", "simreg.def"])
def test_container_recipes_install_from_pyproject_without_pins(recipe):
    text = (ROOT / "containers" / recipe).read_text()
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert "pyproject.toml" in code, "the recipe must copy pyproject.toml into the image"
    assert re.search(r"pip install (\S+ )*\.(\s|$)", code), "the recipe must `pip install .`"
    assert not re.search(r"[A-Za-z0-9_\-]\s*(==|~=|>=|<=)\s*\d", code), "a version pin"
    for dep in pins(pyproject()["project"]["dependencies"]):
        assert not re.search(rf"pip install[^\n]*\b{re.escape(dep)}\b", code, re.I), dep


# --- rules --------------------------------------------------------------------------------


def rule_blocks(text: str) -> dict:
    """rule name -> set of its directives, from Snakemake source text. A rule defined in a
    loop over the evaluation registry (``rule:`` with ``name: evaluation.name``, or
    ``f"{evaluation.name}_member"``) stands for one rule per registered evaluation."""
    from simreg.evaluate.registry import EVALUATIONS

    rules = {}
    pattern = r"^( *)rule ?(\w*):\n((?:\1[ \t]+\S.*\n|[ \t]*\n)*)"
    for match in re.finditer(pattern, text, re.M):
        indent = match[1] + "    "
        body = match[3]
        directives = set(re.findall(rf"^{indent}(\w+):", body, re.M))
        if re.search(rf"^{indent}localrule:\s*True", body, re.M):
            directives.add("localrule=True")
        if match[2]:
            rules[match[2]] = directives
        else:
            named = re.search(rf"^{indent}name:\s*\n?\s*(\S+)", body, re.M)
            suffixes = {"evaluation.name": "", 'f"{evaluation.name}_member"': "_member"}
            assert named and named[1] in suffixes, f"unnamed rule: {body[:200]}"
            rules.update({name + suffixes[named[1]]: directives for name in EVALUATIONS})
    return rules


def rule_problems(rules: dict, global_container: bool) -> list[str]:
    problems = []
    for rule, directives in rules.items():
        if not directives & ACTIONS:
            continue  # a target rule (all): runs nothing
        if "log" not in directives:
            problems.append(f"{rule}: no log")
        if "localrule=True" in directives:
            continue
        if "conda" not in directives and "container" not in directives and not global_container:
            problems.append(f"{rule}: no conda or container")
        if "conda" not in directives:
            problems.append(f"{rule}: no conda (needed for --sdm conda)")
        if "resources" not in directives:
            problems.append(f"{rule}: no resources")
    return problems


def workflow_rules() -> dict:
    rules = {}
    for path in RULE_FILES:
        rules.update(rule_blocks(path.read_text()))
    return rules


def test_every_rule_declares_software_environment_log_and_resources():
    rules = workflow_rules()
    assert {"dataset", "similarity", "train", "noise", "figure", "table"} <= set(rules)
    snakefile = (ROOT / "Snakefile").read_text()
    assert re.search(r"^container: SETTINGS\.container_image$", snakefile, re.M)
    assert rule_problems(rules, global_container=True) == []
    # Local rules still get the conda environment (they run simreg too).
    assert all("conda" in d for d in rules.values() if d & ACTIONS)


def test_the_rule_check_can_fail():
    text = (
        "rule a:\n    output:\n        'x'\n    shell:\n        'touch {output}'\n\n"
        "rule b:\n    output:\n        'y'\n    log:\n        'y.log'\n    localrule: True\n"
        "    conda:\n        'e.yaml'\n    shell:\n        'touch {output}'\n"
    )
    rules = rule_blocks(text)
    assert rules["b"] >= {"log", "localrule=True", "conda", "shell"}
    assert rule_problems(rules, global_container=False) == [
        "a: no log",
        "a: no conda or container",
        "a: no conda (needed for --sdm conda)",
        "a: no resources",
    ]


def test_parsed_rules_are_all_the_workflow_rules(tmp_path):
    """A rule the text parser misses (defined some other way) would escape the check. The
    training rules depend on training.pack_size (train, or train_pack and its member rule),
    and the evaluation rules on resources.evaluation_jobs (one rule per kind, or
    evaluate_model and a member rule per kind), so the workflow is listed under each."""
    packed = tmp_path / "packed.yaml"
    packed.write_text("training: {pack_size: 2}\n")
    per_model = tmp_path / "per_model.yaml"
    per_model.write_text("resources: {evaluation_jobs: per_model}\n")
    listed = set()
    for extra in ([], ["--configfile", str(packed)], ["--configfile", str(per_model)]):
        out = subprocess.run(
            [sys.executable, "-m", "snakemake", "--list-rules", *extra],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        listed |= {line.strip() for line in out.stdout.splitlines() if line.strip()}
    assert listed == set(workflow_rules())


# --- profiles -----------------------------------------------------------------------------


def test_slurm_profile_needs_no_edit_and_sets_the_gpu_partition_in_one_place():
    """Account and partition come from the environment (no placeholder to edit in a tracked
    file), and the GPU partition from one function of the rules, not per-rule entries."""
    text = (ROOT / "profiles" / "slurm" / "config.yaml").read_text()
    profile = yaml.safe_load(text)
    assert profile["executor"] == "slurm"
    assert profile["retries"] == 2
    assert "<" not in "\n".join(line.split("#")[0] for line in text.splitlines())
    defaults = profile["default-resources"]
    assert "SBATCH_ACCOUNT" in defaults["slurm_account"]
    assert "SBATCH_PARTITION" in defaults["slurm_partition"]
    assert "set-resources" not in profile
    # every rule that asks for a GPU takes its partition from simreg.devices.slurm_partition
    rules = "\n".join(p.read_text() for p in (ROOT / "workflow" / "rules").glob("*.smk"))
    gpu_lines = re.findall(r"^ *gpu=.*$", rules, flags=re.M)
    partitions = re.findall(r"slurm_partition=(?:lambda \w+: )?devices\.slurm_partition\(", rules)
    assert len(gpu_lines) == len(partitions) >= 5
    from simreg import devices

    env = {"SBATCH_PARTITION": "cpu", "SIMREG_GPU_PARTITION": "gpu"}
    assert devices.slurm_partition(1, env) == "gpu" and devices.slurm_partition(0, env) == "cpu"
    assert devices.slurm_partition(1, {"SBATCH_PARTITION": "cpu"}) == "cpu"
    assert devices.slurm_partition(1, {}) == ""  # the plugin's default partition


def test_the_workflow_profile_only_gives_apptainer_the_gpus():
    """profiles/default loads by itself (Snakemake's workflow profile), also under CPU runs and
    tests: it sets nothing but apptainer's --nv. The local-gpu profile is asked for by name."""
    default = yaml.safe_load((ROOT / "profiles" / "default" / "config.yaml").read_text())
    assert default == {"apptainer-args": "--nv"}
    assert not (ROOT / "workflow" / "profiles" / "default").exists()
    local = yaml.safe_load((ROOT / "profiles" / "local-gpu" / "config.yaml").read_text())
    assert "gpu" in str(local["resources"])


def test_slurm_extra_is_pinned():
    extras = pyproject()["project"]["optional-dependencies"]
    assert any(name(r.split("==")[0]) == "snakemake-executor-plugin-slurm" for r in extras["slurm"])


# --- the login node's light install ---------------------------------------------------------

SUBMIT = ROOT / "envs" / "submit.txt"
HEAVY = (
    "torch",
    "torchvision",
    "h5py",
    "scipy",
    "sklearn",
    "foolbox",
    "matplotlib",
    "neuralpredictors",
    "numba",
)


def submit_pins() -> dict:
    lines = [
        line
        for line in SUBMIT.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    return pins(lines)


def test_submit_requirements_are_pyprojects_pins_without_torch():
    project = pyproject()["project"]
    allowed = pins(project["dependencies"]) | pins(project["optional-dependencies"]["slurm"])
    light = submit_pins()
    assert {k: allowed.get(k) for k in light} == light
    assert {"snakemake", "snakemake-executor-plugin-slurm"} <= set(light)
    assert not set(light) & {name(h) for h in HEAVY}


def test_planning_the_dag_imports_no_torch(tmp_path):
    """`snakemake -n` (what the login node runs, with the SLURM profile) with torch and the
    other heavy packages made unimportable: the Snakefile and simreg's planning code do not
    need them."""
    pytest.importorskip(
        "snakemake_executor_plugin_slurm", reason='the slurm extra: pip install -e ".[slurm]"'
    )
    for module in HEAVY:
        (tmp_path / f"{module}.py").write_text(
            f"raise ImportError('{module} imported while planning the DAG')\n"
        )
    env = {**__import__("os").environ, "PYTHONPATH": f"{tmp_path}:{ROOT / 'workflow'}"}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-n",
            "--profile",
            "profiles/slurm",
            "--quiet",
            "rules",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "train" in out.stdout


@pytest.mark.slow
def test_submit_install_in_a_fresh_venv_plans_the_dag(tmp_path):
    """The documented light install, in a new venv from PyPI: it plans the full DAG."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "-r", str(SUBMIT)], check=True, timeout=900)
    subprocess.run([*pip, "--no-deps", "-e", str(ROOT)], check=True, timeout=300)
    listed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "list"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.lower()
    assert "torch" not in listed
    env = {k: v for k, v in __import__("os").environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [str(venv / "bin" / "snakemake"), "-n", "--quiet", "rules"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "train" in out.stdout
