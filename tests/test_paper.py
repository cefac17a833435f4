"""The paper registry (simreg.report.paper): complete against the papers' captions, in step
with the targets registry, and rendered into docs/paper.md."""

import re
from pathlib import Path

import pandas as pd
import pytest

from simreg.report.paper import (
    PAPER_ITEMS,
    STATUSES,
    checked_cell,
    claim_items,
    item_claims,
    item_number,
    paper_markdown,
)
from simreg.report.targets import ATTIAS, LI, TARGETS

ROOT = Path(__file__).resolve().parents[1]
PAPERS_DIR = ROOT.parent / "shared" / "papers"  # shared/ sits beside the checkout
PAPER_FILES = {ATTIAS: "attias2024-brain-inspired-regularizer.txt", LI: "li2019-supplement.txt"}
CAPTION = re.compile(r"^\s*(Figure|Table) (\d+):", re.MULTILINE)

# targets.py names the wrong paper items for these targets; paper.py holds the right ones.
# Once targets.py is fixed the test passes unexpectedly (strict): drop the entry then.


def test_docs_paper_md_is_current():
    text = (ROOT / "docs" / "paper.md").read_text(encoding="utf-8")
    assert text == paper_markdown(), (
        "docs/paper.md is stale: run `python -m simreg.report.paper > docs/paper.md`"
    )


def test_item_targets_exist():
    unknown = {
        (i.paper, i.item, name) for i in PAPER_ITEMS for name in i.targets if name not in TARGETS
    }
    assert not unknown


@pytest.mark.parametrize("name", [name for name, target in TARGETS.items() if target.reproduces])
def test_target_listed_under_the_items_it_reproduces(name):
    for paper, item in TARGETS[name].reproduces:
        matches = [
            i for i in PAPER_ITEMS if i.paper == paper and item_number(i.item) == item_number(item)
        ]
        assert matches, f"{name}: no paper item {paper} {item}"
        assert all(name in i.targets for i in matches), f"{name} missing under {paper} {item}"


@pytest.mark.parametrize("paper", sorted(PAPER_FILES))
def test_items_are_the_captions_of_the_paper(paper):
    path = PAPERS_DIR / PAPER_FILES[paper]
    if not path.exists():
        pytest.skip(f"paper text {path} absent (shared/ is not beside the checkout)")
    kind = {"Figure": "Fig.", "Table": "Table"}
    captions = [f"{kind[k]} {n}" for k, n in CAPTION.findall(path.read_text(encoding="utf-8"))]
    assert captions, f"no captions found in {path}"
    assert [i.item for i in PAPER_ITEMS if i.paper == paper] == captions


def test_status_and_missing():
    assert {i.paper for i in PAPER_ITEMS} == set(PAPER_FILES)
    for i in PAPER_ITEMS:
        assert i.status in STATUSES, i
        assert i.missing or i.status == "drawn", f"{i.paper} {i.item}: say what is missing"
        assert i.targets or i.status == "not yet", f"{i.paper} {i.item}: no target to rebuild it"


def test_beyond_items_name_existing_targets_without_a_paper_item():
    from simreg.report.paper import BEYOND_ITEMS

    for item in BEYOND_ITEMS:
        assert item.targets and all(name in TARGETS for name in item.targets), item
        assert all(not TARGETS[name].reproduces for name in item.targets), item


def test_claims_are_listed_under_the_items_they_check():
    assert claim_items("Figs. 8–9") == {("Fig.", 8), ("Fig.", 9)}
    assert claim_items("Fig. 3 left, Fig. 4") == {("Fig.", 3), ("Fig.", 4)}
    by_item = {(i.paper, i.item): item_claims(i) for i in PAPER_ITEMS}
    assert by_item[(ATTIAS, "Fig. 3")] == ["C1", "C2", "C3", "C7"]
    assert by_item[(ATTIAS, "Table 2")] == ["C4"]
    assert by_item[(ATTIAS, "Fig. 11")] == []


def test_reproduced_only_where_every_claim_holds_on_the_reference_run():
    fig3 = next(i for i in PAPER_ITEMS if i.paper == ATTIAS and i.item == "Fig. 3")
    assert checked_cell(fig3, {}) == "not yet (C1, C2, C3, C7)"
    holds = {c: "holds" for c in ("C1", "C2", "C3", "C7")}
    assert checked_cell(fig3, holds).startswith("**reproduced**")
    assert checked_cell(fig3, {**holds, "C3": "inconclusive"}).startswith("**checked**")
    # the committed page: an item is reproduced only where the committed run says so
    from simreg.report.paper import CHECKED

    rows = [
        line
        for line in paper_markdown().splitlines()
        if line.startswith("| Fig.") or line.startswith("| Table")
    ]
    reproduced = [row for row in rows if "reproduced" in row]
    assert rows and all(
        CHECKED.get(c) == "holds"
        for row in reproduced
        for c in re.findall(r"\b(C\d) ", row.split("|")[-2])
    )


def test_reference_verdicts_summarize_the_committed_table(tmp_path):
    """Per claim: the common verdict of its rows at the config's pair pass, "k of n hold"
    where they differ; the other pair pass's rows and not-run rows do not count."""
    from simreg.report.paper import reference_verdicts

    path = tmp_path / "claims.csv"
    pd.DataFrame(
        {
            "claim": ["C1", "C1", "C1", "C2", "C2", "C3"],
            "comparison": ["a", "b", "a [fused pair pass]: x", "c", "d", "e"],
            "verdict": ["holds", "inconclusive", "holds", "holds", "holds", "not run"],
        }
    ).to_csv(path, index=False)
    assert reference_verdicts(path) == {"C1": "1 of 2 hold", "C2": "holds"}
    assert reference_verdicts(tmp_path / "none.csv") == {}


def test_readme_lists_the_registries_outputs():
    """README's outputs table holds the rows written from the registries (`python -m
    simreg.report.paper --readme`), once each, and no other figures or tables row."""
    from simreg.report.paper import readme_outputs

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = readme_outputs()
    assert rows in readme, "README is stale: paste `python -m simreg.report.paper --readme`"
    for row in rows.splitlines():
        assert readme.count(row.split(" | ")[0] + " |") == 1, row[:60]
    assert all(f"`{name}`" in rows for name in TARGETS)
