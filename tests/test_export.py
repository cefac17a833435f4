"""`simreg export` (simreg.report.export): a finished run's claims report and figures copied
out of results/ with a README saying how they were made, and nothing else of results/."""

from __future__ import annotations

from pathlib import Path

import pytest

from simreg.cli import main
from simreg.report.export import MAX_BYTES, export_run

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def planned() -> set[str]:
    """The benchmark files that configs/quick.yaml's DAG plans (snakemake -n)."""
    from simreg.plan import planned_benchmarks

    return planned_benchmarks(ROOT, [ROOT / "configs/quick.yaml"])


def fake_run(results: Path, planned: set[str]) -> None:
    """A results tree of configs/quick.yaml's shape: the claims outputs, one figure drawn
    (PNG, PDF, data), a checkpoint that must not leave, and benchmark files of planned jobs
    (among them the FGSM source's training and the FGSM perturbations, jobs of no figure's
    model grid) and of another config's job."""
    (results / "tables").mkdir(parents=True)
    (results / "figures").mkdir()
    (results / "claims.md").write_text("# Claims\n")
    (results / "tables" / "claims.csv").write_text("claim,verdict\nC1,holds\n")
    for suffix in (".png", ".pdf", ".data.csv"):
        (results / "figures" / f"noise_accuracy{suffix}").write_text("x")
    (results / "checkpoints").mkdir()
    (results / "checkpoints" / "last.pt").write_text("weights")
    trainings = sorted(p for p in planned if p.startswith("train/"))
    source = next(p for p in trainings if p.endswith("/seed100.tsv"))
    evaluations = sorted(p for p in planned if p.startswith("evaluate_model/"))[0]
    perturbations = sorted(p for p in planned if p.startswith("fgsm_perturbations/"))[0]
    other = "train/train/other/x/none/a0/seed9.tsv"
    assert other not in planned
    for path, seconds in (
        (trainings[0], 90.0),
        (source, 30.0),
        (evaluations, 6.0),
        (perturbations, 12.0),
        (other, 60.0),
    ):
        path = results / "benchmarks" / path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"s\th:m:s\tcpu_time\n{seconds}\t0:00:00\t{seconds / 2}\n")


def test_export_copies_the_report_and_drawn_figures_only(tmp_path, monkeypatch, planned):
    results, out = tmp_path / "run" / "results", tmp_path / "report"
    fake_run(results, planned)
    monkeypatch.chdir(ROOT)
    main(
        [
            "export",
            "--to",
            str(out),
            "--configfile",
            "configs/quick.yaml",
            "--results",
            str(results),
            "--command",
            "snakemake results/claims.md",
            "--wall",
            "12 min",
            "--machine",
            "2 CPU cores",
        ]
    )
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "README.md",
        "claims.csv",
        "claims.md",
        "noise_accuracy.data.csv",
        "noise_accuracy.png",
    ]
    readme = (out / "README.md").read_text()
    assert "`snakemake results/claims.md`" in readme and "12 min" in readme
    # per rule: jobs, CPU then wall minutes; every planned job counts (the FGSM source's
    # training and the perturbations too), the other config's training does not
    assert "| train | 2 | 1.0 | 2.0 |" in readme and "| evaluate_model | 1 | 0.1 | 0.1 |" in readme
    assert "| fgsm_perturbations | 1 | 0.1 | 0.2 |" in readme
    assert "commit: `unknown`" in readme  # the fake run is not in a git checkout


def test_export_refuses_a_report_too_large_to_commit(tmp_path, planned):
    from simreg.config import load_config

    results = tmp_path / "results"
    fake_run(results, planned)
    (results / "figures" / "noise_accuracy.png").write_bytes(b"0" * (MAX_BYTES + 1))
    config = load_config(ROOT / "config.yaml", ROOT / "configs/quick.yaml")
    with pytest.raises(ValueError, match="over the"):
        export_run(config, results, tmp_path / "report", "c", "w", "m")
    assert not (tmp_path / "report").exists()


def test_export_without_a_claims_report_names_it(tmp_path):
    from simreg.config import load_config

    config = load_config(ROOT / "config.yaml", ROOT / "configs/quick.yaml")
    with pytest.raises(FileNotFoundError, match="claims.md"):
        export_run(config, tmp_path / "results", tmp_path / "report", "c", "w", "m")
