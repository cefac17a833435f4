"""The neural arm (simreg.neural, simreg.targets.neural_similarity): the recordings format
names what is wrong, the simulated population is reproducible and modulated the right way,
the predictive model learns, and the neural similarity is a similarity."""

from __future__ import annotations

import os

import h5py
import numpy as np
import pytest
import torch

from simreg.neural.recordings import RecordingError, read_recording, write_recording
from simreg.neural.simulate import simulate_scan
from simreg.targets.neural_similarity import combined_rows, neural_similarity

SIZES = dict(train_images=240, validation_images=60, test_images=12, test_repeats=4)


def stimuli(n=sum(v for k, v in SIZES.items() if k.endswith("images")), shape=(12, 12), seed=0):
    """Smooth random images in [0, 1] (low-pass noise: natural-image-like correlations)."""
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.random((n, 1, *shape)).astype(np.float32))
    x = torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
    x = (x - x.amin(dim=(2, 3), keepdim=True)) / (
        x.amax(dim=(2, 3), keepdim=True) - x.amin(dim=(2, 3), keepdim=True)
    )
    return x[:, 0].numpy()


@pytest.fixture(scope="module")
def scan():
    return simulate_scan(stimuli(), "sim0", 0, n_neurons=60, complex_fraction=0.5, seed=3, **SIZES)


def test_a_recording_round_trips(scan, tmp_path):
    write_recording(scan, tmp_path / "scan.h5")
    back = read_recording(tmp_path / "scan.h5")
    assert back.scan_id == "sim0"
    np.testing.assert_array_equal(back.responses, scan.responses)
    np.testing.assert_array_equal(back.tiers, scan.tiers)


@pytest.mark.parametrize(
    "field",
    ["responses", "image_ids", "behavior/running_speed", "behavior/pupil_x", "tiers", "images"],
)
def test_a_missing_field_is_named(scan, tmp_path, field):
    path = tmp_path / "scan.h5"
    write_recording(scan, path)
    with h5py.File(path, "a") as h5:
        del h5[field]
    with pytest.raises(RecordingError, match=f"'/{field}' is missing"):
        read_recording(path)


def test_a_malformed_field_is_named(scan, tmp_path):
    path = tmp_path / "scan.h5"
    write_recording(scan, path)
    with h5py.File(path, "a") as h5:
        del h5["behavior/pupil_size"]
        h5["behavior/pupil_size"] = np.ones(3, np.float32)  # not one per trial
    with pytest.raises(RecordingError, match="'/behavior/pupil_size' must have one entry"):
        read_recording(path)


def test_the_simulator_is_deterministic_by_seed(scan):
    again = simulate_scan(stimuli(), "sim0", 0, n_neurons=60, complex_fraction=0.5, seed=3, **SIZES)
    other = simulate_scan(stimuli(), "sim0", 0, n_neurons=60, complex_fraction=0.5, seed=4, **SIZES)
    np.testing.assert_array_equal(again.responses, scan.responses)
    np.testing.assert_array_equal(again.behavior["running_speed"], scan.behavior["running_speed"])
    assert not np.array_equal(other.responses, scan.responses)


def test_running_and_a_dilated_pupil_raise_the_gain(scan):
    """Noiseless trial rates / the image's neutral rate = the gain: above 1 when the mouse
    runs fast, and it rises with running speed and pupil size."""
    trials = np.arange(len(scan.responses))
    neutral = scan.rates[scan.image_ids[trials]]
    mean_response = scan.responses.mean(axis=1)
    running = scan.behavior["running_speed"]
    fast = running > np.quantile(running, 0.75)
    slow = running < np.quantile(running, 0.25)
    ratio = mean_response / neutral.mean(axis=1)
    assert ratio[fast].mean() > 1.2 * ratio[slow].mean()
    assert np.corrcoef(running, ratio)[0, 1] > 0.2
    assert np.corrcoef(np.log(scan.behavior["pupil_size"]), ratio)[0, 1] > 0.1


