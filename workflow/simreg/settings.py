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
    # Per classification dataset, overriding `architecture`: App. 7.4, 7.8 and Table 3 use
    # a ResNet34 for CIFAR-100 (gray and color).
    dataset_architecture: dict = field(default_factory=lambda: {"cifar100": "resnet34"})


@dataclass(frozen=True)
class FastPath:
    """``training.fast_path``: speed options of the model's forward passes in training
    (:mod:`simreg.train.fast_path`, docs/choices.md). All off: a run's weights are bit for
    bit those of a run without them."""
    autocast: str = "none"        # "bfloat16": forward passes in bf16, losses and SGD in fp32
    channels_last: bool = False   # the model's weights and inputs in NHWC memory format
    compile: bool = False         # torch.compile of the model's forward pass


@dataclass(frozen=True)
class Training:
    epochs: int = 40          # §4
    batch_size: int = 64      # §4
    optimizer: str = "sgd"    # authors' code: SGD; or "adam" (Roth et al. trained with Adam)
    lr: float = 0.1
    momentum: float = 0.9     # SGD's
    betas: list = field(default_factory=lambda: [0.9, 0.999])  # Adam's (Kingma & Ba defaults)
    weight_decay: float = 0.0
    lr_decay: float = 0.3     # lr * decay^((epoch mod cycle) // step), authors' code
    lr_step_epochs: int = 4
    lr_cycle_epochs: int = 20
    validation_fraction: float = 0.01
    # Random crop + flip per classification dataset: the authors' code augments CIFAR only.
    # A dataset not named here (an NPZ, photos) is not augmented; `true`/`false` sets all.
    augment: bool | dict = field(default_factory=lambda: {
        "cifar10": True, "cifar100": True, "mnist": False, "fashionmnist": False,
        "digits": False})
    device: str = "auto"
    # Seeds of one model key trained by one job (simreg.train.packs); 1: one job per seed.
    pack_size: int = 1
    fast_path: dict = field(default_factory=lambda: dataclasses.asdict(FastPath()))


@dataclass(frozen=True)
class Regularization:
    threshold: float = 0.8        # §5, eq. 5: Th
    inner_threshold: float = 0.4  # App. 7.7 double variant (our choice)
    reg_pairs: int = 16           # §4: pairs per step k
    n_images: int = 5000          # §4: N regularization images
    image_seed: int = 0
    z_eps: float = 1e-5           # eq. 3 as in the authors' code
    mean_momentum: float = 0.1    # eq. 4 running feature mean
    pair_pass: str = "split"      # the k pairs as two batches of k (authors' code) or one of 2k


@dataclass(frozen=True)
class Similarity:
    dtype: str = "float32"
    block_size: int = 2048


@dataclass(frozen=True)
class Noise:
    seed: int = 0
    clip: str = "image"           # each noisy image to its own [min, max] (authors' code)
    n_images: int | None = None
    epsilons: dict = field(default_factory=dict)


@dataclass(frozen=True)
class FgsmTransfer:
    source_seed: int = 100        # the one source model's seed, outside every grid's seeds
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
    settings: dict = field(default_factory=lambda: {
        "paper": {"steps": 50},
        # step sizes adapted from every step's statistics (docs/attacks.md)
        "converged": {"steps": 10000, "update_stats_every_k": 1}})


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


# ---- related defenses (issue #13; docs/methods.md) ------------------------------------------
@dataclass(frozen=True)
class Adversarial:
    """PGD-L∞ perturbations made during training (pgd_at, afd, sgr with perturbation pgd)."""
    epsilons: dict = field(default_factory=lambda: {  # AFD §3.2; Madry et al.
        "cifar10": 0.031, "cifar100": 0.031, "mnist": 0.3, "fashionmnist": 0.3, "digits": 0.3})
    steps: int = 7                # Madry et al. CIFAR-10: 7 steps of 2/255 at ε = 8/255
    rel_stepsize: float = 0.25    # step size / ε
    random_start: bool = True


@dataclass(frozen=True)
class Sgr:
    perturbation: str = "sign"    # Roth §4.1: gradient, sign, fgsm or pgd (Table 1: sign)
    beta: float = 0.1             # Roth Alg. 1, footnote 2


