"""The power-law exponent of the penultimate layer's eigenspectrum (Schaeffer et al. §2.3).

The penultimate activity h (the pooled last stage, what the linear head classifies) of a
random test subset is collected; the eigenvalues λ₁ ≥ λ₂ ≥ ... of its covariance over the
images are fitted by log λₙ = −α log n + b over the ranks ``first`` to ``last`` (Schaeffer:
10 to 316, from 3000 images), by least squares. α is the exponent (Stringer, Pachitariu et
al.'s smoothness bound: α* = 1 + 2/d). The fit stops at the last positive eigenvalue when
the spectrum is shorter than ``last`` (a narrow network, or few images): the table says
which ranks were used.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from simreg.evaluate.registry import implements


@torch.no_grad()
def penultimate_activity(model, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """h(x) for float inputs ``x`` (n, D), in batches."""
    model.eval()
    return torch.cat([model.embedding(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])


def eigenspectrum(h: np.ndarray) -> np.ndarray:
    """Eigenvalues of the covariance of the rows of ``h``, largest first."""
    h = np.asarray(h, dtype=np.float64)
    cov = np.cov(h, rowvar=False)
    return np.sort(np.linalg.eigvalsh(np.atleast_2d(cov)))[::-1]


def power_law_fit(eigenvalues: np.ndarray, first: int = 10, last: int = 316) -> dict:
    """α and b of log λₙ = −α log n + b over ranks ``first``..``last`` (1-based), cut at the
    last eigenvalue above 1e-12 of the largest; NaN when fewer than 3 ranks remain."""
    eigenvalues = np.asarray(eigenvalues, dtype=np.float64)
    positive = int(np.sum(eigenvalues > 1e-12 * max(eigenvalues.max(initial=0), 1e-300)))
    last_used = min(last, positive)
    ranks = np.arange(first, last_used + 1)
    if len(ranks) < 3:
        return {
            "exponent": np.nan,
            "intercept": np.nan,
            "fit_first": first,
            "fit_last": last_used,
            "n_fit": len(ranks),
        }
    slope, intercept = np.polyfit(np.log(ranks), np.log(eigenvalues[ranks - 1]), 1)
    return {
        "exponent": -slope,
        "intercept": intercept,
        "fit_first": first,
        "fit_last": last_used,
        "n_fit": len(ranks),
    }


@implements("eigenspectrum")
def run(
    context, *, n_images: int | None, seed: int, first: int, last: int, batch_size: int = 500
) -> None:
    """Tidy CSV: model keys, rank, eigenvalue, in_fit, and the fit (exponent, intercept,
    fit_first, fit_last, n_fit) on every row, from a seeded random test subset."""
    n_test = len(context.test.labels)
    indices = context.subset(None if n_images is None or n_images >= n_test else n_images, seed)
    x, _ = context.inputs_float(indices)
    h = penultimate_activity(context.model, x, batch_size).cpu().numpy()
    values = eigenspectrum(h)
    fit = power_law_fit(values, first, last)
    ranks = np.arange(1, len(values) + 1)
    frame = pd.DataFrame(
        {
            "rank": ranks,
            "eigenvalue": values,
            "in_fit": (ranks >= first) & (ranks <= fit["fit_last"]),
            **fit,
        }
    )
    context.write_table(frame, n_images=len(indices), features=h.shape[1], subset_seed=seed)
