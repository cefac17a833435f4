"""The predictive model of mouse V1 (Li et al. 2019; paper §3, App. 7.1) and its fit.

Built from the Sinz lab's ``neuralpredictors`` (the line of work Li et al.'s model comes
from; Sinz et al. 2018, Walker et al. 2019):

- core: ``Stacked2dCore``, 3 convolutional layers whose outputs are all stacked (skip
  connections), Laplace smoothness on the input filters;
- readout: ``FullGaussian2d`` (one location and feature vector per neuron, moved by the
  shifter) or ``FullFactorized2d``, inside a ``MultiReadoutBase`` keyed by scan;
- shifter: ``MLPShifter`` (pupil centre -> readout shift);
- modulator: :class:`GainModulator`, ours (neuralpredictors 0.3.0 ships no modulator):
  behaviour (pupil size, running speed) -> a positive gain per neuron;
- ``FiringRateEncoder`` wraps them (ELU + 1 output, a firing rate);
- loss: ``PoissonLoss`` plus the library's regularizers; Adam; the library's
  ``early_stopping`` on the validation correlation with a ReduceLROnPlateau, as the Sinz
  lab's standard trainer sets them: after ``patience`` epochs without improvement, back to
  the best weights (the rate lowered if the next epoch is no better either), until the
  ``lr_decay_steps``-th plateau; the best weights are kept.

The report is the test correlation (prediction vs single-trial responses on the repeated
test images) and the fraction of the oracle correlation, per neuron and overall; for a
simulated scan also the correlation with the simulator's noiseless responses to the
held-out test images.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from simreg import settings as config_settings
from simreg.neural.compat import neuralpredictors


_NEURAL = config_settings.Neural()


@dataclass(frozen=True)
class PredictorSettings:
    """Architecture and fit of the predictive model; defaults: simreg.settings.Neural, the
    config's one source."""

    hidden_channels: int = _NEURAL.hidden_channels
    input_kernel: int = _NEURAL.input_kernel
    hidden_kernel: int = _NEURAL.hidden_kernel
    layers: int = _NEURAL.layers
    readout: str = _NEURAL.readout  # "gaussian" (FullGaussian2d) or "factorized"
    gamma_input: float = _NEURAL.gamma_input  # Laplace smoothness of the input filters
    gamma_readout: float = _NEURAL.gamma_readout  # L1 on the readout features
    batch_size: int = _NEURAL.batch_size
    lr: float = _NEURAL.lr
    max_epochs: int = _NEURAL.max_epochs
    patience: int = _NEURAL.patience  # epochs without a better validation correlation
    # plateaus (back to the best weights) before stopping
    lr_decay_steps: int = _NEURAL.lr_decay_steps
    lr_decay_factor: float = _NEURAL.lr_decay_factor
    min_lr: float = _NEURAL.min_lr


class GainModulator(nn.Module):
    """x -> x * exp(W s + b): a positive gain per neuron from the behaviour ``s`` (log pupil
    size, running speed; standardized), zero-initialized (gain 1)."""

    def __init__(self, n_state: int, n_neurons: int):
        super().__init__()
        self.linear = nn.Linear(n_state, n_neurons)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x, behavior):
        return x * torch.exp(self.linear(behavior))

    def regularizer(self):
        return 0


class Modulators(nn.ModuleDict):
    """One modulator per scan, with the ``regularizer(data_key)`` the encoder calls."""

    def regularizer(self, data_key):
        return self[data_key].regularizer()


def build_predictor(
    scan: str,
    n_neurons: int,
    image_shape,
    mean_activity,
    settings: PredictorSettings,
    n_state: int = 2,
):
    """The FiringRateEncoder of one scan (input: 1-channel images of ``image_shape``)."""
    return build_shared_predictor(
        {scan: n_neurons}, image_shape, {scan: mean_activity}, settings, n_state
    )


