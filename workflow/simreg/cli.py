"""``simreg <command>``: one command per pipeline step; each Snakemake rule calls one.

    simreg dataset             build a dataset HDF5 in one color mode        (simreg.data)
    simreg corruptions         its corrupted test set (CIFAR-10-C, ...)      (simreg.data)
    simreg download            fetch a dataset's or corrupted set's files    (simreg.data)
    simreg simulate-recordings one scan of a simulated V1 population          (simreg.neural)
    simreg fit-predictor       the predictive model of one scan and seed     (simreg.neural)
    simreg similarity          pixel similarity of N regularization images   (simreg.targets)
    simreg neural-similarity   the predictive models' similarity of them     (simreg.targets)
    simreg train               train one model with any registered method    (simreg.train)
    simreg train-pack          train several seeds of one model at once      (simreg.train)
    simreg fgsm-perturbations  gradient signs of the FGSM source model       (simreg.evaluate)
    simreg evaluate KIND       one evaluation of one model, any registered kind
    simreg evaluate-model      several evaluations of one model, in one process
    simreg figure NAME / table NAME   one registered figure or table         (simreg.report)
    simreg claims              the papers' claims checked, with verdicts     (simreg.report)
    simreg export --to DIR     a finished run's claims and figures, to commit (simreg.report)
    simreg check-config FILE ...      merge and validate config files        (simreg.config)
    simreg list-experiments           the experiment sets and their targets  (simreg.report)
    simreg plan [--configfile F ...]  jobs per rule and figure, device hours (simreg.plan)

Commands take explicit paths and only the parameters they need (JSON for structured ones),
so every step can be run, and debugged, without Snakemake. Defaults come from
:mod:`simreg.settings`, as the pipeline's do.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys

from simreg import settings as defaults


def _json(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not valid JSON: {error}") from None


def _named_file(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    return name, path


def cmd_dataset(a):
    from simreg.data.store import build_dataset

    build_dataset(
        a.name,
        a.color,
        a.out,
        data_root=a.data_root,
        download=a.download,
        npz=a.npz,
        imagenet_dir=a.imagenet_dir,
        test_fraction=a.test_fraction,
        split_seed=a.split_seed,
    )


def cmd_corruptions(a):
    from simreg.data.corrupted import build_corruptions

    origin = build_corruptions(
        a.dataset,
        a.rgb_dataset,
        a.out,
        dataset=a.name,
        color=a.color,
        source=a.source,
        directory=a.dir or a.data_root,
        download=a.download,
        verify=a.verify,
        seed=a.seed,
        n_images=a.n_images,
    )
    print(f"simreg corruptions: {a.out} ({origin})", file=sys.stderr)


def cmd_download(a):
    from simreg.data import download

    if a.corruptions:
        record = download.fetch_corruptions(a.name, a.dir or a.data_root, a.source)
    else:
        record = download.fetch_dataset(a.name, a.data_root)
    download.write_record({"dataset": a.name, **record}, a.out)
    print(
        f"simreg download: {a.name}{' (corruptions)' if a.corruptions else ''}: {record}",
        file=sys.stderr,
    )


def cmd_robustbench_corruptions(a):
    from simreg.evaluate.robustbench import evaluate_robustbench

    evaluate_robustbench(
        a.name,
        a.threat_model,
        a.model_dir,
        a.corruptions,
        a.out,
        severities=a.severities,
        n_images=a.n_images,
        batch_size=a.batch_size,
        device=a.device,
    )


def cmd_similarity(a):
    from simreg.targets.pixel_similarity import build_similarity

    build_similarity(
        a.dataset,
        a.out,
        n_images=a.n_images,
        image_seed=a.image_seed,
        dtype=a.dtype,
        block_size=a.block_size,
        device=a.device,
    )


def cmd_simulate_recordings(a):
    from simreg.neural.simulate import simulate_recordings

    p = a.params
    simulate_recordings(
        a.stimuli,
        a.out,
        scan=a.scan,
        image_size=p["image_size"],
        n_neurons=p["neurons"],
        train_images=p["train_images"],
        validation_images=p["validation_images"],
        test_images=p["test_images"],
        test_repeats=p["test_repeats"],
        complex_fraction=p["complex_fraction"],
        seed=p["simulation_seed"],
    )


def cmd_fit_predictor(a):
    import dataclasses

    from simreg.neural.predictor import PredictorSettings, run_fit

    fields = {f.name for f in dataclasses.fields(PredictorSettings)}
    settings = PredictorSettings(**{k: v for k, v in a.params.items() if k in fields})
    device = a.device if a.device != "auto" else ("cuda" if _cuda() else "cpu")
    run_fit(
        a.recordings,
        a.model_out,
        a.neurons_out,
        a.summary_out,
        seed=a.seed,
        settings=settings,
        device=device,
        threads=a.threads,
        keys=a.keys,
        image_size=a.params.get("image_size", [36, 64]),
    )


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def cmd_neural_similarity(a):
    from simreg.targets.neural_similarity import build_neural_similarity

    build_neural_similarity(
        a.predictors,
        a.pixel_similarity,
        a.out,
        images_file=a.images,
        recordings=a.recordings,
        dtype=a.dtype,
        block_size=a.block_size,
    )


def cmd_train(a):
    from simreg.train.settings import TrainSettings
    from simreg.train.trainer import train

    train(
        a.task_data,
        dict(a.input),
        a.model_out,
        a.metrics_out,
        a.checkpoint_dir,
        TrainSettings(**a.settings),
        device=a.device,
        threads=a.threads,
        extra_provenance=a.keys,
    )


def _pack_inputs(pairs) -> dict:
    """``--input NAME=PATH`` of a pack: a name given once is shared by every seed; a name
    given once per seed is a list, in the seeds' order (checked by train_pack)."""
    inputs: dict[str, list] = {}
    for name, path in pairs:
        inputs.setdefault(name, []).append(path)
    return {name: paths[0] if len(paths) == 1 else paths for name, paths in inputs.items()}


