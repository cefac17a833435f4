"""Typed settings: the one declaration of every config key.

Each config section is a dataclass here, and each of its keys one field declared with
:func:`setting`: its default (the paper's setting), its meaning, and its JSON-schema type and
range. Everything else is generated from these declarations: the section schemas that
:func:`simreg.config.load_schema` validates against (:func:`section_schema`; the schema file
workflow/schemas/config.schema.yaml keeps only the structural definitions and the figure
grids), the defaults that validation fills in, and the reference page docs/config.md
(``python -m simreg.config_reference > docs/config.md``; tests/test_config.py fails when it
drifts). Code that needs a default (the trainer, the attacks, the CLI, the benchmark) reads it
from here too.

Paper sections are given as in Attias, Pehlevan & Obeid 2024 (arXiv 2410.03952).
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field

_DEFINITIONS = "#/definitions/"


def setting(
    default=None,
    meaning: str = "",
    *,
    section: type | None = None,
    ref: str | None = None,
    **schema,
):
    """One config key: ``default``, ``meaning`` (its description) and its JSON-schema keywords
    (``type``, ``minimum``, ``enum``, ``items``, ...; ``ref="seeds"`` for
    ``$ref: "#/definitions/seeds"``). ``section``: a dataclass of nested keys, declared the
    same way, whose defaults are this key's default."""
    if not meaning:
        raise ValueError("every setting needs a meaning")
    if ref is not None:
        schema["$ref"] = _DEFINITIONS + ref
    metadata = {"meaning": " ".join(meaning.split()), "schema": schema, "section": section}
    if section is not None:
        return field(default_factory=lambda: dataclasses.asdict(section()), metadata=metadata)
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class FastPath:
    """``training.fast_path``: speed options of the model's forward passes in training
    (simreg.train.fast_path, docs/choices.md, 'Training speed'). All off: a run's weights are
    bit for bit those of a run without them."""

    autocast: str = setting(
        "none",
        enum=["none", "bfloat16"],
        meaning="bfloat16: every forward pass of the model (classification, the regularizer's "
        "passes, PGD, validation) under torch.autocast in bf16; features come back in "
        "fp32, so losses and SGD stay fp32",
    )
    channels_last: bool = setting(
        False,
        type="boolean",
        meaning="the model's weights and inputs in channels_last (NHWC) memory format; saved "
        "weights stay contiguous",
    )
    compile: bool = setting(
        False,
        type="boolean",
        meaning="torch.compile of the model's forward pass (needs a C++ compiler on CPU; the "
        "first steps compile); refused for methods whose loss differentiates an input "
        "gradient (gn, jacobian, sgr: double backward)",
    )


@dataclass(frozen=True)
class Data:
    """where the datasets come from: torchvision downloads, ImageNet, your own NPZ files"""

    root: str = setting("data", "torchvision download/data root", type="string")
    download: bool = setting(True, "download torchvision datasets if missing", type="boolean")
    imagenet_dir: str | None = setting(
        None,
        type=["string", "null"],
        meaning="ImageFolder root of the ImageNet regularization images (cannot be downloaded)",
    )
    npz: dict = setting(
        {},
        type="object",
        additionalProperties={"type": "string"},
        propertyNames={"pattern": "^[a-z0-9]+$"},
        meaning="local datasets: name -> NPZ path (keys images/labels, or train_/test_ split keys)",
    )
    test_fraction: float = setting(
        0.2,
        type="number",
        exclusiveMinimum=0,
        exclusiveMaximum=1,
        meaning="test share for sources without their own test split (digits, unsplit NPZ)",
    )
    split_seed: int = setting(0, "seed of that split", type="integer", minimum=0)


@dataclass(frozen=True)
class Model:
    """§4: the classifier (a ResNet)"""

    architecture: str = setting("resnet18", "§4: ResNet18", enum=["resnet18", "resnet34"])
    width: int = setting(64, "channels of the first stage", type="integer", minimum=1)
    dataset_architecture: dict = setting(
        {"cifar100": "resnet34"},
        type="object",
        propertyNames={"pattern": "^[a-z0-9]+$"},
        additionalProperties={"enum": ["resnet18", "resnet34"]},
        meaning="classification dataset -> architecture, overriding `architecture` (App. 7.4, "
        "7.8, Table 3: ResNet34 for CIFAR-100)",
    )