def build_shared_predictor(
    neurons: dict, image_shape, mean_activity: dict, settings: PredictorSettings, n_state: int = 2
):
    """The FiringRateEncoder of one or more scans: one core, and per scan (``neurons``: scan ->
    its number of neurons) a readout, a shifter network and a modulator, as the Sinz lab's
    multi-scan models combine scans."""
    cores = neuralpredictors("neuralpredictors.layers.cores")
    readouts = neuralpredictors("neuralpredictors.layers.readouts")
    shifters = neuralpredictors("neuralpredictors.layers.shifters")
    encoders = neuralpredictors("neuralpredictors.layers.encoders")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "averaged value of regularizer"
        core = cores.Stacked2dCore(
            input_channels=1,
            hidden_channels=settings.hidden_channels,
            input_kern=settings.input_kernel,
            hidden_kern=settings.hidden_kernel,
            layers=settings.layers,
            gamma_input=settings.gamma_input,
            gamma_hidden=0.0,
            skip=0,
            stack=None,
            pad_input=True,
            final_nonlinearity=True,
        )
    with torch.no_grad():
        core.eval()
        in_shape = tuple(core(torch.zeros(1, 1, *image_shape)).shape[1:])
        core.train()
    means = {scan: torch.as_tensor(m, dtype=torch.float32) for scan, m in mean_activity.items()}
    shapes = {scan: in_shape for scan in neurons}
    if settings.readout == "gaussian":
        readout = readouts.MultiReadoutBase(
            shapes,
            dict(neurons),
            base_readout=readouts.FullGaussian2d,
            mean_activity_dict=means,
            bias=True,
            init_mu_range=0.3,
            init_sigma=0.1,
            gauss_type="full",
            feature_reg_weight=settings.gamma_readout,
        )
        shifter = shifters.MLPShifter(
            list(neurons), input_channels=2, hidden_channels_shifter=5, shift_layers=3
        )
    elif settings.readout == "factorized":
        readout = readouts.MultiReadoutBase(
            shapes,
            dict(neurons),
            base_readout=readouts.FullFactorized2d,
            mean_activity_dict=means,
            bias=True,
            spatial_and_feature_reg_weight=settings.gamma_readout,
        )
        shifter = None  # FullFactorized2d cannot shift
    else:
        raise ValueError(
            f"neural.readout must be 'gaussian' or 'factorized', not {settings.readout!r}"
        )
    modulator = Modulators({scan: GainModulator(n_state, n) for scan, n in neurons.items()})
    return encoders.FiringRateEncoder(core, readout, shifter=shifter, modulator=modulator)


@dataclass
class Standardizer:
    """Image and behaviour statistics of the training tier (saved with the model)."""

    image_mean: float
    image_std: float
    state_mean: list
    state_std: list
    pupil_mean: list
    pupil_std: list

    @classmethod
    def fit(cls, recording, trials):
        images = recording.images[recording.image_ids[trials]]
        state = _state(recording)[trials]
        pupil = recording.pupil_center()[trials]
        return cls(
            float(images.mean()),
            float(images.std() + 1e-6),
            state.mean(0).tolist(),
            (state.std(0) + 1e-6).tolist(),
            pupil.mean(0).tolist(),
            (pupil.std(0) + 1e-6).tolist(),
        )

    def images(self, x):
        return (np.asarray(x, np.float32)[:, None] - self.image_mean) / self.image_std

    def state(self, s):
        return (np.asarray(s, np.float32) - self.state_mean) / np.asarray(self.state_std)

    def pupil(self, p):
        return (np.asarray(p, np.float32) - self.pupil_mean) / np.asarray(self.pupil_std)


def _state(recording):
    """Gain-modulating behaviour: log pupil size and running speed."""
    s = recording.state().astype(np.float64)
    s[:, 0] = np.log(np.maximum(s[:, 0], 1e-6))
    return s.astype(np.float32)