def cmd_train_pack(a):
    from simreg.train.packed import train_pack
    from simreg.train.settings import TrainSettings

    try:
        train_pack(
            a.task_data,
            _pack_inputs(a.input),
            a.model_out,
            a.metrics_out,
            a.checkpoint_dir,
            [TrainSettings(**s) for s in a.settings],
            device=a.device,
            threads=a.threads,
            extra_provenance_list=a.keys or None,
        )
    except ValueError as error:
        raise SystemExit(f"train-pack: {error}") from None


def cmd_fgsm_perturbations(a):
    from simreg.evaluate.fgsm import build_perturbations

    build_perturbations(
        a.model,
        a.dataset,
        a.out,
        n_images=a.n_images,
        batch_size=a.batch_size,
        device=a.device,
        keys=a.keys,
    )


def cmd_evaluate(a):
    from simreg.evaluate.context import run_evaluation

    run_evaluation(a.kind, dict(a.input), dict(a.out), a.params, keys=a.keys, device=a.device)


def cmd_evaluate_model(a):
    from simreg.evaluate.context import run_evaluations

    run_evaluations(a.evaluations, keys=a.keys, device=a.device)


def cmd_report(a):
    from simreg.report.draw import build

    build(a.name, {kind: files for kind, files in a.reads or []}, a.out, a.params)


def cmd_claims(a):
    from simreg.report.claims import claims_files, write_claims

    write_claims(claims_files(a.reads), a.params, a.out, a.md)


def cmd_export(a):
    from pathlib import Path

    from simreg.config import load_config
    from simreg.plan import planned_benchmarks, read_benchmarks
    from simreg.report.export import export_run

    config = load_config(Path(a.repository) / "config.yaml", *a.configfile)
    planned = planned_benchmarks(a.repository, a.configfile, a.targets)
    copied = export_run(
        config,
        a.results,
        a.to,
        a.command,
        a.wall,
        a.machine,
        measured=read_benchmarks(Path(a.results) / "benchmarks"),
        planned=planned,
    )
    print(f"simreg export: {len(copied)} files and README.md in {a.to}", file=sys.stderr)


