#!/usr/bin/env bash
# Run by Snakemake inside the freshly created envs/robustbench.yaml environment, from the
# workflow's working directory (the repository root). Installs the project (the `simreg`
# CLI) editable, without touching the pinned dependencies of envs/robustbench.yaml.
set -euo pipefail
if ! grep -q '^name = "simreg"' pyproject.toml 2>/dev/null; then
    echo "simreg post-deploy: run snakemake from the repository root (no simreg pyproject.toml in $PWD)" >&2
    exit 1
fi
python -m pip install --no-deps -e .
simreg --help > /dev/null
