"""SGR's Σ as a covariance function of pixel displacement (Roth et al. 2018, §3.3, eq. 16).

The d×d second-moment matrix of adversarial perturbations ξ is never formed. Its entry for
pixels i, j of channels a, b is a function of the channels and of the rounded distance
r = round(||i − j||₂): f_ab(r), the mean of ξ_a(i) ξ_b(j) over the batch and over all pixel
pairs at that distance (intra-channel a = b, inter-channel a ≠ b; Roth Fig. 2). The running
estimate is f ← (1 − β) f + β f_batch (Alg. 1, eq. 14), starting at the first batch.

Σ is applied in the Fourier domain. The image is zero-padded to 2H × 2W; on that torus the
kernel K_ab(d) = f_ab(round|d|) (lags |d_row| < H, |d_col| < W) is a circulant, and gᵀΣg is
(1 / 4HW) Σ_k G(k)ᴴ Ŝ(k) G(k) with G the padded gradient's FFT and Ŝ(k) the C×C kernel
spectrum. A radial function need not be a valid covariance: Ŝ(k) is made positive
semi-definite (eigenvalues clipped at 0), so the penalty can never reward a large gradient.
The identity (f(0) = 1 on the diagonal, 0 elsewhere) gives Ŝ = I and gᵀΣg = ||g||²
(Parseval): SGR with Σ = I is the gradient-norm penalty.
"""

from __future__ import annotations

import torch


def lags(size: int, device=None) -> torch.Tensor:
    """Signed lag of each index of a length-2·size FFT axis: 0..size−1, then −size..−1."""
    k = torch.arange(2 * size, device=device)
    return torch.where(k < size, k, k - 2 * size)


def radius_index(height: int, width: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(rounded distance of each lag on the 2H×2W torus, mask of lags inside the image)."""
    dr, dc = lags(height, device)[:, None], lags(width, device)[None, :]
    radius = torch.sqrt((dr**2 + dc**2).double()).round().long()
    inside = (dr.abs() < height) & (dc.abs() < width)
    return radius, inside


class DisplacementCovariance:
    """Running covariance function f_ab(r) of perturbations of C×H×W images."""

    def __init__(self, channels: int, height: int, width: int, beta: float, device=None):
        self.shape, self.beta = (channels, height, width), beta
        self.radius, self.inside = radius_index(height, width, device)
        self.n_radii = int(self.radius[self.inside].max()) + 1
        self.function: torch.Tensor | None = None  # (C, C, n_radii)
        self.spectrum: torch.Tensor | None = None  # (2H, 2W, C, C), PSD

    # ---- estimation ------------------------------------------------------------------
    def batch_function(self, xi: torch.Tensor) -> torch.Tensor:
        """f_ab(r) of one batch ``xi`` (m, C, H, W): mean product over pixel pairs at r."""
        m, c, h, w = xi.shape
        fxi = torch.fft.fft2(xi.double(), s=(2 * h, 2 * w))
        # R_ab(d) = Σ_images Σ_i ξ_a(i) ξ_b(i + d)
        cross = torch.fft.ifft2(torch.einsum("nakl,nbkl->abkl", fxi.conj(), fxi)).real
        ones = torch.fft.fft2(
            torch.ones(h, w, dtype=torch.float64, device=xi.device), s=(2 * h, 2 * w)
        )
        counts = torch.fft.ifft2(ones.conj() * ones).real.round()  # pixel pairs at lag d
        index = self.radius[self.inside]
        sums = torch.zeros(c, c, self.n_radii, dtype=torch.float64, device=xi.device)
        sums.index_add_(2, index, cross[:, :, self.inside])
        pairs = torch.zeros(self.n_radii, dtype=torch.float64, device=xi.device)
        pairs.index_add_(0, index, counts[self.inside])
        function = sums / (m * pairs)
        return (function + function.transpose(0, 1)) / 2

    def update(self, xi: torch.Tensor) -> None:
        """Fold the batch of perturbations ``xi`` into the running estimate (eq. 14)."""
        batch = self.batch_function(xi.detach())
        self.function = (
            batch
            if self.function is None
            else ((1 - self.beta) * self.function + self.beta * batch)
        )
        self.spectrum = None

    def set_function(self, function: torch.Tensor) -> None:
        self.function, self.spectrum = function.double(), None

    def kernel(self) -> torch.Tensor:
        """K_ab(d) on the 2H×2W torus, (C, C, 2H, 2W)."""
        kernel = self.function[:, :, self.radius.clamp(max=self.n_radii - 1)]
        return kernel * self.inside

    def psd_spectrum(self) -> torch.Tensor:
        """Ŝ(k), (2H, 2W, C, C): the kernel's spectrum with negative eigenvalues clipped."""
        if self.spectrum is None:
            spectrum = torch.fft.fft2(self.kernel()).real.permute(2, 3, 0, 1)
            spectrum = (spectrum + spectrum.transpose(-1, -2)) / 2
            values, vectors = torch.linalg.eigh(spectrum)
            self.spectrum = (vectors * values.clamp_min(0)[..., None, :]) @ vectors.transpose(
                -1, -2
            )
        return self.spectrum

    def mean_diagonal(self) -> float:
        """Mean diagonal entry of Σ (its mean variance): the spectrum's mean trace / C."""
        spectrum = self.psd_spectrum()
        return float(torch.diagonal(spectrum, dim1=-2, dim2=-1).mean())

    # ---- use ---------------------------------------------------------------------------
    def quadratic_form(self, g: torch.Tensor) -> torch.Tensor:
        """gᵢᵀ Σ gᵢ for each gᵢ of ``g`` (m, C, H, W): differentiable in ``g``."""
        m, c, h, w = g.shape
        spectrum = self.psd_spectrum().to(g.dtype)
        fg = torch.fft.fft2(g, s=(2 * h, 2 * w)).permute(0, 2, 3, 1)  # (m, 2H, 2W, C)
        applied = torch.einsum("klab,nklb->nkla", spectrum.to(fg.dtype), fg)
        return (fg.conj() * applied).real.sum(dim=(1, 2, 3)) / (4 * h * w)

    def state_dict(self) -> dict:
        return {"function": self.function}

    def load_state_dict(self, state: dict) -> None:
        self.function, self.spectrum = state["function"], None