@dataclass(frozen=True)
class Training:
    """§4 and the authors' code: how every classifier is trained (a grid's `training` entry
    overrides these per method)"""

    epochs: int = setting(40, "§4: 40 epochs", type="integer", minimum=1)
    batch_size: int = setting(64, "classification batch", type="integer", minimum=1)
    optimizer: str = setting(
        "sgd",
        enum=["sgd", "adam"],
        meaning="sgd (torch.optim.SGD with momentum, the authors' code) or adam "
        "(torch.optim.Adam, Roth et al.; weight_decay is then an L2 term in the gradient,"
        " not AdamW's); the learning-rate schedule scales either (docs/choices.md, 'Each "
        "method's own recipe')",
    )
    lr: float = setting(
        0.1, type="number", exclusiveMinimum=0, meaning="base learning rate (of SGD or Adam)"
    )
    momentum: float = setting(
        0.9, type="number", minimum=0, maximum=1, meaning="SGD's momentum (Adam ignores it)"
    )
    betas: list = setting(
        [0.9, 0.999],
        type="array",
        items={"type": "number", "minimum": 0, "exclusiveMaximum": 1},
        minItems=2,
        maxItems=2,
        meaning="Adam's (β1, β2) (SGD ignores them)",
    )
    weight_decay: float = setting(0.0, "0 in the authors' code", type="number", minimum=0)
    lr_decay: float = setting(
        0.3,
        type="number",
        exclusiveMinimum=0,
        maximum=1,
        meaning="lr * decay^((epoch mod cycle) // step)",
    )
    lr_step_epochs: int = setting(
        4, type="integer", minimum=1, meaning="epochs per step of the schedule (authors' code: 4)"
    )
    lr_cycle_epochs: int = setting(
        20,
        type="integer",
        minimum=1,
        meaning="epochs per cycle of the schedule, after which the rate restarts (authors' code: "
        "20)",
    )
    validation_fraction: float = setting(
        0.01,
        type="number",
        exclusiveMinimum=0,
        exclusiveMaximum=1,
        meaning="held out; the kept epoch has the lowest validation loss",
    )
    augment: bool | dict = setting(
        {"cifar10": True, "cifar100": True, "mnist": False, "fashionmnist": False, "digits": False},
        oneOf=[
            {"type": "boolean"},
            {
                "type": "object",
                "propertyNames": {"pattern": "^[a-z0-9]+$"},
                "additionalProperties": {"type": "boolean"},
            },
        ],
        meaning="random crop (reflect pad 4) + horizontal flip of the classification batches: per"
        " dataset (the authors' code: CIFAR yes, MNIST/FashionMNIST no; a dataset not "
        "named: no), or true/false for every dataset",
    )
    device: str = setting(
        "auto",
        type="string",
        pattern="^(auto|cpu|mps|cuda(:[0-9]+)?)$",
        meaning="auto (CUDA if present), cpu, mps or cuda[:N]",
    )
    pack_size: int = setting(
        1,
        type="integer",
        minimum=1,
        meaning="seeds of one model key (its grids' seeds, in order) trained together by one job "
        "(rule train_pack; docs/running.md); 1: one job per seed (rule train)",
    )
    fast_path: dict = setting(
        None,
        section=FastPath,
        meaning="speed options of the model's forward passes in training (docs/choices.md, "
        "'Training speed'); all off by default, so results do not change by accident; a "
        "key left out keeps its default",
    )


@dataclass(frozen=True)
class Regularization:
    """§4-5: the similarity regularizer (eq. 3-5)"""

    threshold: float = setting(
        0.8, type="number", minimum=0, maximum=1, meaning="§5: threshold Th of S_Th (eq. 5)"
    )
    inner_threshold: float = setting(
        0.4,
        type="number",
        minimum=0,
        maximum=1,
        meaning="inner threshold of the double variant (App. 7.7); our choice, the paper's value "
        "was not found",
    )
    reg_pairs: int = setting(16, "§4: regularization pairs per step", type="integer", minimum=1)
    n_images: int = setting(5000, "§4: N regularization images", type="integer", minimum=2)
    image_seed: int = setting(0, "seed that picks the N images", type="integer", minimum=0)
    z_eps: float = setting(
        1e-05,
        type="number",
        exclusiveMinimum=0,
        maximum=0.1,
        meaning="ε in z(s) = log((1+s+ε)/(1-s+ε)) (authors' code)",
    )
    mean_momentum: float = setting(
        0.1,
        type="number",
        exclusiveMinimum=0,
        maximum=1,
        meaning="running per-channel feature mean of S_CNN",
    )
    pair_pass: str = setting(
        "split",
        type="string",
        enum=["split", "fused"],
        meaning="how the similarity methods' k pairs go through the network: split, two batches "
        "of k each normalized by its own BatchNorm statistics (the authors' code); fused,"
        " one batch of 2k (docs/choices.md). Enters the model key only when fused",
    )


@dataclass(frozen=True)
class Similarity:
    """how the pixel similarity S_pixel of the N regularization images is computed and stored"""

    dtype: str = setting(
        "float32",
        enum=["float32", "float16"],
        meaning="storage type of S_pixel (float16 halves disk/memory at N = 50,000)",
    )
    block_size: int = setting(2048, "rows computed per block", type="integer", minimum=1)


@dataclass(frozen=True)
class Noise:
    """§5.1, Fig. 3 left: accuracy under Gaussian, uniform and salt-and-pepper noise"""

    seed: int = setting(0, "noise seed, the same for every model", type="integer", minimum=0)
    clip: str = setting(
        "image",
        enum=["image", "unit"],
        meaning="clip each noisy image to its own [min, max] (image; authors' code) or to [0, 1] "
        "(unit)",
    )
    n_images: int | None = setting(
        None, type=["integer", "null"], minimum=1, meaning="test images used (null = all)"
    )
    epsilons: dict = setting(
        {},
        type="object",
        additionalProperties={"$ref": "#/definitions/noise_grids"},
        meaning="§5.1: ε grid per dataset and noise kind (10 values; CIFAR [0, 0.1], MNIST-type "
        "[0, 0.5], salt-and-pepper [0, 0.3])",
    )