def cmd_check_config(a):
    from simreg.config import ConfigError, load_config
    from simreg.settings import typed

    try:
        config = load_config(*a.files)
    except ConfigError as error:
        sys.exit(f"simreg check-config: {error}")
    print(
        f"simreg check-config: {' + '.join(a.files)}: valid "
        f"({len(typed(config).figures)} figure grids)"
    )


def cmd_list_experiments(a):
    from simreg.report.experiments import ALL, EXPERIMENTS, experiment_targets

    print(f"{ALL}: every grid the config gives under 'figures' (the default)")
    for experiment in EXPERIMENTS.values():
        print(f"{experiment.name}: {experiment.description}")
        print(f"    grids:   {', '.join(experiment.grids)}")
        print(f"    targets: {', '.join(experiment_targets(experiment))}")
    print(
        "A config's `experiments: [...]` names sets or single figures; `all` builds the "
        "targets of the grids they select."
    )


def cmd_plan(a):
    from simreg import plan

    if a.calibrate:
        record = plan.calibrate(
            a.configfile or [plan.CALIBRATION_CONFIG],
            cores=a.cores,
            targets=a.targets or ["all"],
            benchmarks_root=a.benchmarks,
        )
        print(
            f"simreg plan: calibrated in {record['wall_s']} s on {record['machine']}; "
            f"benchmark files under {a.benchmarks}",
            file=sys.stderr,
        )
        return
    print(
        plan.report(
            a.configfile,
            benchmarks_root=a.benchmarks,
            benchmark_json=a.benchmark_json,
            targets=a.targets or ["all"],
            cpu=a.cpu_time,
        )
    )


def _add_dataset(sub) -> None:
    """The ``simreg dataset`` command."""
    d = sub.add_parser("dataset", help="fetch a dataset and store it as HDF5 in one color mode")
    data = defaults.Data()
    d.add_argument("--name", required=True)
    d.add_argument("--color", required=True, choices=["gray", "rgb"])
    d.add_argument("--out", required=True)
    d.add_argument("--data-root", default=data.root)
    d.add_argument("--download", action=argparse.BooleanOptionalAction, default=data.download)
    d.add_argument("--npz", type=_json, default={}, help='JSON {"name": "path.npz"}')
    d.add_argument("--imagenet-dir", default=data.imagenet_dir)
    d.add_argument("--test-fraction", type=float, default=data.test_fraction)
    d.add_argument("--split-seed", type=int, default=data.split_seed)
    d.set_defaults(run=cmd_dataset)


def _add_corruptions(sub) -> None:
    """The ``simreg corruptions`` command."""
    data = defaults.Data()
    c = sub.add_parser(
        "corruptions",
        help="the corrupted test set of a dataset, in one color "
        "(official CIFAR-10-C/100-C files, or generated with the CIFAR constants)",
    )
    corruptions = defaults.Corruptions()
    c.add_argument("--name", required=True, help="dataset name (cifar10, digits, ...)")
    c.add_argument("--color", required=True, choices=["gray", "rgb"])
    c.add_argument("--dataset", required=True, help="the dataset HDF5 in --color")
    c.add_argument("--rgb-dataset", required=True, help="the dataset HDF5 in rgb")
    c.add_argument("--out", required=True)
    c.add_argument(
        "--source", default=corruptions.source, choices=["auto", "official", "generated"]
    )
    c.add_argument(
        "--dir",
        default=corruptions.dir,
        help="folder holding CIFAR-10-C/ (or the folder itself); default --data-root",
    )
    c.add_argument("--data-root", default=data.root)
    c.add_argument("--download", action=argparse.BooleanOptionalAction, default=data.download)
    c.add_argument(
        "--verify",
        action=argparse.BooleanOptionalAction,
        default=corruptions.verify,
        help="check the official files' MD5s",
    )
    c.add_argument("--seed", type=int, default=corruptions.seed)
    c.add_argument("--n-images", type=int, default=corruptions.n_images)
    c.set_defaults(run=cmd_corruptions)