class Predictor:
    """A fitted model with its statistics: predicts responses to images and behaviour."""

    def __init__(self, model, scan: str, stats: Standardizer, image_shape, device="cpu"):
        self.model, self.scan, self.stats = model, scan, stats
        self.image_shape = tuple(image_shape)
        self.device = device

    def predict(self, images, state=None, pupil=None, batch_size: int = 256) -> np.ndarray:
        """Predicted responses (n, N) to ``images`` (n, H, W) in [0, 1]; behaviour at the
        training mean (neutral) where ``state``/``pupil`` are None."""
        n = len(images)
        state = np.tile(_neutral(self.stats.state_mean), (n, 1)) if state is None else state
        pupil = np.tile(_neutral(self.stats.pupil_mean), (n, 1)) if pupil is None else pupil
        x = torch.from_numpy(self.stats.images(images))
        s = torch.from_numpy(self.stats.state(state).astype(np.float32))
        p = torch.from_numpy(self.stats.pupil(pupil).astype(np.float32))
        out = []
        self.model.eval()
        with torch.no_grad():
            for i in range(0, n, batch_size):
                out.append(
                    self._forward(
                        x[i : i + batch_size], s[i : i + batch_size], p[i : i + batch_size]
                    ).cpu()
                )
        return torch.cat(out).numpy()

    def _forward(self, x, s, p):
        return self.model(
            x.to(self.device),
            data_key=self.scan,
            behavior=s.to(self.device),
            pupil_center=p.to(self.device),
        )


def _neutral(mean):
    return np.asarray(mean, np.float32)[None]


def correlation(a: np.ndarray, b: np.ndarray, axis: int = 0) -> np.ndarray:
    """Pearson correlation along ``axis`` (0 where either side is constant)."""
    a = a - a.mean(axis=axis, keepdims=True)
    b = b - b.mean(axis=axis, keepdims=True)
    num = (a * b).sum(axis=axis)
    den = np.sqrt((a**2).sum(axis=axis) * (b**2).sum(axis=axis))
    return np.where(den > 0, num / np.maximum(den, 1e-12), 0.0)


def oracle_correlation(repeats: list[np.ndarray]) -> np.ndarray:
    """Per neuron: the leave-one-out oracle, the correlation of each trial with the mean of
    the other repeats of its image, over all test trials (neuralpredictors'
    ``oracle_corr_jackknife``)."""
    functions = neuralpredictors("neuralpredictors.measures.np_functions")
    return np.nan_to_num(functions.oracle_corr_jackknife(repeats))


def fit_predictor(
    recording,
    seed: int,
    settings: PredictorSettings,
    device="cpu",
    threads: int | None = None,
    log=sys.stderr,
):
    """Fit the model of one scan to its train tier with early stopping on the validation
    tier. Returns (Predictor, history list of per-epoch dicts)."""
    predictors, history = fit_shared([recording], seed, settings, device, threads, log)
    return predictors[0], history


class _Scan:
    """One scan's tensors, standardized by its training tier."""

    def __init__(self, recording, predictor):
        stats = predictor.stats
        self.recording, self.predictor = recording, predictor
        self.train, self.validation = recording.tier("train"), recording.tier("validation")
        self.images = torch.from_numpy(stats.images(recording.images))
        self.state = torch.from_numpy(stats.state(_state(recording)).astype(np.float32))
        self.pupil = torch.from_numpy(stats.pupil(recording.pupil_center()).astype(np.float32))
        self.responses = torch.from_numpy(recording.responses)
        self.ids = torch.from_numpy(recording.image_ids)

    def predict(self, trials):
        return _predict_trials(
            self.predictor, self.images, self.state, self.pupil, self.ids, trials
        )


