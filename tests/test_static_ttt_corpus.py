"""Regression over the labelled dev corpus (when present): the TTT / val-data rules against the
maintainers' verdicts in /work/corpus/dev.tsv.

Targets (issue 3): every PR of an illegal TTT class gets an error of its class; no legal PR gets
an error from these rules; contested SLOT PRs get warnings, not errors. Skipped where the corpus
is not on disk (it is never copied into the repository).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from audit.engine import audit_submission
from audit.findings import Severity
from audit.registry import rule_by_id
from audit.submission import Submission

CORPUS = Path(os.environ.get("PGOLF_CORPUS", "/work/corpus"))
RULE_IDS = ["R-TTT-PREQUANT", "R-TTT-SCORE-FIRST", "R-TTT-NO-RESCORE", "R-GPTQ-CALIB",
            "R-DATA-NO-VAL-IN-TRAINING", "R-SLOT", "R-TTT-WARMUP-ON-VAL"]
# class -> (rule IDs that count as catching it, severity they must have)
CLASSES = {
    "prequant_ttt_val": ({"R-TTT-PREQUANT"}, Severity.ERROR),
    "score_after_update": ({"R-TTT-SCORE-FIRST", "R-TTT-PREQUANT", "R-TTT-NO-RESCORE"}, Severity.ERROR),
    "slot": ({"R-SLOT"}, Severity.WARNING),
    "slot_causal": ({"R-SLOT"}, Severity.WARNING),
    "warmup_on_val_disputed": ({"R-TTT-WARMUP-ON-VAL"}, Severity.WARNING),
}

pytestmark = pytest.mark.skipif(not (CORPUS / "dev.tsv").is_file(), reason="dev corpus not on this machine")


def _rows() -> list[dict[str, str]]:
    if not (CORPUS / "dev.tsv").is_file():
        return []
    with open(CORPUS / "dev.tsv", encoding="utf-8") as f:
        return [r for r in csv.DictReader(f, delimiter="\t") if _folder(r) is not None]


def _folder(row: dict[str, str]) -> Path | None:
    """The PR's folder at its real path: dev/pr<N>/records/<track>/<date>_<name> (bench/corpus.py)."""
    folder = CORPUS / "dev" / f"pr{row['pr']}" / row["submission_dir"]
    return folder if folder.is_dir() else None


@pytest.mark.parametrize("row", _rows(), ids=lambda r: f"pr{r['pr']}-{r['verdict']}")
def test_dev_pr(row):
    rules = [rule_by_id(r) for r in RULE_IDS]
    report = audit_submission(Submission.load(_folder(row)), rules=rules, kinds=("static",))
    assert not report.errors, report.errors
    mine = [f for f in report.findings if f.rule_id in RULE_IDS]
    classes = row["classes"].split(",")
    for cls in classes:
        if cls in CLASSES:
            ids, severity = CLASSES[cls]
            assert any(f.rule_id in ids and f.severity == severity for f in mine), (cls, mine)
    if row["verdict"] in {"legal", "contested"}:
        errors = [(f.rule_id, f.path, f.line) for f in mine if f.severity == Severity.ERROR]
        assert not errors, errors