def test_the_predictor_learns():
    """Validation loss falls during the fit, and on the held-out test trials the model's
    Poisson loss beats each neuron's mean training response."""
    from simreg.neural.predictor import PredictorSettings, _state, evaluate_predictor, fit_predictor

    torch.set_num_threads(2)
    sizes = dict(train_images=600, validation_images=100, test_images=12, test_repeats=4)
    scan = simulate_scan(
        stimuli(712, (8, 8)), "sim0", 0, n_neurons=40, complex_fraction=0.5, seed=3, **sizes
    )
    settings = PredictorSettings(
        hidden_channels=4,
        input_kernel=5,
        hidden_kernel=3,
        max_epochs=5,
        patience=5,
        batch_size=64,
        lr=0.02,
    )
    with open(os.devnull, "w") as quiet:
        predictor, history = fit_predictor(scan, 0, settings, log=quiet)
    assert history[-1]["val_loss"] < history[0]["val_loss"]
    test = scan.tier("test")
    predicted = predictor.predict(
        scan.images[scan.image_ids[test]], _state(scan)[test], scan.pupil_center()[test]
    )
    baseline = np.broadcast_to(scan.responses[scan.tier("train")].mean(0), predicted.shape)
    observed = scan.responses[test]

    def poisson(rate):
        return float(np.mean(rate - observed * np.log(rate + 1e-8)))

    assert poisson(predicted) < poisson(baseline)
    report = evaluate_predictor(predictor, scan)
    assert report["test_correlation"].mean() > 0.05
    assert report["truth_correlation"].shape == (40,)


def test_the_fit_lowers_the_learning_rate_at_plateaus_and_keeps_the_best_weights():
    """neuralpredictors' early stopping with a ReduceLROnPlateau: after `patience` epochs
    without a better validation correlation the rate drops by lr_decay_factor; the returned
    model is the best epoch's (its validation correlation is the history's maximum)."""
    from simreg.neural.predictor import PredictorSettings, _state, correlation, fit_predictor

    torch.set_num_threads(2)
    sizes = dict(train_images=300, validation_images=60, test_images=6, test_repeats=2)
    scan = simulate_scan(
        stimuli(366, (8, 8)), "sim0", 0, n_neurons=20, complex_fraction=0.5, seed=4, **sizes
    )
    # responses shuffled over trials: nothing to learn, so the validation correlation plateaus
    scan.responses = scan.responses[np.random.default_rng(0).permutation(len(scan.responses))]
    settings = PredictorSettings(
        hidden_channels=4,
        input_kernel=5,
        hidden_kernel=3,
        max_epochs=25,
        patience=1,
        batch_size=64,
        lr=0.05,
        lr_decay_steps=5,
        lr_decay_factor=0.5,
        min_lr=1e-6,
    )
    with open(os.devnull, "w") as quiet:
        predictor, history = fit_predictor(scan, 0, settings, log=quiet)
    rates = sorted({row["lr"] for row in history}, reverse=True)
    assert len(rates) >= 2 and rates[:2] == pytest.approx([0.05, 0.025])
    validation = scan.tier("validation")
    predicted = predictor.predict(
        scan.images[scan.image_ids[validation]],
        _state(scan)[validation],
        scan.pupil_center()[validation],
    )
    best = max(row["val_correlation"] for row in history)
    validation_r = float(np.mean(correlation(predicted, scan.responses[validation])))
    assert validation_r == pytest.approx(best, abs=1e-5)


def test_a_population_is_fully_similar_to_itself():
    responses = np.random.default_rng(0).gamma(2.0, 1.0, (30, 50))
    weights = np.random.default_rng(1).random(50)
    s = neural_similarity(responses, weights)
    np.testing.assert_allclose(np.diag(s), 1.0, atol=1e-6)
    np.testing.assert_allclose(s, s.T, atol=1e-6)
    assert (np.abs(s) <= 1).all() and np.abs(s[np.triu_indices(30, 1)]).max() < 0.99
    # averaging the same population over models and scans changes nothing
    rows = combined_rows(
        [("a", responses, weights), ("a", responses, weights), ("b", responses, weights)]
    )
    np.testing.assert_allclose((rows @ rows.T).numpy(), s, atol=1e-5)


def test_unreliable_neurons_do_not_count():
    """A neuron with oracle 0 has no say in the similarity."""
    rng = np.random.default_rng(0)
    responses = rng.gamma(2.0, 1.0, (20, 10))
    weights = np.ones(10)
    weights[0] = 0.0
    changed = responses.copy()
    changed[:, 0] = rng.gamma(2.0, 1.0, 20)
    np.testing.assert_allclose(
        neural_similarity(responses, weights), neural_similarity(changed, weights), atol=1e-6
    )


