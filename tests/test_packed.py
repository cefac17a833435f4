"""Packed training (simreg.train.packed): seeds trained together in one stacked model end as
the same models as the seeds trained one by one; a resumed pack equals an uninterrupted one."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
import torch

from simreg.data.store import build_dataset
from simreg.targets.pixel_similarity import build_similarity
from simreg.train.packed import PackedTrainer, check_pack, train_pack
from simreg.train.settings import TrainSettings
from simreg.train.trainer import Trainer, train

SIMILARITY = {"threshold": 0.4, "reg_pairs": 8, "z_eps": 1e-5, "mean_momentum": 0.1}
SEEDS = (3, 5, 11)


def settings(method: str, seed: int, **changes) -> TrainSettings:
    params = (
        {}
        if method == "none"
        else {k: v for k, v in SIMILARITY.items() if method != "pixel" or k != "threshold"}
    )
    changes = {"width": 4, "alpha": 10.0, "epochs": 2, **changes}
    if method == "none":
        changes["alpha"] = 0.0
    return TrainSettings(
        method=method,
        seed=seed,
        regularizer=params,
        batch_size=64,
        validation_fraction=0.1,
        augment=True,
        **changes,
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("packed")
    task, sim = folder / "digits_gray.h5", folder / "similarity.h5"
    build_dataset("digits", "gray", task)
    build_similarity(task, sim, n_images=200, image_seed=0)
    return task, {"similarity": sim}


def one_by_one(data, method, folder, **changes):
    task, inputs = data
    for seed in SEEDS:
        train(
            task,
            inputs,
            folder / f"{seed}.pt",
            folder / f"{seed}.csv",
            folder / "ckpt",
            settings(method, seed, **changes),
            device="cpu",
            threads=1,
        )


def packed(data, method, folder, checkpoint_dir=None, **changes):
    task, inputs = data
    train_pack(
        task,
        inputs,
        [folder / f"{s}.pt" for s in SEEDS],
        [folder / f"{s}.csv" for s in SEEDS],
        checkpoint_dir or folder / "ckpt",
        [settings(method, s, **changes) for s in SEEDS],
        device="cpu",
        threads=1,
    )


def weights(path):
    saved = torch.load(path, weights_only=False)
    tensors = dict(saved["model"])
    for name, module in saved["modules"].items():
        tensors.update({f"{name}.{k}": v for k, v in module.items()})
    return tensors, saved["provenance"]


def compare(alone, together, atol):
    for seed in SEEDS:
        a, meta_a = weights(alone / f"{seed}.pt")
        b, meta_b = weights(together / f"{seed}.pt")
        assert a.keys() == b.keys()
        for name in a:  # to ``atol`` of the tensor's scale (BN running variances reach 1e5)
            scale = max(1.0, a[name].double().abs().max().item())
            difference = (a[name].double() - b[name].double()).abs().max().item()
            assert difference <= atol * scale, (name, difference, scale)
        assert meta_b["seed"] == seed and meta_b["run_fingerprint"] == meta_a["run_fingerprint"]
        assert meta_b["pack_seeds"] == str(list(SEEDS))
        rows_a, rows_b = pd.read_csv(alone / f"{seed}.csv"), pd.read_csv(together / f"{seed}.csv")
        for column in ("train_ce", "train_reg", "val_loss", "val_accuracy"):
            assert rows_b[column].to_numpy() == pytest.approx(
                rows_a[column].to_numpy(), rel=atol, abs=atol
            )
        assert (rows_b["best"] == rows_a["best"]).all()
    # the seeds really differ (a pack that trained one model three times would fail here)
    first, second = weights(together / f"{SEEDS[0]}.pt")[0], weights(together / f"{SEEDS[1]}.pt")[0]
    assert not torch.equal(first["stem.0.weight"], second["stem.0.weight"])


@pytest.fixture
def float64():
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


@pytest.mark.parametrize("method", ["none", "threshold", "shuffle"])
def test_packed_seeds_are_the_seeds_trained_one_by_one(data, tmp_path, method, float64):
    """The same computation: in float64 the packed models equal the single ones to 1e-5 of
    each tensor's scale after an epoch (22 steps; lr 0.01, α = 1).

    Longer runs are not comparable, whatever the precision: L_sim clamps S_CNN to [-1, 1]
    before the Fisher z, whose slope there is 2/ε = 2e5, so a pair whose S_CNN rounds to one
    side of 1 or the other gets a gradient of 0 or of 1e5, and two valid summation orders
    part ways (docs/choices.md, "Packed seeds")."""
    one_by_one(data, method, tmp_path / "alone", epochs=1, lr=0.01, alpha=1.0)
    packed(data, method, tmp_path / "together", epochs=1, lr=0.01, alpha=1.0)
    compare(tmp_path / "alone", tmp_path / "together", atol=1e-5)


def test_packed_adam_seeds_are_the_seeds_trained_one_by_one(data, tmp_path, float64):
    """Adam (a method's own recipe, simreg.train.recipe) is elementwise too: a pack trained
    with it equals its seeds trained one by one, as SGD's does."""
    adam = {"epochs": 1, "optimizer": "adam", "lr": 1e-3, "betas": [0.8, 0.99]}
    one_by_one(data, "none", tmp_path / "alone", **adam)
    packed(data, "none", tmp_path / "together", **adam)
    compare(tmp_path / "alone", tmp_path / "together", atol=1e-5)


@pytest.mark.parametrize("method", ["none", "threshold"])
def test_a_packed_step_computes_each_seeds_losses_in_float32(data, method):
    """float32, CPU: the first step of a pack gives each seed the cross-entropy and L_sim of
    that seed's own step, to 1e-5. (Its gradients agree to float32 rounding only where the
    tiny network is well conditioned: at initialization, a few of these seeds' stem gradients
    differ by 1e-3 between any two summation orders, float64 included; see docs/choices.md.)"""
    task, inputs = data
    device = torch.device("cpu")
    alone = [Trainer(task, inputs, settings(method, s), device) for s in SEEDS]
    pack = PackedTrainer([Trainer(task, inputs, settings(method, s), device) for s in SEEDS])
    expected = [[v.item() for v in trainer.step(*trainer.plan_epoch(0)[1][0])] for trainer in alone]
    ce, reg = pack.step(*pack.stacked_inputs([t.plan_epoch(0)[1][0] for t in pack.trainers]))
    got = torch.stack([ce, reg], dim=1).tolist()
    assert got == [pytest.approx(e, rel=1e-5, abs=1e-6) for e in expected]
    if method == "threshold":
        assert all(r > 0 for _, r in got)


def test_a_packed_float32_step_is_as_accurate_as_a_single_one(data):
    """float32, CPU: packing adds no error of its own. Against the float64 gradients of the
    same weights and batch, each seed's packed gradients are within 10x the single model's own
    float32 error, plus 1e-5 of the gradient's scale.

    Why the models cannot be compared to 1e-5 directly: behind each BatchNorm the gradient of
    the layer before is a sum that cancels to about 1e-5 of its terms (the BatchNorm backward
    removes the mean), so any float32 summation order, the single model's own included, can
    be off by 1e-3 to 1e-2 there (docs/choices.md, "Packed seeds")."""
    import copy

    import torch.nn.functional as F
    from torch.func import vmap

    task, inputs = data
    trainers = [Trainer(task, inputs, settings("none", s), torch.device("cpu")) for s in SEEDS]
    steps = [t.plan_epoch(0)[1][0] for t in trainers]
    exact, single = [], []
    for trainer, (idx, _, augmentation) in zip(trainers, steps):
        x, y = trainer.inputs(idx, augmentation)
        for model, x_in, out in (
            (copy.deepcopy(trainer.model).double(), x.double(), exact),
            (copy.deepcopy(trainer.model), x, single),
        ):
            F.cross_entropy(model.classify(model.features(x_in)[-1]), y).backward()
            out.append({n: p.grad.double() for n, p in model.named_parameters()})
    pack = PackedTrainer(trainers)
    losses, _, _ = vmap(pack._seed_loss, in_dims=(0, 0, 0, 0, 0, None))(
        pack.params, pack.buffers, pack.state, *pack.stacked_inputs(steps)
    )
    losses.sum().backward()
    for p, (reference, alone) in enumerate(zip(exact, single)):
        for name, g in reference.items():
            scale = g.abs().max().item()
            packed_error = (pack.params[f"model.{name}"].grad[p].double() - g).abs().max().item()
            single_error = (alone[name] - g).abs().max().item()
            assert packed_error <= 10 * single_error + 1e-5 * scale, (SEEDS[p], name)


def test_a_resumed_pack_equals_an_uninterrupted_one(data, tmp_path, monkeypatch):
    import simreg.train.packed as packed_module

    packed(data, "threshold", tmp_path / "whole")
    # Interrupted after the first epoch: the checkpoint write of epoch 1 raises.
    real_save, calls = torch.save, []

    def failing_save(obj, path, *args, **kwargs):
        if isinstance(obj, dict) and obj.get("epoch") == 1 and "packed" in obj:
            raise KeyboardInterrupt("killed")
        calls.append(obj.get("epoch") if isinstance(obj, dict) else None)
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(packed_module.torch, "save", failing_save)
    with pytest.raises(KeyboardInterrupt):
        packed(data, "threshold", tmp_path / "cut", checkpoint_dir=tmp_path / "ckpt_cut")
    monkeypatch.setattr(packed_module.torch, "save", real_save)
    assert list((tmp_path / "ckpt_cut").glob("last-*.pt")), "the first epoch left no checkpoint"
    assert not list((tmp_path / "cut").glob("*.pt")), "an interrupted pack wrote a model"
    packed(data, "threshold", tmp_path / "cut", checkpoint_dir=tmp_path / "ckpt_cut")
    for seed in SEEDS:
        a = weights(tmp_path / "whole" / f"{seed}.pt")[0]
        b = weights(tmp_path / "cut" / f"{seed}.pt")[0]
        assert all(torch.equal(a[name], b[name]) for name in a)
    assert not list((tmp_path / "ckpt_cut").glob("last-*.pt")), "checkpoint left after success"


def test_methods_that_cannot_be_packed_train_seed_by_seed(data, tmp_path):
    from simreg.config import validate_config
    from simreg.train.regularizers import get_regularizer

    gn = get_regularizer("gn")
    assert not gn.packable
    task, inputs = data
    params = gn.parameters_from(validate_config({}), dataset="digits")
    runs = [
        dataclasses.replace(settings("none", seed), method="gn", alpha=0.1, regularizer=params)
        for seed in (0, 1)
    ]
    train_pack(
        task,
        {},
        [tmp_path / "p0.pt", tmp_path / "p1.pt"],
        [tmp_path / "p0.csv", tmp_path / "p1.csv"],
        tmp_path / "ckpt",
        runs,
        device="cpu",
        threads=1,
    )
    train(
        task,
        {},
        tmp_path / "a1.pt",
        tmp_path / "a1.csv",
        tmp_path / "ckpt_a",
        runs[1],
        device="cpu",
        threads=1,
    )
    a, b = weights(tmp_path / "a1.pt")[0], weights(tmp_path / "p1.pt")[0]
    assert all(torch.equal(a[name], b[name]) for name in a)


def test_a_pack_must_share_everything_but_the_seed():
    with pytest.raises(ValueError, match="share every setting"):
        check_pack([settings("threshold", 0), settings("threshold", 1, lr=0.01)])
    with pytest.raises(ValueError, match="must differ"):
        check_pack([settings("threshold", 0), settings("threshold", 0)])


def test_a_pack_that_vmap_cannot_take_trains_seed_by_seed(data, tmp_path):
    """channels_last (and compile) inputs are not vmappable: such a pack trains its seeds one
    after another, each exactly as the train rule would."""
    task, inputs = data
    fast = {"autocast": "none", "channels_last": True, "compile": False}
    runs = [settings("none", seed, epochs=1, fast_path=fast) for seed in (0, 1)]
    train_pack(
        task,
        inputs,
        [tmp_path / "p0.pt", tmp_path / "p1.pt"],
        [tmp_path / "p0.csv", tmp_path / "p1.csv"],
        tmp_path / "ckpt",
        runs,
        device="cpu",
        threads=1,
    )
    train(
        task,
        inputs,
        tmp_path / "a1.pt",
        tmp_path / "a1.csv",
        tmp_path / "ckpt_a",
        runs[1],
        device="cpu",
        threads=1,
    )
    a, b = weights(tmp_path / "a1.pt")[0], weights(tmp_path / "p1.pt")[0]
    assert all(torch.equal(a[name], b[name]) for name in a)
