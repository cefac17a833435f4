"""Pair sampling, eligible pairs, the learning-rate schedule and augmentation (simreg.train)."""

from __future__ import annotations

import pytest
import torch

from simreg.train.augment import crop_flip
from simreg.train.regularizers.similarity.pairs import eligible_pair_list, sample_pairs
from simreg.train.settings import TrainSettings, learning_rate

torch.set_num_threads(2)


def test_sample_pairs_never_identical_and_in_range():
    pairs = sample_pairs(7, 5000, torch.Generator().manual_seed(0))
    assert pairs.shape == (5000, 2)
    assert pairs.dtype == torch.int64
    assert torch.all(pairs[:, 0] != pairs[:, 1])
    assert pairs.min() >= 0 and pairs.max() < 7


def test_sample_pairs_smallest_set():
    pairs = sample_pairs(2, 100, torch.Generator().manual_seed(0))
    assert set(map(tuple, pairs.tolist())) == {(0, 1), (1, 0)}
    with pytest.raises(ValueError):
        sample_pairs(1, 10, torch.Generator().manual_seed(0))


def test_sample_pairs_reproducible():
    a = sample_pairs(50, 300, torch.Generator().manual_seed(3))
    b = sample_pairs(50, 300, torch.Generator().manual_seed(3))
    c = sample_pairs(50, 300, torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_sample_pairs_uniform_over_ordered_pairs():
    n, count = 5, 20000
    pairs = sample_pairs(n, count, torch.Generator().manual_seed(0))
    counts = torch.bincount(pairs[:, 0] * n + pairs[:, 1], minlength=n * n).reshape(n, n).double()
    assert torch.all(counts.diagonal() == 0)
    off = counts[~torch.eye(n, dtype=torch.bool)]
    expected = count / (n * (n - 1))
    chi2 = ((off - expected) ** 2 / expected).sum().item()
    # 19 degrees of freedom: mean 19, P(chi2 > 60) ~ 3e-6
    assert chi2 < 60, chi2
    # both orders of a pair occur about equally often
    assert torch.all(off > 0.8 * expected)


def test_eligible_pair_list():
    mask = torch.zeros((5, 5), dtype=torch.bool)
    mask[0, 3] = mask[3, 0] = True  # symmetric pair
    mask[1, 2] = True  # upper only
    mask[4, 1] = True  # lower only: not an i < j pair
    mask.fill_diagonal_(True)  # diagonal: never a pair
    pairs = eligible_pair_list(mask)
    assert pairs.shape[1] == 2
    assert sorted(map(tuple, pairs.tolist())) == [(0, 3), (1, 2)]
    assert torch.all(pairs[:, 0] < pairs[:, 1])


def test_eligible_pair_list_all_true():
    pairs = eligible_pair_list(torch.ones((6, 6), dtype=torch.bool))
    assert len(pairs) == 15
    assert torch.all(pairs[:, 0] < pairs[:, 1])


@pytest.mark.parametrize(
    "mask",
    [
        torch.zeros((4, 4), dtype=torch.bool),
        torch.eye(4, dtype=torch.bool),
        torch.tril(torch.ones((4, 4), dtype=torch.bool)),
    ],
)
def test_eligible_pair_list_empty_raises(mask):
    with pytest.raises(ValueError):
        eligible_pair_list(mask)


@pytest.mark.parametrize(
    "epoch, expected",
    [
        (0, 0.1),
        (3, 0.1),
        (4, 0.03),
        (19, 0.1 * 0.3**4),
        (20, 0.1),
        (39, 0.1 * 0.3**4),
    ],
)
def test_learning_rate_schedule(epoch, expected):
    """The paper code's step schedule at its defaults (lr 0.1, ×0.3 every 4 epochs, restarting
    every 20): each expected value is written out by hand."""
    settings = TrainSettings(lr=0.1, lr_decay=0.3, lr_step_epochs=4, lr_cycle_epochs=20)
    assert learning_rate(epoch, settings) == pytest.approx(expected, rel=1e-12)


def test_learning_rate_follows_other_settings():
    settings = TrainSettings(lr=1.0, lr_decay=0.5, lr_step_epochs=2, lr_cycle_epochs=6)
    assert [learning_rate(e, settings) for e in range(8)] == [1, 1, 0.5, 0.5, 0.25, 0.25, 1, 1]


def images(b=3, h=6, w=5, c=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (b, h, w, c), generator=g).to(torch.uint8)


def test_crop_flip_identity():
    x = images()
    offsets = torch.full((3, 2), 4, dtype=torch.int64)
    flips = torch.zeros(3, dtype=torch.bool)
    out = crop_flip(x, offsets, flips, pad=4)
    assert out.dtype == torch.uint8 and out.shape == x.shape
    assert torch.equal(out, x)


def test_crop_flip_mirror():
    x = images()
    offsets = torch.full((3, 2), 4, dtype=torch.int64)
    flips = torch.tensor([True, False, True])
    out = crop_flip(x, offsets, flips, pad=4)
    assert torch.equal(out[0], x[0].flip(1))  # NHWC: dim 1 of an image is W
    assert torch.equal(out[1], x[1])
    assert torch.equal(out[2], x[2].flip(1))


def test_crop_flip_shift():
    """An offset of (4 + dy, 4 + dx) shifts the image by (dy, dx) inside the padding."""
    x = images(b=1, h=8, w=8, c=1)
    out = crop_flip(x, torch.tensor([[5, 2]]), torch.tensor([False]), pad=4)
    # rows move up by one, columns right by two (reflect padding fills the border)
    assert torch.equal(out[0, :-1, 2:], x[0, 1:, :-2])
    assert torch.equal(out[0, -1, 2:], x[0, -2, :-2])  # reflection of the last row
