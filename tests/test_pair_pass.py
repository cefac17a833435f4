"""regularization.pair_pass: the similarity methods' k pairs as two batches of k (split, the
authors' code) or one batch of 2k (fused). The two passes agree wherever BatchNorm does not
use batch statistics (no BatchNorm, or eval mode) and differ in training mode; fused enters
the model key, split (the default) does not."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from simreg.config import load_config
from simreg.models.resnet import build_model
from simreg.report.targets import grid_models
from simreg.train.model_key import ModelKey, split_pairs
from simreg.train.regularizers import get_regularizer
from simreg.train.regularizers.base import Parameter

ROOT = Path(__file__).resolve().parents[1]
PARAMS = {"threshold": 0.5, "reg_pairs": 6, "z_eps": 1e-5, "mean_momentum": 0.1}


def regularizer(pair_pass):
    r = get_regularizer("threshold")(**PARAMS, pair_pass=pair_pass)
    generator = torch.Generator().manual_seed(0)
    r.images = torch.randint(0, 256, (20, 12, 12, 1), dtype=torch.uint8, generator=generator)
    return r


def model(batchnorm=True):
    torch.manual_seed(0)
    net = build_model("resnet18", 1, 10, width=4)
    if not batchnorm:
        for _name, module in list(net.named_modules()):
            for child_name, child in list(module.named_children()):
                if isinstance(child, nn.BatchNorm2d):
                    setattr(module, child_name, nn.Identity())
    return net


PAIRS = torch.tensor([[0, 1], [2, 3], [4, 5], [6, 7], [8, 9], [10, 11]])


def features(pair_pass, net):
    a, b = regularizer(pair_pass).pair_features(net, PAIRS)
    return torch.cat([f.flatten(1) for f in a], 1), torch.cat([f.flatten(1) for f in b], 1)


@pytest.mark.parametrize("batchnorm, train", [(False, True), (True, False)])
def test_split_and_fused_agree_without_batch_statistics(batchnorm, train):
    net = model(batchnorm).train(train)
    split, fused = features("split", net), features("fused", net)
    for s, f in zip(split, fused):
        torch.testing.assert_close(s, f, rtol=1e-5, atol=1e-5)


def test_split_and_fused_differ_in_training_mode():
    net = model().train()
    bn = net.stem[1]
    assert isinstance(bn, nn.BatchNorm2d)
    before = bn.running_mean.clone()
    split_a, _ = features("split", net)
    after_split = bn.running_mean.clone()
    bn.running_mean.copy_(before)
    fused_a, _ = features("fused", net)
    after_fused = bn.running_mean.clone()
    # each side normalized by its own batch statistics vs. by those of both sides
    assert not torch.allclose(split_a, fused_a, atol=1e-4)
    # split updates the running statistics twice (once per side), fused once
    assert not torch.allclose(after_split, after_fused)


def test_the_default_pass_is_split_and_stays_out_of_the_model_key():
    assert get_regularizer("threshold")(**PARAMS).pair_pass == "split"
    assert get_regularizer("threshold").parameters["pair_pass"].default == "split"
    split = ModelKey.make("digits_gray", "digits_gray_n500", "threshold", 10, 0.5, 16, 0)
    fused = ModelKey.make("digits_gray", "digits_gray_n500", "threshold", 10, 0.5, "16-fused", 0)
    assert split.stem.endswith("a10_t0.5_k16/seed0")
    assert fused.stem.endswith("a10_t0.5_k16-fused/seed0")
    assert split_pairs(fused.pairs) == (16, "fused")
    assert fused.columns()["reg_pairs"] == "16" and fused.columns()["pair_pass"] == "fused"
    assert "pair_pass" not in split.columns()
    # a method without pairs has no pass
    assert ModelKey.make("digits_gray", "none", "none", 0, "na", "16-fused", 0).pairs == "0"


def test_config_pair_pass_reaches_the_keys_of_similarity_models_only():
    config = load_config(ROOT / "config.yaml", ROOT / "configs" / "quick.yaml")
    grid = config["figures"]["noise_accuracy"]
    default = grid_models(grid, config)
    config["regularization"]["pair_pass"] = "fused"
    fused = grid_models(grid, config)
    assert all(not k.pairs.endswith("-fused") for k in default)
    for d, f in zip(default, fused):
        if d.method == "none":
            assert d == f
        else:
            assert f.pairs == f"{d.pairs}-fused"
            reg = get_regularizer(f.method)
            assert reg.parameters_from(config, f)["pair_pass"] == "fused"


def test_a_parameter_without_default_is_still_required():
    assert Parameter(int, "regularization.reg_pairs").default is None
    with pytest.raises(ValueError, match="missing"):
        get_regularizer("threshold")(threshold=0.5, z_eps=1e-5, mean_momentum=0.1)
