"""Similarity regularizers (simreg.train.regularizers.similarity): targets S_Th and the pairs
each variant may sample; the registry's declarations."""

from __future__ import annotations

import pytest
import torch

from simreg.targets.threshold import threshold_targets
from simreg.train.regularizers import REGULARIZERS, get_regularizer

torch.set_num_threads(2)

TH, INNER = 0.5, 0.25
# Off-diagonal values, all exactly representable in float32, including values exactly at
# +-TH and +-INNER, with the expected membership of each variant written out by hand
# (module docstring: high |S|>Th; low |S|<Th; positive S>Th or |S|<Th;
#  negative S<-Th or |S|<Th; double |S|>Th or |S|<=Th_inner: App. 7.7 eq. 6 writes
#  0 if |S| <= Th2, so pairs exactly at the inner threshold belong to double).
#            value   target high   low    pos    neg    double
TABLE = [
    (0.875, 1, True, False, True, False, True),
    (0.5, 0, False, False, False, False, False),
    (0.375, 0, False, True, True, True, False),
    (0.25, 0, False, True, True, True, True),
    (0.125, 0, False, True, True, True, True),
    (0.0, 0, False, True, True, True, True),
    (-0.125, 0, False, True, True, True, True),
    (-0.25, 0, False, True, True, True, True),
    (-0.375, 0, False, True, True, True, False),
    (-0.5, 0, False, False, False, False, False),
    (-0.875, -1, True, False, False, True, True),
]
VARIANTS = ["high", "low", "positive", "negative", "double"]


def get_method(name, threshold=TH, inner=INNER):
    """Regularizer ``name`` with the given thresholds (and defaults for the rest)."""
    cls = get_regularizer(name)
    params = {
        "reg_pairs": 16,
        "z_eps": 1e-5,
        "mean_momentum": 0.1,
        "threshold": threshold,
        "inner_threshold": inner,
    }
    return cls(**{k: v for k, v in params.items() if k in cls.parameters})


def hand_matrix():
    """A symmetric (n, n) matrix with 1 on the diagonal whose upper triangle holds TABLE's values
    (cyclically), plus the expected table entry of each upper-triangle position."""
    n = 6  # 15 upper-triangle entries
    s = torch.eye(n)
    rows, cols = torch.triu_indices(n, n, offset=1)
    entries = [TABLE[k % len(TABLE)] for k in range(len(rows))]
    values = torch.tensor([e[0] for e in entries], dtype=torch.float32)
    s[rows, cols] = values
    s[cols, rows] = values
    return s, rows, cols, entries


def test_threshold_targets_strict_inequalities():
    s, rows, cols, entries = hand_matrix()
    t = threshold_targets(s, TH)
    assert t.dtype == torch.int8
    assert set(t.unique().tolist()) <= {-1, 0, 1}
    assert t[rows, cols].tolist() == [e[1] for e in entries]
    assert t[cols, rows].tolist() == [e[1] for e in entries]
    assert torch.all(t.diagonal() == 1)


def test_threshold_targets_random_matrix():
    g = torch.Generator().manual_seed(0)
    s = torch.rand((50, 50), generator=g) * 2 - 1
    t = threshold_targets(s, 0.3)
    off = ~torch.eye(50, dtype=torch.bool)
    assert torch.equal(t[off] == 1, s[off] > 0.3)
    assert torch.equal(t[off] == -1, s[off] < -0.3)
    assert torch.equal(t[off] == 0, s[off].abs() <= 0.3)


@pytest.mark.parametrize("column, name", list(enumerate(VARIANTS, start=2)))
def test_variant_eligible_masks(column, name):
    s, rows, cols, entries = hand_matrix()
    mask = get_method(name).eligible(s)
    assert mask.dtype == torch.bool and mask.shape == s.shape
    assert mask[rows, cols].tolist() == [e[column] for e in entries]
    # the variants keep S_Th as target
    assert torch.equal(get_method(name).targets(s, torch.Generator()), threshold_targets(s, TH))


@pytest.mark.parametrize("name", ["pixel", "threshold", "shuffle"])
def test_methods_without_pair_restriction(name):
    s, *_ = hand_matrix()
    assert get_method(name).eligible(s) is None


def test_none_is_not_regularized_pixel_targets_are_s_pixel():
    none = get_regularizer("none")
    assert not none.uses_alpha and none.needs == () and none.parameters == {}
    s, *_ = hand_matrix()
    assert torch.equal(get_method("pixel").targets(s, torch.Generator()), s)


@pytest.mark.parametrize(
    "name", ["pixel", "threshold", "high", "low", "positive", "negative", "double", "shuffle"]
)
def test_similarity_methods_declare_their_target_file_and_pair_count(name):
    cls = get_regularizer(name)
    assert cls.needs == ("similarity",) and cls.uses_alpha
    assert cls.parameters["reg_pairs"].config == "regularization.reg_pairs"
    assert ("threshold" in cls.parameters) == (name != "pixel")


@pytest.mark.parametrize("inner", [TH, TH + 0.1])
def test_double_requires_inner_below_threshold(inner):
    s, *_ = hand_matrix()
    with pytest.raises(ValueError):
        get_method("double", inner=inner).eligible(s)


def test_shuffle_permutes_off_diagonal_targets():
    g = torch.Generator().manual_seed(1)
    x = torch.randn((40, 10), generator=g)
    x = x / x.norm(dim=1, keepdim=True)
    s = x @ x.T  # a genuine similarity matrix: symmetric, 1 on the diagonal
    th = 0.3
    plain = threshold_targets(s, th)
    shuffled = get_method("shuffle", th).targets(s, torch.Generator().manual_seed(0))
    rows, cols = torch.triu_indices(40, 40, offset=1)
    before, after = plain[rows, cols], shuffled[rows, cols]
    assert len(before.unique()) == 3  # non-trivial: -1, 0 and 1 all occur
    assert torch.equal(before.sort().values, after.sort().values)  # same multiset
    assert torch.equal(shuffled, shuffled.T)
    assert torch.all(shuffled.diagonal() == 1)
    # placement changed: a large share of the entries moved
    assert (before != after).float().mean() > 0.2
    # reproducible by the generator
    again = get_method("shuffle", th).targets(s, torch.Generator().manual_seed(0))
    assert torch.equal(shuffled, again)


def test_get_method_unknown_name():
    with pytest.raises(ValueError) as info:
        get_regularizer("no-such-method")
    message = str(info.value)
    assert "no-such-method" in message
    for name in REGULARIZERS:
        assert name in message
    assert set(REGULARIZERS) >= {
        "none",
        "pixel",
        "threshold",
        "high",
        "low",
        "positive",
        "negative",
        "double",
        "shuffle",
    }