@dataclass(frozen=True)
class FgsmTransfer:
    """§5.1, Fig. 3 centre: FGSM of one fixed unregularized model, transferred to every evaluated
    model"""

    source_seed: int = setting(
        100,
        type="integer",
        minimum=0,
        meaning="seed of the one unregularized source model per task; must not be a seed of any "
        "figure grid (the source is never an evaluated model)",
    )
    n_images: int | None = setting(
        None, type=["integer", "null"], minimum=1, meaning="first n test images (null = all)"
    )
    batch_size: int = setting(
        512, type="integer", minimum=1, meaning="images perturbed and scored together"
    )
    epsilons: dict = setting(
        {},
        ref="epsilon_grids",
        meaning="ε grid per dataset (authors' code: CIFAR-10 [0, 0.02], CIFAR-100 [0, 0.005], "
        "MNIST-type [0, 0.5])",
    )


@dataclass(frozen=True)
class Boundary:
    """App. 7.1, Fig. 3 right: decision-based Boundary Attack (foolbox 3), score = median
    ||δ||²/d"""

    n_images: int | None = setting(
        1000,
        type=["integer", "null"],
        minimum=1,
        meaning="random test subset, the same for every model (paper: 1000)",
    )
    repeats: int = setting(
        5, type="integer", minimum=1, meaning="attack repeats (paper: 5); the score is their mean"
    )
    subset_seed: int = setting(
        0, type="integer", minimum=0, meaning="seed of the subset and of the attack's draws"
    )
    batch_size: int = setting(250, "images attacked together", type="integer", minimum=1)
    init_retries: int = setting(
        3,
        type="integer",
        minimum=1,
        meaning="blended-noise starting-point tries before the other-class fallback",
    )
    init_directions: int = setting(1000, "random noise draws per try", type="integer", minimum=1)
    init_steps: int = setting(
        50,
        type="integer",
        minimum=1,
        meaning="blend line-search steps (foolbox's BoundaryAttack default: 50)",
    )
    settings: dict = setting(
        {"paper": {"steps": 50}, "converged": {"steps": 10000, "update_stats_every_k": 1}},
        type="object",
        minProperties=1,
        propertyNames={"pattern": "^[a-z0-9_]+$"},
        additionalProperties={"$ref": "#/definitions/boundary_setting"},
        meaning="setting name -> attack arguments; each is its own output and figure panel "
        "(docs/attacks.md)",
    )
    read_by: dict = setting(
        {"converged": ["attack_robustness", "models"]},
        type="object",
        propertyNames={"pattern": "^[a-z0-9_]+$"},
        additionalProperties={"type": "array", "items": {"type": "string"}},
        meaning="setting name -> the only figures and tables that read it (and claims on "
        "those figures' grids), so that its jobs run for their models alone; a "
        "setting not named here is read by every target that reads the Boundary "
        "Attack. The paper runs 10k steps only for Fig. 7 (spectrum.setting's jobs "
        "run for perturbation_spectrum's models whatever this says)",
    )


@dataclass(frozen=True)
class Spectrum:
    """§5.5, Fig. 7: Fourier spectrum of minimal Boundary Attack perturbations"""

    setting: str = setting(
        "converged",
        type="string",
        meaning="the boundary setting whose perturbations are analysed (paper: 10k steps)",
    )


@dataclass(frozen=True)
class Whitebox:
    """white-box FGSM and PGD-L∞ accuracy, ε in units of 1/255 (as SGR and AFD report)"""

    n_images: int | None = setting(
        1000, type=["integer", "null"], minimum=1, meaning="first n test images (null = all)"
    )
    epsilons_255: list = setting(
        [0, 1, 2, 4, 8],
        type="array",
        items={"type": "number", "minimum": 0},
        minItems=1,
        meaning="ε grid in units of 1/255 (0: clean accuracy)",
    )
    pgd_steps: int = setting(20, "PGD-L∞ steps", type="integer", minimum=1)
    pgd_rel_stepsize: float = setting(
        0.1, type="number", exclusiveMinimum=0, meaning="PGD step size relative to ε"
    )
    seed: int = setting(0, "seed of PGD's random start", type="integer", minimum=0)
    batch_size: int = setting(256, "images attacked together", type="integer", minimum=1)


@dataclass(frozen=True)
class MinimalDistance:
    """supplement §3: smallest L0/L1/L2/L∞ adversarial distance per image over an attack suite"""

    n_images: int = setting(
        1000,
        type="integer",
        minimum=1,
        meaning="random test subset, the same for every model (paper: 1000)",
    )
    seed: int = setting(
        0,
        type="integer",
        minimum=0,
        meaning="seed of the random test subset and of the attacks' random starts",
    )
    batch_size: int = setting(100, "images attacked together", type="integer", minimum=1)
    suite: dict = setting(
        {},
        type="object",
        meaning="attacks and their settings (docs/minimal_distance.md); checked by "
        "simreg.evaluate.minimal_distance",
    )


