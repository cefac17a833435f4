"""The two penalties of Schaeffer et al. ("smooth neural codes", §3.4, eq. 1):

- ``jacobian``: c2 times a norm of the input-output Jacobian J = ∇ₓ f(x) per image, averaged
  over the batch. f is the class probabilities softmax(logits), because eq. 1's
  cross-entropy is −Σ yᵢ log fᵢ(x) (``jacobian.output``; ``logits`` for comparison).
  ``jacobian.estimator``:

  - ``frobenius`` (eq. 1 as written): ||J||_F from random projections (Hoffman et al.
    2019): for v uniform on the unit sphere of R^K, E||vᵀJ||² = ||J||²_F / K, so
    ||J||²_F ≈ (K / n) Σ_p ||v_pᵀ J||² over n projections (``jacobian.projections``), one
    backward pass each. That estimate is unbiased; its square root is not (E√X ≤ √EX), so
    by default the squared norm is penalized, as Hoffman et al. do (``jacobian.squared``;
    docs/choices.md gives the measured bias).
  - ``column_sums`` (what §3.4 says the authors ran): ||1ᵀJ|| = ||∇ₓ Σ_c f_c||, exact in
    one backward pass. Of the logits only: the probabilities sum to 1, so their column sums
    vanish. ``jacobian_column_sums`` is this penalty as a method of its own, so that one
    figure grid holds both.

  The input gradients are each image's own (``input_gradients.batchnorm``,
  :mod:`simreg.train.input_gradients`).
- ``covariance``: c1·||offdiag(C)||_F, C the covariance over the batch of the penultimate
  activity h (the pooled last stage): penalizes correlations between units.

The trainer adds α times the penalty: α = c2 (``jacobian``) or α = c1 (``covariance``).
"""

from __future__ import annotations

from simreg.train.regularizers.base import Batch, Parameter, Regularizer, TrainContext, register
from simreg.train.regularizers.gradient import BATCHNORM

PROJECTIONS = Parameter(int, "jacobian.projections", "random projections per step")
OUTPUTS = ("probabilities", "logits")
OUTPUT = Parameter(
    str,
    "jacobian.output",
    "the output whose input Jacobian is penalized: probabilities (softmax, eq. 1) or logits",
    choices=OUTPUTS,
)
ESTIMATORS = ("frobenius", "column_sums")
ESTIMATOR = Parameter(
    str,
    "jacobian.estimator",
    "the penalized norm: frobenius (||J||_F, eq. 1) "
    "or column_sums (||1ᵀJ||, what Schaeffer §3.4 ran)",
    choices=ESTIMATORS,
)
SQUARED = Parameter(
    bool,
    "jacobian.squared",
    "frobenius: penalize ||J||²_F (Hoffman et al.; "
    "unbiased from one projection) rather than ||J||_F (eq. 1)",
)
EPS = 1e-12  # inside the square roots: a finite gradient at 0


def jacobian_frobenius(x, outputs, projections: int, generator, squared: bool = False):
    """Per-sample estimate of ||∂outputs/∂x||_F (``squared``: of ||∂outputs/∂x||²_F) from
    ``projections`` random unit vectors (differentiable: the penalty trains through it). The
    squared estimate is unbiased; its square root is biased low (E√X ≤ √EX), the less the
    more projections. ``x`` must require grad."""
    import torch

    from simreg.train.input_gradients import vector_jacobian

    n, k = outputs.shape
    total = torch.zeros(n, dtype=outputs.dtype, device=outputs.device)
    for _p in range(projections):
        v = torch.randn(n, k, generator=generator).to(outputs.device, outputs.dtype)
        v = v / v.norm(dim=1, keepdim=True)
        total = total + vector_jacobian(x, outputs, v).flatten(1).pow(2).sum(1)
    estimate = k / projections * total
    return estimate if squared else torch.sqrt(estimate + EPS)


def jacobian_column_sums(x, outputs):
    """Per-sample ||1ᵀ ∂outputs/∂x|| = ||∇ₓ Σ_c outputs_c||, exact (one backward pass;
    differentiable). ``x`` must require grad."""
    import torch

    from simreg.train.input_gradients import vector_jacobian

    sums = vector_jacobian(x, outputs, torch.ones_like(outputs))
    return torch.sqrt(sums.flatten(1).pow(2).sum(1) + EPS)


def offdiagonal_covariance_norm(h):
    """||offdiag(C)||_F of the covariance C = (h − h̄)ᵀ(h − h̄) / m of the rows of ``h``."""
    import torch

    centred = h - h.mean(dim=0, keepdim=True)
    cov = centred.T @ centred / len(h)
    off = cov - torch.diag(torch.diagonal(cov))
    return torch.sqrt(off.pow(2).sum() + EPS)


@register
class JacobianPenalty(Regularizer):
    name = "jacobian"
    description = (
        "Jacobian penalty c2·||∇ₓf||²_F (or ||∇ₓf||_F, Schaeffer et al. eq. 1: "
        "jacobian.squared), f the class probabilities or the logits "
        "(jacobian.output), by random projections; or the norm of the column sums "
        "(jacobian.estimator)"
    )
    needs_input_grad = True
    parameters = {
        "projections": PROJECTIONS,
        "output": OUTPUT,
        "estimator": ESTIMATOR,
        "squared": SQUARED,
        "batchnorm": BATCHNORM,
    }

    def __init__(self, **params):
        super().__init__(**params)
        if self.estimator == "column_sums" and self.output == "probabilities":
            raise ValueError(
                "jacobian.estimator column_sums with jacobian.output probabilities "
                "penalizes 0: the probabilities sum to 1 whatever the input, so "
                "the column sums of their Jacobian vanish; set output: logits"
            )

    def setup(self, context: TrainContext) -> None:
        import torch

        from simreg.train.input_gradients import track_statistics

        self.generator = torch.Generator().manual_seed(context.seed)
        self.statistics = track_statistics(context.model, self.batchnorm)

    def loss(self, batch: Batch, step):
        from simreg.train.input_gradients import differentiable_forward

        x, logits = differentiable_forward(batch, self.batchnorm, self.statistics)
        outputs = logits.softmax(dim=1) if self.output == "probabilities" else logits
        if self.estimator == "column_sums":
            return jacobian_column_sums(x, outputs).mean()
        return jacobian_frobenius(x, outputs, self.projections, self.generator, self.squared).mean()

    def state_dict(self):
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state):
        self.generator.set_state(state["generator"])


@register
class JacobianColumnSums(JacobianPenalty):
    """``jacobian`` with ``estimator: column_sums`` and ``output: logits``, as a method of its
    own, so that one figure grid can hold both Jacobian penalties."""

    name = "jacobian_column_sums"
    description = (
        "Jacobian penalty c2·||1ᵀ∇ₓz||, the norm of the column sums of the logits' "
        "Jacobian (what Schaeffer et al. §3.4 say they ran)"
    )
    parameters = {"batchnorm": BATCHNORM}
    estimator, output, projections, squared = "column_sums", "logits", 0, False


@register
class CovariancePenalty(Regularizer):
    name = "covariance"
    description = "off-diagonal covariance penalty c1·||offdiag(hhᵀ)||_F (Schaeffer et al. eq. 1)"

    def loss(self, batch: Batch, step):
        return offdiagonal_covariance_norm(batch.model.pool(batch.features[-1]))