@dataclass(frozen=True)
class Jacobian:
    projections: int = 1          # random projections per step (Hoffman et al. 2019: 1)
    output: str = "probabilities"  # Schaeffer eq. 1's f (its cross-entropy logs it); or logits
    estimator: str = "frobenius"  # eq. 1's ||J||_F; or column_sums, ||1ᵀJ|| (what §3.4 ran)
    squared: bool = False         # frobenius: eq. 1's ||J||_F; true: ||J||²_F (Hoffman et al.)


@dataclass(frozen=True)
class InputGradients:
    """How sgr, gn and jacobian take ∇ₓ through BatchNorm (simreg.train.input_gradients)."""
    batchnorm: str = "per_sample"  # the training pass's statistics fixed for x; or batch


@dataclass(frozen=True)
class Afd:
    embedding_lr: float = 0.1     # AFD Table A1: LR_E
    discriminator_lr: float = 0.1  # AFD Table A1: LR_Da
    momentum: float = 0.9         # AFD App. 6.1
    width: int = 512              # AFD §3.2: hidden units of Da (64 MNIST, 512 CIFAR)
    leaky_slope: float = 0.2


@dataclass(frozen=True)
class LrcNoise:
    zetas: list = field(default_factory=lambda: [1, 2, 4, 8, 16])  # Roth Fig. 3
    epsilon: float = 0.3          # Roth Fig. 3: fixed ε
    draws: int = 100              # Roth §4.3: worst of 100
    n_images: int | None = 1000
    seed: int = 0
    batch_size: int = 500
    unit: str = "standardized"    # ε on the image standardized per image (Roth §5); or pixel
    epsilons: list = field(default_factory=lambda: [0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7])
    epsilons_zeta: float = 8.0    # Roth App. Fig. 4: accuracy vs ε at ζ = 8


@dataclass(frozen=True)
class Eigenspectrum:
    n_images: int | None = 3000   # Schaeffer §3.1: 3000 images
    seed: int = 0
    first: int = 10               # Schaeffer §2.3: eigenvalues 10 to 316
    last: int = 316
    batch_size: int = 500


@dataclass(frozen=True)
class Sensitivity:
    n_images: int | None = 500
    epsilons_255: list = field(default_factory=lambda: [2, 4, 8])
    pgd_steps: int = 20           # AFD Table A2: PGD-L∞ on CIFAR, 20 steps
    pgd_rel_stepsize: float = 0.1
    seed: int = 0
    batch_size: int = 256


@dataclass(frozen=True)
class Selection:
    # §5.2, Fig. 4 caption: U_D and R_D at ε = 0.1 for the random noises and ε = 0.02 for
    # transferred FGSM (gray CIFAR-10).
    epsilon: dict = field(default_factory=lambda: {
        "gaussian": 0.1, "uniform": 0.1, "salt_pepper": 0.1, "fgsm_transfer": 0.02})
    dataset_epsilon: dict = field(default_factory=dict)  # dataset -> {attack: ε} overrides


@dataclass(frozen=True)
class Claims:
    """What results/claims.md checks besides each claim at the config's own settings
    (simreg.report.claims, docs/claims.md)."""
    # Claim ids (e.g. C1, C2, C3) checked a second time with their grids' similarity models
    # trained under the other ``regularization.pair_pass`` (issue: how much the paper's effect
    # depends on the pass); only the methods below are retrained, the baselines are shared.
    pair_pass_claims: list = field(default_factory=list)
    pair_pass_methods: list = field(default_factory=lambda: ["threshold"])
    # Each verdict is also given on the first this many seeds of its grid, where it has more
    # (how a verdict moves from 3 to 7 seeds); 0: not.
    first_seeds: int = 3


@dataclass(frozen=True)
class Corruptions:
    """The corrupted test sets (§5.4, CIFAR-10-C; simreg.data.corrupted)."""
    source: str = "auto"          # official files when they can be had, else generated
    dir: str | None = None        # folder holding CIFAR-10-C/ (None: data.root)
    verify: bool = True           # check the official files' MD5s
    seed: int = 0                 # generated corruptions
    n_images: int | None = None   # generate for the first n test images (None: all)


@dataclass(frozen=True)
class CorruptionAccuracy:
    n_images: int | None = None   # first n test images (None: all)
    batch_size: int = 1000