@dataclass(frozen=True)
class Selection:
    """§5.2, Fig. 4, App. 7.5: the ε at which R_D and U_D (accuracy at high distortion) are read"""

    epsilon: dict = setting(
        {"gaussian": 0.1, "uniform": 0.1, "salt_pepper": 0.1, "fgsm_transfer": 0.02},
        ref="attack_epsilons",
        meaning="attack -> ε (Fig. 4 caption: 0.1 for the random noises, 0.02 for transferred "
        "FGSM); must be on the attack's ε grid",
    )
    dataset_epsilon: dict = setting(
        {},
        type="object",
        propertyNames={"pattern": "^[a-z0-9]+$"},
        additionalProperties={"$ref": "#/definitions/attack_epsilons"},
        meaning="dataset -> {attack: ε}, overriding `epsilon` for datasets with other ε grids",
    )


@dataclass(frozen=True)
class Claims:
    """what results/claims.md checks besides each claim at the config's own settings
    (docs/claims.md)"""

    pair_pass_claims: list = setting(
        [],
        type="array",
        items={"type": "string", "pattern": "^[CR][0-9]+$"},
        meaning="claim ids (C1, C2, ...) checked a second time with their grids' similarity "
        "models trained under the other regularization.pair_pass",
    )
    pair_pass_methods: list = setting(
        ["threshold"],
        type="array",
        items={"type": "string"},
        meaning="the similarity methods retrained under the other pair pass for pair_pass_claims "
        "(the baselines are shared)",
    )
    pair_pass_seeds: list | None = setting(
        None,
        type=["array", "null"],
        items={"type": "integer", "minimum": 0},
        meaning="the seeds of those retrained models (null: the grid's); compare them with the "
        "config's pass on the same seeds through first_seeds",
    )
    first_seeds: int = setting(
        3,
        type="integer",
        minimum=0,
        meaning="each verdict is also given on the first this many seeds, where its grid has more"
        " (0: not)",
    )


@dataclass(frozen=True)
class Adversarial:
    """PGD-L∞ perturbations made during training (methods pgd_at, afd; sgr with perturbation pgd)"""

    epsilons: dict = setting(
        {"cifar10": 0.031, "cifar100": 0.031, "mnist": 0.3, "fashionmnist": 0.3, "digits": 0.3},
        type="object",
        additionalProperties={"type": "number", "minimum": 0},
        propertyNames={"pattern": "^[a-z0-9]+$"},
        meaning="dataset -> budget ε in [0, 1] pixel units (AFD §3.2: 0.031 CIFAR, 0.3 MNIST)",
    )
    steps: int = setting(7, "PGD steps (Madry et al. CIFAR-10: 7)", type="integer", minimum=1)
    rel_stepsize: float = setting(
        0.25,
        type="number",
        exclusiveMinimum=0,
        meaning="step size relative to ε (Madry et al. CIFAR-10: 2/8)",
    )
    random_start: bool = setting(True, "uniform random start in the ε-ball", type="boolean")


@dataclass(frozen=True)
class Sgr:
    """structured gradient regularization (Roth et al. 2018; docs/methods.md)"""

    perturbation: str = setting(
        "sign",
        enum=["sign", "gradient", "fgsm", "pgd"],
        meaning="perturbations whose covariance function is Σ (Roth §4.1; Table 1 reports sign)",
    )
    beta: float = setting(
        0.1,
        type="number",
        exclusiveMinimum=0,
        maximum=1,
        meaning="decay rate of the running covariance (Roth Alg. 1: 0.1)",
    )


@dataclass(frozen=True)
class Jacobian:
    """Jacobian penalty (Schaeffer et al. eq. 1)"""

    projections: int = setting(
        1, type="integer", minimum=1, meaning="random projections per step for ||J||_F"
    )
    output: str = setting(
        "probabilities",
        enum=["probabilities", "logits"],
        meaning="the output whose input Jacobian is penalized: probabilities = softmax of the "
        "logits, Schaeffer eq. 1's f (its cross-entropy is -sum y log f); logits for "
        "comparison",
    )
    estimator: str = setting(
        "frobenius",
        enum=["frobenius", "column_sums"],
        meaning="the penalized norm: frobenius = ||J||_F per image, eq. 1 as written (random "
        "projections); column_sums = ||1^T J||, the norm of the Jacobian's column sums "
        "that Schaeffer §3.4 says was run (needs output logits: the probabilities' column"
        " sums are 0)",
    )
    squared: bool = setting(
        False,
        type="boolean",
        meaning="frobenius: penalize ||J||_F^2 as Hoffman et al. do (true: unbiased from one "
        "projection) or ||J||_F as eq. 1 writes (false: the square root of the estimate, "
        "biased low at few projections; docs/choices.md)",
    )


@dataclass(frozen=True)
class InputGradients:
    """how sgr, gn and jacobian take input gradients through BatchNorm (docs/choices.md)"""

    batchnorm: str = setting(
        "per_sample",
        enum=["per_sample", "batch"],
        meaning="per_sample = each image's own gradient, BatchNorm normalizing with the training "
        "pass's statistics (fixed with respect to the input); batch = through the "
        "training pass's batch statistics, which couple the images' gradients",
    )