def fit_shared(
    recordings: list,
    seed: int,
    settings: PredictorSettings,
    device="cpu",
    threads: int | None = None,
    log=sys.stderr,
):
    """Fit one model to one or more scans: a shared core, one readout (and shifter and
    modulator) per scan; each epoch interleaves the scans' batches (as neuralpredictors'
    LongCycler does), and early stopping follows the mean over scans of the validation
    correlation. Returns (one Predictor per scan, history list of per-epoch dicts)."""
    measures = neuralpredictors("neuralpredictors.measures.modules")
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    np_rng = np.random.default_rng(seed)
    names = [r.scan_id for r in recordings]
    if len(set(names)) != len(names):
        raise ValueError(f"scans must have distinct names, got {names}")
    shapes = {tuple(r.images.shape[1:]) for r in recordings}
    if len(shapes) != 1:
        raise ValueError(f"the scans' frames differ in size: {sorted(shapes)}")
    shape = shapes.pop()
    model = build_shared_predictor(
        {r.scan_id: r.n_neurons for r in recordings},
        shape,
        {r.scan_id: r.responses[r.tier("train")].mean(0) for r in recordings},
        settings,
    ).to(device)
    scans = [
        _Scan(r, Predictor(model, r.scan_id, Standardizer.fit(r, r.tier("train")), shape, device))
        for r in recordings
    ]
    name = "+".join(names)
    loss_fn = measures.PoissonLoss(avg=False)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    # The Sinz lab's standard schedule: neuralpredictors' early_stopping goes back to the best
    # weights whenever the validation correlation has not improved for `patience` epochs, and
    # stops at the `lr_decay_steps`-th such plateau; a ReduceLROnPlateau of the same patience
    # and tolerance (as their trainer sets it) multiplies the rate by `lr_decay_factor` when
    # the epoch after a return is no better either.
    early_stopping = neuralpredictors("neuralpredictors.training.early_stopping").early_stopping
    tolerance = 1e-6
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer,
        mode="max",
        factor=settings.lr_decay_factor,
        patience=settings.patience,
        threshold=tolerance,
        threshold_mode="abs",
        min_lr=settings.min_lr,
    )
    n_train = sum(len(s.train) for s in scans)
    n_validation = sum(len(s.validation) for s in scans)
    history, restored, started = [], set(), time.perf_counter()
    epochs, total = 0, 0.0  # epochs trained so far and the last one's summed loss

    def validation_correlation(_model) -> float:
        """The library's objective: called after each epoch, and again around each return to
        the best weights (which is logged, once, instead of recorded)."""
        predicted = [s.predict(s.validation) for s in scans]
        val_corr = float(
            np.mean(
                [
                    np.mean(correlation(p, s.recording.responses[s.validation]))
                    for p, s in zip(predicted, scans)
                ]
            )
        )
        if history and history[-1]["epoch"] == epochs:
            if val_corr != history[-1]["val_correlation"] and epochs not in restored:
                restored.add(epochs)
                print(
                    f"fit {name} seed {seed}: back to the best weights (val corr {val_corr:.4f})",
                    file=log,
                    flush=True,
                )
        elif epochs > 0:
            val_loss = (
                sum(
                    float(loss_fn(torch.from_numpy(p), s.responses[s.validation]))
                    for p, s in zip(predicted, scans)
                )
                / n_validation
            )
            lr = optimizer.param_groups[0]["lr"]
            history.append(
                {
                    "epoch": epochs,
                    "lr": lr,
                    "train_loss": total / n_train,
                    "val_loss": val_loss,
                    "val_correlation": val_corr,
                }
            )
            print(
                f"fit {name} seed {seed}: epoch {epochs} lr {lr:g} train loss "
                f"{total / n_train:.4f} val loss {val_loss:.4f} val corr "
                f"{val_corr:.4f} ({time.perf_counter() - started:.0f} s)",
                file=log,
                flush=True,
            )
        return val_corr

    model.train()
    for _epoch, _val_corr in early_stopping(
        model,
        validation_correlation,
        interval=1,
        patience=settings.patience,
        max_iter=settings.max_epochs,
        maximize=True,
        tolerance=tolerance,
        restore_best=True,
        scheduler=scheduler,
        lr_decay_steps=settings.lr_decay_steps,
    ):
        lr = optimizer.param_groups[0]["lr"]
        if history and lr != history[-1]["lr"]:
            print(f"fit {name} seed {seed}: learning rate lowered to {lr:g}", file=log, flush=True)
        model.train()
        batches = []
        for k, s in enumerate(scans):
            order = np_rng.permutation(s.train)
            batches.append(
                [
                    (k, order[i : i + settings.batch_size])
                    for i in range(0, len(order), settings.batch_size)
                ]
            )
        # interleave the scans' batches, cycling the shorter lists (neuralpredictors' LongCycler)
        longest = max(len(b) for b in batches)
        total = 0.0
        for step in range(longest):
            for k, scan_batches in enumerate(batches):
                if len(scans) > 1 or step < len(scan_batches):
                    _, trials = scan_batches[step % len(scan_batches)]
                    s = scans[k]
                    # as the Sinz lab's trainers weigh it
                    scale = np.sqrt(len(s.train) / settings.batch_size)
                    t = torch.from_numpy(trials)
                    out = s.predictor._forward(s.images[s.ids[t]], s.state[t], s.pupil[t])
                    loss = scale * loss_fn(out, s.responses[t].to(device)) / len(
                        t
                    ) + model.regularizer(data_key=s.recording.scan_id)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    total += float(loss.detach()) * len(t)
        epochs += 1
    model.eval()
    if history:
        kept = max(history, key=lambda row: row["val_correlation"])
        print(
            f"fit {name} seed {seed}: kept epoch {kept['epoch']} (val corr "
            f"{kept['val_correlation']:.4f}) of {len(history)}",
            file=log,
            flush=True,
        )
    return [s.predictor for s in scans], history