def _robustbench_models() -> list:
    # App. 7.9, Fig. 24: L∞ (Carmon2019Unlabeled), L2 (Engstrom2019Robustness) and
    # corruption-trained (Modas2021PRIMEResNet18) models, and RobustBench's standard model.
    return [{"name": "Standard", "threat_model": "corruptions"},
            {"name": "Modas2021PRIMEResNet18", "threat_model": "corruptions"},
            {"name": "Engstrom2019Robustness", "threat_model": "L2"},
            {"name": "Carmon2019Unlabeled", "threat_model": "Linf"}]


@dataclass(frozen=True)
class Robustbench:
    # opt-in: `all` builds Fig. 24 only when true (it needs the robustbench extra and
    # hand-fetched weights); asked for by name, the figure is built either way
    enabled: bool = False
    model_dir: str = "models"     # weights at <model_dir>/cifar10/<threat_model>/<name>.pt
    models: list = field(default_factory=_robustbench_models)
    severities: list = field(default_factory=lambda: [5])  # App. 7.9: severity 5
    n_images: int | None = None
    batch_size: int = 500


@dataclass(frozen=True)
class Neural:
    """The neural arm (Li et al. 2019; paper §3, App. 7.1): recordings or a simulated V1
    population, the predictive model fitted per scan and model seed, its similarity."""

    recordings: dict = field(default_factory=dict)  # scan -> HDF5; {}: simulate
    # dataset_color of the stimuli; None: imagenet_gray or imagenette_gray
    stimuli: str | None = None
    image_size: list = field(default_factory=lambda: [36, 64])  # §3: 36 x 64 gray images
    scans: int = 6                # Fig. 1: "6 distinct scans"
    # per_scan: a model per scan; shared_core: one core, a readout per scan
    multi_scan: str = "per_scan"
    neurons: int = 1000           # per simulated scan
    train_images: int = 4000
    validation_images: int = 500
    test_images: int = 100
    test_repeats: int = 10
    complex_fraction: float = 0.5
    simulation_seed: int = 0
    model_seeds: list = field(default_factory=lambda: [0, 1, 2])  # Fig. 1: "more than 3 models"
    hidden_channels: int = 32
    input_kernel: int = 9
    hidden_kernel: int = 7
    layers: int = 3               # §3: "3-layered CNN with skip connections"
    readout: str = "gaussian"
    gamma_input: float = 10.0
    gamma_readout: float = 0.005
    batch_size: int = 64
    lr: float = 0.005
    max_epochs: int = 100
    patience: int = 5
    lr_decay_steps: int = 3       # Sinz lab's standard trainer: 3 plateaus, rate x 0.3, min 1e-4
    lr_decay_factor: float = 0.3
    min_lr: float = 0.0001


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
    similarity_runtime: int = 120
    dataset_mem_mb: int = 8000
    dataset_runtime: int = 60
    corruptions_mem_mb: int = 8000
    corruptions_runtime: int = 120


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
    "selection": Selection,
    "claims": Claims,
    "adversarial": Adversarial,
    "sgr": Sgr,
    "jacobian": Jacobian,
    "input_gradients": InputGradients,
    "afd": Afd,
    "lrc_noise": LrcNoise,
    "eigenspectrum": Eigenspectrum,
    "sensitivity": Sensitivity,
    "corruptions": Corruptions,
    "corruption_accuracy": CorruptionAccuracy,
    "robustbench": Robustbench,
    "neural": Neural,
    "resources": Resources,
}
# Top-level scalar keys and their defaults.
TOP_LEVEL = {
    "container_image": "containers/simreg.sif",
    "plugins": [],
}


def augments(augment: bool | dict, dataset: str) -> bool:
    """Whether ``training.augment`` (a bool, or dataset -> bool) augments ``dataset``; a
    dataset that a dict does not name is not augmented."""
    if isinstance(augment, bool):
        return augment
    return bool(augment.get(dataset, False))


def defaults(section: str) -> dict:
    """The defaults of one config section, as the plain dict the config holds."""
    return dataclasses.asdict(SECTIONS[section]())


def section(config: dict, name: str):
    """The typed settings of section ``name`` of a validated ``config``."""
    return SECTIONS[name](**config[name])