@dataclass(frozen=True)
class Afd:
    """adversarial feature desensitization (Bashivan et al., Alg. 1, Table A1)"""

    embedding_lr: float = setting(
        0.1,
        type="number",
        exclusiveMinimum=0,
        meaning="learning rate of the embedding step (LR_E: 0.1)",
    )
    discriminator_lr: float = setting(
        0.1,
        type="number",
        exclusiveMinimum=0,
        meaning="learning rate of the discriminator step (LR_Da: 0.1)",
    )
    momentum: float = setting(
        0.9, type="number", minimum=0, maximum=1, meaning="SGD momentum of those two steps"
    )
    width: int = setting(
        512,
        type="integer",
        minimum=1,
        meaning="hidden units of the discriminator (64 MNIST, 512 CIFAR)",
    )
    leaky_slope: float = setting(0.2, "LeakyReLU negative slope", type="number", minimum=0)


@dataclass(frozen=True)
class LrcNoise:
    """long-range-correlated noise attack (Roth §4.3, Fig. 3): worst of `draws` Gaussian draws per
    image"""

    zetas: list = setting(
        [1, 2, 4, 8, 16],
        type="array",
        items={"type": "number", "exclusiveMinimum": 0},
        minItems=1,
        meaning="decay lengths ζ in pixels (Roth: 1-16)",
    )
    epsilon: float = setting(
        0.3,
        type="number",
        minimum=0,
        meaning="scale of the unit-variance noise, in `unit` (Roth Fig. 3: 0.3)",
    )
    draws: int = setting(100, "draws per image (Roth: 100)", type="integer", minimum=1)
    n_images: int | None = setting(
        None,
        type=["integer", "null"],
        minimum=1,
        meaning="first n test images (null = all; Roth §4.3: every test image)",
    )
    seed: int = setting(0, "noise seed, the same for every model", type="integer", minimum=0)
    batch_size: int = setting(500, "images scored together", type="integer", minimum=1)
    unit: str = setting(
        "standardized",
        enum=["standardized", "pixel"],
        meaning="unit of ε: standardized = on each image standardized to zero mean, unit variance"
        " (Roth §5; the noise in [0, 1] pixels is ε times the image's standard "
        "deviation); pixel = on the [0, 1] pixels (docs/choices.md)",
    )
    epsilons: list = setting(
        [0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7],
        type="array",
        items={"type": "number", "minimum": 0},
        meaning="ε of the accuracy-vs-ε curve at ζ = epsilons_zeta (Roth App. Fig. 4: 0.01 to "
        "0.7); [] = no such curve",
    )
    epsilons_zeta: float = setting(
        8.0,
        type="number",
        exclusiveMinimum=0,
        meaning="decay length of the accuracy-vs-ε curve (Roth App. Fig. 4: 8)",
    )


@dataclass(frozen=True)
class Eigenspectrum:
    """power-law exponent of the penultimate-layer covariance eigenspectrum (Schaeffer §2.3)"""

    n_images: int | None = setting(
        3000,
        type=["integer", "null"],
        minimum=2,
        meaning="random test subset (Schaeffer: 3000; null = all)",
    )
    seed: int = setting(0, "seed of the random test subset", type="integer", minimum=0)
    first: int = setting(
        10, type="integer", minimum=1, meaning="first eigenvalue rank of the fit (Schaeffer: 10)"
    )
    last: int = setting(
        316,
        type="integer",
        minimum=2,
        meaning="last rank of the fit (Schaeffer: 316), cut at the spectrum's length",
    )
    batch_size: int = setting(500, "images passed together", type="integer", minimum=1)


@dataclass(frozen=True)
class Sensitivity:
    """representation sensitivity ||E(x) - E(x')|| / ||E(x)|| under white-box PGD-L∞ (AFD Fig. 4)"""

    n_images: int | None = setting(
        500, type=["integer", "null"], minimum=1, meaning="first n test images (null = all)"
    )
    epsilons_255: list = setting(
        [2, 4, 8],
        type="array",
        items={"type": "number", "minimum": 0},
        minItems=1,
        meaning="ε in units of 1/255",
    )
    pgd_steps: int = setting(20, "PGD-L∞ steps (AFD Table A2: 20)", type="integer", minimum=1)
    pgd_rel_stepsize: float = setting(
        0.1, type="number", exclusiveMinimum=0, meaning="PGD step size relative to ε"
    )
    seed: int = setting(0, "seed of PGD's random start", type="integer", minimum=0)
    batch_size: int = setting(256, "images attacked together", type="integer", minimum=1)


@dataclass(frozen=True)
class Corruptions:
    """§5.4: corrupted test sets (CIFAR-10-C and the like; simreg.data.corrupted,
    docs/choices.md)"""

    source: str = setting(
        "auto",
        enum=["auto", "official", "generated"],
        meaning="official: the Zenodo release (CIFAR-10/100 only); generated: the 15 corruptions "
        "with the CIFAR constants; auto: official when it can be had (found or "
        "downloaded), else generated",
    )
    dir: str | None = setting(
        None,
        type=["string", "null"],
        meaning="folder holding CIFAR-10-C/ and CIFAR-100-C/ (or RobustBench's data_dir); null = "
        "data.root",
    )
    verify: bool = setting(True, "check the official files' MD5s", type="boolean")
    seed: int = setting(0, "seed of the generated corruptions", type="integer", minimum=0)
    n_images: int | None = setting(
        None,
        type=["integer", "null"],
        minimum=1,
        meaning="corrupt the first n test images (null = all)",
    )


