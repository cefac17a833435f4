"""A model population of mouse V1 that writes scans in the recordings format.

Li et al.'s recordings are not public, so by default the pipeline fits its predictive model to
this population. Its parameters come from published mouse-V1 physiology where we know a value,
and are our choice otherwise; docs/neural.md lists each with its source and a table of the
statistics measured on the population (:func:`physiology`) next to the published ones. Nothing
here is set to reach a correlation with pixel similarity.

- **Geometry**: a frame of ``image_size`` pixels fills the monitor, which spans
  ``FIELD_OF_VIEW_DEG`` of visual angle, so one pixel is FIELD_OF_VIEW_DEG / image_size
  degrees; every spatial parameter is in degrees and becomes pixels through it.
- **Receptive fields** tile the screen: centres uniform over the whole frame. Their size
  follows the spatial frequency (Gaussian envelope sd = ``ENVELOPE_CYCLES`` cycles).
- **Spatial frequency**: log-normal around 0.04 cycles/degree (Niell & Stryker 2008).
- **Cell types**: luminance-sensitive ON and OFF cells (a Gaussian receptive field without
  mean removal: they see the local luminance), and orientation-tuned cells, of which
  ``complex_fraction`` are complex (energy of a quadrature Gabor pair, phase-invariant) and the
  rest simple (a half-rectified linear Gabor).
- **Contrast normalization**: each drive, in Weber-contrast units (the response to an optimal
  grating of contrast c is c), is divided by ``C50`` plus the RMS contrast in a Gaussian pool
  ``POOL_SCALE`` times the receptive field (Heeger 1992's divisive normalization).
- **Output**: the normalized drive, standardized over the stimulus set, through a thresholded
  softplus (threshold sets the response sparseness), times a log-normal peak rate;
- a **gain** ``exp(a_run * running_z + a_pupil * pupil_z)`` with positive coefficients, so
  running and a dilated pupil raise responses (Niell & Stryker 2010; Reimer et al. 2014);
- receptive fields that move with the **eye**: on a trial with pupil centre (x, y) every
  receptive field is shifted by ``eye_shift * (x, y)`` pixels;
- **Poisson trial noise** around the rate (Fano factor 1 at a fixed rate; the behavioural gain
  adds trial-to-trial variance on top).

All random draws come from the seed and the scan index, so a scan is reproducible; scans of
the same seed see the same images (drawn by the seed alone) with different neurons. The
population is saved with the scan (``/simulation/population``), so that its noiseless rates
can be computed on other frames (:func:`saved_population`; Fig. 1's simulator r).
"""

from __future__ import annotations

import sys

import numpy as np

from simreg.neural.recordings import BEHAVIOR, Recording

# Population constants: docs/neural.md "The simulated population" gives each one's source.
FIELD_OF_VIEW_DEG = (90.0, 120.0)  # monitor height, width in degrees (Sinz-lab rig; approximate)
SF_MEDIAN_CPD = 0.04  # preferred spatial frequency, cycles/degree (Niell & Stryker 2008)
SF_SPREAD_OCTAVES = 0.7  # its log2 sd (our choice)
ENVELOPE_CYCLES = 0.45  # Gaussian envelope sd = this many cycles of the carrier
ASPECT = 0.7  # envelope aspect ratio (along / across the bars)
LUMINANCE_FRACTION = 0.2  # ON/OFF luminance-sensitive cells (our choice), half ON
POOL_SCALE = 2.0  # normalization pool sd / receptive-field sd (our choice)
C50 = 0.2  # semi-saturation contrast of the normalization (our choice)
THRESHOLD_RANGE = (0.5, 2.0)  # softplus threshold, in sd of the normalized drive
SLOPE_RANGE = (1.0, 2.5)  # softplus slope per sd of the normalized drive
PEAK_RATE_LOG = (0.0, 0.4)  # peak rate: lognormal (mean, sd) of its logarithm
RUN_GAIN_RANGE = (0.10, 0.30)  # a_run: log-gain per sd of running speed (> 0)
PUPIL_GAIN_RANGE = (0.05, 0.20)  # a_pupil: log-gain per sd of pupil size (> 0)
EYE_SHIFT = 0.05  # receptive-field shift per unit pupil position, x image height
RUNNING_FRACTION = 0.4  # trials on which the mouse runs
KINDS = ("simple", "complex", "on", "off")


