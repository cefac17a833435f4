"""Input-gradient penalties of Roth et al. 2018: structured gradient regularization (``sgr``)
and its special case Σ = I, gradient-norm regularization (``gn``).

With gᵢ = ∇ₓ log φ_y(xᵢ) (the input gradient of the per-sample log-likelihood; Roth Alg. 1)

    Ω_Σ = (σ / 2m) Σᵢ gᵢᵀ Σ gᵢ,     σ = c / mean diag(Σ),

where c is the mean diagonal of the training images' covariance (the mean pixel variance),
so σΣ has the data's mean variance and α = λ reads as a noise-to-signal ratio (Roth §3.3).
``sgr``: Σ is the running covariance function of adversarial perturbations (β = 0.1), from
the loss-gradient sign, the loss gradient, FGSM or PGD (``sgr.perturbation``), applied in
the Fourier domain (:mod:`simreg.train.regularizers.gradient.displacement_covariance`).
``gn``: Σ = I, so Ω = (c / 2m) Σᵢ ||gᵢ||². The trainer adds α·Ω with α = λ. gᵢ is each image's
own gradient, BatchNorm normalizing with the training pass's statistics
(``input_gradients.batchnorm``; the gradients are taken in :mod:`simreg.train.input_gradients`,
shared with ``jacobian``).
"""

from __future__ import annotations

from simreg.train.input_gradients import BATCHNORM_MODES
from simreg.train.regularizers.base import Batch, Parameter, Regularizer, TrainContext, register

PERTURBATIONS = ("sign", "gradient", "fgsm", "pgd")

BETA = Parameter(float, "sgr.beta", "Roth Alg. 1: decay rate β of the running covariance")
PERTURBATION = Parameter(
    str,
    "sgr.perturbation",
    "Roth §4.1: perturbations Σ is estimated from: sign, gradient, fgsm, pgd",
    choices=PERTURBATIONS,
)
EPSILON = Parameter(
    float, "adversarial.epsilons", "PGD-L∞ budget ε during training", per_dataset=True
)
PGD_STEPS = Parameter(int, "adversarial.steps", "PGD steps during training")
PGD_STEP = Parameter(float, "adversarial.rel_stepsize", "PGD step size relative to ε")
RANDOM_START = Parameter(bool, "adversarial.random_start", "PGD starts at a random point")
# shared by sgr, gn and jacobian (simreg.train.input_gradients)
BATCHNORM = Parameter(
    str,
    "input_gradients.batchnorm",
    "input gradients through BatchNorm: per_sample (the training pass's "
    "statistics fixed for x) or batch (through them, coupling the images)",
    choices=BATCHNORM_MODES,
)


def input_gradients(batch: Batch, batchnorm: str, statistics=None):
    """gᵢ = ∇ₓ log φ_y(xᵢ) for the batch (differentiable: the penalty trains through it)."""
    from simreg.train.input_gradients import loss_input_gradients

    return loss_input_gradients(batch, batchnorm, statistics)


def gradient_norm_penalty(g, c: float):
    """(c / 2m) Σᵢ ||gᵢ||²: Ω with Σ = I, scaled to the data's mean variance c."""
    return c / (2 * len(g)) * g.pow(2).sum()


def data_variance(images_u8) -> float:
    """c: the mean over pixels of the variance across images, of pixels in [0, 1]."""
    from simreg.models.inference import to_input

    return float(to_input(images_u8).var(dim=0).mean())


@register
class GradientNorm(Regularizer):
    name = "gn"
    description = "gradient-norm regularization: SGR with Σ = I (Roth et al. 2018)"
    needs_input_grad = True
    parameters = {"batchnorm": BATCHNORM}

    def setup(self, context: TrainContext) -> None:
        from simreg.train.input_gradients import track_statistics

        self.c = data_variance(context.train_images)
        self.statistics = track_statistics(context.model, self.batchnorm)

    def loss(self, batch: Batch, step):
        return gradient_norm_penalty(
            input_gradients(batch, self.batchnorm, self.statistics), self.c
        )

    def metrics(self):
        return {"sgr_c": self.c}


@register
class StructuredGradient(Regularizer):
    name = "sgr"
    description = "structured gradient regularization (Roth et al. 2018, Alg. 1)"
    needs_input_grad = True
    parameters = {
        "beta": BETA,
        "perturbation": PERTURBATION,
        "epsilon": EPSILON,
        "pgd_steps": PGD_STEPS,
        "pgd_rel_stepsize": PGD_STEP,
        "random_start": RANDOM_START,
        "batchnorm": BATCHNORM,
    }

    def setup(self, context: TrainContext) -> None:
        import torch

        from simreg.train.regularizers.gradient.displacement_covariance import (
            DisplacementCovariance,
        )
        from simreg.train.input_gradients import track_statistics

        self.c = data_variance(context.train_images)
        self.statistics = track_statistics(context.model, self.batchnorm)
        _, height, width, channels = context.train_images.shape
        self.sigma_hat = DisplacementCovariance(channels, height, width, self.beta, context.device)
        self.generator = torch.Generator().manual_seed(context.seed)

    def perturbations(self, batch: Batch, g):
        """ξ of this batch: from the penalty's own gradient, or crafted (predicted labels,
        Roth App. 7.2) by FGSM or PGD on the classifier in eval mode."""
        from simreg.train.perturb import eval_mode, loss_gradient, pgd_linf

        if self.perturbation == "sign":
            return g.detach().sign()
        if self.perturbation == "gradient":
            return g.detach()
        x = batch.x.detach()
        with eval_mode(batch.model):
            predicted = batch.model(x).argmax(1).detach()
        if self.perturbation == "fgsm":
            with eval_mode(batch.model):
                grad = loss_gradient(batch.model, x, predicted)
            return (x + self.epsilon * grad.sign()).clamp(0, 1) - x
        return (
            pgd_linf(
                batch.model,
                x,
                predicted,
                self.epsilon,
                steps=self.pgd_steps,
                rel_stepsize=self.pgd_rel_stepsize,
                generator=self.generator,
                random_start=self.random_start,
            )
            - x
        )

    def loss(self, batch: Batch, step):
        g = input_gradients(batch, self.batchnorm, self.statistics)
        self.sigma_hat.update(self.perturbations(batch, g))
        return self.penalty(g)

    def penalty(self, g):
        """Ω_Σ = (σ / 2m) Σᵢ gᵢᵀ Σ gᵢ with the current Σ, σ = c / mean diag(Σ)."""
        sigma = self.c / self.sigma_hat.mean_diagonal()
        return sigma / (2 * len(g)) * self.sigma_hat.quadratic_form(g).sum()

    def state_dict(self):
        return {"covariance": self.sigma_hat.state_dict(), "generator": self.generator.get_state()}

    def load_state_dict(self, state):
        self.sigma_hat.load_state_dict(state["covariance"])
        self.generator.set_state(state["generator"])

    def metrics(self):
        function = self.sigma_hat.function
        out = {"sgr_c": self.c}
        if function is not None:
            diagonal = function[range(len(function)), range(len(function))]
            # decay length: first distance where the intra-channel function falls below 1/e
            below = (diagonal.mean(0) < diagonal.mean(0)[0] / 2.718281828).nonzero()
            out["sgr_decay_length"] = float(below[0, 0]) if len(below) else float("nan")
        return out
