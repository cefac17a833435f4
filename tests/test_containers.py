"""The container image a user can get: a local .sif by default, built from the recipe with
one documented command (named by the error when it is missing), or the image that the CI
workflow publishes on a version tag; the recipes follow pyproject.toml."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from simreg import paths, settings

ROOT = Path(__file__).resolve().parents[1]


def recipe_code(name: str) -> str:
    text = (ROOT / "containers" / name).read_text()
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def test_default_image_is_the_local_build_of_the_recipe():
    image = settings.TOP_LEVEL["container_image"]
    assert image == paths.CONTAINER_IMAGE == "containers/simreg.sif"
    assert yaml.safe_load((ROOT / "config.yaml").read_text())["container_image"] == image
    assert paths.CONTAINER_BUILD == f"apptainer build {image} containers/simreg.def"
    assert (ROOT / "containers" / "simreg.def").is_file()
    ignored = subprocess.run(["git", "check-ignore", "-q", image], cwd=ROOT)
    assert ignored.returncode == 0, f"{image} must be git-ignored (a build product)"
    # the recipe, the config and the docs give the same one-line build
    for doc in ("containers/simreg.def", "config.yaml", "docs/running.md", "README.md"):
        assert paths.CONTAINER_BUILD in (ROOT / doc).read_text().replace("\n# ", " "), doc


def test_missing_local_image_names_the_build_command(tmp_path):
    problem = paths.missing_container_image("containers/simreg.sif", workdir=tmp_path)
    assert paths.CONTAINER_BUILD in problem and "container_image" in problem
    assert paths.PUBLISHED_IMAGE in problem
    (tmp_path / "containers").mkdir()
    (tmp_path / "containers" / "simreg.sif").write_bytes(b"sif")
    assert paths.missing_container_image("containers/simreg.sif", workdir=tmp_path) is None
    assert paths.missing_container_image(f"file://{tmp_path}/containers/simreg.sif") is None
    assert paths.missing_container_image(f"{tmp_path}/other.sif") is not None
    assert paths.missing_container_image("docker://ghcr.io/x/simreg:0.1.0") is None
    assert paths.missing_container_image("oras://ghcr.io/x/simreg:0.1.0") is None


def test_use_singularity_without_the_image_stops_before_any_job(tmp_path):
    """`snakemake --use-singularity` (the design card's form) stops at parse time, naming
    the build command, when the default image was never built."""
    image = tmp_path / "simreg.sif"  # absent
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-n",
            "--use-singularity",
            "all",
            "--configfile",
            "configs/quick.yaml",
            "--config",
            f"container_image={image}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert paths.CONTAINER_BUILD in text and str(image) in text, text[-2000:]
    # (without apptainer the image is not needed: the quick run, in tests/conftest.py, has none)


def test_recipes_use_the_python_of_pyproject_and_the_conda_env():
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == ">=3.11"
    env = yaml.safe_load((ROOT / "envs" / "simreg.yaml").read_text())
    (python,) = [d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python")]
    version = python.split("=", 1)[1]
    docker_from = re.search(r"^FROM\s+(\S+)", recipe_code("Dockerfile"), re.M)[1]
    def_from = re.search(r"^From:\s*(\S+)", recipe_code("simreg.def"), re.M)[1]
    assert docker_from == def_from, "the two recipes start from different images"
    assert re.fullmatch(rf"python:{re.escape(version)}-slim-\w+", docker_from), docker_from
    assert re.search(r"^Bootstrap:\s*docker\s*$", recipe_code("simreg.def"), re.M)


def test_ci_workflow_publishes_the_recipe_on_a_version_tag():
    flow = yaml.safe_load((ROOT / ".github" / "workflows" / "container.yml").read_text())
    triggers = flow[True] if True in flow else flow["on"]  # YAML 1.1 reads `on` as true
    assert triggers["push"]["tags"] == ["v*"]
    steps = flow["jobs"]["image"]["steps"]
    build = [s for s in steps if str(s.get("uses", "")).startswith("docker/build-push-action")]
    assert len(build) == 1 and build[0]["with"]["file"] == "containers/Dockerfile"
    assert "ghcr.io" in str(steps) and flow["permissions"]["packages"] == "write"
    # the image it publishes is the alternative the docs and the error name
    assert paths.PUBLISHED_IMAGE.startswith("docker://ghcr.io/<owner>/simreg:")
    assert paths.PUBLISHED_IMAGE.removeprefix("docker://") in (
        ROOT / "docs" / "running.md"
    ).read_text().replace("0.1.0", "<version>")


@pytest.mark.parametrize("profile", ["slurm", "local-gpu"])
def test_a_named_profile_composes_with_the_workflow_profile(profile, monkeypatch):
    """A profile one names (profiles/slurm, profiles/local-gpu) keeps the workflow profile's
    --nv and its own settings."""
    from snakemake.cli import parse_args

    if profile == "slurm":  # its executor is the plugin's
        pytest.importorskip(
            "snakemake_executor_plugin_slurm", reason='the slurm extra: pip install -e ".[slurm]"'
        )
    monkeypatch.chdir(ROOT)
    _, args = parse_args(
        ["-s", str(ROOT / "Snakefile"), "--profile", str(ROOT / "profiles" / profile), "-n"]
    )
    assert "--nv" in args.apptainer_args.split()
    assert args.rerun_incomplete  # the named profile's own settings still apply


def test_use_singularity_with_no_profile_named_gives_apptainer_the_gpus(tmp_path, monkeypatch):
    """README's `snakemake --cores 8 --use-singularity all` names no profile, yet apptainer
    gets --nv: Snakemake's own argument parsing (the settings a run starts from) picks up the
    workflow profile profiles/default, from the checkout and from another working directory
    (-s)."""
    from snakemake.cli import parse_args

    monkeypatch.chdir(ROOT)
    _, args = parse_args(["--cores", "8", "--use-singularity", "all", "-n"])
    assert args.apptainer_args.split() == ["--nv"]
    monkeypatch.chdir(tmp_path)
    _, args = parse_args(["-s", str(ROOT / "Snakefile"), "--use-singularity", "-n"])
    assert args.apptainer_args.split() == ["--nv"]
    # the command line still wins (binding data), and the workflow profile can be turned off
    _, args = parse_args(["-s", str(ROOT / "Snakefile"), "--apptainer-args=--nv -B /data"])
    assert args.apptainer_args == "--nv -B /data"
    _, args = parse_args(["-s", str(ROOT / "Snakefile"), "--workflow-profile", "none"])
    assert "--nv" not in (args.apptainer_args or "")
