"""Building one figure or table from the evaluation outputs it reads.

Each function takes ``data`` (evaluation name -> its tables concatenated, or the list of its
files for outputs that are not tables), the output file and the target's ``params``, and is
registered by ``@drawing`` under its name; a target's ``draw``
(:mod:`simreg.report.targets`) names the function that builds it.
"""

from __future__ import annotations

import pandas as pd

from simreg.report import tables  # the figure modules (matplotlib, seaborn) where drawn
from simreg.report.targets import drawing


def read_tables(paths) -> pd.DataFrame:
    frames = [pd.read_csv(p, na_values=["na"], keep_default_na=True) for p in paths or []]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def read_inputs(files: dict[str, list[str]]) -> dict:
    """CSV outputs as one DataFrame per evaluation; others (HDF5) as their file list."""
    return {
        kind: read_tables(paths)
        if all(str(p).endswith(".csv") for p in paths) and paths
        else (list(paths) if paths else pd.DataFrame())
        for kind, paths in files.items()
    }


def build(name: str, files: dict[str, list[str]], out: str, params: dict) -> None:
    """Build target ``name`` from its input ``files`` (per evaluation) into ``out``."""
    from simreg.report.targets import TARGETS, get_drawing

    target = TARGETS[name]
    reads = target.reads + target.optional_reads
    unknown = set(files) - set(reads)
    if unknown:
        raise ValueError(f"{name} reads {sorted(reads)}, not {sorted(unknown)}")
    data = read_inputs({kind: files.get(kind, []) for kind in reads})
    get_drawing(target.draw)(data, out, params)


def title(params: dict, default: str = "") -> str:
    return params.get("title", default)


# ---- figures ------------------------------------------------------------------------------
@drawing
def noise_accuracy(data, out, params):
    from simreg.report import noise_figures

    noise_figures.plot_noise_accuracy(data["noise"], out, title(params))


def optional_frame(data, kind):
    frame = data.get(kind)
    return frame if frame is not None and len(frame) else None


@drawing
def selection_plane(data, out, params):
    from simreg.report import noise_figures

    noise_figures.plot_selection_plane(
        data["noise"],
        out,
        params["epsilons"],
        params["min_clean_ratio"],
        title(params),
        fgsm=optional_frame(data, "fgsm_transfer"),
    )


@drawing
def robustness(data, out, params):
    from simreg.report import attack_figures

    noise = data.get("noise")
    attack_figures.plot_robustness(
        out,
        title(params),
        fgsm=data["fgsm_transfer"],
        boundary=data["boundary"],
        noise=noise if noise is not None and len(noise) else None,
    )


@drawing
def noise_examples(data, out, params):
    from simreg.report import noise_figures

    noise_figures.plot_noise_examples(
        data["dataset"][0],
        out,
        params["epsilon"],
        params["noise_clip"],
        params["noise_seed"],
        title(params),
    )


@drawing
def perturbation_spectrum(data, out, params):
    from simreg.evaluate.spectrum import read_spectrum
    from simreg.report import attack_figures

    attack_figures.plot_perturbation_spectrum(
        [read_spectrum(f) for f in data["spectrum"]], out, title(params)
    )


@drawing
def neural_pixel_similarity(data, out, params):
    from simreg.report import similarity_figures

    files = list(data["similarity_targets"])
    pairs = list(zip(files[0::2], files[1::2]))  # (pixel, neural) per regularization set
    similarity_figures.plot_neural_pixel_similarity(pairs, out, title(params))


@drawing
def minimal_distance(data, out, params):
    from simreg.report import attack_figures

    attack_figures.plot_minimal_distance(data["minimal_distance"], out, title(params))


@drawing
def corruption_severity(data, out, params):
    from simreg.report import corruption_figures

    corruption_figures.plot_corruption_severity(data["corruption_accuracy"], out, title(params))


@drawing
def corruption_types(data, out, params):
    from simreg.report import corruption_figures

    corruption_figures.plot_corruption_types(
        data["corruption_accuracy"], out, title(params), params.get("severity", 4)
    )


