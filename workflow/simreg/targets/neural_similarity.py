"""Neural similarity of a regularization set: the predictive models' representational
similarity (Li et al. 2019; paper §3, Fig. 1), in the layout of the pixel similarity.

Everything here is computed on one set of **frames**: the N regularization images made
grayscale frames of the recordings' stimulus size (:func:`simreg.neural.images.to_stimuli`,
36 x 64 by default), the same procedure that made the stimuli the recorded or simulated
population saw and the predictor was fitted on. The file stores the frames (``/frames``),
and Fig. 1 compares S_neural with the pixel similarity *of those frames* (for 36 x 64
Imagenette/ImageNet images the frames are the images themselves; a 32 x 32 CIFAR image is
centre-cropped to 18 x 32 and resized, so its frame is not the image S_pixel of the pixel file
sees).

For each fitted model (one per scan and model seed), the predicted responses R (N frames x
n neurons) to the N frames, at the training mean of the behaviour:

1. each neuron's responses minus its mean over the N images, divided by its sd (so that
   high-rate neurons do not dominate);
2. times the neuron's weight: its oracle correlation on the repeated test images, clipped
   at 0, so better-measured neurons count more (Li et al. supplement §3); a neuron's share
   of the inner product grows as the square of its oracle;
3. each image's weighted response vector scaled to unit norm; S = cosine similarity.

S_neural is the mean of S over the models of a scan, then over scans (Li et al. average 8
scans in the main text, one in the supplement; the paper's Fig. 1, 6 scans with 3+ models).
Because every S is a Gram matrix of unit rows, the mean is the Gram matrix of the models'
rows concatenated with weights sqrt(1 / (scans x models of the scan)), so it is built in
blocks of rows like S_pixel, and its diagonal is 1.

File layout (what :func:`simreg.targets.pixel_similarity.read_similarity` reads)::

    /indices            int64 (N,)   the regularization images (those of the pixel file)
    /neural_similarity  float32 (N, N)
    /frames             float32 (N, h, w)  the frames the predictors saw, in [0, 1]
    attrs: those of the pixel file (dataset, dataset_file, n_images, image_seed, ...), plus
           predictors, scans, weighting, frame_shape, and the off-diagonal correlations with
           the pixel similarity of the frames: pearson_r / spearman_r (the predictors), and
           for simulated scans simulator_pearson_r / simulator_spearman_r (the simulator's
           noiseless rates on the same frames, every neuron weighted 1)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import h5py
import numpy as np
import torch

from simreg.data.store import read_split
from simreg.outputs import atomic_output, provenance
from simreg.targets.pixel_similarity import NORM_FLOOR, read_similarity

SD_FLOOR = 1e-6


def weighted_unit_rows(responses, weights=None) -> torch.Tensor:
    """Rows of (N, n) responses: per-neuron mean-subtracted and sd-normalized, scaled by
    ``weights`` (n,), then to unit norm (float64)."""
    r = torch.as_tensor(np.asarray(responses), dtype=torch.float64)
    r = r - r.mean(dim=0, keepdim=True)
    r = r / r.std(dim=0, keepdim=True).clamp_min(SD_FLOOR)
    if weights is not None:
        r = r * torch.as_tensor(np.asarray(weights), dtype=torch.float64).clamp_min(0.0)
    return r / r.norm(dim=1, keepdim=True).clamp_min(NORM_FLOOR)


def neural_similarity(responses, weights=None) -> np.ndarray:
    """S of one population's (N, n) responses (for tests and small N)."""
    unit = weighted_unit_rows(responses, weights)
    return (unit @ unit.T).clamp_(-1.0, 1.0).numpy().astype(np.float32)


def combined_rows(populations: list[tuple[str, np.ndarray, np.ndarray]]) -> torch.Tensor:
    """(scan, responses, weights) per model -> rows whose Gram matrix is the mean of the
    models' S over each scan's models, then over scans."""
    scans = sorted({scan for scan, _, _ in populations})
    per_scan = {scan: sum(s == scan for s, _, _ in populations) for scan in scans}
    parts = [
        weighted_unit_rows(r, w) * np.sqrt(1.0 / (len(scans) * per_scan[scan]))
        for scan, r, w in populations
    ]
    return torch.cat(parts, dim=1).to(torch.float32)


def predictor_frame_shape(predictors: list[str]) -> tuple[int, int]:
    """The stimulus size the fitted models share (they must: one set of frames)."""
    shapes = {
        tuple(torch.load(p, map_location="cpu", weights_only=False)["image_shape"])
        for p in predictors
    }
    if len(shapes) != 1:
        raise ValueError(
            f"the predictors were fitted on frames of different sizes {sorted(shapes)}"
        )
    return shapes.pop()


