"""The two penalties of Schaeffer et al. ("smooth neural codes", §3.4, eq. 1):

- ``jacobian``: c2·||∇ₓ f(x)||_F, the Frobenius norm of the input-output Jacobian of the
  class probabilities f = softmax(logits), per image, averaged over the batch. f is the
  probabilities because eq. 1's cross-entropy is −Σ yᵢ log fᵢ(x) (``jacobian.output``;
  ``logits`` penalizes the logits' Jacobian instead, for comparison). Estimated with random
  projections (Hoffman et al. 2019): for v uniform on the unit sphere of R^K,
  E||vᵀJ||² = ||J||²_F / K, so ||J||²_F ≈ (K / n) Σ_p ||v_pᵀ J||² over n projections, one
  backward pass each.
- ``covariance``: c1·||offdiag(C)||_F, C the covariance over the batch of the penultimate
  activity h (the pooled last stage): penalizes correlations between units.

The trainer adds α times the penalty: α = c2 (``jacobian``) or α = c1 (``covariance``).
"""

from __future__ import annotations

from simreg.train.regularizers.base import Batch, Parameter, Regularizer, TrainContext, register

PROJECTIONS = Parameter(int, "jacobian.projections", "random projections per step")
OUTPUTS = ("probabilities", "logits")
OUTPUT = Parameter(str, "jacobian.output", "the output whose input Jacobian is penalized: "
                   "probabilities (softmax, eq. 1) or logits", choices=OUTPUTS)
EPS = 1e-12  # inside the square roots: a finite gradient at 0


def jacobian_frobenius(x, outputs, projections: int, generator):
    """Per-sample estimate of ||∂outputs/∂x||_F from ``projections`` random unit vectors
    (differentiable: the penalty trains through it). ``x`` must require grad."""
    import torch

    n, k = outputs.shape
    squared = torch.zeros(n, dtype=outputs.dtype, device=outputs.device)
    for p in range(projections):
        v = torch.randn(n, k, generator=generator).to(outputs.device, outputs.dtype)
        v = v / v.norm(dim=1, keepdim=True)
        vj = torch.autograd.grad((v * outputs).sum(), x, create_graph=True)[0]
        squared = squared + vj.flatten(1).pow(2).sum(1)
    return torch.sqrt(k / projections * squared + EPS)


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
    description = ("Jacobian penalty c2·||∇ₓf||_F, f the class probabilities (Schaeffer et al. "
                   "eq. 1) or the logits (jacobian.output); random projections")
    needs_input_grad = True
    parameters = {"projections": PROJECTIONS, "output": OUTPUT}

    def setup(self, context: TrainContext) -> None:
        import torch

        self.generator = torch.Generator().manual_seed(context.seed)

    def loss(self, batch: Batch, step):
        outputs = batch.logits.softmax(dim=1) if self.output == "probabilities" else batch.logits
        return jacobian_frobenius(batch.x, outputs, self.projections, self.generator).mean()

    def state_dict(self):
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state):
        self.generator.set_state(state["generator"])


@register
class CovariancePenalty(Regularizer):
    name = "covariance"
    description = "off-diagonal covariance penalty c1·||offdiag(hhᵀ)||_F (Schaeffer et al. eq. 1)"

    def loss(self, batch: Batch, step):
        return offdiagonal_covariance_norm(batch.model.pool(batch.features[-1]))
