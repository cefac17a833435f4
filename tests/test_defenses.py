"""The related defenses (issue #13): each penalty's defining property on tiny inputs, the
AFD discriminator, the eigenspectrum fit and the LRC noise; every method trains."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from pathlib import Path

from simreg.evaluate.eigenspectrum import eigenspectrum, power_law_fit
from simreg.evaluate.lrc_noise import sample_lrc, worst_of_draws_accuracy
from simreg.train.regularizers.adversarial.discriminator import (
    ProjectionDiscriminator,
    discriminator_loss,
)
from simreg.train.regularizers.gradient.displacement_covariance import DisplacementCovariance
from simreg.train.regularizers import Batch, TrainContext, get_regularizer
from simreg.train.regularizers.gradient import gradient_norm_penalty
from simreg.train.regularizers.smoothness import (
    jacobian_column_sums,
    jacobian_frobenius,
    offdiagonal_covariance_norm,
)


def identity_function(channels: int, n_radii: int) -> torch.Tensor:
    function = torch.zeros(channels, channels, n_radii, dtype=torch.float64)
    function[range(channels), range(channels), 0] = 1.0
    return function


@pytest.mark.parametrize("channels", [1, 3])
def test_sgr_with_identity_covariance_is_the_gradient_norm_penalty(channels):
    images = torch.randint(0, 256, (50, 6, 5, channels), dtype=torch.uint8)
    sgr = get_regularizer("sgr")(
        beta=0.1,
        perturbation="sign",
        epsilon=0.3,
        pgd_steps=1,
        pgd_rel_stepsize=0.25,
        random_start=True,
        batchnorm="batch",
    )
    sgr.setup(TrainContext(None, torch.device("cpu"), 0, channels, {}, train_images=images))
    sgr.sigma_hat.set_function(identity_function(channels, sgr.sigma_hat.n_radii))
    g = torch.randn(4, channels, 6, 5, dtype=torch.float64)
    expected = gradient_norm_penalty(g, sgr.c)
    assert sgr.penalty(g).item() == pytest.approx(expected.item(), rel=1e-9)
    # and a structured Σ (correlated neighbours) gives another value
    function = identity_function(channels, sgr.sigma_hat.n_radii)
    function[range(channels), range(channels), 1] = 0.5
    sgr.sigma_hat.set_function(function)
    assert sgr.penalty(g).item() != pytest.approx(expected.item(), rel=1e-3)


def test_displacement_covariance_estimates_a_known_covariance_function():
    # white noise: Σ = I; noise smoothed over a row pair: neighbours correlated
    cov = DisplacementCovariance(1, 8, 8, beta=1.0)
    generator = torch.Generator().manual_seed(0)
    cov.update(torch.randn(2000, 1, 8, 8, generator=generator))
    function = cov.function[0, 0]
    assert function[0].item() == pytest.approx(1.0, abs=0.02)
    assert function[1:].abs().max().item() < 0.02
    g = torch.randn(3, 1, 8, 8, dtype=torch.float64)
    assert torch.allclose(cov.quadratic_form(g), g.pow(2).sum(dim=(1, 2, 3)), rtol=0.1)


def test_structured_quadratic_form_is_never_negative():
    cov = DisplacementCovariance(2, 5, 5, beta=1.0)
    function = torch.zeros(2, 2, cov.n_radii, dtype=torch.float64)
    function[:, :, 0] = torch.tensor([[1.0, 0.9], [0.9, 1.0]])
    function[:, :, 1] = -0.8  # no valid covariance: negative directions are clipped
    cov.set_function(function)
    g = torch.randn(64, 2, 5, 5, dtype=torch.float64)
    assert (cov.quadratic_form(g) >= -1e-9).all()


def test_jacobian_penalty_is_zero_when_the_output_ignores_the_input():
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 5))
    with torch.no_grad():
        model[1].weight.zero_()
    x = torch.randn(3, 1, 3, 4, requires_grad=True)
    norms = jacobian_frobenius(x, model(x), 4, torch.Generator().manual_seed(0))
    assert norms.max().item() < 1e-5


def test_jacobian_penalty_matches_the_exact_frobenius_norm_of_a_linear_map():
    torch.manual_seed(0)
    weight = torch.randn(6, 20)
    x = torch.randn(2, 20, requires_grad=True)
    projections = 400
    norms = jacobian_frobenius(x, x @ weight.T, projections, torch.Generator().manual_seed(1))
    exact = weight.norm().item()
    # ||vᵀW||² over unit v has relative standard deviation <= sqrt(2): its mean over n
    # projections is within 4·sqrt(2/n) (relative) of ||W||²/K; the norm within half that
    assert norms.detach().numpy() == pytest.approx(exact, rel=2 * math.sqrt(2 / projections))


def test_squared_frobenius_estimate_is_unbiased_where_its_square_root_is_not():
    # A rank-1 Jacobian (the probabilities' Jacobian of a confident model comes close): the
    # one-projection estimate K·||vᵀJ||² is unbiased for ||J||²_F, its square root is low
    # (E√X = √K·E|v₁|·||J||_F = 0.82·||J||_F for K = 10). Each row of x draws its own v.
    torch.manual_seed(0)
    weight = torch.outer(torch.randn(10, dtype=torch.float64), torch.randn(20, dtype=torch.float64))
    x = torch.randn(40000, 20, dtype=torch.float64, requires_grad=True)
    batch = Batch(model=None, x=x, y=None, features=[], logits=x @ weight.T, ce=None)
    exact = weight.norm().item()

    def mean_estimate(squared):
        penalty = get_regularizer("jacobian")(
            projections=1,
            output="logits",
            estimator="frobenius",
            squared=squared,
            batchnorm="batch",
        )
        penalty.setup(TrainContext(None, torch.device("cpu"), 0, 1, {}))
        return penalty.loss(batch, 0).item()  # the mean over 40000 draws of v

    # relative sd of one draw: sqrt(3K/(K+2) - 1) = 1.22; of the mean, 0.6%
    assert mean_estimate(True) == pytest.approx(exact**2, rel=0.02)
    assert mean_estimate(False) < 0.9 * exact


def test_jacobian_penalty_is_taken_of_the_class_probabilities():
    # Schaeffer eq. 1: f is what the cross-entropy takes the log of, softmax(logits)
    torch.manual_seed(0)
    weight = torch.randn(4, 10, dtype=torch.float64)
    x = torch.randn(3, 10, dtype=torch.float64, requires_grad=True)
    logits = x @ weight.T
    batch = Batch(model=None, x=x, y=None, features=[], logits=logits, ce=None)

    def estimate(output):
        penalty = get_regularizer("jacobian")(
            projections=2000, output=output, estimator="frobenius", squared=False, batchnorm="batch"
        )
        penalty.setup(TrainContext(None, torch.device("cpu"), 0, 1, {}))
        return penalty.loss(batch, 0).item()

    exact = np.mean(
        [
            torch.autograd.functional.jacobian(
                lambda row: (row @ weight.T).softmax(dim=0), x[i].detach()
            )
            .norm()
            .item()
            for i in range(len(x))
        ]
    )
    tolerance = 2 * math.sqrt(2 / 2000)
    assert estimate("probabilities") == pytest.approx(exact, rel=tolerance)
    # ``logits``, for comparison: the logits' Jacobian is W itself, far larger
    assert estimate("logits") == pytest.approx(weight.norm().item(), rel=tolerance)
    assert exact < 0.5 * weight.norm().item()
    with pytest.raises(ValueError, match="'jacobian.output': 'logit' is not one of"):
        get_regularizer("jacobian")(
            projections=1, output="logit", estimator="frobenius", squared=True, batchnorm="batch"
        )


def test_column_sums_penalty_is_the_norm_of_one_transposed_times_the_jacobian():
    # Schaeffer §3.4: ||1ᵀJ||; for logits W x + b, J = W and 1ᵀJ is the sum of W's rows
    torch.manual_seed(0)
    weight = torch.randn(4, 10, dtype=torch.float64)
    weight[3] = 0.1 * weight[3] - weight[:3].sum(dim=0)  # rows that nearly cancel
    x = torch.randn(3, 10, dtype=torch.float64, requires_grad=True)
    logits = x @ weight.T + torch.randn(4, dtype=torch.float64)
    exact = (torch.ones(4, dtype=torch.float64) @ weight).norm().item()
    norms = jacobian_column_sums(x, logits)
    assert norms.detach().numpy() == pytest.approx(exact, rel=1e-9)
    assert exact < 0.1 * weight.norm().item()  # not the Frobenius norm
    batch = Batch(model=None, x=x, y=None, features=[], logits=logits, ce=None)
    for method, params in (
        ("jacobian_column_sums", {}),
        (
            "jacobian",
            {"projections": 1, "output": "logits", "estimator": "column_sums", "squared": True},
        ),
    ):
        penalty = get_regularizer(method)(batchnorm="batch", **params)
        penalty.setup(TrainContext(None, torch.device("cpu"), 0, 1, {}))
        assert penalty.loss(batch, 0).item() == pytest.approx(exact, rel=1e-9)
    # the probabilities sum to 1: their column sums vanish, so that pairing is refused
    probabilities = logits.softmax(dim=1)
    assert jacobian_column_sums(x, probabilities).max().item() < 1e-5
    with pytest.raises(ValueError, match="column sums of their Jacobian vanish"):
        get_regularizer("jacobian")(
            projections=1,
            output="probabilities",
            estimator="column_sums",
            squared=True,
            batchnorm="batch",
        )


def test_covariance_penalty_is_zero_for_decorrelated_activity():
    hadamard = torch.tensor(
        [[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]], dtype=torch.float64
    )
    h = hadamard[:, 1:] * torch.tensor([0.5, 2.0, 3.0], dtype=torch.float64)  # centred columns
    assert offdiagonal_covariance_norm(h).item() < 1e-5
    correlated = torch.cat([h, h[:, :1]], dim=1)
    assert offdiagonal_covariance_norm(correlated).item() > 0.1


def test_afd_discriminator_loss_falls_on_separable_features():
    torch.manual_seed(0)
    clean = torch.randn(128, 16) + 1.0
    perturbed = torch.randn(128, 16) - 1.0
    labels = torch.randint(0, 10, (128,))
    discriminator = ProjectionDiscriminator(16, 10, width=32)
    optimizer = torch.optim.SGD(discriminator.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for _ in range(40):
        loss = discriminator_loss(discriminator, clean, perturbed, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.25 * losses[0]
    with torch.no_grad():
        accuracy = (
            (discriminator(clean, labels) > 0).float().mean()
            + (discriminator(perturbed, labels) < 0).float().mean()
        ) / 2
    assert accuracy > 0.95


@pytest.mark.parametrize("exponent", [0.8, 1.5])
def test_eigenspectrum_fit_recovers_a_known_power_law(exponent):
    rng = np.random.default_rng(0)
    n, d = 600, 400
    eigenvalues = np.arange(1, d + 1, dtype=float) ** -exponent
    # activity whose covariance is exactly R diag(λ) Rᵀ: centred orthonormal columns, scaled
    q, _ = np.linalg.qr(rng.standard_normal((n, d)) - 0.0)
    q -= q.mean(axis=0)
    q, _ = np.linalg.qr(q)
    rotation, _ = np.linalg.qr(rng.standard_normal((d, d)))
    h = (q * np.sqrt(eigenvalues * (n - 1))) @ rotation.T
    fit = power_law_fit(eigenspectrum(h), 10, 316)
    assert fit["exponent"] == pytest.approx(exponent, abs=0.02)
    assert (fit["fit_first"], fit["fit_last"], fit["n_fit"]) == (10, 316, 307)


def test_eigenspectrum_fit_stops_at_the_spectrum_length():
    eigenvalues = np.arange(1, 65, dtype=float) ** -1.2
    fit = power_law_fit(eigenvalues, 10, 316)
    assert fit["fit_last"] == 64 and fit["exponent"] == pytest.approx(1.2)


def test_lrc_noise_has_the_covariance_its_decay_length_says():
    zeta, channels, size = 2.0, 3, 4
    z = sample_lrc(40000, channels, size, size, zeta, torch.Generator().manual_seed(0))
    flat = z.reshape(len(z), channels, -1).double()
    rows, cols = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    points = torch.stack([rows.flatten(), cols.flatten()], 1).double()
    spatial = torch.exp(-torch.cdist(points, points) / zeta)
    for a, b in [(0, 0), (1, 1), (0, 1), (2, 0)]:
        empirical = flat[:, a].T @ flat[:, b] / len(flat)
        expected = spatial * (1.0 if a == b else 0.5)
        assert (empirical - expected).abs().max().item() < 0.04, (a, b)


def test_lrc_accuracy_is_the_worst_of_every_draw_for_every_image():
    # images that fail a draw are not classified again: the result must be that of
    # classifying every image under every draw
    torch.manual_seed(0)
    images = torch.randint(0, 256, (60, 6, 6, 3), dtype=torch.uint8)
    model = nn.Sequential(nn.Flatten(), nn.Linear(108, 4))
    labels = model(images.permute(0, 3, 1, 2).float() / 255).argmax(1)  # clean: all correct
    zeta, epsilon, draws, seed = 2.0, 0.05, 12, 7
    generator = torch.Generator().manual_seed(seed)
    clean = images.permute(0, 3, 1, 2).float() / 255
    correct = torch.ones(len(images), dtype=torch.bool)
    for _ in range(draws):
        z = sample_lrc(len(images), 3, 6, 6, zeta, generator)
        correct &= model((clean + epsilon * z).clamp(0, 1)).argmax(1) == labels
    assert 0.2 < correct.float().mean().item() < 0.8  # some images fail, at different draws
    accuracy = worst_of_draws_accuracy(
        model, images, labels, zeta, epsilon, draws, seed, batch_size=16, unit="pixel"
    )
    assert accuracy == correct.float().mean().item()


# ---- the methods in the pipeline: keys, grids, training ----------------------------------
ROOT = Path(__file__).resolve().parents[1]
NEW_METHODS = ["sgr", "gn", "jacobian", "jacobian_column_sums", "covariance", "afd", "pgd_at"]


@pytest.mark.parametrize("method", NEW_METHODS)
def test_new_methods_canonicalize_without_similarity(method):
    from simreg.train.model_key import ModelKey

    key = ModelKey.make("digits_gray", "digits_gray_n500", method, 2, 0.5, 16, 0)
    assert (key.regularization, key.threshold, key.pairs) == ("none", "na", "0")
    assert key.alpha == ("0" if method == "pgd_at" else "2")


def test_grid_alpha_may_give_each_method_its_own_strengths():
    from simreg.config import ConfigError, load_config
    from simreg.report.targets import grid_models

    def validate_config(overrides):
        base = load_config(ROOT / "config.yaml")
        base["figures"] = {}
        return load_config(overrides={**base, **overrides, "figures": overrides.get("figures", {})})

    grid = {
        "task": "digits_gray",
        "regularization": "digits_gray",
        "threshold": [0.5],
        "methods": ["none", "threshold", "gn", "pgd_at"],
        "seeds": [0],
        "alpha": {"threshold": [10], "gn": [0.5, 5]},
    }
    config = validate_config({"figures": {"defense_comparison": grid}})
    stems = {k.stem for k in grid_models(config["figures"]["defense_comparison"], config)}
    assert stems == {
        "digits_gray/none/none/a0_tna_k0/seed0",
        "digits_gray/digits_gray_n5000/threshold/a10_t0.5_k16/seed0",
        "digits_gray/none/gn/a0.5_tna_k0/seed0",
        "digits_gray/none/gn/a5_tna_k0/seed0",
        "digits_gray/none/pgd_at/a0_tna_k0/seed0",
    }
    with pytest.raises(ConfigError, match="lacking \\['gn'\\]"):
        validate_config({"figures": {"defense_comparison": {**grid, "alpha": {"threshold": [1]}}}})
    with pytest.raises(ConfigError, match="adversarial.epsilons"):
        validate_config(
            {
                "figures": {"defense_comparison": grid},
                "adversarial": {
                    "epsilons": {"cifar10": 0.031},
                    "steps": 7,
                    "rel_stepsize": 0.25,
                    "random_start": True,
                },
            }
        )


@pytest.fixture(scope="module")
def digits_task(tmp_path_factory):
    from simreg.data.store import build_dataset

    task = tmp_path_factory.mktemp("defenses") / "digits_gray.h5"
    build_dataset("digits", "gray", task)
    return task


@pytest.mark.parametrize("method", NEW_METHODS)
def test_every_new_method_trains(method, digits_task, tmp_path):
    import pandas as pd

    from simreg.config import validate_config
    from simreg.train.settings import TrainSettings
    from simreg.train.trainer import train

    config = validate_config({"adversarial": {"steps": 2}, "afd": {"width": 16}})
    params = get_regularizer(method).parameters_from(config, dataset="digits")
    settings = TrainSettings(
        method=method,
        alpha=0.1,
        width=4,
        epochs=1,
        batch_size=128,
        validation_fraction=0.1,
        augment=False,
        regularizer=params,
    )
    train(
        digits_task,
        {},
        tmp_path / "model.pt",
        tmp_path / "metrics.csv",
        tmp_path / "ckpt",
        settings,
        device="cpu",
        threads=1,
    )
    metrics = pd.read_csv(tmp_path / "metrics.csv")
    assert np.isfinite(metrics[["train_ce", "train_reg", "val_loss"]].to_numpy()).all()
    assert (metrics["method"] == method).all()
    if method == "afd":
        assert metrics["afd_discriminator_accuracy"].between(0, 1).all()
    saved = torch.load(tmp_path / "model.pt", weights_only=False)
    assert set(saved["modules"]) == set()  # the discriminator stays in the checkpoint only
    assert list((tmp_path / "ckpt").glob("*.pt")) == []  # removed once the model is written
    from simreg.train.trainer import Trainer

    state = Trainer(digits_task, {}, settings, torch.device("cpu")).state()  # what is checkpointed
    assert ("discriminator" in state["regularizer"]) == (method == "afd")


def test_a_few_slow_epochs_do_not_move_the_training_time_ratio():
    import pandas as pd

    from simreg.report.defenses import epoch_time_ratio

    def epochs(method, seconds):
        return pd.DataFrame(
            {
                "task": "t",
                "regularization": "none",
                "method": method,
                "alpha": 0,
                "threshold": "na",
                "reg_pairs": 0,
                "seed": 0,
                "epoch": range(len(seconds)),
                "seconds": seconds,
            }
        )

    # gn's epochs take twice none's; one of them ran beside another job
    metrics = pd.concat(
        [epochs("none", [1.0, 1.1, 0.9, 1.0, 1.0]), epochs("gn", [2.0, 2.2, 1.8, 2.0, 20.0])]
    )
    ratio = epoch_time_ratio(metrics).set_index("method")["time_ratio"]
    assert ratio["none"] == 1 and ratio["gn"] == pytest.approx(2.0)


@pytest.mark.slow
def test_the_quick_run_compares_every_method(full_quick_run):
    import pandas as pd

    workdir, _ = full_quick_run
    table = pd.read_csv(workdir / "results" / "tables" / "defenses.csv")
    assert set(table["method"]) == {"none", "threshold", *NEW_METHODS}
    for column in (
        "clean_accuracy",
        "noise_accuracy",
        "fgsm_accuracy",
        "boundary_paper",
        "min_l2_mean",
        "pgd_accuracy",
        "time_ratio",
        "exponent",
        "sensitivity",
        "lrc_accuracy",
        "corruption_accuracy",
    ):
        assert table[column].notna().all(), column
    assert table["corruption_cells"].eq(75).all()  # 15 corruptions x 5 severities
    assert (table.loc[table["method"] == "none", "time_ratio"] == 1).all()
    assert table["noise_accuracy_at"].eq(0.5).all()  # the digits grid's largest ε
    auc = pd.read_csv(workdir / "results" / "tables" / "attack_auc.csv")
    # areas are fractions; their SEMs are NaN where a grid has one seed (the quick config)
    areas = auc[[c for c in auc.columns if c.startswith("auc_") and not c.endswith("_sem")]]
    assert len(areas.columns) > 0 and areas.notna().all().all()
    assert ((areas >= 0) & (areas <= 1)).all().all()
    for figure in ("defense_comparison", "lrc_accuracy", "robustness_vs_exponent"):
        assert (workdir / "results" / "figures" / f"{figure}.pdf").stat().st_size > 0


def test_the_corruption_column_averages_every_corruption_and_severity_but_not_clean():
    import pandas as pd

    from simreg.report.defenses import corruption_mean

    keys = {
        "task": "t",
        "regularization": "none",
        "alpha": 0,
        "threshold": "na",
        "reg_pairs": 0,
        "seed": 0,
    }

    def model(method, clean, corrupted):
        rows = [{"corruption": "none", "severity": 0, "accuracy": clean}]
        rows += [
            {"corruption": name, "severity": severity, "accuracy": accuracy}
            for (name, severity), accuracy in corrupted.items()
        ]
        return pd.DataFrame(rows).assign(method=method, **keys)

    corruptions = pd.concat(
        [
            model("none", 0.9, {("fog", 1): 0.5, ("fog", 2): 0.3, ("snow", 1): 0.1}),
            model("gn", 0.8, {("fog", 1): 0.6, ("fog", 2): 0.6, ("snow", 1): 0.3}),
        ]
    )
    means = corruption_mean(corruptions).set_index("method")
    assert means.loc["none", "corruption_accuracy"] == pytest.approx(0.3)
    assert means.loc["gn", "corruption_accuracy"] == pytest.approx(0.5)
    assert (means["corruption_cells"] == 3).all()


def test_only_a_grid_that_asks_for_corruptions_reads_them():
    from simreg.config import load_config
    from simreg.report.targets import target_inputs, target_reads

    config = load_config("config.yaml", "configs/quick.yaml")
    grid = config["figures"]["defense_comparison"]
    for name in ("defenses", "defense_comparison"):
        assert "corruption_accuracy" in target_reads(name, config)
        files = target_inputs(name, config)["corruption_accuracy"]
        assert len(files) == len(target_inputs(name, config)["whitebox"]) == len(grid["methods"])
        assert all(f.startswith("results/corruption_accuracy/digits_gray/") for f in files)
    grid["corruptions"] = False
    for name in ("defenses", "defense_comparison"):
        assert "corruption_accuracy" not in target_reads(name, config)
        assert "corruption_accuracy" not in target_inputs(name, config)
