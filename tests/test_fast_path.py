"""The training fast path (training.fast_path): off it changes nothing; each switch gives the
reference loss within its precision, and the saved weights stay plain."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
import torch

from simreg.config import ConfigError, validate_config
from simreg.data.sources import Splits
from simreg.data.store import write_dataset
from simreg.models.resnet import build_model
from simreg.targets.pixel_similarity import build_similarity
from simreg.train.fast_path import FastPath
from simreg.train.settings import TrainSettings
from simreg.train.trainer import Trainer

OFF = {"autocast": "none", "channels_last": False, "compile": False}
THRESHOLD = {"threshold": 0.5, "reg_pairs": 8, "z_eps": 1e-5, "mean_momentum": 0.1}


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    """(task HDF5, similarity HDF5) of 16x16 gray images: noisy copies of 8 random patterns
    and their negatives, so that S_pixel, hence S_Th, has pairs at +1, -1 and 0."""
    folder = tmp_path_factory.mktemp("fast_path")
    rng = np.random.default_rng(0)
    patterns = rng.normal(size=(8, 16, 16, 1))
    which, sign = rng.integers(0, 8, 256), rng.choice([-1.0, 1.0], 256)
    pixels = sign[:, None, None, None] * patterns[which] + 0.5 * rng.normal(size=(256, 16, 16, 1))
    images = np.clip(128 + 40 * pixels, 0, 255).astype(np.uint8)
    labels = which.astype(np.int64)
    path = folder / "task.h5"
    write_dataset(
        Splits(images, labels, images[:16], labels[:16]),
        "gray",
        path,
        dataset="synthetic",
        n_classes=8,
    )
    similarity = folder / "similarity.h5"
    build_similarity(path, similarity, n_images=128, image_seed=0)
    return path, similarity


def step_loss(task, method: str, fast_path: dict) -> float:
    """L = CE + alpha * L_reg of the first step of a fresh width-4 run (no update made)."""
    path, similarity = task
    settings = TrainSettings(
        method=method,
        alpha=10.0 if method != "none" else 0.0,
        width=4,
        batch_size=32,
        validation_fraction=0.1,
        augment=True,
        regularizer=THRESHOLD if method == "threshold" else {},
        fast_path=fast_path,
    )
    torch.manual_seed(0)
    trainer = Trainer(path, {"similarity": similarity}, settings, torch.device("cpu"))
    generator = torch.Generator().manual_seed(1)
    idx = torch.randperm(len(trainer.y_train), generator=generator)[: settings.batch_size]
    draws = trainer.regularizer.plan_epoch(1, generator, torch.device("cpu"))
    offsets = torch.randint(0, 9, (settings.batch_size, 2), generator=generator)
    flips = torch.rand(settings.batch_size, generator=generator) < 0.5
    batch = trainer.batch(idx, (offsets, flips))
    reg = trainer.regularizer.loss(batch, None if draws is None else draws[0])
    reg = torch.zeros_like(batch.ce) if reg is None else reg
    loss = batch.ce + settings.alpha * reg
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()  # the backward pass runs too
    return loss.item()


def test_defaults_are_off_and_leave_the_model_untouched():
    assert TrainSettings().fast_path == OFF == validate_config({})["training"]["fast_path"]
    fast = FastPath.from_settings(TrainSettings(), "cpu")
    assert not fast.active
    model = build_model("resnet18", 1, 10, 4)
    before = dict(vars(model))
    assert fast.prepare_model(model) is model
    assert vars(model) == before and "features" not in vars(model)  # the class's own forward
    assert all(p.is_contiguous() for p in model.parameters())
    x = torch.rand(2, 1, 16, 16)
    assert fast.inputs(x) is x


def test_default_trainer_forward_is_the_models_own(task):
    path, similarity = task
    settings = TrainSettings(method="none", width=4, batch_size=32, validation_fraction=0.1)
    trainer = Trainer(path, {}, settings, torch.device("cpu"))
    assert "features" not in vars(trainer.model)


@pytest.mark.parametrize("method", ["none", "threshold"])
def test_bf16_autocast_gives_the_reference_loss(task, method):
    reference = step_loss(task, method, OFF)
    fast = step_loss(task, method, {**OFF, "autocast": "bfloat16"})
    both = step_loss(task, method, {**OFF, "autocast": "bfloat16", "channels_last": True})
    assert fast == pytest.approx(reference, rel=1e-2)  # bf16: 8 significant bits
    assert both == pytest.approx(reference, rel=1e-2)
    assert fast != reference  # it did run in bf16


@pytest.mark.parametrize("method", ["none", "threshold"])
def test_channels_last_alone_gives_the_reference_loss_in_fp32(task, method):
    reference = step_loss(task, method, OFF)
    assert step_loss(task, method, {**OFF, "channels_last": True}) == pytest.approx(
        reference, rel=1e-5
    )


def test_fast_features_are_fp32_and_weights_stay_plain():
    torch.manual_seed(0)
    reference = build_model("resnet18", 3, 10, 4)
    model = build_model("resnet18", 3, 10, 4)
    model.load_state_dict(reference.state_dict())
    FastPath("cpu", autocast="bfloat16", channels_last=True).prepare_model(model)
    assert model.stem[0].weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.rand(4, 3, 16, 16)
    features = model.features(x)
    assert [f.dtype for f in features] == [torch.float32] * 5
    assert features[0].is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        assert torch.allclose(model(x), reference(x), rtol=5e-2, atol=5e-2)
    state = model.state_dict()
    assert list(state) == list(reference.state_dict())  # plain keys
    assert all(v.is_contiguous() for v in state.values())
    plain = build_model("resnet18", 3, 10, 4)
    plain.load_state_dict(state)
    assert "features" not in vars(plain)


def test_a_resumed_fast_run_equals_an_uninterrupted_one(task):
    """Checkpoints of a channels_last bf16 run (contiguous weights, NHWC momentum) resume
    to the same weights, as the reference path's do (tests/test_resume.py)."""
    path, similarity = task
    settings = TrainSettings(
        method="threshold",
        alpha=10.0,
        width=4,
        batch_size=32,
        validation_fraction=0.1,
        regularizer=THRESHOLD,
        fast_path={**OFF, "autocast": "bfloat16", "channels_last": True},
    )
    inputs, cpu = {"similarity": similarity}, torch.device("cpu")
    uninterrupted = Trainer(path, inputs, settings, cpu)
    uninterrupted.epoch(0)
    uninterrupted.epoch(1)
    first = Trainer(path, inputs, settings, cpu)
    first.epoch(0)
    buffer = io.BytesIO()
    torch.save(first.state(), buffer)
    buffer.seek(0)
    resumed = Trainer(path, inputs, settings, cpu)
    resumed.load_state(torch.load(buffer, weights_only=False))
    resumed.epoch(1)
    a, b = uninterrupted.weights(), resumed.weights()
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert all(
        torch.equal(a["modules"]["similarity"][k], v) for k, v in b["modules"]["similarity"].items()
    )