def test_neural_shuffle_permutes_the_neural_target():
    from simreg.train.regularizers import get_regularizer

    s = torch.from_numpy(neural_similarity(np.random.default_rng(0).random((25, 40))))
    params = {"reg_pairs": 4, "z_eps": 1e-5, "mean_momentum": 0.1}
    neural = get_regularizer("neural")(**params).targets(s.clone(), torch.Generator())
    shuffled = get_regularizer("neural_shuffle")(**params).targets(
        s.clone(), torch.Generator().manual_seed(0)
    )
    upper = torch.triu_indices(25, 25, offset=1)
    torch.testing.assert_close(neural, s)
    torch.testing.assert_close(shuffled, shuffled.T)
    torch.testing.assert_close(torch.diag(shuffled), torch.ones(25))
    a, b = s[upper[0], upper[1]], shuffled[upper[0], upper[1]]
    torch.testing.assert_close(a.sort().values, b.sort().values)
    assert not torch.equal(a, b)


def test_neural_and_pixel_similarity_are_computed_on_identical_frames(tmp_path, monkeypatch):
    """The predictors see the frames of the regularization images (the stimulus procedure),
    the file stores those frames, and Fig. 1's pixel similarity and the stored r are of the
    same frames, not of the 32 x 32 images the pixel file compared."""
    from simreg.data.sources import Splits
    from simreg.data.store import read_split, write_dataset
    from simreg.neural.images import to_stimuli
    from simreg.neural.predictor import (
        Predictor,
        PredictorSettings,
        build_predictor,
        Standardizer,
        save_predictor,
    )
    from simreg.report.similarity_figures import frame_pixel_similarity, pair_correlation
    from simreg.targets.neural_similarity import build_neural_similarity
    from simreg.targets.pixel_similarity import build_similarity, pixel_similarity, read_similarity

    rng = np.random.default_rng(0)
    images = (255 * stimuli(60, (32, 32), seed=1)[..., None]).astype(np.uint8)
    images[:, :4] = rng.integers(0, 256, (60, 4, 32, 1))  # rows outside the 36x64 crop differ
    write_dataset(
        Splits(images, np.zeros(60, np.int64), images[:2], np.zeros(2, np.int64)),
        "gray",
        tmp_path / "set.h5",
        n_classes=1,
        dataset="set",
    )
    build_similarity(tmp_path / "set.h5", tmp_path / "pixel.h5", n_images=40, image_seed=0)
    shape = (9, 16)
    settings = PredictorSettings(hidden_channels=4, input_kernel=3, hidden_kernel=3, layers=1)
    torch.manual_seed(0)
    model = build_predictor("s", 7, shape, np.ones(7), settings)
    stats = Standardizer(0.5, 0.25, [0.0, 0.0], [1.0, 1.0], [0.0, 0.0], [1.0, 1.0])
    result = {"oracle_correlation": np.full(7, 0.5), "test_correlation": np.full(7, 0.3)}
    save_predictor(Predictor(model, "s", stats, shape), settings, result, [], tmp_path / "m.pt")
    seen = []
    original = Predictor.predict
    monkeypatch.setattr(
        Predictor,
        "predict",
        lambda self, x, *a, **k: seen.append(np.array(x)) or original(self, x, *a, **k),
    )
    build_neural_similarity([str(tmp_path / "m.pt")], tmp_path / "pixel.h5", tmp_path / "neural.h5")

    indices, s_pixel_file, _ = read_similarity(tmp_path / "pixel.h5")
    frames = to_stimuli(read_split(tmp_path / "set.h5", "train").images[indices], shape)
    with h5py.File(tmp_path / "neural.h5", "r") as h5:
        np.testing.assert_array_equal(h5["frames"][...], frames)
        attrs = dict(h5.attrs)
    np.testing.assert_array_equal(seen[0], frames)  # the predictor saw exactly these frames
    _, s_figure, _ = frame_pixel_similarity(tmp_path / "pixel.h5", tmp_path / "neural.h5")
    np.testing.assert_allclose(s_figure, pixel_similarity(frames), atol=1e-6)
    assert not np.allclose(s_figure, s_pixel_file, atol=0.05)  # the full images' S differs
    _, s_neural, _ = read_similarity(tmp_path / "neural.h5")
    stats = pair_correlation(pixel_similarity(frames), s_neural)
    assert attrs["pearson_r"] == pytest.approx(stats["pearson_r"], abs=1e-5)
    assert attrs["spearman_r"] == pytest.approx(stats["spearman_r"], abs=1e-5)


