"""Defenses that learn from PGD-L∞ perturbations made during training:

- ``pgd_at``: adversarial training (Madry et al. 2018), the reference row of every defense
  paper: the classifier is trained on PGD-L∞ inputs only, L = CE(x'). It has no α (the
  model key's α is 0); its strength is the budget ε (``adversarial.epsilons``).
- ``afd``: adversarial feature desensitization (Bashivan et al., Alg. 1), three updates per
  batch with separate learning rates: (1) the classifier (embedding E and head) on the clean
  cross-entropy, by the trainer's optimizer; (2) the discriminator Da on L_Da (clean vs
  PGD-perturbed representations, given the label), at ``afd.discriminator_lr``; (3) the
  embedding E on α·L_E (fool Da on perturbed inputs), at ``afd.embedding_lr``. Both follow
  the classifier's learning-rate schedule. α = 1 is the paper's algorithm.
"""

from __future__ import annotations

from simreg.train.regularizers.base import Batch, Parameter, Regularizer, TrainContext, register

EPSILON = Parameter(
    float, "adversarial.epsilons", "PGD-L∞ budget ε during training", per_dataset=True
)
STEPS = Parameter(int, "adversarial.steps", "PGD steps during training")
REL_STEPSIZE = Parameter(float, "adversarial.rel_stepsize", "PGD step size relative to ε")
RANDOM_START = Parameter(bool, "adversarial.random_start", "PGD starts at a random point")
PGD = {
    "epsilon": EPSILON,
    "pgd_steps": STEPS,
    "pgd_rel_stepsize": REL_STEPSIZE,
    "random_start": RANDOM_START,
}


class PgdTraining(Regularizer):
    """A method that crafts PGD-L∞ inputs with its own generator (saved in checkpoints)."""

    parameters = PGD

    def setup(self, context: TrainContext) -> None:
        import torch

        self.generator = torch.Generator().manual_seed(context.seed)

    def craft(self, model, x, y):
        from simreg.train.perturb import pgd_linf

        return pgd_linf(
            model,
            x,
            y,
            self.epsilon,
            steps=self.pgd_steps,
            rel_stepsize=self.pgd_rel_stepsize,
            generator=self.generator,
            random_start=self.random_start,
        )

    def state_dict(self):
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state):
        self.generator.set_state(state["generator"])


@register
class PgdAdversarialTraining(PgdTraining):
    name = "pgd_at"
    description = "PGD-L∞ adversarial training (Madry et al. 2018): L = CE(x')"
    uses_alpha = False

    def adversarial_batch(self, model, x, y):
        return self.craft(model, x, y)


@register
class AdversarialFeatureDesensitization(PgdTraining):
    name = "afd"
    description = "adversarial feature desensitization (Bashivan et al., Alg. 1)"
    parameters = {
        **PGD,
        "embedding_lr": Parameter(float, "afd.embedding_lr", "AFD Table A1: LR_E"),
        "discriminator_lr": Parameter(float, "afd.discriminator_lr", "AFD Table A1: LR_Da"),
        "momentum": Parameter(float, "afd.momentum", "SGD momentum of steps 2 and 3"),
        "width": Parameter(int, "afd.width", "hidden units of Da"),
        "leaky_slope": Parameter(float, "afd.leaky_slope", "LeakyReLU slope of Da"),
    }

    def setup(self, context: TrainContext) -> None:
        import torch

        from simreg.train.regularizers.adversarial.discriminator import ProjectionDiscriminator

        super().setup(context)
        self.alpha = context.alpha
        model = context.model
        self.discriminator = ProjectionDiscriminator(
            model.head.in_features, context.n_classes, self.width, self.leaky_slope
        )
        self.discriminator.to(context.device)
        self.embedding_params = [
            p for name, p in model.named_parameters() if not name.startswith("head.")
        ]
        self.discriminator_optimizer = torch.optim.SGD(
            self.discriminator.parameters(), lr=self.discriminator_lr, momentum=self.momentum
        )
        self.embedding_optimizer = torch.optim.SGD(
            self.embedding_params, lr=self.embedding_lr, momentum=self.momentum
        )
        self.totals = None

    def start_epoch(self, epoch, lr_scale):
        for optimizer, base in (
            (self.discriminator_optimizer, self.discriminator_lr),
            (self.embedding_optimizer, self.embedding_lr),
        ):
            for group in optimizer.param_groups:
                group["lr"] = base * lr_scale
        self.totals = {
            "afd_discriminator_loss": 0.0,
            "afd_embedding_loss": 0.0,
            "afd_discriminator_accuracy": 0.0,
            "steps": 0,
        }

    def after_step(self, batch: Batch) -> None:
        """Steps 2 and 3 of Alg. 1, after the trainer's classifier step (step 1)."""
        import torch

        from simreg.train.regularizers.adversarial.discriminator import (
            discriminator_loss,
            embedding_loss,
        )

        model, y = batch.model, batch.y
        x = batch.x.detach()
        x_adv = self.craft(model, x, y)
        with torch.no_grad():
            h_clean, h_adv = model.embedding(x), model.embedding(x_adv)
        loss_da = discriminator_loss(self.discriminator, h_clean, h_adv, y)
        self.discriminator_optimizer.zero_grad(set_to_none=True)
        loss_da.backward()
        self.discriminator_optimizer.step()
        with torch.no_grad():
            accuracy = (
                (self.discriminator(h_clean, y) > 0).float().mean()
                + (self.discriminator(h_adv, y) < 0).float().mean()
            ) / 2
        loss_e = embedding_loss(self.discriminator, model.embedding(x_adv), y)
        self.embedding_optimizer.zero_grad(set_to_none=True)
        (self.alpha * loss_e).backward()
        self.embedding_optimizer.step()
        # step 3's backward also reached Da and the head; nothing of it may carry over
        self.discriminator_optimizer.zero_grad(set_to_none=True)
        model.zero_grad(set_to_none=True)
        if self.totals is not None:
            self.totals["afd_discriminator_loss"] += loss_da.item()
            self.totals["afd_embedding_loss"] += loss_e.item()
            self.totals["afd_discriminator_accuracy"] += accuracy.item()
            self.totals["steps"] += 1

    def state_dict(self):
        return {
            **super().state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "discriminator_optimizer": self.discriminator_optimizer.state_dict(),
            "embedding_optimizer": self.embedding_optimizer.state_dict(),
        }

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.discriminator.load_state_dict(state["discriminator"])
        self.discriminator_optimizer.load_state_dict(state["discriminator_optimizer"])
        self.embedding_optimizer.load_state_dict(state["embedding_optimizer"])

    def metrics(self):
        if not self.totals or not self.totals["steps"]:
            return {}
        n = self.totals["steps"]
        return {k: v / n for k, v in self.totals.items() if k != "steps"}