def predicted_responses(predictor_file, frames) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(scan, predicted responses, weights) of each scan of one fitted model (one scan, or a
    shared core with a readout per scan) for ``frames`` (N, h, w)."""
    from simreg.neural.predictor import load_predictors

    out = []
    for predictor, oracle in load_predictors(predictor_file):
        if tuple(predictor.image_shape) != tuple(frames.shape[1:]):
            raise ValueError(
                f"{predictor_file} was fitted on {predictor.image_shape} frames, "
                f"not {frames.shape[1:]}"
            )
        out.append((predictor.scan, predictor.predict(frames), oracle))
    return out


def off_diagonal_correlation(a: np.ndarray, b: np.ndarray) -> dict:
    """Pearson and Spearman correlation of two similarity matrices over the pairs i < j."""
    upper = np.triu_indices(len(a), k=1)
    x, y = a[upper].astype(np.float64), b[upper].astype(np.float64)
    return {
        "pearson_r": float(np.corrcoef(x, y)[0, 1]),
        "spearman_r": float(np.corrcoef(average_ranks(x), average_ranks(y))[0, 1]),
    }


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 0..n-1 of ``values``, ties given their mean rank (as Spearman's r needs)."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.r_[0, np.flatnonzero(np.diff(ordered)) + 1]
    ends = np.r_[starts[1:], len(values)]
    ranks = np.empty(len(values))
    ranks[order] = np.repeat((starts + ends - 1) / 2.0, ends - starts)
    return ranks


def build_neural_similarity(
    predictors: list[str],
    pixel_file,
    out,
    *,
    images_file=None,
    recordings: list[str] = (),
    dtype: str = "float32",
    block_size: int = 2048,
) -> None:
    """S_neural of the frames of the images of ``pixel_file`` (its indices and dataset), from
    the fitted models ``predictors``; written atomically in the pixel file's layout. The
    simulated scans among ``recordings`` add the simulator's own correlation."""
    from simreg.neural.images import to_stimuli
    from simreg.targets.pixel_similarity import pixel_similarity

    indices, _, attrs = read_similarity(pixel_file)
    source = images_file or attrs["dataset_file"]
    if not Path(source).exists():
        raise FileNotFoundError(
            f"the images of {pixel_file} are not at {source}: pass their dataset file (--images)"
        )
    images = read_split(source, "train").images[indices]
    started = time.perf_counter()
    frames = to_stimuli(images, predictor_frame_shape(predictors))
    s_frames = pixel_similarity(frames, block_size)
    populations = []
    for path in predictors:
        populations.extend(predicted_responses(path, frames))
        print(
            f"neural similarity: predicted {len(frames)} frames with {path}",
            file=sys.stderr,
            flush=True,
        )
    simulator = simulator_correlation(recordings, frames, s_frames)
    rows = combined_rows(populations)
    n = len(indices)
    with atomic_output(out) as tmp, h5py.File(tmp, "w") as h5:
        h5.create_dataset("indices", data=indices)
        h5.create_dataset("frames", data=frames.astype(np.float32), compression="gzip")
        chunk_rows = min(block_size, n, max(1, (1 << 22) // n))
        matrix = h5.create_dataset(
            "neural_similarity", shape=(n, n), dtype=dtype, chunks=(chunk_rows, n)
        )
        for start in range(0, n, block_size):
            block = (rows[start : start + block_size] @ rows.T).clamp_(-1.0, 1.0).numpy()
            matrix[start : start + len(block)] = block.astype(dtype)
        stats = off_diagonal_correlation(s_frames, matrix[...])
        scans = sorted({scan for scan, _, _ in populations})
        keep = {
            k: attrs[k]
            for k in ("dataset", "color", "dataset_file", "n_images", "image_seed", "image_shape")
            if k in attrs
        }
        record = provenance(
            **keep,
            dtype=dtype,
            block_size=block_size,
            pixel_similarity_file=str(pixel_file),
            predictors=[str(p) for p in predictors],
            scans=scans,
            neurons=int(sum(r_.shape[1] for _, r_, _ in populations)),
            definition="cosine similarity of predicted responses, per neuron mean-subtracted "
            "and sd-normalized, weighted by oracle correlation; mean over models "
            "of a scan, then over scans",
            weighting="oracle correlation (clipped at 0)",
            frame_shape=list(frames.shape[1:]),
            frames="simreg.neural.images.to_stimuli of the regularization images",
            pixel_similarity_of="the frames",
            **stats,
            **simulator,
            seconds=round(time.perf_counter() - started, 3),
        )
        for key, value in record.items():
            h5.attrs[key] = value
    extra = "".join(
        f"; simulator's noiseless rates: "
        f"Pearson {simulator['simulator_pearson_r']:.3f}, "
        f"Spearman {simulator['simulator_spearman_r']:.3f}"
        for _ in [0]
        if simulator
    )
    print(
        f"neural similarity: {n} frames, {len(populations)} models of {len(scans)} scans; "
        f"with the frames' S_pixel (off-diagonal): Pearson r = {stats['pearson_r']:.3f}, "
        f"Spearman {stats['spearman_r']:.3f}{extra}",
        file=sys.stderr,
        flush=True,
    )


def simulator_correlation(recordings, frames, s_frames) -> dict:
    """The simulated scans' noiseless rates on ``frames``, their similarity (mean over scans,
    every neuron weighted 1) correlated with the frames' S_pixel; {} without simulated scans."""
    from simreg.neural.simulate import saved_population

    parts = []
    for path in recordings:
        cells = saved_population(path)
        if cells is not None:
            parts.append((path, cells.rates(frames), None))
    if not parts:
        return {}
    rows = combined_rows(parts)
    s_sim = (rows @ rows.T).clamp_(-1.0, 1.0).numpy()
    stats = off_diagonal_correlation(s_frames, s_sim)
    return {
        "simulator_pearson_r": stats["pearson_r"],
        "simulator_spearman_r": stats["spearman_r"],
        "simulator_scans": len(parts),
    }