def degrees_per_pixel(shape) -> tuple[float, float]:
    """(vertical, horizontal) degrees of visual angle per pixel of a frame of ``shape``."""
    return FIELD_OF_VIEW_DEG[0] / shape[0], FIELD_OF_VIEW_DEG[1] / shape[1]


def population(rng: np.random.Generator, n_neurons: int, shape, complex_fraction: float) -> dict:
    """Random receptive-field and response parameters of ``n_neurons`` neurons (positions in
    pixels, spatial frequency in cycles/degree, sizes in degrees)."""
    h, w = shape
    n = n_neurons
    sf = SF_MEDIAN_CPD * 2.0 ** rng.normal(0.0, SF_SPREAD_OCTAVES, n)
    nyquist = 0.5 / max(degrees_per_pixel(shape))
    sf = np.minimum(sf, 0.8 * nyquist)
    luminance = rng.random(n) < LUMINANCE_FRACTION
    complex_ = ~luminance & (rng.random(n) < complex_fraction)
    on = luminance & (rng.random(n) < 0.5)
    kind = np.where(luminance, np.where(on, 2, 3), np.where(complex_, 1, 0))
    return {
        "x": rng.uniform(-0.5, w - 0.5, n),
        "y": rng.uniform(-0.5, h - 0.5, n),
        "orientation": rng.uniform(0, np.pi, n),
        "frequency": sf,
        "phase": rng.uniform(0, 2 * np.pi, n),
        "sigma": ENVELOPE_CYCLES / sf,
        "kind": kind.astype(np.int64),
        "threshold": rng.uniform(*THRESHOLD_RANGE, n),
        "slope": rng.uniform(*SLOPE_RANGE, n),
        "peak": np.exp(rng.normal(*PEAK_RATE_LOG, n)),
        "run_gain": rng.uniform(*RUN_GAIN_RANGE, n),
        "pupil_gain": rng.uniform(*PUPIL_GAIN_RANGE, n),
    }


def _coordinates(params: dict, shape):
    """Per neuron, the offsets (along, across its orientation) of every pixel from its centre,
    in degrees: (N, H, W) each."""
    h, w = shape
    dy_deg, dx_deg = degrees_per_pixel(shape)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    dx = (xx[None] - params["x"][:, None, None]) * dx_deg
    dy = (yy[None] - params["y"][:, None, None]) * dy_deg
    theta = params["orientation"][:, None, None]
    return dx * np.cos(theta) + dy * np.sin(theta), -dx * np.sin(theta) + dy * np.cos(theta)


def filters(params: dict, shape) -> dict:
    """The (N, H*W) filters, each scaled so that an optimal grating (or, for ON/OFF cells, a
    uniform field) of Weber contrast c drives it by c: ``even``/``odd`` (the quadrature Gabor
    pair; zero mean), ``gauss`` (the receptive-field Gaussian, sum 1) and ``pool`` (the
    normalization pool, sum 1)."""
    along, across = _coordinates(params, shape)
    sigma = params["sigma"][:, None, None]
    envelope = np.exp(-(along**2 + (ASPECT * across) ** 2) / (2 * sigma**2))
    carrier = 2 * np.pi * params["frequency"][:, None, None] * along
    phase = params["phase"][:, None, None]
    even, odd = envelope * np.cos(carrier + phase), envelope * np.sin(carrier + phase)
    weight = envelope / envelope.sum(axis=(1, 2), keepdims=True)
    even -= even.sum(axis=(1, 2), keepdims=True) * weight  # no response to uniform luminance
    odd -= odd.sum(axis=(1, 2), keepdims=True) * weight
    # the response to the optimal grating cos(carrier + phase) of contrast 1 is sum(even * cos)
    gain = (
        np.maximum(
            np.sum(even * np.cos(carrier + phase), axis=(1, 2)) ** 2
            + np.sum(even * np.sin(carrier + phase), axis=(1, 2)) ** 2,
            1e-12,
        )
        ** 0.5
    )
    gauss = np.exp(-(along**2 + across**2) / (2 * sigma**2))
    pool = np.exp(-(along**2 + across**2) / (2 * (POOL_SCALE * sigma) ** 2))
    flat = lambda f: f.reshape(len(f), -1).astype(np.float32)  # noqa: E731
    return {
        "even": flat(even / gain[:, None, None]),
        "odd": flat(odd / gain[:, None, None]),
        "gauss": flat(gauss / gauss.sum(axis=(1, 2), keepdims=True)),
        "pool": flat(pool / pool.sum(axis=(1, 2), keepdims=True)),
    }