def _add_download(sub) -> None:
    """The ``simreg download`` command."""
    data = defaults.Data()
    corruptions = defaults.Corruptions()
    dl = sub.add_parser(
        "download",
        help="fetch a dataset's files (or, with --corruptions, its "
        "official corrupted test set) for the jobs that read them; the "
        "download rules run it on the login node",
    )
    dl.add_argument("--name", required=True, help="dataset name (cifar10, imagenette, ...)")
    dl.add_argument("--data-root", default=data.root)
    dl.add_argument("--corruptions", action="store_true")
    dl.add_argument(
        "--dir",
        default=corruptions.dir,
        help="with --corruptions: the folder for CIFAR-10-C/; default --data-root",
    )
    dl.add_argument(
        "--source",
        default=corruptions.source,
        choices=["auto", "official"],
        help="with --corruptions: auto records a failed download (the corruptions "
        "are then generated), official raises it",
    )
    dl.add_argument("--out", required=True, help="JSON record of what was fetched")
    dl.set_defaults(run=cmd_download)


def _add_robustbench_corruptions(sub) -> None:
    """The ``simreg robustbench-corruptions`` command."""
    rb = sub.add_parser(
        "robustbench-corruptions", help="accuracy of a RobustBench model on a corrupted test set"
    )
    robustbench = defaults.Robustbench()
    rb.add_argument("--name", required=True, help="RobustBench model name, e.g. Standard")
    rb.add_argument("--threat-model", required=True, help="corruptions, Linf or L2")
    rb.add_argument("--model-dir", default=robustbench.model_dir)
    rb.add_argument("--corruptions", required=True, help="corrupted test set HDF5 (rgb)")
    rb.add_argument("--out", required=True)
    rb.add_argument("--severities", type=int, nargs="+", default=robustbench.severities)
    rb.add_argument("--n-images", type=int, default=robustbench.n_images)
    rb.add_argument("--batch-size", type=int, default=robustbench.batch_size)
    rb.add_argument("--device", default="auto")
    rb.set_defaults(run=cmd_robustbench_corruptions)