@dataclass(frozen=True)
class CorruptionAccuracy:
    """§5.4-5.5, Figs. 6, 7 left: accuracy per corruption and severity"""

    n_images: int | None = setting(
        None, type=["integer", "null"], minimum=1, meaning="first n test images (null = all)"
    )
    batch_size: int = setting(1000, "images scored together", type="integer", minimum=1)


@dataclass(frozen=True)
class Robustbench:
    """App. 7.9, Fig. 24: RobustBench reference models on color CIFAR-10-C (optional extra: pip
    install -e '.[robustbench]')"""

    enabled: bool = setting(
        False,
        type="boolean",
        meaning="opt-in: `all` builds Fig. 24 (robustbench_comparison) only when true, as it "
        "needs the robustbench extra and the weights; asked for by name (snakemake "
        "results/figures/robustbench_comparison.pdf) it is built either way",
    )
    model_dir: str = setting(
        "models",
        type="string",
        meaning="weights are read from <model_dir>/cifar10/<threat_model>/<name>.pt (never "
        "downloaded)",
    )
    models: list = setting(
        # App. 7.9, Fig. 24: L∞ (Carmon2019Unlabeled), L2 (Engstrom2019Robustness) and
        # corruption-trained (Modas2021PRIMEResNet18) models, and RobustBench's standard model
        [
            {"name": "Standard", "threat_model": "corruptions"},
            {"name": "Modas2021PRIMEResNet18", "threat_model": "corruptions"},
            {"name": "Engstrom2019Robustness", "threat_model": "L2"},
            {"name": "Carmon2019Unlabeled", "threat_model": "Linf"},
        ],
        type="array",
        minItems=1,
        items={
            "type": "object",
            "additionalProperties": False,
            "required": ["name", "threat_model"],
            "properties": {
                "name": {
                    "type": "string",
                    "pattern": "^[A-Za-z0-9_-]+$",
                    "description": "RobustBench model name",
                },
                "threat_model": {
                    "enum": ["corruptions", "Linf", "L2"],
                    "description": "RobustBench threat model (folder of the weights)",
                },
            },
        },
        meaning="the reference models: RobustBench name and threat model of each (App. 7.9: "
        "standard, PRIME, L2 and L∞ models)",
    )
    severities: list = setting(
        [5],
        type="array",
        items={"type": "integer", "minimum": 1, "maximum": 5},
        minItems=1,
        uniqueItems=True,
        meaning="corruption severities scored (App. 7.9: 5)",
    )
    n_images: int | None = setting(
        None, type=["integer", "null"], minimum=1, meaning="first n test images (null = all)"
    )
    batch_size: int = setting(500, "images scored together", type="integer", minimum=1)


@dataclass(frozen=True)
class Neural:
    """the neural arm (Li et al. 2019; paper §3, App. 7.1): recordings of mouse V1 or a simulated
    population, the predictive model, its similarity (docs/neural.md)"""

    recordings: dict = setting(
        {},
        type="object",
        additionalProperties={"type": "string"},
        propertyNames={"pattern": "^[a-z0-9_]+$"},
        meaning="your recordings: scan name -> HDF5 file in the format of "
        "simreg.neural.recordings, or a Sensorium 2022 / Lurz et al. 2021 static dataset "
        "(its zip or unpacked folder); one model per scan and model seed, S_neural "
        "averaged over them; empty: simulate `scans` scans",
    )
    stimuli: str | None = setting(
        None,
        oneOf=[{"$ref": "#/definitions/dataset_color"}, {"type": "null"}],
        meaning="images shown to the simulated population (train split), made frames of "
        "image_size; null: imagenet_gray when data.imagenet_dir is set, else "
        "imagenette_gray (downloaded by torchvision, MD5-checked)",
    )
    image_size: list = setting(
        [36, 64],
        type="array",
        items={"type": "integer", "minimum": 4},
        minItems=2,
        maxItems=2,
        meaning="stimulus height, width in pixels (§3: 36 x 64); other images are centre-cropped "
        "and resized",
    )
    scans: int = setting(
        6, type="integer", minimum=1, meaning="simulated scans (populations of different neurons)"
    )
    multi_scan: str = setting(
        "per_scan",
        enum=["per_scan", "shared_core"],
        meaning="how scans are combined: per_scan = one model per scan and model seed; "
        "shared_core = one model per model seed with a shared core and one readout per "
        "scan (the Sinz lab's multi-scan models); S_neural is averaged over the models' "
        "scans either way",
    )
    neurons: int = setting(1000, "neurons per simulated scan", type="integer", minimum=1)
    train_images: int = setting(
        4000, type="integer", minimum=1, meaning="images shown once each, to fit the predictor"
    )
    validation_images: int = setting(
        500, type="integer", minimum=1, meaning="images shown once each, for early stopping"
    )
    test_images: int = setting(
        100, type="integer", minimum=2, meaning="held-out images shown test_repeats times each"
    )
    test_repeats: int = setting(
        10, type="integer", minimum=2, meaning="repeats of each test image (oracle correlation)"
    )
    complex_fraction: float = setting(0.5, "fraction of complex cells", ref="probability")
    simulation_seed: int = setting(
        0, type="integer", minimum=0, meaning="seed of the simulated population and its responses"
    )
    model_seeds: list = setting(
        [0, 1, 2], ref="seeds", meaning="predictive models fitted per scan, one per seed"
    )
    hidden_channels: int = setting(32, "channels of each core layer", type="integer", minimum=1)
    input_kernel: int = setting(9, "first core layer's kernel size", type="integer", minimum=1)
    hidden_kernel: int = setting(7, "other core layers' kernel size", type="integer", minimum=1)
    layers: int = setting(3, "core layers (§3: 3, outputs stacked)", type="integer", minimum=1)
    readout: str = setting(
        "gaussian",
        enum=["gaussian", "factorized"],
        meaning="FullGaussian2d (with shifter) or FullFactorized2d (no shifter)",
    )
    gamma_input: float = setting(
        10.0, type="number", minimum=0, meaning="Laplace smoothness penalty of the input filters"
    )
    gamma_readout: float = setting(
        0.005, type="number", minimum=0, meaning="L1 penalty of the readout features"
    )
    batch_size: int = setting(64, "predictor training batch", type="integer", minimum=1)
    lr: float = setting(0.005, "Adam learning rate", type="number", exclusiveMinimum=0)
    max_epochs: int = setting(
        100,
        type="integer",
        minimum=1,
        meaning="predictor training epochs at most (early stopping ends it sooner)",
    )
    patience: int = setting(
        5,
        type="integer",
        minimum=1,
        meaning="epochs without a better validation correlation before stopping",
    )
    lr_decay_steps: int = setting(
        3,
        type="integer",
        minimum=1,
        meaning="plateaus (no better validation correlation for `patience` epochs; each returns "
        "to the best weights) before stopping; 1 = stop at the first",
    )
    lr_decay_factor: float = setting(
        0.3,
        type="number",
        exclusiveMinimum=0,
        maximum=1,
        meaning="learning-rate factor when the epoch after a return to the best weights is no "
        "better either",
    )
    min_lr: float = setting(
        0.0001, type="number", minimum=0, meaning="the learning rate is not lowered below this"
    )


