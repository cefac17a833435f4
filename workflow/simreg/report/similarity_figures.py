"""Neural vs pixel similarity of the same image pairs (paper Fig. 1): a scatter of the
off-diagonal pairs with their Pearson and Spearman correlation, and the two matrices side by
side.

Both similarities are of the same frames: the pixel similarity is computed from the frames
the neural similarity file stores (``/frames``: the regularization images as the recorded or
simulated population's stimuli), not from the pixel file's images, which for a 32 x 32 set are
not the frames. A neural file without frames (older) is compared with the pixel file.

The data CSV has one row per regularization set and source: ``predictor`` (the fitted models,
of real or simulated scans), and for simulated scans ``simulator`` (the simulator's noiseless
rates on the same frames); the Pearson and Spearman correlation over all off-diagonal pairs,
the number of pairs, and the files compared.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from simreg.report.noise_figures import save_figure  # noqa: E402

SCATTER_PAIRS = 20000  # pairs drawn in the scatter (all pairs enter the correlation)
MATRIX_IMAGES = 100  # images shown in each matrix (the first ones, as stored)


def pair_correlation(s_pixel: np.ndarray, s_neural: np.ndarray) -> dict:
    """Pearson and Spearman correlation of two similarity matrices over pairs i < j."""
    upper = np.triu_indices(len(s_pixel), k=1)
    a, b = s_pixel[upper].astype(np.float64), s_neural[upper].astype(np.float64)
    rank = lambda v: pd.Series(v).rank().to_numpy()  # noqa: E731
    return {
        "pearson_r": float(np.corrcoef(a, b)[0, 1]),
        "spearman_r": float(np.corrcoef(rank(a), rank(b))[0, 1]),
        "pairs": len(a),
    }


def plot_neural_pixel_similarity(
    pairs: list[tuple[str, str]], out_pdf: str | Path, title: str
) -> None:
    """One row per (pixel file, neural file) pair: scatter, S_pixel, S_neural."""
    from simreg.targets.pixel_similarity import read_similarity

    fig, axes = plt.subplots(len(pairs), 3, figsize=(12, 3.8 * len(pairs)), squeeze=False)
    rows = []
    for (pixel_file, neural_file), ax in zip(pairs, axes):
        indices, s_pixel, neural_attrs = frame_pixel_similarity(pixel_file, neural_file)
        neural_indices, s_neural, _ = read_similarity(neural_file)
        if not np.array_equal(indices, neural_indices):
            raise ValueError(f"{pixel_file} and {neural_file} hold different images")
        stats = pair_correlation(s_pixel, s_neural)
        name = Path(pixel_file).stem
        common = {
            "regularization": name,
            "pairs": stats["pairs"],
            "pixel_file": pixel_file,
            "neural_file": neural_file,
            "scans": _scans(neural_attrs.get("scans", "")),
            "frames": ("neural file's /frames" if "frame_shape" in neural_attrs else "pixel file"),
        }
        rows.append(
            {
                **common,
                "source": "predictor",
                "pearson_r": stats["pearson_r"],
                "spearman_r": stats["spearman_r"],
            }
        )
        label = f"predictor: Pearson {stats['pearson_r']:.2f}, Spearman {stats['spearman_r']:.2f}"
        if "simulator_pearson_r" in neural_attrs:
            rows.append(
                {
                    **common,
                    "source": "simulator",
                    "pearson_r": float(neural_attrs["simulator_pearson_r"]),
                    "spearman_r": float(neural_attrs["simulator_spearman_r"]),
                }
            )
            label += (
                f"\nsimulator rates: Pearson {neural_attrs['simulator_pearson_r']:.2f}, "
                f"Spearman {neural_attrs['simulator_spearman_r']:.2f}"
            )
        upper = np.triu_indices(len(s_pixel), k=1)
        draw = np.random.default_rng(0).permutation(len(upper[0]))[:SCATTER_PAIRS]
        ax[0].scatter(s_pixel[upper][draw], s_neural[upper][draw], s=2, alpha=0.3, linewidths=0)
        ax[0].set_xlabel("pixel similarity of the frames")
        ax[0].set_ylabel("neural similarity (predictor)")
        ax[0].set_title(f"{name}\n{label}", fontsize=9)
        k = min(MATRIX_IMAGES, len(s_pixel))
        for panel, matrix, label in ((ax[1], s_pixel, "pixel"), (ax[2], s_neural, "neural")):
            image = panel.imshow(matrix[:k, :k], cmap="RdBu_r", vmin=-1, vmax=1)
            panel.set_title(f"S_{label} ({k} images)")
            panel.set_xticks([])
            panel.set_yticks([])
        fig.colorbar(image, ax=ax[1:].tolist(), shrink=0.8)
    fig.suptitle(title)
    save_figure(fig, out_pdf, data=pd.DataFrame(rows))


def frame_pixel_similarity(pixel_file, neural_file) -> tuple[np.ndarray, np.ndarray, dict]:
    """(indices, S_pixel of the neural file's frames, the neural file's attrs); the pixel
    file's S_pixel where the neural file has no frames."""
    import h5py

    from simreg.targets.pixel_similarity import pixel_similarity, read_similarity

    with h5py.File(neural_file, "r") as h5:
        attrs = dict(h5.attrs)
        if "frames" in h5:
            return h5["indices"][...], pixel_similarity(h5["frames"][...]), attrs
    indices, s_pixel, _ = read_similarity(pixel_file)
    return indices, s_pixel, attrs


def _scans(value) -> str:
    """The neural file's scans attribute (a JSON list as provenance stores it) as 'a, b'."""
    import json

    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    return ", ".join(map(str, np.atleast_1d(value)))