@drawing
def corruption_frequency(data, out, params):
    from simreg.report import corruption_figures

    corruption_figures.plot_corruption_frequency(
        data["corruption_accuracy"], out, title(params), params.get("severity", 4)
    )


@drawing
def robustbench_comparison(data, out, params):
    from simreg.report import corruption_figures

    corruption_figures.plot_robustbench_comparison(
        data["corruption_accuracy"],
        data["robustbench"],
        out,
        title(params),
        params.get("severity", 5),
    )


@drawing
def corruption_spectra(data, out, params):
    from simreg.report import corruption_figures

    (path,) = data["corrupted_set"]
    corruption_figures.plot_corruption_spectra(path, out, title(params), params.get("severity", 3))


# ---- tables -------------------------------------------------------------------------------
@drawing
def alpha_threshold_table(data, out, params):
    attack = params["noise"]
    tables.write_table(
        tables.alpha_threshold_table(
            data["noise"],
            attack,
            params["epsilons"][attack],
            params["min_clean_ratio"],
            fgsm=optional_frame(data, "fgsm_transfer"),
        ),
        out,
    )


@drawing
def gamma_table(data, out, params):
    tables.write_table(tables.gamma_table(data["metrics"]), out)


@drawing
def results_table(data, out, params):
    tables.write_table(tables.results_table(data["noise"], data["metrics"]), out)


@drawing
def models_table(data, out, params):
    tables.write_table(
        tables.models_table(
            data["noise"],
            data["metrics"],
            fgsm=data["fgsm_transfer"],
            boundary=data["boundary"],
            whitebox=data["whitebox"],
            minimal_distance=data["minimal_distance"],
        ),
        out,
    )


@drawing
def whitebox_table(data, out, params):
    tables.write_table(tables.whitebox_table(data["whitebox"]), out)


# ---- related defenses (issue #13) -----------------------------------------------------------
def _defense_frames(data) -> dict:
    return {
        "noise": data["noise"],
        "metrics": data["metrics"],
        "fgsm": data["fgsm_transfer"],
        "boundary": data["boundary"],
        "whitebox": data["whitebox"],
        "minimal_distance": data["minimal_distance"],
        "eigenspectrum": data.get("eigenspectrum"),
        "sensitivity": data.get("sensitivity"),
        "lrc": data.get("lrc_noise"),
        "corruptions": data.get("corruption_accuracy"),
    }


@drawing
def defense_comparison(data, out, params):
    from simreg.report import defenses

    defenses.plot_defense_comparison(
        defenses.defense_per_model(**_defense_frames(data)), out, title(params)
    )


@drawing
def defenses_table(data, out, params):
    from simreg.report import defenses

    tables.write_table(defenses.defense_table(**_defense_frames(data)), out)


@drawing
def attack_auc_table(data, out, params):
    from simreg.report import defenses

    tables.write_table(
        defenses.attack_auc_table(
            noise=data["noise"], fgsm=data["fgsm_transfer"], whitebox=data["whitebox"]
        ),
        out,
    )


@drawing
def lrc_accuracy(data, out, params):
    from simreg.report import defenses

    defenses.plot_lrc_accuracy(data["lrc_noise"], out, title(params))


@drawing
def robustness_vs_exponent(data, out, params):
    from simreg.report import defenses

    per_model = defenses.at_largest(
        data["whitebox"].query("attack == 'pgd_linf'"), "epsilon_255", "accuracy", "pgd_accuracy"
    )
    noise = data["noise"]
    per_model = per_model.merge(
        defenses.at_largest(
            noise[noise["noise"] == "gaussian"], "epsilon", "accuracy", "noise_accuracy"
        ),
        on=defenses.MODEL_KEYS,
        how="outer",
    )
    exponent = (
        defenses.normalize_keys(data["eigenspectrum"])
        .groupby(defenses.MODEL_KEYS, dropna=False)["exponent"]
        .first()
        .reset_index()
    )
    defenses.plot_robustness_vs_exponent(
        per_model.merge(exponent, on=defenses.MODEL_KEYS), out, title(params)
    )