def _predict_trials(predictor, images, state, pupil, ids, trials, batch_size=512):
    out = []
    predictor.model.eval()
    with torch.no_grad():
        for i in range(0, len(trials), batch_size):
            t = torch.from_numpy(trials[i : i + batch_size])
            out.append(predictor._forward(images[ids[t]], state[t], pupil[t]).cpu())
    return torch.cat(out).numpy()


def evaluate_predictor(predictor: Predictor, recording) -> dict:
    """Per-neuron test correlation, oracle correlation, their ratio and (simulated scans)
    the correlation with the noiseless responses to the held-out test images."""
    test = recording.tier("test")
    pred = predictor.predict(
        recording.images[recording.image_ids[test]],
        _state(recording)[test],
        recording.pupil_center()[test],
    )
    result = {
        "test_correlation": correlation(pred, recording.responses[test]),
        "oracle_correlation": oracle_correlation(recording.test_repeats()),
    }
    oracle = result["oracle_correlation"]
    result["fraction_oracle"] = np.where(
        oracle > 0, result["test_correlation"] / np.maximum(oracle, 1e-12), np.nan
    )
    if recording.rates is not None:
        test_images = np.unique(recording.image_ids[test])
        neutral = predictor.predict(recording.images[test_images])
        result["truth_correlation"] = correlation(neutral, recording.rates[test_images])
    return result


def summarize(result: dict) -> dict:
    """Overall numbers: means over neurons, and the fraction of oracle as the slope of test vs
    oracle correlation through the origin (Walker et al. 2019)."""
    oracle, test = result["oracle_correlation"], result["test_correlation"]
    summary = {
        "n_neurons": int(len(test)),
        "test_correlation": float(np.mean(test)),
        "oracle_correlation": float(np.mean(oracle)),
        "fraction_oracle": float((oracle @ test) / max(float(oracle @ oracle), 1e-12)),
    }
    if "truth_correlation" in result:
        summary["truth_correlation"] = float(np.mean(result["truth_correlation"]))
    return summary


def save_predictor(
    predictor, settings: PredictorSettings, result, history: list, path, **attrs
) -> None:
    """Save a fitted model: one Predictor and its evaluation, or (a shared core) lists of the
    Predictors of its scans and their evaluations."""
    from simreg.outputs import atomic_output, provenance

    predictors = predictor if isinstance(predictor, list) else [predictor]
    results = result if isinstance(result, list) else [result]
    scans = [p.scan for p in predictors]
    with atomic_output(path) as tmp:
        torch.save(
            {
                "model": predictors[0].model.state_dict(),
                "scans": scans,
                "settings": asdict(settings),
                "stats": {p.scan: asdict(p.stats) for p in predictors},
                "image_shape": list(predictors[0].image_shape),
                "n_neurons": {
                    p.scan: int(len(r["oracle_correlation"])) for p, r in zip(predictors, results)
                },
                "oracle_correlation": {
                    p.scan: np.asarray(r["oracle_correlation"], np.float32)
                    for p, r in zip(predictors, results)
                },
                "test_correlation": {
                    p.scan: np.asarray(r["test_correlation"], np.float32)
                    for p, r in zip(predictors, results)
                },
                "history": history,
                "provenance": provenance(**attrs),
            },
            tmp,
        )