def test_the_population_is_set_up_in_degrees_and_saved_with_the_scan(tmp_path):
    """Spatial frequency tuning is in cycles/degree (gratings at the preferred frequency the
    rig's degrees-per-pixel gives), ON and OFF cells see uniform luminance and the oriented
    cells do not, and the saved population reproduces the scan's noiseless rates."""
    from simreg.neural.simulate import (
        KINDS,
        Population,
        degrees_per_pixel,
        gratings,
        physiology,
        population,
        saved_population,
    )

    shape = (36, 64)
    rng = np.random.default_rng(0)
    params = population(rng, 200, shape, complex_fraction=0.5)
    cells = Population(params, shape)
    cells.calibrate(stimuli(300, shape))
    kind = np.asarray(KINDS)[params["kind"]]
    brighter = cells.drive(np.full((1, *shape), cells.luminance * 1.5, np.float32))[0]
    assert (brighter[kind == "on"] > 0).all() and (brighter[kind == "off"] < 0).all()
    np.testing.assert_allclose(brighter[kind == "simple"], 0.0, atol=1e-4)
    # the simple cells' preferred frequency, measured with gratings, is their parameter
    stats = physiology(cells, stimuli(50, shape))
    simple = kind == "simple"
    ratio = stats["preferred_sf_cpd"][simple] / params["frequency"][simple]
    assert np.median(np.abs(np.log2(ratio))) < 0.5  # within the probe grid's half-octave steps
    assert stats["osi"][simple].mean() > stats["osi"][np.isin(kind, ("on", "off"))].mean() + 0.3
    assert degrees_per_pixel(shape)[1] == pytest.approx(120 / 64)
    # a grating of contrast c drives a simple cell's optimal filter by c (Weber units)
    i = int(np.flatnonzero(simple)[0])
    g = gratings(
        shape,
        0.5,
        params["frequency"][i],
        params["orientation"][i],
        params["phase"][i]
        - 2
        * np.pi
        * params["frequency"][i]
        * (
            params["x"][i] * degrees_per_pixel(shape)[1] * np.cos(params["orientation"][i])
            + params["y"][i] * degrees_per_pixel(shape)[0] * np.sin(params["orientation"][i])
        ),
        contrast=0.1,
    )
    cells.luminance = 0.5
    linear = (g.reshape(1, -1) - 0.5) / 0.5 @ cells.filters["even"][i]
    assert float(linear[0]) == pytest.approx(0.1, rel=0.05)

    scan = simulate_scan(stimuli(), "sim0", 0, n_neurons=30, complex_fraction=0.5, seed=3, **SIZES)
    write_recording(scan, tmp_path / "scan.h5")
    again = saved_population(tmp_path / "scan.h5")
    np.testing.assert_allclose(again.rates(scan.images), scan.rates, rtol=1e-4, atol=1e-5)


def static_dataset(
    root, n_neurons=12, train=150, validation=30, test_images=5, repeats=3, shape=(36, 64), seed=0
):
    """A tiny scan in the Sensorium 2022 / Lurz et al. 2021 file-tree layout, zipped as the
    published archives are (the zip holds the folder of the same name); responses from a
    simulated population, so there is something to learn."""
    import zipfile

    name = "static1-1-1-GrayImageNet-0000"
    folder = root / name
    n_images = train + validation + test_images
    frames = stimuli(n_images, shape, seed)
    scan = simulate_scan(
        frames,
        "x",
        0,
        n_neurons=n_neurons,
        complex_fraction=0.5,
        seed=seed,
        train_images=train,
        validation_images=validation,
        test_images=test_images,
        test_repeats=repeats,
    )
    trials = len(scan.responses)
    behavior = np.stack(
        [scan.behavior["pupil_size"], np.zeros(trials), scan.behavior["running_speed"]], axis=1
    )
    pupil = np.stack([scan.behavior["pupil_x"], scan.behavior["pupil_y"]], axis=1)
    for key, values in (
        ("images", (255 * frames[scan.image_ids])[:, None]),
        ("responses", scan.responses),
        ("behavior", behavior),
        ("pupil_center", pupil),
    ):
        (folder / "data" / key).mkdir(parents=True)
        for t in range(trials):
            np.save(folder / "data" / key / f"{t}.npy", values[t].astype(np.float32))
    (folder / "meta" / "trials").mkdir(parents=True)
    np.save(folder / "meta" / "trials" / "tiers.npy", scan.tiers.astype("<U10"))
    np.save(folder / "meta" / "trials" / "frame_image_id.npy", 1000 + scan.image_ids)
    (folder / "meta" / "neurons").mkdir(parents=True)
    np.save(folder / "meta" / "neurons" / "unit_ids.npy", np.arange(1, n_neurons + 1))
    for key, values in (("images", 255 * frames), ("responses", scan.responses)):
        (folder / "meta" / "statistics" / key / "all").mkdir(parents=True)
        for stat in ("mean", "std", "min", "max", "median"):
            np.save(
                folder / "meta" / "statistics" / key / "all" / f"{stat}.npy",
                getattr(np, stat)(values, axis=0).astype(np.float32),
            )
    archive = root / f"{name}.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for file in sorted(folder.rglob("*")):
            z.write(file, file.relative_to(root))
    import shutil

    shutil.rmtree(folder)
    return archive, scan