@dataclass(frozen=True)
class Resources:
    """per-job resources that Snakemake schedules on"""

    gpu: int = setting(
        1,
        type="integer",
        minimum=0,
        meaning="GPUs per training/attack job (0 on CPU-only machines)",
    )
    train_threads: int = setting(4, "CPU threads per training job", type="integer", minimum=1)
    train_mem_mb: int = setting(16000, "memory per training job, MB", type="integer", minimum=256)
    train_runtime: int = setting(240, "minutes", type="integer", minimum=1)
    eval_threads: int = setting(2, "CPU threads per evaluation job", type="integer", minimum=1)
    eval_mem_mb: int = setting(8000, "memory per evaluation job, MB", type="integer", minimum=256)
    eval_runtime: int = setting(60, "minutes", type="integer", minimum=1)
    attack_runtime: int = setting(
        480, type="integer", minimum=1, meaning="minutes, Boundary Attack and minimal-distance jobs"
    )
    evaluation_jobs: str = setting(
        "per_kind",
        enum=["per_kind", "per_model"],
        meaning="per_kind: one job per evaluation of a model (one rule per kind); per_model: one "
        "job per model (rule evaluate_model) runs every evaluation the config's targets read "
        "of it in one process, paying the imports once: for CPU runs of small models "
        "(simreg.evaluate.bundles; docs/running.md, 'Per-job overhead')",
    )
    similarity_mem_mb: int = setting(
        16000, type="integer", minimum=256, meaning="memory of the similarity job, MB"
    )
    similarity_runtime: int = setting(
        120, type="integer", minimum=1, meaning="minutes, a pixel or neural similarity job"
    )
    dataset_mem_mb: int = setting(
        8000, type="integer", minimum=256, meaning="memory of a dataset job (rule dataset), MB"
    )
    dataset_runtime: int = setting(60, "minutes, a dataset job", type="integer", minimum=1)
    corruptions_mem_mb: int = setting(
        8000,
        type="integer",
        minimum=256,
        meaning="memory of a corrupted test set job (rule corruptions), MB",
    )
    corruptions_runtime: int = setting(
        120, type="integer", minimum=1, meaning="minutes, a corrupted test set job"
    )


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


_DATASET_MAP = dict(
    type="object",
    propertyNames={"pattern": "^[a-z0-9]+_(gray|rgb)$"},
    additionalProperties={"$ref": _DEFINITIONS + "dataset_color"},
)


@dataclass(frozen=True)
class Shrink:
    """``shrink``: every figure grid made smaller at once, after a config's own grid entries
    are merged (simreg.config.shrink_grids; configs/quick.yaml). All empty: the grids as
    given."""

    tasks: dict = setting(
        {},
        **_DATASET_MAP,
        meaning="task -> task each grid trains on instead (e.g. cifar10_gray: digits_gray)",
    )
    regularization: dict = setting(
        {},
        **_DATASET_MAP,
        meaning="regularization image set -> the set each grid regularizes on instead; a grid's "
        "sets that become the same set are one set; a `per_regularization` entry of a "
        "replaced set is dropped (its α and Th are the paper's for that pair)",
    )
    seeds: int | None = setting(
        None,
        type=["integer", "null"],
        minimum=1,
        meaning="each grid keeps its first n seeds (null: all)",
    )
    values: int | None = setting(
        None,
        type=["integer", "null"],
        minimum=1,
        meaning="each grid's sweeps (its `alpha` list or each method's, `threshold`) keep their "
        "first n values; a `reg_pairs` or `n_images` sweep keeps its first n - 1 and "
        "the regularization section's own value, the model the other grids train "
        "(null: all)",
    )
    threshold: float | None = setting(
        None,
        type=["number", "null"],
        minimum=0,
        maximum=1,
        meaning="the Th of every grid that gives a single one (a grid sweeping Th keeps its "
        "first `values`); null: as given",
    )


