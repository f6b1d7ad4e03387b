"""The metadata rules' verdicts against the maintainers' on the real-PR corpus (bench/accuracy.py).

Runs only where the corpus laid out by bench/corpus.py exists ($PGOLF_CORPUS, default /work/corpus);
nothing of it is in the repository. The quick test runs the metadata rules alone (seconds) and
checks the targets they own: no error on a legal dev PR; on the folders merged on main (each
accepted), no error outside the objective exceptions (a log's own total over 16,000,000 bytes, a
claim no log supports), and at most one such folder per track; the over-eval-time PR caught. The
slow test runs every rule and checks the dev recall target (>= 21 of 22 with the right class).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("bench_accuracy", ROOT / "bench" / "accuracy.py")
assert _spec is not None and _spec.loader is not None
accuracy = importlib.util.module_from_spec(_spec)
sys.modules["bench_accuracy"] = accuracy
_spec.loader.exec_module(accuracy)

CORPUS = accuracy.corpus_dir([])
pytestmark = pytest.mark.skipif(not (CORPUS / "dev.tsv").is_file() or not (CORPUS / "head").is_dir(),
                                reason="real-PR corpus not on this machine")


@pytest.fixture(scope="module")
def meta_only():
    dates = accuracy.landed(CORPUS)
    dev = [accuracy.audit(r, kinds=("meta",)) for r in accuracy.dev_rows(CORPUS, dates)]
    merged = [accuracy.audit(r, kinds=("meta",)) for r in accuracy.merged_rows(CORPUS, dates)]
    return dev, merged


def test_no_meta_error_on_legal_dev_prs(meta_only):
    dev, _ = meta_only
    assert not [r.crashed for r in dev if r.crashed]
    bad = [(r.name, f.rule_id, f.message[:120]) for r in dev if r.verdict == "legal" for f in r.errors]
    assert not bad, bad


def test_over_eval_time_pr_caught(meta_only):
    dev, _ = meta_only
    rows = [r for r in dev if "over_eval_time" in r.classes]
    assert rows and all(r.caught("over_eval_time") for r in rows)


def test_merged_folders_only_objective_exceptions(meta_only):
    _, merged = meta_only
    assert not [r.crashed for r in merged if r.crashed]
    disagreements = [(r.name, f.rule_id, f.message[:120]) for r in merged for f in accuracy.split_merged(r)[1]]
    assert not disagreements, disagreements
    exception_folders = [r for r in merged if accuracy.split_merged(r)[0]]
    tracks = [r.track for r in exception_folders]
    assert len(exception_folders) <= 2 and len(set(tracks)) == len(tracks), [r.name for r in exception_folders]


@pytest.mark.slow
def test_dev_recall_all_rules():
    dates = accuracy.landed(CORPUS)
    dev = [accuracy.audit(r) for r in accuracy.dev_rows(CORPUS, dates)]
    s = accuracy.summarise(dev, [])
    assert s.dev_illegal == 0 or s.dev_caught >= s.dev_illegal - 1, (s.dev_caught, s.dev_illegal)
    assert s.dev_legal_with_error == 0, [(r.name, f.rule_id) for r in dev if r.verdict == "legal" for f in r.errors]