def load_predictors(path, device="cpu") -> list[tuple[Predictor, np.ndarray]]:
    """The Predictors saved at ``path`` (one per scan of the model), each with its neurons'
    oracle correlations."""
    saved = torch.load(path, map_location=device, weights_only=False)
    settings = PredictorSettings(**saved["settings"])
    scans = saved["scans"]
    neurons = saved["n_neurons"]
    model = build_shared_predictor(
        neurons, saved["image_shape"], {scan: np.zeros(neurons[scan]) for scan in scans}, settings
    )
    model.load_state_dict(saved["model"])
    model.to(device).eval()
    return [
        (
            Predictor(
                model, scan, Standardizer(**saved["stats"][scan]), saved["image_shape"], device
            ),
            np.asarray(saved["oracle_correlation"][scan], np.float64),
        )
        for scan in scans
    ]


def run_fit(
    recordings_paths,
    model_out,
    neurons_out,
    summary_out,
    *,
    seed: int,
    settings: PredictorSettings,
    device="cpu",
    threads=None,
    keys=None,
    image_size=(36, 64),
) -> dict:
    """`simreg fit-predictor`: read, fit, evaluate, write the model and the two reports. One
    recordings path fits one scan's model; several fit one model with a shared core and a
    readout per scan. A published static dataset (Sensorium/Lurz layout) is made frames of
    ``image_size``."""
    import pandas as pd

    from simreg.neural.recordings import read_recording
    from simreg.outputs import provenance, write_csv

    paths = (
        [recordings_paths]
        if isinstance(recordings_paths, (str, bytes)) or not hasattr(recordings_paths, "__iter__")
        else list(recordings_paths)
    )
    recordings = [read_recording(p, image_size) for p in paths]
    started = time.perf_counter()
    predictors, history = fit_shared(recordings, seed, settings, device=device, threads=threads)
    results = [evaluate_predictor(p, r) for p, r in zip(predictors, recordings)]
    summaries = [summarize(r) for r in results]
    seconds = round(time.perf_counter() - started, 1)
    meta = {
        "scan": "+".join(r.scan_id for r in recordings),
        "model_seed": seed,
        "recordings": ", ".join(map(str, paths)),
        "epochs": len(history),
        "core": "shared" if len(recordings) > 1 else "one scan",
        **(keys or {}),
    }
    overall = {
        k: float(np.mean([s[k] for s in summaries])) for k in summaries[0] if k != "n_neurons"
    }
    save_predictor(
        predictors, settings, results, history, model_out, **meta, **overall, seconds=seconds
    )
    neurons = pd.concat(
        [
            pd.DataFrame(
                {
                    "scan_id": r.scan_id,
                    "neuron": np.arange(r.n_neurons),
                    **{k: np.asarray(v) for k, v in res.items()},
                }
            )
            for r, res in zip(recordings, results)
        ],
        ignore_index=True,
    )
    for key, value in provenance(**meta).items():
        neurons[key] = value
    write_csv(neurons, neurons_out)
    write_csv(
        pd.DataFrame(
            [
                {**provenance(**meta, seconds=seconds), "scan_id": r.scan_id, **s}
                for r, s in zip(recordings, summaries)
            ]
        ),
        summary_out,
    )
    for r, summary in zip(recordings, summaries):
        print(
            f"fit-predictor {r.scan_id}: "
            + ", ".join(
                f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in summary.items()
            ),
            file=sys.stderr,
            flush=True,
        )
    return summaries[0] if len(summaries) == 1 else summaries