def behaviour(rng: np.random.Generator, n_trials: int) -> dict:
    """Pupil centre (sd 1), pupil size (a.u., larger when running) and running speed (cm/s)."""
    running = np.where(
        rng.random(n_trials) < RUNNING_FRACTION,
        rng.gamma(2.0, 5.0, n_trials),
        np.abs(rng.normal(0.0, 0.3, n_trials)),
    )
    pupil_size = np.exp(rng.normal(0.0, 0.2, n_trials) + 0.02 * running)
    return {
        "pupil_x": rng.normal(0.0, 1.0, n_trials),
        "pupil_y": rng.normal(0.0, 1.0, n_trials),
        "pupil_size": pupil_size,
        "running_speed": running,
    }


def shifted(images, shifts_px):
    """Images translated by ``-shift`` (= receptive fields moved by ``+shift``), bilinear,
    border values repeated. ``images`` (T, H, W), ``shifts_px`` (T, 2) as (x, y)."""
    import torch
    import torch.nn.functional as F

    x = torch.as_tensor(images)[:, None]
    t, _, h, w = x.shape
    theta = torch.zeros(t, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, 0, 2] = torch.as_tensor(shifts_px[:, 0], dtype=torch.float32) * 2 / w
    theta[:, 1, 2] = torch.as_tensor(shifts_px[:, 1], dtype=torch.float32) * 2 / h
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, padding_mode="border", align_corners=False)[:, 0].numpy()


class Population:
    """The neurons of one scan: drive -> contrast normalization -> nonlinearity -> gain.

    ``luminance`` (the stimulus set's mean, the Weber-contrast reference) and the drive's
    ``mean`` and ``sd`` over the stimulus set are fixed by :meth:`calibrate` (or restored by
    :func:`saved_population`), so the same neuron answers any frames the same way."""

    def __init__(self, params: dict, shape):
        self.params, self.shape = params, tuple(shape)
        self.filters = filters(params, self.shape)
        self.luminance, self.mean, self.sd = 0.5, None, None

    @classmethod
    def draw(cls, rng, n_neurons, shape, complex_fraction, images):
        cells = cls(population(rng, n_neurons, shape, complex_fraction), shape)
        cells.calibrate(images)
        return cells

    def calibrate(self, images):
        self.luminance = float(images.mean())
        drive = self.drive(images)
        self.mean, self.sd = drive.mean(axis=0), drive.std(axis=0) + 1e-6

    def drive(self, images) -> np.ndarray:
        """Contrast-normalized drive (images, N), before the output nonlinearity."""
        import torch

        x = torch.as_tensor(images.reshape(len(images), -1), dtype=torch.float32)
        x = (x - self.luminance) / max(self.luminance, 1e-3)  # Weber contrast
        f = {k: torch.as_tensor(v) for k, v in self.filters.items()}
        even, odd, local = x @ f["even"].T, x @ f["odd"].T, x @ f["gauss"].T
        pooled_mean = x @ f["pool"].T
        contrast = torch.sqrt(torch.clamp((x**2) @ f["pool"].T - pooled_mean**2, min=0.0))
        kind = torch.as_tensor(self.params["kind"])
        drive = torch.where(kind == 0, even, torch.sqrt(even**2 + odd**2))
        drive = torch.where(kind == 2, local, torch.where(kind == 3, -local, drive))
        return (drive / (C50 + contrast)).numpy()

    def rates(self, images, gain_log=None) -> np.ndarray:
        """Noiseless rates (images, N); ``gain_log`` (images, N) adds behavioural gain."""
        z = (self.drive(images) - self.mean) / self.sd
        p = self.params
        rate = p["peak"] * np.logaddexp(0.0, p["slope"] * (z - p["threshold"]))
        return rate * np.exp(gain_log) if gain_log is not None else rate

    def state(self) -> dict:
        """What :func:`saved_population` needs to rebuild these neurons."""
        return {
            **{f"params/{k}": np.asarray(v) for k, v in self.params.items()},
            "mean": self.mean,
            "sd": self.sd,
            "luminance": np.float64(self.luminance),
            "shape": np.asarray(self.shape),
        }


