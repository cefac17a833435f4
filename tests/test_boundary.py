"""Boundary Attack (App. 7.1): outputs adversarial and in bounds; retried starting points;
unsolved images counted; the score S(M)."""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from simreg.evaluate.boundary import boundary_attack, boundary_score, squared_distance_per_dim
from simreg.evaluate.context import run_evaluation
from simreg.models.inference import predict
from simreg.settings import Boundary


class RoughOrSmooth(nn.Module):
    """Class 0 for rough images (mean |horizontal difference| > 0.2), class 1 for smooth
    ones. Uniform noise, and every blend of it with a rough image, is rough: the blended-noise
    init can never flip a rough image, only another-class (smooth) image can."""

    def forward(self, x):
        roughness = (x[..., 1:] - x[..., :-1]).abs().mean(dim=(1, 2, 3))
        return torch.stack([roughness - 0.2, 0.2 - roughness], dim=1) * 50


def checkerboards(n, generator):
    base = (torch.arange(8)[:, None] + torch.arange(8)[None, :]) % 2
    contrast = 0.6 + 0.4 * torch.rand(n, 1, 1, 1, generator=generator)
    return (0.5 + (base.float() - 0.5) * contrast).clamp(0, 1).expand(n, 1, 8, 8).clone()


def test_outputs_are_adversarial_and_in_bounds(linear_model, digits):
    x = digits[0][:40]
    result = boundary_attack(linear_model, x, seed=0, params={"steps": 200})
    assert result.solved.all()
    clean = predict(linear_model, x)
    assert (predict(linear_model, result.adversarials) != clean).all()
    assert result.adversarials.min() >= 0 and result.adversarials.max() <= 1
    # more steps walk closer to the boundary
    longer = boundary_attack(linear_model, x, seed=0, params={"steps": 1000})
    short_d = squared_distance_per_dim(x, result.adversarials)
    long_d = squared_distance_per_dim(x, longer.adversarials)
    assert long_d.median() < short_d.median()


def test_failed_init_is_retried_from_another_class_image():
    generator = torch.Generator().manual_seed(0)
    rough = checkerboards(6, generator)
    smooth = torch.full((4, 1, 8, 8), 0.5)
    x = torch.cat([rough, smooth])
    model = RoughOrSmooth()
    assert (predict(model, rough) == 0).all() and (predict(model, smooth) == 1).all()
    result = boundary_attack(model, x, seed=0, params={"steps": 50}, retries=2, init_directions=20)
    assert result.solved.all()  # nothing lost, nothing dropped
    # rough images needed the fallback (attempt 3 = after 2 noise tries); smooth ones did not
    assert (result.init_attempts[:6] == 3).all()
    assert (result.init_attempts[6:] == 1).all()
    assert (predict(model, result.adversarials) != predict(model, x)).all()


def test_unsolvable_images_are_counted_not_crashing():
    x = checkerboards(5, torch.Generator().manual_seed(1))  # all rough: no other class anywhere
    result = boundary_attack(
        RoughOrSmooth(), x, seed=0, params={"steps": 20}, retries=1, init_directions=10
    )
    assert not result.solved.any()
    assert (result.init_attempts == 0).all()
    torch.testing.assert_close(result.adversarials, x)


def test_score_is_median_squared_distance_per_value():
    x = torch.zeros(3, 2, 4, 4)
    x_adv = x + torch.tensor([0.1, 0.2, 0.3]).view(3, 1, 1, 1)
    d = squared_distance_per_dim(x, x_adv)  # d counts all 2*4*4 values
    torch.testing.assert_close(d, torch.tensor([0.01, 0.04, 0.09]))
    assert boundary_score(
        np.array([0.5, 0.01, 0.04, 0.09]), np.array([False, True, True, True])
    ) == pytest.approx(0.04)
    assert np.isnan(boundary_score(np.array([1.0]), np.array([False])))


def test_d_counts_every_channel_of_a_color_image():
    """S(M)'s d is the dimension of η ∈ R^d (Attias App. 7.1): C·H·W, so for RGB a third of
    what d = H·W (the authors' code: channel 0's size) gives; and a perturbation of one
    channel only counts."""
    x = torch.zeros(2, 3, 4, 4)
    x_adv = x.clone()
    x_adv[0] += 0.1  # every value of image 0 moved by 0.1
    x_adv[1, 1] += 0.3  # image 1: the green channel only
    d = squared_distance_per_dim(x, x_adv)
    # by hand: image 0: 48·0.01/48; image 1: 16·0.09/48 (H·W = 16 would give 0.03 and 0.09)
    torch.testing.assert_close(d, torch.tensor([0.01, 0.03]))


def test_the_converged_setting_walks_away_from_its_starting_point(saved_model):
    """The configured ``converged`` attack (its first 200 steps) accepts steps and ends
    closer than its starting point for most images of a small trained model."""
    from simreg.models.inference import load_model, to_input
    from simreg.data.store import read_split

    model_path, dataset = saved_model
    model, _ = load_model(model_path)
    x = to_input(torch.from_numpy(read_split(dataset, "test").images[:12]))
    params = {**Boundary().settings["converged"], "steps": 200}
    result = boundary_attack(model, x, seed=0, params=params, checkpoints=(0, 200))
    assert result.solved.all()
    start, end = result.trajectory[0], result.trajectory[200]
    closer = end < 0.9 * start
    assert closer.float().mean() >= 0.75, (start, end)
    assert (result.accepted[closer] > 0).all()
    assert (predict(model, result.adversarials) != predict(model, x)).all()


