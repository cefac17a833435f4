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


def cmd_fgsm_perturbations(a):
    from simreg.fgsm import build_perturbations

    build_perturbations(a.model, a.dataset, a.out, n_images=a.n_images, batch_size=a.batch_size,
                        device=a.device, keys=a.keys)


def cmd_fgsm_transfer(a):
    from simreg.fgsm import evaluate_transfer

    evaluate_transfer(a.model, a.perturbations, a.dataset, a.out, epsilons=a.epsilons,
                      device=a.device, keys=a.keys)


def cmd_boundary(a):
    from simreg.boundary import evaluate_boundary

    evaluate_boundary(a.model, a.dataset, a.out, a.perturbations_out, setting=a.setting,
                      params=a.attack, n_images=a.n_images, repeats=a.repeats, seed=a.seed,
                      batch_size=a.batch_size, init_retries=a.init_retries,
                      init_directions=a.init_directions, init_steps=a.init_steps,
                      device=a.device, keys=a.keys)


def cmd_spectrum(a):
    from simreg.spectrum import build_spectrum

    build_spectrum(a.boundary, a.out, keys=a.keys)


def cmd_whitebox(a):
    from simreg.whitebox import evaluate_whitebox

    evaluate_whitebox(a.model, a.dataset, a.out, epsilons_255=a.epsilons_255,
                      n_images=a.n_images, pgd_steps=a.pgd_steps,
                      pgd_rel_stepsize=a.pgd_rel_stepsize, seed=a.seed, batch_size=a.batch_size,
                      device=a.device, keys=a.keys)


def cmd_minimal_distance(a):
    from simreg.minimal_distance import evaluate_minimal_distance

    evaluate_minimal_distance(a.model, a.dataset, a.out, suite=a.suite, n_images=a.n_images,
                              seed=a.seed, batch_size=a.batch_size, device=a.device, keys=a.keys)


def _read_csvs(paths) -> pd.DataFrame:
    frames = [pd.read_csv(p, na_values=["na"], keep_default_na=True) for p in paths or []]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def cmd_figure(a):
    from simreg import attack_figures, figures

    p, title = a.params, a.params.get("title", a.name)
    if a.name.startswith("noise_accuracy"):
        figures.plot_noise_accuracy(_read_csvs(a.noise), a.out, title)
    elif a.name == "selection_plane":
        figures.plot_selection_plane(_read_csvs(a.noise), a.out, p["noise"], p["min_clean_ratio"],
                                     title)
    elif a.name == "attack_robustness" or a.name.startswith("robustness_by_"):
        attack_figures.plot_robustness(a.out, title, fgsm=_read_csvs(a.fgsm),
                                       boundary=_read_csvs(a.boundary),
                                       noise=_read_csvs(a.noise) if a.noise else None)
    elif a.name == "perturbation_spectrum":
        from simreg.spectrum import read_spectrum

        attack_figures.plot_perturbation_spectrum([read_spectrum(f) for f in a.spectrum],
                                                  a.out, title)
    elif a.name == "minimal_distance":
        attack_figures.plot_minimal_distance(_read_csvs(a.minimal_distance), a.out, title)
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
    elif a.name == "models":
        frame = tables.models_table(noise, metrics, fgsm=_read_csvs(a.fgsm),
                                    boundary=_read_csvs(a.boundary),
                                    whitebox=_read_csvs(a.whitebox),
                                    minimal_distance=_read_csvs(a.minimal_distance))
    elif a.name == "whitebox":
        frame = tables.whitebox_table(_read_csvs(a.whitebox))
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

    def model_command(name, help, run, dataset=True):
        c = sub.add_parser(name, help=help)
        c.add_argument("--model", required=True, help="model.pt of the model attacked")
        if dataset:
            c.add_argument("--dataset", required=True, help="dataset HDF5 of the task")
        c.add_argument("--out", required=True)
        c.add_argument("--keys", type=_json, default={}, help="JSON of model keys for provenance")
        c.add_argument("--device", default="auto")
        c.set_defaults(run=run)
        return c

    fp = model_command("fgsm-perturbations", "gradient signs of the unregularized source model",
                       cmd_fgsm_perturbations)
    fp.add_argument("--n-images", type=int, default=None)
    fp.add_argument("--batch-size", type=int, default=512)

    ft = model_command("fgsm-transfer", "accuracy under FGSM transferred from the source model",
                       cmd_fgsm_transfer)
    ft.add_argument("--perturbations", required=True, help="HDF5 of fgsm-perturbations")
    ft.add_argument("--epsilons", type=_json, required=True, help="JSON list of eps")

    b = model_command("boundary", "Boundary Attack score S(M) and its perturbations", cmd_boundary)
    b.add_argument("--perturbations-out", required=True, help="HDF5 of perturbations")
    b.add_argument("--setting", required=True, help="name of the attack setting")
    b.add_argument("--attack", type=_json, required=True, help="JSON of BoundaryAttack arguments")
    b.add_argument("--n-images", type=int, default=None)
    b.add_argument("--repeats", type=int, default=5)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--batch-size", type=int, default=250)
    b.add_argument("--init-retries", type=int, default=3)
    b.add_argument("--init-directions", type=int, default=1000)
    b.add_argument("--init-steps", type=int, default=50)

    sp = sub.add_parser("spectrum", help="Fourier spectrum of Boundary Attack perturbations")
    sp.add_argument("--boundary", required=True, help="HDF5 of simreg boundary")
    sp.add_argument("--out", required=True)
    sp.add_argument("--keys", type=_json, default={})
    sp.set_defaults(run=cmd_spectrum)

    w = model_command("whitebox", "accuracy under white-box FGSM and PGD-Linf", cmd_whitebox)
    w.add_argument("--epsilons-255", type=_json, required=True, help="JSON list, units of 1/255")
    w.add_argument("--n-images", type=int, default=None)
    w.add_argument("--pgd-steps", type=int, default=20)
    w.add_argument("--pgd-rel-stepsize", type=float, default=0.1)
    w.add_argument("--seed", type=int, default=0)
    w.add_argument("--batch-size", type=int, default=256)

    md = model_command("minimal-distance", "smallest L0/L1/L2/Linf adversarial distances",
                       cmd_minimal_distance)
    md.add_argument("--suite", type=_json, default={}, help="JSON attack suite ({} = paper's)")
    md.add_argument("--n-images", type=int, default=1000)
    md.add_argument("--seed", type=int, default=0)
    md.add_argument("--batch-size", type=int, default=100)

    evaluations = ("noise", "fgsm", "boundary", "spectrum", "whitebox", "minimal-distance",
                   "metrics")
    f = sub.add_parser("figure", help="draw one figure from evaluation outputs")
    f.add_argument("name")
    for kind in evaluations:
        f.add_argument(f"--{kind}", nargs="*", default=[])
    f.add_argument("--out", required=True)
    f.add_argument("--params", type=_json, default={})
    f.set_defaults(run=cmd_figure)

    tb = sub.add_parser("table", help="build one table (CSV + Markdown) from evaluation CSVs")
    tb.add_argument("name")
    for kind in evaluations:
        tb.add_argument(f"--{kind}", nargs="*", default=[])
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
