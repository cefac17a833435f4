"""A model population of mouse V1 that writes scans in the recordings format.

Li et al.'s recordings are not public, so by default the pipeline fits its predictive model to
this population. Each neuron is a classic V1 model (Jones & Palmer 1987; Adelson & Bergen
1985), with the behavioural effects that the predictive model of Li et al. accounts for
(paper §3: "pupil position, size and running speed"):

- a **simple cell** (linear Gabor filter with its own phase) or a **complex cell** (energy of
  a quadrature pair), with random receptive-field position, orientation, spatial frequency
  and phase;
- an **output nonlinearity**: the filter output, standardized over the stimulus set, through
  a thresholded softplus with a random threshold and slope, times a random peak rate;
- a **gain** ``exp(a_run * running_z + a_pupil * pupil_z)`` with positive coefficients, so
  running and a dilated pupil raise responses (Niell & Stryker 2010; Reimer et al. 2014);
- receptive fields that move with the **eye**: on a trial with pupil centre (x, y) every
  receptive field is shifted by ``eye_shift * (x, y)`` pixels;
- **Poisson trial noise** around the rate.

All random draws come from the seed and the scan index, so a scan is reproducible; scans of
the same seed see the same images (drawn by the seed alone) with different neurons.
"""

from __future__ import annotations

import sys

import numpy as np

from simreg.neural.recordings import BEHAVIOR, Recording

# Population constants (our choices; docs/choices.md "Simulated V1 population").
CYCLES_PER_HEIGHT = (2.0, 6.0)   # spatial frequency range, log-uniform, cycles per image height
ENVELOPE_CYCLES = 0.45           # Gaussian envelope sd = this many cycles of the carrier
ASPECT = 0.7                     # envelope aspect ratio (along / across the bars)
CENTRE_REGION = 0.5              # receptive-field centres in the central 50 % of each axis
THRESHOLD_RANGE = (0.0, 1.5)     # softplus threshold, in sd of the filter output
SLOPE_RANGE = (1.0, 2.5)         # softplus slope per sd of the filter output
PEAK_RATE_LOG = (0.0, 0.4)       # peak rate: lognormal (mean, sd) of its logarithm
RUN_GAIN_RANGE = (0.10, 0.30)    # a_run: log-gain per sd of running speed (> 0)
PUPIL_GAIN_RANGE = (0.05, 0.20)  # a_pupil: log-gain per sd of pupil size (> 0)
EYE_SHIFT = 0.05                 # receptive-field shift per unit pupil position, x image height
RUNNING_FRACTION = 0.4           # trials on which the mouse runs


def population(rng: np.random.Generator, n_neurons: int, shape, complex_fraction: float) -> dict:
    """Random receptive-field and response parameters of ``n_neurons`` neurons."""
    h, w = shape
    n = n_neurons
    sf = np.exp(rng.uniform(*np.log(CYCLES_PER_HEIGHT), n)) / h   # cycles per pixel
    return {
        "x": rng.uniform(w * (1 - CENTRE_REGION) / 2, w * (1 + CENTRE_REGION) / 2, n),
        "y": rng.uniform(h * (1 - CENTRE_REGION) / 2, h * (1 + CENTRE_REGION) / 2, n),
        "orientation": rng.uniform(0, np.pi, n),
        "frequency": sf,
        "phase": rng.uniform(0, 2 * np.pi, n),
        "sigma": np.minimum(ENVELOPE_CYCLES / sf, h / 3),
        "complex": rng.random(n) < complex_fraction,
        "threshold": rng.uniform(*THRESHOLD_RANGE, n),
        "slope": rng.uniform(*SLOPE_RANGE, n),
        "peak": np.exp(rng.normal(*PEAK_RATE_LOG, n)),
        "run_gain": rng.uniform(*RUN_GAIN_RANGE, n),
        "pupil_gain": rng.uniform(*PUPIL_GAIN_RANGE, n),
    }


