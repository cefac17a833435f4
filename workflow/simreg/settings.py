"""Typed settings: the one source of every configuration default.

Each config section is a dataclass here; its field defaults are the paper's settings. The
JSON schema (workflow/schemas/config.schema.yaml) holds types, ranges and descriptions but
no defaults of these sections: :func:`simreg.config.load_schema` fills them in from here,
and tests/test_config.py keeps the schema's keys equal to these fields. Code that needs a
default (the trainer, the attacks, the CLI, the benchmark) reads it from here too.

Paper sections are given as in Attias, Pehlevan & Obeid 2024 (arXiv 2410.03952).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Data:
    root: str = "data"
    download: bool = True
    imagenet_dir: str | None = None
    npz: dict = field(default_factory=dict)
    test_fraction: float = 0.2
    split_seed: int = 0


@dataclass(frozen=True)
class Model:
    architecture: str = "resnet18"  # §4
    width: int = 64


@dataclass(frozen=True)
class Training:
    epochs: int = 40          # §4
    batch_size: int = 64      # §4
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 0.0
    lr_decay: float = 0.3     # lr * decay^((epoch mod cycle) // step), authors' code
    lr_step_epochs: int = 4
    lr_cycle_epochs: int = 20
    validation_fraction: float = 0.01
    augment: bool = True      # random crop + flip, authors' code for CIFAR
    device: str = "auto"


@dataclass(frozen=True)
class Regularization:
    threshold: float = 0.8        # §5, eq. 5: Th
    inner_threshold: float = 0.4  # App. 7.7 double variant (our choice)
    reg_pairs: int = 16           # §4: pairs per step k
    n_images: int = 5000          # §4: N regularization images
    image_seed: int = 0
    z_eps: float = 1e-5           # eq. 3 as in the authors' code
    mean_momentum: float = 0.1    # eq. 4 running feature mean


@dataclass(frozen=True)
class Similarity:
    dtype: str = "float32"
    block_size: int = 2048


@dataclass(frozen=True)
class Noise:
    seed: int = 0
    n_images: int | None = None
    epsilons: dict = field(default_factory=dict)


@dataclass(frozen=True)
class FgsmTransfer:
    n_images: int | None = None
    batch_size: int = 512
    epsilons: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Boundary:
    n_images: int | None = 1000   # App. 7.1
    repeats: int = 5              # App. 7.1
    subset_seed: int = 0
    batch_size: int = 250
    init_retries: int = 3
    init_directions: int = 1000
    init_steps: int = 50
    settings: dict = field(default_factory=lambda: {"paper": {"steps": 50},
                                                    "converged": {"steps": 10000}})


@dataclass(frozen=True)
class Spectrum:
    setting: str = "converged"    # §5.5: 10k steps


@dataclass(frozen=True)
class Whitebox:
    n_images: int | None = 1000
    epsilons_255: list = field(default_factory=lambda: [0, 1, 2, 4, 8])
    pgd_steps: int = 20
    pgd_rel_stepsize: float = 0.1
    seed: int = 0
    batch_size: int = 256


@dataclass(frozen=True)
class MinimalDistance:
    n_images: int = 1000          # supplement §3
    seed: int = 0
    batch_size: int = 100
    suite: dict = field(default_factory=dict)  # {} = simreg.evaluate.minimal_distance.PAPER_SUITE


@dataclass(frozen=True)
class Resources:
    gpu: int = 1
    train_threads: int = 4
    train_mem_mb: int = 16000
    train_runtime: int = 240
    eval_threads: int = 2
    eval_mem_mb: int = 8000
    eval_runtime: int = 60
    attack_runtime: int = 480
    similarity_mem_mb: int = 16000


# Config section name -> its settings class.
SECTIONS: dict[str, type] = {
    "data": Data,
    "model": Model,
    "training": Training,
    "regularization": Regularization,
    "similarity": Similarity,
    "noise": Noise,
    "fgsm_transfer": FgsmTransfer,
    "boundary": Boundary,
    "spectrum": Spectrum,
    "whitebox": Whitebox,
    "minimal_distance": MinimalDistance,
    "resources": Resources,
}
# Top-level scalar keys and their defaults.
TOP_LEVEL = {
    "container_image": "containers/simreg.sif",
    "plugins": [],
}


def defaults(section: str) -> dict:
    """The defaults of one config section, as the plain dict the config holds."""
    return dataclasses.asdict(SECTIONS[section]())


def section(config: dict, name: str):
    """The typed settings of section ``name`` of a validated ``config``."""
    return SECTIONS[name](**config[name])
