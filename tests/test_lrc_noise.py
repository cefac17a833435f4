"""The LRC attack's ε unit (Roth et al. §4.3, §5): against a hand computation; and its two
curves, accuracy vs ζ (Fig. 3) and vs ε (App. Fig. 4), written and drawn."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from simreg.evaluate.context import run_evaluation
from simreg.evaluate.lrc_noise import perturb, sample_lrc, worst_of_draws_accuracy
from simreg.report.defenses import plot_lrc_accuracy


def flat_contrast_images(contrasts) -> torch.Tensor:
    """3-channel 8x8 checkerboards 0.5 ± c: mean 0.5, standard deviation exactly c."""
    board = ((torch.arange(8)[:, None] + torch.arange(8)[None, :]) % 2).float() * 2 - 1
    return torch.stack([0.5 + c * board.expand(3, 8, 8) for c in contrasts])


def test_standardized_epsilon_is_epsilon_times_the_image_std_in_pixels():
    x = flat_contrast_images([0.1, 0.05])
    z = sample_lrc(2, 3, 8, 8, 4.0, torch.Generator().manual_seed(0)).clamp(-4, 4)
    epsilon = 0.3
    # by hand: σ = 0.1 and 0.05, so the perturbation is 0.03·z and 0.015·z (no clipping:
    # 0.5 ± 0.1 ± 0.12 stays inside [0, 1])
    expected = torch.stack([x[0] + 0.03 * z[0], x[1] + 0.015 * z[1]])
    torch.testing.assert_close(perturb(x, z, epsilon, "standardized"), expected)
    # the same thing in the classifier's unit: standardized perturbed = standardized x + ε·z
    sigma = torch.tensor([0.1, 0.05]).view(2, 1, 1, 1)
    torch.testing.assert_close(
        (perturb(x, z, epsilon, "standardized") - 0.5) / sigma, (x - 0.5) / sigma + epsilon * z
    )
    # pixel unit: ε·z on [0, 1] pixels, whatever the image's contrast
    torch.testing.assert_close(perturb(x, z, epsilon, "pixel"), (x + epsilon * z).clamp(0, 1))


def test_standardized_perturbation_std_equals_epsilon_times_image_std():
    x = flat_contrast_images([0.08]).expand(4000, 3, 8, 8)
    z = sample_lrc(4000, 3, 8, 8, 2.0, torch.Generator().manual_seed(1))
    delta = perturb(x, z, 0.5, "standardized") - x
    assert delta.std().item() == pytest.approx(0.5 * 0.08, rel=0.02)


def test_unknown_unit_is_refused():
    with pytest.raises(ValueError, match="unit"):
        perturb(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2), 0.1, "grey_levels")


def test_worst_of_draws_uses_the_unit():
    # pixel (0, 0) is 0.4 in the high-contrast image (σ 0.1), 0.49 in the low-contrast one
    # (σ 0.01); the model calls class 1 once that pixel exceeds 0.52
    images = (flat_contrast_images([0.1, 0.01]).permute(0, 2, 3, 1) * 255).round().to(torch.uint8)

    class Watch(torch.nn.Module):
        def forward(self, x):
            over = x[:, 0, 0, 0] - 0.52
            return torch.stack([-over, over], dim=1)

    labels = torch.zeros(2, dtype=torch.long)
    # pixel unit: 0.3·z crosses 0.12 and 0.03 in some of 20 draws
    assert worst_of_draws_accuracy(Watch(), images, labels, 2.0, 0.3, 20, 0, unit="pixel") == 0.0
    # standardized: 0.03·z and 0.003·z would need z > 4 and z > 10
    assert (
        worst_of_draws_accuracy(Watch(), images, labels, 2.0, 0.3, 20, 0, unit="standardized")
        == 1.0
    )


def test_lrc_writes_both_curves_and_draws_them(saved_model, tmp_path):
    model_path, dataset = saved_model
    csv = tmp_path / "lrc.csv"
    run_evaluation(
        "lrc_noise",
        {"model": model_path, "dataset": dataset},
        {"csv": csv},
        {
            "zetas": [2, 8],
            "epsilon": 0.3,
            "draws": 2,
            "n_images": 20,
            "seed": 0,
            "batch_size": 20,
            "unit": "standardized",
            "epsilons": [0.1, 0.3],
            "epsilons_zeta": 8,
        },
        keys={
            "task": "digits_gray",
            "regularization": "none",
            "method": "none",
            "alpha": 0.0,
            "threshold": "na",
            "reg_pairs": 0,
            "seed": 0,
        },
        device="cpu",
    )
    frame = pd.read_csv(csv)
    assert list(zip(frame["curve"], frame["zeta"], frame["epsilon"])) == [
        ("zeta", 2, 0.3),
        ("zeta", 8, 0.3),
        ("epsilon", 8, 0.1),
        ("epsilon", 8, 0.3),
    ]
    assert (frame["unit"] == "standardized").all()
    shared = frame[(frame["zeta"] == 8) & (frame["epsilon"] == 0.3)]["accuracy"]
    assert shared.nunique() == 1  # the point on both curves is one computation
    out = tmp_path / "lrc_accuracy.pdf"
    plot_lrc_accuracy(frame, out, "test")
    drawn = pd.read_csv(tmp_path / "lrc_accuracy.data.csv")
    assert drawn["panel"].nunique() == 2
    by_panel = drawn.groupby("panel")["x"].apply(sorted).to_dict()
    assert sorted(by_panel.values()) == [[0.1, 0.3], [2.0, 8.0]]