def gabor_filters(params: dict, shape) -> tuple[np.ndarray, np.ndarray]:
    """The (N, H*W) even and odd (quadrature) Gabor filters, each of unit norm."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    dx = xx[None] - params["x"][:, None, None]
    dy = yy[None] - params["y"][:, None, None]
    theta = params["orientation"][:, None, None]
    along = dx * np.cos(theta) + dy * np.sin(theta)
    across = -dx * np.sin(theta) + dy * np.cos(theta)
    sigma = params["sigma"][:, None, None]
    envelope = np.exp(-(along**2 + (ASPECT * across) ** 2) / (2 * sigma**2))
    carrier = 2 * np.pi * params["frequency"][:, None, None] * along + params["phase"][:, None, None]
    even, odd = envelope * np.cos(carrier), envelope * np.sin(carrier)
    even -= even.mean(axis=(1, 2), keepdims=True) * envelope / envelope.mean(axis=(1, 2), keepdims=True)
    odd -= odd.mean(axis=(1, 2), keepdims=True) * envelope / envelope.mean(axis=(1, 2), keepdims=True)
    unit = lambda f: (f / np.linalg.norm(f.reshape(len(f), -1), axis=1)[:, None, None])  # noqa: E731
    return (unit(even).reshape(len(even), -1).astype(np.float32),
            unit(odd).reshape(len(odd), -1).astype(np.float32))


def behaviour(rng: np.random.Generator, n_trials: int) -> dict:
    """Pupil centre (sd 1), pupil size (a.u., larger when running) and running speed (cm/s)."""
    running = np.where(rng.random(n_trials) < RUNNING_FRACTION,
                       rng.gamma(2.0, 5.0, n_trials), np.abs(rng.normal(0.0, 0.3, n_trials)))
    pupil_size = np.exp(rng.normal(0.0, 0.2, n_trials) + 0.02 * running)
    return {"pupil_x": rng.normal(0.0, 1.0, n_trials), "pupil_y": rng.normal(0.0, 1.0, n_trials),
            "pupil_size": pupil_size, "running_speed": running}


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
    """The neurons of one scan: filter outputs -> nonlinearity -> gain."""

    def __init__(self, rng, n_neurons, shape, complex_fraction, images):
        self.params = population(rng, n_neurons, shape, complex_fraction)
        self.even, self.odd = gabor_filters(self.params, shape)
        self.luminance = float(images.mean())
        neutral = self.filter_output(images)
        self.mean, self.sd = neutral.mean(axis=0), neutral.std(axis=0) + 1e-6

    def filter_output(self, images) -> np.ndarray:
        import torch

        x = torch.as_tensor(images.reshape(len(images), -1) - self.luminance)
        even = x @ torch.as_tensor(self.even).T
        odd = x @ torch.as_tensor(self.odd).T
        energy = torch.sqrt(even**2 + odd**2)
        cells = torch.as_tensor(self.params["complex"])
        return torch.where(cells, energy, even).numpy()

    def rates(self, images, gain_log=None) -> np.ndarray:
        """Noiseless rates (images, N); ``gain_log`` (images, N) adds behavioural gain."""
        z = (self.filter_output(images) - self.mean) / self.sd
        p = self.params
        rate = p["peak"] * np.logaddexp(0.0, p["slope"] * (z - p["threshold"]))
        return rate * np.exp(gain_log) if gain_log is not None else rate


def simulate_scan(stimuli: np.ndarray, scan_id: str, scan_index: int, *, n_neurons: int,
                  train_images: int, validation_images: int, test_images: int,
                  test_repeats: int, complex_fraction: float, seed: int) -> Recording:
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
    cells = Population(rng, n_neurons, shape, complex_fraction, stimuli)
    image_ids = np.concatenate([
        np.arange(train_images + validation_images),
        np.repeat(np.arange(train_images + validation_images, n_images), test_repeats)])
    tiers = np.array(["train"] * train_images + ["validation"] * validation_images
                     + ["test"] * (test_images * test_repeats))
    trials = len(image_ids)
    state = behaviour(rng, trials)
    running_z = (state["running_speed"] - state["running_speed"].mean()) / state["running_speed"].std()
    log_pupil = np.log(state["pupil_size"])
    pupil_z = (log_pupil - log_pupil.mean()) / log_pupil.std()
    gain_log = (np.outer(running_z, cells.params["run_gain"])
                + np.outer(pupil_z, cells.params["pupil_gain"]))
    eye = np.stack([state["pupil_x"], state["pupil_y"]], axis=1) * EYE_SHIFT * shape[0]
    rates = cells.rates(shifted(stimuli[image_ids], eye), gain_log)
    responses = rng.poisson(rates).astype(np.float32)
    print(f"simulate: scan {scan_id}: {n_neurons} neurons, {trials} trials, mean rate "
          f"{rates.mean():.3f}", file=sys.stderr, flush=True)
    return Recording(
        scan_id=scan_id, images=stimuli.astype(np.float32), responses=responses,
        image_ids=image_ids.astype(np.int64), tiers=tiers,
        behavior={b: state[b].astype(np.float32) for b in BEHAVIOR},
        rates=cells.rates(stimuli).astype(np.float32),
        attrs={"simulated": True, "seed": seed, "scan_index": scan_index,
               "complex_fraction": complex_fraction, "n_complex": int(cells.params["complex"].sum()),
               "eye_shift_px_per_unit": EYE_SHIFT * shape[0]})


def choose_stimuli(dataset_path, n_images: int, size, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n_images`` training images of a dataset file, drawn by ``seed`` and made stimuli;
    returns (stimuli (n, h, w), their indices in the dataset's train split)."""
    from simreg.data.store import read_split
    from simreg.neural.images import to_stimuli

    train = read_split(dataset_path, "train")
    if n_images > len(train.images):
        raise ValueError(f"the simulation needs {n_images} stimulus images; {dataset_path} has "
                         f"{len(train.images)} training images: lower neural.train_images, "
                         "neural.validation_images or neural.test_images")
    indices = np.sort(np.random.default_rng(seed).choice(len(train.images), n_images, replace=False))
    return to_stimuli(train.images[indices], size), indices


def simulate_recordings(dataset_path, out, *, scan: str, image_size, n_neurons: int,
                        train_images: int, validation_images: int, test_images: int,
                        test_repeats: int, complex_fraction: float, seed: int) -> None:
    """Simulate scan ``scan`` ("sim<k>": the k-th scan of ``seed``) on the dataset's images
    and write it in the recordings format."""
    from simreg.neural.recordings import write_recording

    index = int(scan.removeprefix("sim")) if scan.startswith("sim") and scan[3:].isdigit() else 0
    n_images = train_images + validation_images + test_images
    stimuli, indices = choose_stimuli(dataset_path, n_images, image_size, seed)
    recording = simulate_scan(stimuli, scan, index, n_neurons=n_neurons,
                              train_images=train_images, validation_images=validation_images,
                              test_images=test_images, test_repeats=test_repeats,
                              complex_fraction=complex_fraction, seed=seed)
    write_recording(recording, out, stimuli_file=str(dataset_path),
                    stimulus_indices=indices.tolist() if len(indices) <= 2000 else "not stored",
                    image_size=list(image_size))


def saved_population(path):
    """The simulated population of a recordings file (to run it on other frames), or None for
    a recording that is not simulated or predates the saved population."""
    import h5py

    with h5py.File(path, "r") as h5:
        if "simulation/population" not in h5:
            return None
    raise NotImplementedError