def simulate_scan(
    stimuli: np.ndarray,
    scan_id: str,
    scan_index: int,
    *,
    n_neurons: int,
    train_images: int,
    validation_images: int,
    test_images: int,
    test_repeats: int,
    complex_fraction: float,
    seed: int,
) -> Recording:
    """One scan of ``n_neurons`` neurons shown ``stimuli`` (I, H, W) in [0, 1]: the first
    ``train_images`` once each (train), the next ``validation_images`` once each
    (validation), the last ``test_images`` ``test_repeats`` times each (test)."""
    n_images = train_images + validation_images + test_images
    if len(stimuli) != n_images:
        raise ValueError(f"simulate_scan needs {n_images} stimuli, got {len(stimuli)}")
    if test_repeats < 2:
        raise ValueError("test_repeats must be at least 2 (the oracle correlation needs repeats)")
    rng = np.random.default_rng([seed, scan_index])
    shape = stimuli.shape[1:]
    cells = Population.draw(rng, n_neurons, shape, complex_fraction, stimuli)
    image_ids = np.concatenate(
        [
            np.arange(train_images + validation_images),
            np.repeat(np.arange(train_images + validation_images, n_images), test_repeats),
        ]
    )
    tiers = np.array(
        ["train"] * train_images
        + ["validation"] * validation_images
        + ["test"] * (test_images * test_repeats)
    )
    trials = len(image_ids)
    state = behaviour(rng, trials)
    speed = state["running_speed"]
    running_z = (speed - speed.mean()) / speed.std()
    log_pupil = np.log(state["pupil_size"])
    pupil_z = (log_pupil - log_pupil.mean()) / log_pupil.std()
    gain_log = np.outer(running_z, cells.params["run_gain"]) + np.outer(
        pupil_z, cells.params["pupil_gain"]
    )
    eye = np.stack([state["pupil_x"], state["pupil_y"]], axis=1) * EYE_SHIFT * shape[0]
    rates = cells.rates(shifted(stimuli[image_ids], eye), gain_log)
    responses = rng.poisson(rates).astype(np.float32)
    print(
        f"simulate: scan {scan_id}: {n_neurons} neurons, {trials} trials, mean rate "
        f"{rates.mean():.3f}",
        file=sys.stderr,
        flush=True,
    )
    return Recording(
        scan_id=scan_id,
        images=stimuli.astype(np.float32),
        responses=responses,
        image_ids=image_ids.astype(np.int64),
        tiers=tiers,
        behavior={b: state[b].astype(np.float32) for b in BEHAVIOR},
        rates=cells.rates(stimuli).astype(np.float32),
        attrs={
            "simulated": True,
            "seed": seed,
            "scan_index": scan_index,
            "complex_fraction": complex_fraction,
            **{f"n_{kind}": int((cells.params["kind"] == i).sum()) for i, kind in enumerate(KINDS)},
            "degrees_per_pixel": list(degrees_per_pixel(shape)),
            "eye_shift_px_per_unit": EYE_SHIFT * shape[0],
        },
        population=cells.state(),
    )