class Plane(nn.Module):
    """Two classes split by the hyperplane w·(x − 0.5) = 0, |w| = 1, on 32×32 images."""

    def __init__(self):
        super().__init__()
        self.w = torch.randn(1, 32, 32, generator=torch.Generator().manual_seed(0))
        self.w /= self.w.norm()

    def forward(self, x):
        s = ((x - 0.5) * self.w).flatten(1).sum(1)
        return torch.stack([s, -s], dim=1)


def test_step_sizes_adapted_from_every_step_leave_a_steep_start():
    """Images 2.5 from the boundary, blended-noise starts about 9 away: at foolbox's default
    source step (1 % of the distance) almost every candidate crosses back, and with the
    statistics recorded every 10th step the step sizes adapt only after 300 steps, so 300
    steps leave every image where it started. Recorded every step (the converged setting),
    they adapt within 30 steps and the walk moves (docs/attacks.md)."""
    model = Plane()
    sign = torch.tensor([1.0, -1.0]).repeat(6).view(12, 1, 1, 1)
    noise = torch.rand(12, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    x = (0.45 + 2.5 * sign * model.w + 0.1 * noise).clamp(0, 1)

    def walk(params):
        result = boundary_attack(
            model, x, seed=0, params={**params, "steps": 300}, checkpoints=(0, 300)
        )
        assert result.solved.all()
        return result, result.trajectory[300] / result.trajectory[0]

    stuck, stuck_ratio = walk({"update_stats_every_k": 10})
    assert (stuck_ratio > 0.9).all() and stuck.accepted.median() <= 5
    converged = {k: v for k, v in Boundary().settings["converged"].items() if k != "steps"}
    moving, moving_ratio = walk(converged)
    assert (moving_ratio < 0.9).float().mean() >= 0.75
    assert (moving.accepted > stuck.accepted).all()
    assert (moving.source_step < 0.01).all()  # the source step was adapted down


def test_evaluate_writes_scores_per_repeat_and_perturbations(saved_model, tmp_path):
    model_path, dataset = saved_model
    csv, h5 = tmp_path / "b.csv", tmp_path / "b.h5"
    run_evaluation(
        "boundary",
        {"model": model_path, "dataset": dataset},
        {"csv": csv, "h5": h5},
        {
            "setting": "paper",
            "attack": {"steps": 30},
            "n_images": 12,
            "repeats": 2,
            "subset_seed": 0,
            "batch_size": 5,
            "init_retries": 3,
            "init_directions": 1000,
            "init_steps": 50,
        },
        keys={"task": "digits_gray"},
        device="cpu",
    )
    frame = pd.read_csv(csv)
    assert list(frame["repeat"]) == [0, 1]
    assert (frame["n_solved"] + frame["n_unsolved"] == 12).all()
    assert frame["mean_score"].iloc[0] == pytest.approx(frame["score"].mean())
    with h5py.File(h5, "r") as f:
        delta, distance = f["perturbation"][...], f["distance"][...]
        assert delta.shape == (2, 12, 1, 8, 8)
        assert f.attrs["setting"] == "paper"
        start, accepted = f["start_distance"][...], f["accepted_steps"][...]
        assert accepted.shape == (2, 12) and f["final_source_step"].shape == (2, 12)
    solved = ~np.isnan(distance)
    assert np.isfinite(start[solved]).all() and np.isnan(start[~solved]).all()
    assert (accepted[~solved] == 0).all()
    for r in range(2):
        assert frame["start_score"].iloc[r] == pytest.approx(np.median(start[r][solved[r]]))
    for r in range(2):
        solved = ~np.isnan(distance[r])
        assert frame["score"].iloc[r] == pytest.approx(np.median(distance[r][solved]))
        np.testing.assert_allclose(
            (delta[r][solved] ** 2).mean(axis=(1, 2, 3)), distance[r][solved], rtol=1e-5
        )


def test_points_on_the_boundary_are_moved_out_only_where_needed():
    """Some (not all) returned points sit exactly on the decision boundary: those are moved
    out along δ until adversarial; the others are returned as they are."""
    from torch import nn

    from simreg.evaluate.boundary import confirm_adversarial

    class MeanThreshold(nn.Module):  # class 1 when the mean pixel exceeds 0.5
        def forward(self, x):
            m = x.flatten(1).mean(1)
            return torch.stack([0.5 - m, m - 0.5], dim=1)

    model = MeanThreshold()
    x = torch.zeros(6, 1, 4, 4)
    x_adv = torch.full((6, 1, 4, 4), 0.6)
    x_adv[::2] = 0.5  # on the boundary: a tie, predicted class 0 = the label
    labels = torch.zeros(6, dtype=torch.long)
    out = confirm_adversarial(model, x, x_adv, labels, fallback=torch.ones_like(x))
    assert (model(out).argmax(1) != labels).all()
    assert torch.equal(out[1::2], x_adv[1::2])  # already adversarial: untouched
    assert torch.allclose(out[::2], torch.full_like(out[::2], 0.5 * 1.001))  # moved by δ·1.001
