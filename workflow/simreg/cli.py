"""``simreg <command>``: one command per pipeline step; each Snakemake rule calls one.

Commands take explicit paths and only the parameters they need (JSON for structured ones),
so every step can be run, and debugged, without Snakemake.
"""

from __future__ import annotations

import argparse
import json
import sys

import pandas as pd


def _json(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not valid JSON: {error}") from None


def cmd_dataset(a):
    from simreg.datasets import build_dataset

    build_dataset(a.name, a.color, a.out, data_root=a.data_root, download=a.download,
                  npz=a.npz, imagenet_dir=a.imagenet_dir, test_fraction=a.test_fraction,
                  split_seed=a.split_seed)


def cmd_similarity(a):
    from simreg.similarity import build_similarity

    build_similarity(a.dataset, a.out, n_images=a.n_images, image_seed=a.image_seed,
                     dtype=a.dtype, block_size=a.block_size, device=a.device)


def cmd_train(a):
    from simreg.train import TrainSettings, train

    train(a.task_data, a.similarity, a.model_out, a.metrics_out, a.checkpoint_dir,
          TrainSettings(**a.settings), device=a.device, threads=a.threads,
          extra_provenance=a.keys)


def cmd_noise(a):
    from simreg.noise import evaluate_noise

    evaluate_noise(a.model, a.dataset, a.out, epsilons=a.epsilons, seed=a.seed,
                   n_images=a.n_images, device=a.device, keys=a.keys)


def _read_csvs(paths) -> pd.DataFrame:
    frames = [pd.read_csv(p, na_values=["na"], keep_default_na=True) for p in paths or []]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def cmd_figure(a):
    from simreg import figures

    noise = _read_csvs(a.noise)
    p = a.params
    if a.name.startswith("noise_accuracy"):
        figures.plot_noise_accuracy(noise, a.out, p.get("title", a.name))
    elif a.name == "selection_plane":
        figures.plot_selection_plane(noise, a.out, p["noise"], p["min_clean_ratio"],
                                     p.get("title", a.name))
    else:
        raise SystemExit(f"unknown figure {a.name!r}")


def cmd_table(a):
    from simreg import tables

    noise, metrics, p = _read_csvs(a.noise), _read_csvs(a.metrics), a.params
    if a.name == "alpha_threshold":
        frame = tables.alpha_threshold_table(noise, p["noise"], p["min_clean_ratio"])
    elif a.name == "gamma":
        frame = tables.gamma_table(metrics)
    elif a.name == "results":
        frame = tables.results_table(noise, metrics)
    else:
        raise SystemExit(f"unknown table {a.name!r}")
    tables.write_table(frame, a.out)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="simreg", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("dataset", help="fetch a dataset and store it as HDF5 in one color mode")
    d.add_argument("--name", required=True)
    d.add_argument("--color", required=True, choices=["gray", "rgb"])
    d.add_argument("--out", required=True)
    d.add_argument("--data-root", default="data")
    d.add_argument("--download", action=argparse.BooleanOptionalAction, default=True)
    d.add_argument("--npz", type=_json, default={}, help='JSON {"name": "path.npz"}')
    d.add_argument("--imagenet-dir", default=None)
    d.add_argument("--test-fraction", type=float, default=0.2)
    d.add_argument("--split-seed", type=int, default=0)
    d.set_defaults(run=cmd_dataset)

    s = sub.add_parser("similarity", help="pixel similarity matrix of N regularization images")
    s.add_argument("--dataset", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--n-images", type=int, required=True)
    s.add_argument("--image-seed", type=int, default=0)
    s.add_argument("--dtype", default="float32", choices=["float32", "float16"])
    s.add_argument("--block-size", type=int, default=2048)
    s.add_argument("--device", default="cpu")
    s.set_defaults(run=cmd_similarity)

    t = sub.add_parser("train", help="train one (similarity-regularized) classifier")
    t.add_argument("--task-data", required=True)
    t.add_argument("--similarity", default=None)
    t.add_argument("--model-out", required=True)
    t.add_argument("--metrics-out", required=True)
    t.add_argument("--checkpoint-dir", required=True)
    t.add_argument("--settings", type=_json, required=True, help="JSON of TrainSettings fields")
    t.add_argument("--keys", type=_json, default={}, help="JSON of model keys for provenance")
    t.add_argument("--device", default="auto")
    t.add_argument("--threads", type=int, default=None)
    t.set_defaults(run=cmd_train)

    n = sub.add_parser("noise", help="test accuracy under random noise over an epsilon grid")
    n.add_argument("--model", required=True)
    n.add_argument("--dataset", required=True)
    n.add_argument("--out", required=True)
    n.add_argument("--epsilons", type=_json, required=True, help='JSON {"gaussian": [...], ...}')
    n.add_argument("--seed", type=int, default=0)
    n.add_argument("--n-images", type=int, default=None)
    n.add_argument("--keys", type=_json, default={})
    n.add_argument("--device", default="auto")
    n.set_defaults(run=cmd_noise)

    f = sub.add_parser("figure", help="draw one figure from evaluation CSVs")
    f.add_argument("name")
    f.add_argument("--noise", nargs="*", default=[])
    f.add_argument("--out", required=True)
    f.add_argument("--params", type=_json, default={})
    f.set_defaults(run=cmd_figure)

    tb = sub.add_parser("table", help="build one table (CSV + Markdown) from evaluation CSVs")
    tb.add_argument("name")
    tb.add_argument("--noise", nargs="*", default=[])
    tb.add_argument("--metrics", nargs="*", default=[])
    tb.add_argument("--out", required=True)
    tb.add_argument("--params", type=_json, default={})
    tb.set_defaults(run=cmd_table)
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if getattr(args, "device", None) == "auto":
        # Several GPUs on one machine: give this job its own (simreg.devices) before torch
        # initializes CUDA; "auto" then means "cuda" (= the claimed GPU) or the CPU.
        from simreg.devices import claim_gpu

        claim_gpu()
    try:
        args.run(args)
    except Exception as error:  # one clear line in the log, then the traceback
        print(f"simreg {args.command}: error: {error}", file=sys.stderr)
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
