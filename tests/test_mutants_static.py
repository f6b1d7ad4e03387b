"""The static legality rules on the mutation test-bed (fixtures/mutants), every shape, no probe.

Each illegal behaviour must be reported by its own rule family in all seven shapes (renamed,
helper, method, closure, functools.partial, second module), and no legal evaluator may get an
error or a warning from these rules: the static reading follows provenance, not names.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audit.commands.batch import Job, audit_folder
from audit.commands.check import select_rules
from audit.context import Options

MUTANTS = Path(__file__).resolve().parents[1] / "fixtures" / "mutants"
# The rules about evaluation legality (the mutants ship no logs, so meta rules are left out).
LEGALITY = ("R-TTT", "R-EVAL-C", "R-NGRAM", "R-SLOT", "R-GPTQ", "R-PPM", "R-DATA-NO-VAL", "R-METRIC-BPB", "R-BOS")
# behaviour -> rule-ID prefixes that name its violation
FAMILY = {
    "gptq_on_val": ("R-GPTQ-CALIB",),
    "multi_epoch_ttt": ("R-TTT-SCORE-FIRST",),
    "ngram_update_first": ("R-EVAL-C3-SCORE-BEFORE-UPDATE",),
    "prequant_ttt": ("R-TTT-PREQUANT",),
    "rescore_after_ttt": ("R-TTT-PREQUANT", "R-TTT-NO-RESCORE"),
    "score_after_update": ("R-TTT-SCORE-FIRST",),
    "slot": ("R-SLOT",),
    "target_gated_expert": ("R-NGRAM-CACHE.oracle-gate", "R-EVAL-C1"),
    "target_keyed_hash": ("R-NGRAM-CACHE", "R-EVAL-C1"),
    "unnormalised_ratio": ("R-EVAL-C2",),
}
EXPECTED = json.loads((MUTANTS / "expected.json").read_text())


def _loud(folder: Path) -> list[tuple[str, str]]:
    job = Job(tuple(select_rules(list(LEGALITY), [])), Options(), LEGALITY, ())
    report = audit_folder(folder, job).report
    assert not report.errors, report.errors
    return [(f.rule_id, f.severity.value) for f in report.findings if f.severity.value in ("error", "warning")]


@pytest.mark.parametrize("name", sorted(n for n, e in EXPECTED.items() if not e["legal"]))
def test_illegal_mutant_is_reported_by_its_rule(name):
    behaviour = EXPECTED[name]["behaviour"]
    loud = _loud(MUTANTS / name)
    family = FAMILY[behaviour]
    hits = [r for r, _ in loud if r.startswith(family)]
    assert hits, f"{name}: expected a finding from {family}, got {loud}"
    if behaviour != "slot":  # R-SLOT is a warning (no maintainer ruling); every other one is an error
        assert any(r.startswith(family) and sev == "error" for r, sev in loud), loud


@pytest.mark.parametrize("name", sorted(n for n, e in EXPECTED.items() if e["legal"] and e["bytes_ok"]))
def test_legal_mutant_is_clean(name):
    assert _loud(MUTANTS / name) == []
