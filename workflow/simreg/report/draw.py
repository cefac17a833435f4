"""Building one figure or table from the evaluation outputs it reads.

Each function takes ``data`` (evaluation name -> its tables concatenated, or the list of its
files for outputs that are not tables), the output file and the target's ``params``; the
registry (:mod:`simreg.report.targets`) names which function builds which target.
"""

from __future__ import annotations

import importlib

import pandas as pd

from simreg.report import attack_figures, noise_figures, tables


def read_tables(paths) -> pd.DataFrame:
    frames = [pd.read_csv(p, na_values=["na"], keep_default_na=True) for p in paths or []]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def read_inputs(files: dict[str, list[str]]) -> dict:
    """CSV outputs as one DataFrame per evaluation; others (HDF5) as their file list."""
    return {kind: read_tables(paths) if all(str(p).endswith(".csv") for p in paths) and paths
            else (list(paths) if paths else pd.DataFrame()) for kind, paths in files.items()}


def build(name: str, files: dict[str, list[str]], out: str, params: dict) -> None:
    """Build target ``name`` from its input ``files`` (per evaluation) into ``out``."""
    from simreg.report.targets import TARGETS

    target = TARGETS[name]
    unknown = set(files) - set(target.reads)
    if unknown:
        raise ValueError(f"{name} reads {sorted(target.reads)}, not {sorted(unknown)}")
    module, function = target.implementation.split(":")
    data = read_inputs({kind: files.get(kind, []) for kind in target.reads})
    getattr(importlib.import_module(module), function)(data, out, params)


def title(params: dict, default: str = "") -> str:
    return params.get("title", default)


# ---- figures ------------------------------------------------------------------------------
def noise_accuracy(data, out, params):
    noise_figures.plot_noise_accuracy(data["noise"], out, title(params))


def selection_plane(data, out, params):
    noise_figures.plot_selection_plane(data["noise"], out, params["noise"],
                                       params["min_clean_ratio"], title(params))


def robustness(data, out, params):
    noise = data.get("noise")
    attack_figures.plot_robustness(out, title(params), fgsm=data["fgsm_transfer"],
                                   boundary=data["boundary"],
                                   noise=noise if noise is not None and len(noise) else None)


def perturbation_spectrum(data, out, params):
    from simreg.evaluate.spectrum import read_spectrum

    attack_figures.plot_perturbation_spectrum([read_spectrum(f) for f in data["spectrum"]],
                                              out, title(params))


def neural_pixel_similarity(data, out, params):
    from simreg.report import similarity_figures

    files = list(data["similarity_targets"])
    pairs = list(zip(files[0::2], files[1::2]))  # (pixel, neural) per regularization set
    similarity_figures.plot_neural_pixel_similarity(pairs, out, title(params))


def minimal_distance(data, out, params):
    attack_figures.plot_minimal_distance(data["minimal_distance"], out, title(params))


# ---- tables -------------------------------------------------------------------------------
def alpha_threshold_table(data, out, params):
    tables.write_table(tables.alpha_threshold_table(data["noise"], params["noise"],
                                                    params["min_clean_ratio"]), out)


def gamma_table(data, out, params):
    tables.write_table(tables.gamma_table(data["metrics"]), out)


def results_table(data, out, params):
    tables.write_table(tables.results_table(data["noise"], data["metrics"]), out)


def models_table(data, out, params):
    tables.write_table(tables.models_table(
        data["noise"], data["metrics"], fgsm=data["fgsm_transfer"], boundary=data["boundary"],
        whitebox=data["whitebox"], minimal_distance=data["minimal_distance"]), out)


def whitebox_table(data, out, params):
    tables.write_table(tables.whitebox_table(data["whitebox"]), out)
