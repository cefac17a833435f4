# simreg: similarity-regularized CNNs and their robustness, end to end.
# Table of contents: datasets -> similarity targets -> training -> noise -> attacks ->
# figures/tables.

import json
import sys
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")

sys.path.insert(0, str(Path(workflow.basedir) / "workflow"))

from simreg import paths
from simreg.config import validate_config


configfile: "config.yaml"


validate_config(config)


# One image for every job under --software-deployment-method apptainer (containers/);
# the rules' conda: envs/simreg.yaml serves --software-deployment-method conda.
container: config["container_image"]


report: "workflow/report/workflow.rst"


wildcard_constraints:
    **paths.WILDCARDS,


include: "workflow/rules/common.smk"
include: "workflow/rules/datasets.smk"
include: "workflow/rules/similarity.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/noise.smk"
include: "workflow/rules/attacks.smk"
include: "workflow/rules/figures.smk"


rule all:
    default_target: True
    input:
        paths.all_targets(config),