def choose_stimuli(dataset_path, n_images: int, size, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n_images`` training images of a dataset file, drawn by ``seed`` and made stimuli;
    returns (stimuli (n, h, w), their indices in the dataset's train split)."""
    from simreg.data.store import read_split
    from simreg.neural.images import to_stimuli

    train = read_split(dataset_path, "train")
    if n_images > len(train.images):
        raise ValueError(
            f"the simulation needs {n_images} stimulus images; {dataset_path} has "
            f"{len(train.images)} training images: lower neural.train_images, "
            "neural.validation_images or neural.test_images"
        )
    rng = np.random.default_rng(seed)
    indices = np.sort(rng.choice(len(train.images), n_images, replace=False))
    return to_stimuli(train.images[indices], size), indices


def simulate_recordings(
    dataset_path,
    out,
    *,
    scan: str,
    image_size,
    n_neurons: int,
    train_images: int,
    validation_images: int,
    test_images: int,
    test_repeats: int,
    complex_fraction: float,
    seed: int,
) -> None:
    """Simulate scan ``scan`` ("sim<k>": the k-th scan of ``seed``) on the dataset's images
    and write it in the recordings format."""
    from simreg.neural.recordings import write_recording

    index = int(scan.removeprefix("sim")) if scan.startswith("sim") and scan[3:].isdigit() else 0
    n_images = train_images + validation_images + test_images
    stimuli, indices = choose_stimuli(dataset_path, n_images, image_size, seed)
    recording = simulate_scan(
        stimuli,
        scan,
        index,
        n_neurons=n_neurons,
        train_images=train_images,
        validation_images=validation_images,
        test_images=test_images,
        test_repeats=test_repeats,
        complex_fraction=complex_fraction,
        seed=seed,
    )
    write_recording(
        recording,
        out,
        stimuli_file=str(dataset_path),
        stimulus_indices=indices.tolist() if len(indices) <= 2000 else "not stored",
        image_size=list(image_size),
    )


def saved_population(path) -> Population | None:
    """The simulated population of a recordings file (to run it on other frames), or None for
    a recording that is not simulated."""
    import h5py

    with h5py.File(path, "r") as h5:
        if "simulation/population" not in h5:
            return None
        g = h5["simulation/population"]
        params = {k: g[f"params/{k}"][...] for k in g["params"]}
        cells = Population(params, tuple(int(v) for v in g["shape"][...]))
        cells.mean, cells.sd = g["mean"][...], g["sd"][...]
        cells.luminance = float(g["luminance"][()])
    return cells


# ---- physiology of the simulated population (docs/neural.md's table) ------------------------
SF_PROBES_CPD = tuple(0.01 * 2.0 ** (k / 2) for k in range(9))  # 0.01 .. 0.16 cycles/degree
ORIENTATIONS = 8
PHASES = 8
GRATING_CONTRAST = 0.8


def gratings(shape, luminance, frequency_cpd, orientation, phase, contrast=GRATING_CONTRAST):
    """Full-field static gratings luminance * (1 + contrast * cos(...)) over the frame, in
    [0, 1]; arrays of (frequency, orientation, phase) broadcast to (n,)."""
    h, w = shape
    dy_deg, dx_deg = degrees_per_pixel(shape)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    f, o, p = (
        np.atleast_1d(np.asarray(v, np.float64))[:, None, None]
        for v in np.broadcast_arrays(frequency_cpd, orientation, phase)
    )
    along = xx * dx_deg * np.cos(o) + yy * dy_deg * np.sin(o)
    images = luminance * (1 + contrast * np.cos(2 * np.pi * f * along + p))
    return np.clip(images, 0.0, 1.0).astype(np.float32)


def lifetime_sparseness(rates: np.ndarray) -> np.ndarray:
    """Per neuron, over stimuli (rows): (1 - (mean r)^2 / mean r^2) / (1 - 1/n) (Vinje &
    Gallant 2000; the Allen Brain Observatory's definition, de Vries et al. 2020)."""
    n = len(rates)
    ratio = rates.mean(0) ** 2 / np.maximum((rates**2).mean(0), 1e-12)
    return (1 - ratio) / (1 - 1 / n)


def physiology(
    cells: Population, natural_frames: np.ndarray, recording: Recording | None = None
) -> dict:
    """Statistics of the population measured as an experimenter would: gratings for spatial
    frequency, orientation and phase (F1/F0) tuning and the contrast response, natural frames
    for lifetime sparseness, and the repeated test trials of ``recording`` for the Fano
    factor. Per-neuron arrays plus the fractions of each cell kind."""
    shape, lum = cells.shape, cells.luminance
    freqs, oris = np.asarray(SF_PROBES_CPD), np.arange(ORIENTATIONS) * np.pi / ORIENTATIONS
    phases = np.arange(PHASES) * 2 * np.pi / PHASES
    f, o, p = (a.ravel() for a in np.meshgrid(freqs, oris, phases, indexing="ij"))
    r = cells.rates(gratings(shape, lum, f, o, p)).reshape(len(freqs), len(oris), len(phases), -1)
    blank = cells.rates(np.full((1, *shape), lum, np.float32))[0]
    tuned = r.mean(axis=2)  # (sf, ori, N), phase-averaged
    best_sf = tuned.max(axis=1).argmax(axis=0)  # (N,)
    n = r.shape[-1]
    at_sf = tuned[best_sf, :, np.arange(n)]  # (N, ori)
    evoked = np.maximum(at_sf - blank[:, None], 0.0)
    osi = np.abs((evoked * np.exp(2j * oris)).sum(1)) / np.maximum(evoked.sum(1), 1e-12)
    best_ori = at_sf.argmax(axis=1)
    by_phase = r[best_sf, best_ori, :, np.arange(n)]  # (N, phases)
    f1 = 2 * np.abs((by_phase * np.exp(1j * phases)).mean(1))
    f0 = np.maximum(by_phase.mean(1) - blank, 1e-12)
    contrasts = np.array([0.02, 0.05, 0.1, 0.2, 0.4, 0.8])
    crf = np.stack(
        [
            cells.rates(
                gratings(
                    shape,
                    lum,
                    freqs[best_sf],
                    oris[best_ori],
                    phases[by_phase.argmax(1)],
                    contrast=c,
                )
            )[np.arange(n), np.arange(n)]
            for c in contrasts
        ]
    )
    crf = crf - blank
    half = crf[-1] / 2
    c50 = np.array(
        [
            np.interp(half[i], crf[:, i], contrasts)
            if crf[-1, i] > 0 and np.all(np.diff(crf[:, i]) >= -1e-9)
            else np.nan
            for i in range(n)
        ]
    )
    natural = cells.rates(natural_frames)
    result = {
        "kind": np.asarray(KINDS)[cells.params["kind"]],
        "preferred_sf_cpd": freqs[best_sf],
        "osi": osi,
        "f1_f0": f1 / f0,
        "rf_sd_deg": cells.params["sigma"],
        "c50": c50,
        "lifetime_sparseness": lifetime_sparseness(natural),
        "responsive_to_gratings": crf[-1] > 0.1 * np.maximum(blank, 1e-3) + 1e-3,
    }
    if recording is not None:
        repeats = recording.test_repeats()
        means = np.stack([t.mean(0) for t in repeats])
        variances = np.stack([t.var(0, ddof=1) for t in repeats])
        ok = means > 0.1
        fano = np.where(ok, variances / np.maximum(means, 1e-12), np.nan)
        result["fano_factor"] = np.nanmean(fano, axis=0)
    return result


def physiology_table(stats: dict) -> list[tuple[str, str]]:
    """(statistic, value measured on the population) rows for docs/neural.md."""
    kind = stats["kind"]
    oriented = np.isin(kind, ("simple", "complex"))
    med = lambda v: float(np.nanmedian(v))  # noqa: E731
    q = lambda v: np.nanpercentile(v, [25, 75])  # noqa: E731
    rows = [
        (
            "cells: simple / complex / ON / OFF (fraction)",
            " / ".join(f"{np.mean(kind == k):.2f}" for k in KINDS),
        ),
        (
            "preferred SF, oriented cells, median [IQR] (cycles/degree)",
            f"{med(stats['preferred_sf_cpd'][oriented]):.3f} "
            f"[{q(stats['preferred_sf_cpd'][oriented])[0]:.3f}, "
            f"{q(stats['preferred_sf_cpd'][oriented])[1]:.3f}]",
        ),
        (
            "receptive-field sd, median [IQR] (degrees)",
            f"{med(stats['rf_sd_deg']):.1f} "
            f"[{q(stats['rf_sd_deg'])[0]:.1f}, {q(stats['rf_sd_deg'])[1]:.1f}]",
        ),
        ("global OSI, oriented cells, median", f"{med(stats['osi'][oriented]):.2f}"),
        ("global OSI, ON/OFF cells, median", f"{med(stats['osi'][~oriented]):.2f}"),
        (
            "F1/F0 > 1 (simple by the phase test), oriented cells",
            f"{np.mean(stats['f1_f0'][oriented] > 1):.2f}",
        ),
        ("c50 of the contrast response, median (Weber contrast)", f"{med(stats['c50']):.2f}"),
        (
            "lifetime sparseness on natural frames, median",
            f"{med(stats['lifetime_sparseness']):.2f}",
        ),
    ]
    if "fano_factor" in stats:
        rows.append(
            (
                "Fano factor over test repeats (trial mean > 0.1), median",
                f"{med(stats['fano_factor']):.2f}",
            )
        )
    return rows
