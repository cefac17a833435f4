# simreg: similarity-regularized CNNs and their robustness, end to end.
# Table of contents: datasets -> similarity targets -> training -> evaluations (noise,
# attacks) -> figures/tables. The logic lives in the installed package `simreg`
# (workflow/simreg, `pip install -e .`); parsing this file imports no torch.

import dataclasses
import json
import os
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

min_version("9.0")

from simreg import paths
from simreg.config import PLUGINS_ENV, ConfigError, read_config_file, validate_config
from simreg.settings import typed

# The defaults beside this Snakefile, also when run from elsewhere (-s .../Snakefile -d
# workdir); --configfile files are merged over them. Read once by us first, so that a broken
# or empty defaults file is named (Snakemake's own message names no file).
try:
    read_config_file(Path(workflow.basedir) / "config.yaml")
except ConfigError as error:
    raise WorkflowError(str(error)) from None


configfile: str(Path(workflow.basedir) / "config.yaml")


# Snakemake's YAML reader keeps the last of a key given twice; ours refuses it, naming the
# file and both lines. Every config file of the run (--configfile ones too) is read again.
for _configfile in workflow.configfiles:
    try:
        read_config_file(_configfile)
    except ConfigError as error:
        raise WorkflowError(str(error)) from None


validate_config(config)
# The typed settings of the validated config (simreg.settings.Settings), made once: the
# Snakefile and the rules read the config through it (SETTINGS.noise.seed, SETTINGS.figures),
# never by dict lookups (tests/test_settings_access.py).
SETTINGS = typed(config)
# Plugin modules (config `plugins`) register methods and evaluations; every simreg command a
# job runs imports them too (simreg.cli reads SIMREG_PLUGINS). An environment variable, not a
# rule parameter, so that naming a plugin does not make Snakemake rerun other jobs.
os.environ[PLUGINS_ENV] = ",".join(SETTINGS.plugins)


# One image for every job under --use-singularity (= --sdm apptainer; containers/);
# the rules' conda: envs/simreg.yaml serves --software-deployment-method conda.
container: SETTINGS.container_image


if any(m.name == "APPTAINER" for m in workflow.deployment_settings.deployment_method):
    if problem := paths.missing_container_image(SETTINGS.container_image):
        raise WorkflowError(problem)


report: "workflow/report/workflow.rst"


wildcard_constraints:
    **paths.WILDCARDS,


include: "workflow/rules/common.smk"
include: "workflow/rules/datasets.smk"
include: "workflow/rules/corruptions.smk"
include: "workflow/rules/similarity.smk"
include: "workflow/rules/neural.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/fgsm.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        all_targets(config),
        CLAIMS_TABLE,
        CLAIMS_REPORT,


# Every figure the config draws (PNG, PDF and the numbers drawn), without the tables: with
# results/claims.md, what `simreg export` copies (docs/results/).
rule figures:
    input:
        figure_targets(config),
