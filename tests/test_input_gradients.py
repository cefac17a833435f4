"""Input gradients of sgr, gn and jacobian (simreg.train.input_gradients): with
``input_gradients.batchnorm: per_sample`` each image's gradient is its own, BatchNorm
normalizing with the training pass's statistics, fixed with respect to the input."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from simreg.models.resnet import build_model
from simreg.train.input_gradients import (
    TrainingStatistics,
    differentiable_forward,
    frozen_batch_statistics,
    loss_input_gradients,
)
from simreg.train.regularizers import Batch, TrainContext, get_regularizer


def training_pass(model):
    """The trainer's pass: six images, training mode, x requiring grad."""
    x = torch.rand(6, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    x.requires_grad_(True)
    y = torch.tensor([0, 1, 2, 3, 4, 0])
    features = model.features(x)
    logits = model.classify(features[-1])
    return Batch(model, x, y, features, logits, F.cross_entropy(logits, y))


@pytest.fixture
def model_and_batch():
    torch.manual_seed(0)
    model = build_model("resnet18", 1, 5, 2).double().train()
    return model, training_pass(model)


def batch_statistics(model, x) -> dict:
    """Each BatchNorm layer's mean and (biased) variance of its input, in a training pass."""
    stats, hooks = {}, []
    for name, m in model.named_modules():
        if isinstance(m, nn.BatchNorm2d):
            hooks.append(
                m.register_forward_pre_hook(
                    lambda m, args, name=name: stats.__setitem__(
                        name, (args[0].mean((0, 2, 3)), args[0].var((0, 2, 3), unbiased=False))
                    )
                )
            )
    with torch.no_grad():
        copy.deepcopy(model)(x)  # a copy: the model's running statistics stay as they are
    for hook in hooks:
        hook.remove()
    return stats


def one_image_at_a_time(model, x, y) -> torch.Tensor:
    """∇ₓ log φ_y(xᵢ) of each image alone, BatchNorm in eval mode holding the batch's
    statistics (as its running statistics)."""
    frozen = copy.deepcopy(model).eval()
    for name, (mean, var) in batch_statistics(model, x).items():
        layer = frozen.get_submodule(name)
        layer.running_mean.copy_(mean)
        layer.running_var.copy_(var)
    rows = []
    for i in range(len(x)):
        xi = x[i : i + 1].detach().requires_grad_(True)
        log_likelihood = -F.cross_entropy(frozen(xi), y[i : i + 1])
        rows.append(torch.autograd.grad(log_likelihood, xi)[0])
    return torch.cat(rows)


def test_per_sample_gradient_is_each_image_alone_with_the_batch_statistics(model_and_batch):
    model, batch = model_and_batch
    loop = one_image_at_a_time(model, batch.x, batch.y)
    per_sample = loss_input_gradients(batch, "per_sample")
    assert torch.allclose(per_sample, loop, rtol=1e-9, atol=1e-12)
    # with the training pass's statistics recorded (as a method's setup does): the same
    statistics = TrainingStatistics(model)
    batch = training_pass(model)
    recorded = loss_input_gradients(batch, "per_sample", statistics)
    assert torch.allclose(recorded, loop, rtol=1e-9, atol=1e-12)
    # through the training pass, each row also carries the other images' loss gradients
    coupled = loss_input_gradients(batch, "batch")
    assert (coupled - loop).norm() > 1e-3 * loop.norm()
    # the per-sample pass has the training pass's values and leaves the running statistics
    running = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    _, logits = differentiable_forward(batch, "per_sample")
    assert torch.allclose(logits, batch.logits, rtol=1e-10, atol=1e-12)
    for key, value in model.state_dict().items():
        if "running" in key:
            assert torch.equal(value, running[key]), key


def test_gradient_norm_penalty_uses_the_per_sample_gradients(model_and_batch):
    model, _ = model_and_batch
    images = torch.randint(0, 256, (20, 8, 8, 1), dtype=torch.uint8)
    gn = get_regularizer("gn")(batchnorm="per_sample")
    gn.setup(TrainContext(model, torch.device("cpu"), 0, 1, {}, train_images=images))
    batch = training_pass(model)
    loop = one_image_at_a_time(model, batch.x, batch.y)
    expected = gn.c / (2 * len(loop)) * loop.pow(2).sum()
    penalty = gn.loss(batch, None)
    assert penalty.item() == pytest.approx(expected.item(), rel=1e-9)
    # its gradient reaches the weights also through the training pass's statistics
    weight = model.stem[0].weight
    through = torch.autograd.grad(penalty, weight)[0]
    detached = get_regularizer("gn")(batchnorm="per_sample")
    detached.setup(TrainContext(None, torch.device("cpu"), 0, 1, {}, train_images=images))
    batch = training_pass(model)
    constant = torch.autograd.grad(detached.loss(batch, None), weight)[0]
    assert (through - constant).norm() > 1e-3 * constant.norm()


def test_frozen_statistics_are_undone_on_exit(model_and_batch):
    model, batch = model_and_batch
    layers = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    with frozen_batch_statistics(model):
        assert all("forward" in m.__dict__ for m in layers)
    assert not any("forward" in m.__dict__ for m in layers)
    model.eval()  # eval mode already uses fixed statistics: nothing is replaced
    with frozen_batch_statistics(model):
        assert not any("forward" in m.__dict__ for m in layers)


def test_batchnorm_setting_is_a_parameter_of_exactly_the_input_gradient_methods():
    from simreg.config import ConfigError, validate_config
    from simreg.train.regularizers import REGULARIZERS

    config = validate_config({"input_gradients": {"batchnorm": "batch"}})
    using = {
        name
        for name, r in REGULARIZERS.items()
        if any(p.config == "input_gradients.batchnorm" for p in r.parameters.values())
    }
    assert using == {"sgr", "gn", "jacobian", "jacobian_column_sums"}
    for name in using:
        assert (
            get_regularizer(name).parameters_from(config, dataset="cifar10")["batchnorm"] == "batch"
        )
    assert validate_config({})["input_gradients"]["batchnorm"] == "per_sample"
    with pytest.raises(ConfigError, match="input_gradients"):
        validate_config({"input_gradients": {"batchnorm": "frozen"}})
    with pytest.raises(ValueError, match="'input_gradients.batchnorm': 'frozen' is not one of"):
        get_regularizer("gn")(batchnorm="frozen")


def test_batch_setting_keeps_the_gradient_through_the_training_pass(model_and_batch):
    # input_gradients.batchnorm: batch is simreg's gradient before issue #23, to the bit
    model, batch = model_and_batch
    before = -torch.autograd.grad(batch.ce * len(batch.y), batch.x, create_graph=True)[0]
    assert torch.equal(loss_input_gradients(batch, "batch"), before)