def test_compile_refuses_methods_that_differentiate_an_input_gradient():
    for method in ("gn", "jacobian", "sgr"):
        with pytest.raises(ValueError, match="double backward"):
            FastPath.from_settings(
                TrainSettings(method=method, fast_path={**OFF, "compile": True}), "cpu"
            )


def test_unknown_autocast_is_refused():
    with pytest.raises(ValueError, match="autocast"):
        FastPath("cpu", autocast="float16")
    with pytest.raises(ConfigError, match="training.fast_path.autocast"):
        validate_config({"training": {"fast_path": {"autocast": "float16"}}})


def test_config_keys_left_out_keep_their_default():
    from simreg.train.model_key import baseline_key
    from simreg.train.settings import settings_from_config

    config = validate_config({"training": {"fast_path": {"compile": True}}})
    settings = settings_from_config(config, baseline_key("cifar10_gray", 0))
    assert settings.fast_path == {**OFF, "compile": True}
    assert dataclasses.asdict(settings)["fast_path"] == settings.fast_path  # in the fingerprint


@pytest.mark.slow
@pytest.mark.parametrize("method", ["none", "threshold"])
def test_compile_gives_the_reference_loss(task, method):
    """Compiling takes minutes on a CPU (the training and regularization batch shapes)."""
    reference = step_loss(task, method, OFF)
    assert step_loss(task, method, {**OFF, "compile": True}) == pytest.approx(reference, rel=1e-4)