@dataclass(frozen=True)
class TopLevel:
    """The config's keys outside every section (besides ``figures``, the model grids)."""

    plugins: list = setting(
        [],
        type="array",
        items={"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_.]*$"},
        meaning="Python modules imported before the registries are read (by the Snakefile and "
        "by every simreg command): each registers its own regularizers "
        "(simreg.train.regularizers) or evaluations (simreg.evaluate.registry). They "
        "must be importable (installed or on PYTHONPATH).",
    )
    container_image: str = setting(
        "containers/simreg.sif",
        type="string",
        meaning="image every job runs in under --use-singularity (= --sdm apptainer): a local "
        ".sif path (relative to the working directory; the default is built once with "
        "`apptainer build containers/simreg.sif containers/simreg.def`), or a registry "
        "image such as the one .github/workflows/container.yml publishes on a version "
        "tag, docker://ghcr.io/<owner>/simreg:<version>. A local path that does not "
        "exist stops the run before any job, naming the build command. Unused without "
        "apptainer.",
    )
    experiments: list = setting(
        ["all"],
        type="array",
        minItems=1,
        uniqueItems=True,
        items={"type": "string"},
        meaning="what `all` builds: experiment sets (`simreg list-experiments`; e.g. "
        "paper-main, neural, defenses) or figure names, whose grids under `figures` are "
        "kept and every other grid dropped; all: every grid the config gives",
    )
    shrink: dict = setting(
        None,
        section=Shrink,
        meaning="every figure grid made smaller at once, for a small run (configs/quick.yaml): "
        "tasks and regularization sets replaced, seeds and sweeps cut; a config's own "
        "grid entries are merged first, then shrunk",
    )


# Top-level keys (outside the sections and ``figures``) and their defaults.
TOP_LEVEL = dataclasses.asdict(TopLevel())


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


class Settings:
    """The typed settings of a validated config (:func:`simreg.config.validate_config`): each
    section as its dataclass (``s.noise.seed``), each top-level key (``s.plugins``; ``s.shrink``
    as a :class:`Shrink`) and the figure grids (``s.figures``, name -> grid dict). Code reads
    the config through this, not by dict lookups (tests/test_settings_access.py). A section
    the config lacks (a hand-made config of a test) has its defaults. Each attribute is built
    when first read, from the config as it is then."""

    def __init__(self, config: dict):
        self._config = config

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        config = self._config
        if name in SECTIONS:
            value = SECTIONS[name](**config.get(name, {}))
        elif name == "shrink":
            value = Shrink(**config.get(name) or {})
        elif name in TOP_LEVEL:
            value = config.get(name, copy.deepcopy(TOP_LEVEL[name]))
        elif name == "figures":
            value = config.get(name) or {}
        else:
            raise AttributeError(f"no config section or key {name!r}")
        self.__dict__[name] = value
        return value

    def params(self, name: str) -> dict:
        """Section ``name`` as the plain dict a job's params carry, in the config's key order
        (Snakemake reruns a job whose params' text changes, order included)."""
        return dict(self._config.get(name, {}))


def typed(config: dict) -> Settings:
    """The typed settings of a validated ``config`` (see :class:`Settings`)."""
    return config if isinstance(config, Settings) else Settings(config)


def meaning(cls: type) -> str:
    """A section's description: its class docstring on one line."""
    return " ".join((cls.__doc__ or "").split())


def key_schema(declared: dataclasses.Field) -> dict:
    """The JSON schema of one declared key, with its description and default."""
    metadata = declared.metadata
    nested = metadata["section"]
    if nested is not None:
        schema = {
            "type": "object",
            "additionalProperties": False,
            "properties": {f.name: key_schema(f) for f in dataclasses.fields(nested)},
        }
    else:
        schema = copy.deepcopy(metadata["schema"])
    default = (
        declared.default_factory() if declared.default is dataclasses.MISSING else declared.default
    )
    return {**schema, "description": metadata["meaning"], "default": default}


def section_schema(name: str) -> dict:
    """The JSON schema of config section ``name``: every key's type, range, meaning and
    default, no other key allowed; an absent section is filled in with its defaults."""
    cls = SECTIONS[name]
    return {
        "type": "object",
        "additionalProperties": False,
        "description": meaning(cls),
        "default": {},
        "properties": {f.name: key_schema(f) for f in dataclasses.fields(cls)},
    }


def top_level_schema() -> dict:
    """The JSON schema of each top-level key (:class:`TopLevel`), by name."""
    return {f.name: key_schema(f) for f in dataclasses.fields(TopLevel)}