def test_a_sensorium_archive_is_read_and_the_predictor_is_fitted_on_it(tmp_path):
    """The published layout (zip of data/{images,responses,behavior,pupil_center}/<trial>.npy
    and meta/{trials,neurons,statistics}) is read through neuralpredictors' FileTreeDataset:
    trials, tiers, repeats and behaviour survive, frames are made the configured size, and
    the predictor fits on it."""
    from simreg.neural.predictor import PredictorSettings, evaluate_predictor, fit_predictor
    from simreg.neural.recordings import read_recording

    archive, scan = static_dataset(tmp_path)
    recording = read_recording(archive, image_size=(9, 16))
    assert recording.images.shape == (len(scan.images), 9, 16)
    np.testing.assert_allclose(recording.responses, scan.responses)
    np.testing.assert_array_equal(recording.tiers, scan.tiers)
    np.testing.assert_allclose(recording.behavior["running_speed"], scan.behavior["running_speed"])
    np.testing.assert_allclose(recording.behavior["pupil_x"], scan.behavior["pupil_x"])
    # repeats of a test image share one frame
    assert len(recording.test_repeats()) == 5
    assert all(len(r) == 3 for r in recording.test_repeats())
    torch.set_num_threads(2)
    settings = PredictorSettings(
        hidden_channels=4,
        input_kernel=5,
        hidden_kernel=3,
        layers=2,
        max_epochs=2,
        patience=2,
        batch_size=32,
        lr=0.01,
    )
    with open(os.devnull, "w") as quiet:
        predictor, history = fit_predictor(recording, 0, settings, log=quiet)
    assert len(history) == 2 and np.isfinite(history[-1]["val_loss"])
    report = evaluate_predictor(predictor, recording)
    assert report["test_correlation"].shape == (12,)


def test_a_shared_core_has_one_readout_per_scan_and_the_similarity_averages_its_scans(tmp_path):
    """neural.multi_scan: shared_core — one model over two scans: one core, a readout per scan
    (of its own number of neurons); saved and loaded it predicts each scan, and its S_neural
    is the mean of the two scans' similarities."""
    import pandas as pd

    from simreg.neural.predictor import PredictorSettings, load_predictors, run_fit
    from simreg.targets.neural_similarity import predicted_responses

    sizes = dict(train_images=120, validation_images=30, test_images=5, test_repeats=2)
    frames = stimuli(155, (8, 8))
    for k, n in enumerate((10, 7)):
        write_recording(
            simulate_scan(frames, f"sim{k}", k, n_neurons=n, complex_fraction=0.5, seed=0, **sizes),
            tmp_path / f"sim{k}.h5",
        )
    torch.set_num_threads(2)
    settings = PredictorSettings(
        hidden_channels=4,
        input_kernel=3,
        hidden_kernel=3,
        layers=2,
        max_epochs=2,
        patience=2,
        batch_size=32,
        lr=0.01,
    )
    run_fit(
        [str(tmp_path / "sim0.h5"), str(tmp_path / "sim1.h5")],
        tmp_path / "m.pt",
        tmp_path / "n.csv",
        tmp_path / "s.csv",
        seed=0,
        settings=settings,
        image_size=(8, 8),
    )
    loaded = load_predictors(tmp_path / "m.pt")
    assert [p.scan for p, _ in loaded] == ["sim0", "sim1"]
    assert loaded[0][0].model is loaded[1][0].model  # one model, one core
    assert set(loaded[0][0].model.readout.keys()) == {"sim0", "sim1"}
    assert [len(oracle) for _, oracle in loaded] == [10, 7]
    assert list(pd.read_csv(tmp_path / "s.csv")["scan_id"]) == ["sim0", "sim1"]
    test_frames = stimuli(12, (8, 8), seed=5)
    per_scan = predicted_responses(tmp_path / "m.pt", test_frames)
    assert [r.shape for _, r, _ in per_scan] == [(12, 10), (12, 7)]
    rows = combined_rows(per_scan)
    expected = np.mean([neural_similarity(r, w) for _, r, w in per_scan], axis=0)
    np.testing.assert_allclose((rows @ rows.T).numpy(), expected, atol=1e-5)