def _add_similarity(sub) -> None:
    """The ``simreg similarity`` command."""
    s = sub.add_parser("similarity", help="pixel similarity matrix of N regularization images")
    similarity = defaults.Similarity()
    s.add_argument("--dataset", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--n-images", type=int, required=True)
    s.add_argument("--image-seed", type=int, default=defaults.Regularization().image_seed)
    s.add_argument("--dtype", default=similarity.dtype, choices=["float32", "float16"])
    s.add_argument("--block-size", type=int, default=similarity.block_size)
    s.add_argument("--device", default="cpu")
    s.set_defaults(run=cmd_similarity)


def _add_simulate_recordings(sub) -> None:
    """The ``simreg simulate-recordings`` command."""
    sr = sub.add_parser("simulate-recordings", help="one scan of a simulated V1 population")
    sr.add_argument("--stimuli", required=True, help="dataset HDF5 whose train images are shown")
    sr.add_argument("--scan", required=True, help="scan name; sim<k> is the k-th scan of the seed")
    sr.add_argument("--out", required=True)
    sr.add_argument(
        "--params",
        type=_json,
        default={},
        help="JSON of neural.* sizes (image_size, neurons, train_images, ...)",
    )
    sr.set_defaults(run=cmd_simulate_recordings)


def _add_fit_predictor(sub) -> None:
    """The ``simreg fit-predictor`` command."""
    fp_ = sub.add_parser("fit-predictor", help="fit the predictive model to one scan")
    fp_.add_argument(
        "--recordings",
        required=True,
        nargs="+",
        help="recordings of one scan (HDF5 of simreg.neural.recordings, or a "
        "Sensorium/Lurz static .zip/folder); several: one model, shared core",
    )
    fp_.add_argument("--seed", type=int, required=True)
    fp_.add_argument("--model-out", required=True)
    fp_.add_argument("--neurons-out", required=True, help="per-neuron report CSV")
    fp_.add_argument("--summary-out", required=True, help="overall report CSV")
    fp_.add_argument(
        "--params",
        type=_json,
        default={},
        help="JSON of neural.* model and fit settings (hidden_channels, lr, ...)",
    )
    fp_.add_argument("--keys", type=_json, default={}, help="JSON of keys for provenance")
    fp_.add_argument("--device", default="auto")
    fp_.add_argument("--threads", type=int, default=None)
    fp_.set_defaults(run=cmd_fit_predictor)


def _add_neural_similarity(sub) -> None:
    """The ``simreg neural-similarity`` command."""
    similarity = defaults.Similarity()
    ns = sub.add_parser(
        "neural-similarity", help="the predictive models' similarity of a regularization set"
    )
    ns.add_argument("--predictors", nargs="+", required=True, help="model.pt of each fit")
    ns.add_argument(
        "--pixel-similarity",
        required=True,
        help="the set's pixel similarity file (its images and indices)",
    )
    ns.add_argument(
        "--images",
        default=None,
        help="dataset HDF5 of the images (default: the path recorded in the pixel similarity file)",
    )
    ns.add_argument(
        "--recordings",
        nargs="*",
        default=[],
        help="the scans' recordings; simulated ones add the simulator's own r",
    )
    ns.add_argument("--out", required=True)
    ns.add_argument("--dtype", default=similarity.dtype, choices=["float32", "float16"])
    ns.add_argument("--block-size", type=int, default=similarity.block_size)
    ns.set_defaults(run=cmd_neural_similarity)


def _add_train(sub) -> None:
    """The ``simreg train`` command."""
    t = sub.add_parser("train", help="train one classifier with a registered method")
    t.add_argument("--task-data", required=True)
    t.add_argument(
        "--input",
        type=_named_file,
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="a file the method needs (e.g. similarity=..., regularization_images=...)",
    )
    t.add_argument("--model-out", required=True)
    t.add_argument("--metrics-out", required=True)
    t.add_argument("--checkpoint-dir", required=True)
    t.add_argument(
        "--settings",
        type=_json,
        required=True,
        help="JSON of TrainSettings fields (simreg.train.settings)",
    )
    t.add_argument("--keys", type=_json, default={}, help="JSON of model keys for provenance")
    t.add_argument("--device", default="auto")
    t.add_argument("--threads", type=int, default=None)
    t.set_defaults(run=cmd_train)


def _add_train_pack(sub) -> None:
    """The ``simreg train-pack`` command."""
    tp = sub.add_parser(
        "train-pack",
        help="train several seeds of one model in one process (config training.pack_size)",
    )
    tp.add_argument("--task-data", required=True)
    tp.add_argument(
        "--input",
        type=_named_file,
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="a file the method needs: once if every seed "
        "shares it, else once per seed in the seeds' order (source_model=...)",
    )
    tp.add_argument("--model-out", nargs="+", required=True, help="one path per seed")
    tp.add_argument("--metrics-out", nargs="+", required=True, help="one path per seed")
    tp.add_argument("--checkpoint-dir", required=True, help="the pack's checkpoints")
    tp.add_argument(
        "--settings",
        type=_json,
        required=True,
        help="JSON list of TrainSettings dicts, one per seed (identical but seed)",
    )
    tp.add_argument(
        "--keys",
        type=_json,
        default=[],
        help="JSON list of model keys for provenance, one per seed",
    )
    tp.add_argument("--device", default="auto")
    tp.add_argument("--threads", type=int, default=None)
    tp.set_defaults(run=cmd_train_pack)


def _add_fgsm_perturbations(sub) -> None:
    """The ``simreg fgsm-perturbations`` command."""
    fp = sub.add_parser(
        "fgsm-perturbations", help="gradient signs of the unregularized FGSM source model"
    )
    fp.add_argument("--model", required=True, help="model.pt of the source model")
    fp.add_argument("--dataset", required=True, help="dataset HDF5 of the task")
    fp.add_argument("--out", required=True)
    fp.add_argument("--n-images", type=int, default=defaults.FgsmTransfer().n_images)
    fp.add_argument("--batch-size", type=int, default=defaults.FgsmTransfer().batch_size)
    fp.add_argument("--keys", type=_json, default={}, help="JSON of the source model's keys")
    fp.add_argument("--device", default="auto")
    fp.set_defaults(run=cmd_fgsm_perturbations)


def _add_evaluate(sub) -> None:
    """The ``simreg evaluate`` command."""
    e = sub.add_parser("evaluate", help="run one registered evaluation of one model")
    e.add_argument("kind", help="evaluation name (simreg.evaluate.registry)")
    e.add_argument(
        "--input",
        type=_named_file,
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="model=..., dataset=..., and the kind's own inputs",
    )
    e.add_argument(
        "--out",
        type=_named_file,
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="one per output of the kind (e.g. csv=..., h5=...)",
    )
    e.add_argument("--params", type=_json, default={}, help="JSON of the kind's parameters")
    e.add_argument("--keys", type=_json, default={}, help="JSON of model keys for provenance")
    e.add_argument("--device", default="auto")
    e.set_defaults(run=cmd_evaluate)

    m = sub.add_parser(
        "evaluate-model",
        help="several evaluations of one model in one process (resources.evaluation_jobs: "
        "per_model)",
    )
    m.add_argument(
        "--evaluations",
        type=_json,
        required=True,
        help="JSON list of {kind, setting, inputs, outputs, params}, run in order "
        "(simreg.evaluate.bundles)",
    )
    m.add_argument("--keys", type=_json, default={}, help="JSON of model keys for provenance")
    m.add_argument("--device", default="auto")
    m.set_defaults(run=cmd_evaluate_model)


def _add_report(sub) -> None:
    """The ``simreg figure`` and ``simreg table`` commands."""
    for kind in ("figure", "table"):
        r = sub.add_parser(kind, help=f"build one registered {kind} (simreg.report.targets)")
        r.add_argument("name")
        r.add_argument(
            "--reads",
            nargs="+",
            action="append",
            metavar=("KIND", "FILE"),
            type=str,
            help="an evaluation (or metrics) and its files; repeatable",
        )
        r.add_argument("--out", required=True)
        r.add_argument("--params", type=_json, default={})
        r.set_defaults(run=cmd_report)


def _add_claims(sub) -> None:
    """The ``simreg claims`` command."""
    cl = sub.add_parser(
        "claims",
        help="check the papers' claims on the tidy outputs "
        "(simreg.report.claims): claims.csv and claims.md",
    )
    cl.add_argument(
        "--reads",
        nargs="+",
        action="append",
        metavar=("CLAIM__KIND", "FILE"),
        type=str,
        help="a claim's evaluation and its files; repeatable",
    )
    cl.add_argument(
        "--params",
        type=_json,
        default={},
        help="JSON: claim key -> its params (claims absent are not run)",
    )
    cl.add_argument("--out", required=True, help="the CSV")
    cl.add_argument("--md", required=True, help="the Markdown report")
    cl.set_defaults(run=cmd_claims)


def _add_export(sub) -> None:
    """The ``simreg export`` command."""
    ex = sub.add_parser(
        "export",
        help="copy a finished run's claims report and figures (PNG, "
        ".data.csv) with a README saying how they were made, to commit beside "
        "the code (simreg.report.export)",
    )
    ex.add_argument("--to", required=True, help="e.g. docs/results/cifar10-subset")
    ex.add_argument(
        "--configfile",
        nargs="+",
        default=[],
        metavar="FILE",
        help="the run's config files, merged over config.yaml",
    )
    ex.add_argument("--repository", default=".", help="the checkout whose config.yaml the run used")
    ex.add_argument(
        "--targets",
        nargs="+",
        default=["all"],
        help="the run's targets: the job table counts the jobs of their DAG (default: all)",
    )
    ex.add_argument("--results", default="results", help="the run's results folder")
    ex.add_argument("--command", required=True, help="the command that made the run")
    ex.add_argument("--wall", required=True, help="its measured wall time, as text")
    ex.add_argument("--machine", required=True, help="where it ran, as text")
    ex.set_defaults(run=cmd_export, logged=False)


def _add_check_config(sub) -> None:
    """The ``simreg check-config`` command."""
    cc = sub.add_parser(
        "check-config",
        help="merge config files in order (as Snakemake merges "
        "--configfile over config.yaml) and validate them; every problem names "
        "its file, line or key",
    )
    cc.add_argument("files", nargs="+", metavar="FILE", help="e.g. config.yaml configs/quick.yaml")
    cc.set_defaults(run=cmd_check_config, logged=False)  # a user's command, not a job's


def _add_list_experiments(sub) -> None:
    """The ``simreg list-experiments`` command."""
    le = sub.add_parser(
        "list-experiments",
        help="the experiment sets a config's "
        "`experiments` may select, with their figure grids and targets",
    )
    le.set_defaults(run=cmd_list_experiments, logged=False)


def _add_plan(sub) -> None:
    """The ``simreg plan`` command."""
    pl = sub.add_parser(
        "plan",
        help="a config's jobs per rule and per figure/table (from "
        "Snakemake's own DAG) and its device hours per stage, from measured "
        "benchmark files (docs/running.md); run from the repository",
    )
    pl.add_argument(
        "--configfile",
        nargs="+",
        default=[],
        metavar="FILE",
        help="merged over config.yaml, as snakemake --configfile",
    )
    pl.add_argument("--targets", nargs="+", default=None, help="default: all")
    pl.add_argument(
        "--benchmarks",
        default="results/benchmarks",
        help="the benchmark files (and calibration.json) to estimate from",
    )
    pl.add_argument(
        "--benchmark-json",
        default=None,
        help="a benchmarks/run.py JSON: its epoch_s times the training jobs",
    )
    pl.add_argument(
        "--calibrate",
        action="store_true",
        help="run the DAG of --configfile (default configs/quick.yaml) with "
        "--cores, writing every job's benchmark file, and record its sizes",
    )
    pl.add_argument("--cores", type=int, default=2)
    pl.add_argument(
        "--cpu-time",
        action="store_true",
        help="estimate from the benchmark files' CPU seconds (and the JSON's "
        "epoch_cpu_s): CPU hours on idle cores, for a CPU calibration on a shared "
        "machine",
    )
    pl.set_defaults(run=cmd_plan, logged=False)


# One function per command, each adding its subparser (in the order of `simreg --help`).
COMMANDS = (
    _add_dataset,
    _add_corruptions,
    _add_download,
    _add_robustbench_corruptions,
    _add_similarity,
    _add_simulate_recordings,
    _add_fit_predictor,
    _add_neural_similarity,
    _add_train,
    _add_train_pack,
    _add_fgsm_perturbations,
    _add_evaluate,
    _add_report,
    _add_claims,
    _add_export,
    _add_check_config,
    _add_list_experiments,
    _add_plan,
)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="simreg", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE first: it registers regularizers or evaluations "
        "(the config's `plugins`; also read from $SIMREG_PLUGINS, "
        "comma-separated, which the Snakefile sets)",
    )
    sub = p.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if args.command in ("figure", "table", "claims"):
        args.reads = [(group[0], group[1:]) for group in args.reads or []]
    plugins = [m for m in os.environ.get("SIMREG_PLUGINS", "").split(",") if m] + args.plugin
    if plugins:
        from simreg.train.regularizers import load_plugins

        load_plugins(plugins)
    device = getattr(args, "device", None)
    if device == "auto" or device == "cuda":
        # Several GPUs on one machine: give this job its own (simreg.devices) before torch
        # initializes CUDA; "auto" then means "cuda" (= the claimed GPU) or the CPU.
        from simreg.devices import claim_gpu

        claim_gpu()
    if device is not None and device.startswith("cuda"):
        # a job given a GPU that sees none stops here, saying why (simreg.devices)
        from simreg.devices import require_cuda

        require_cuda(device)
    # Logs are appended to (rules write `>> {log} 2>&1`), so a rerun after a killed job keeps the
    # earlier attempt's log above this line.
    if getattr(args, "logged", True):
        started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        print(f"simreg {args.command}: started {started}", file=sys.stderr, flush=True)
    try:
        args.run(args)
    except Exception as error:  # one clear line in the log, then the traceback
        print(f"simreg {args.command}: error: {error}", file=sys.stderr)
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
