"""Every rule's inline VALID / INVALID examples, run through the real engine (the Fixit habit)."""

from __future__ import annotations

import pytest

from audit.context import Options
from audit.engine import audit_submission
from audit.findings import Severity
from audit.registry import all_rules
from audit.rule import Invalid, Valid, example_files, expected_location
from audit.submission import Submission


def _cases():
    for rule in all_rules():
        for i, ex in enumerate(rule.VALID):
            yield pytest.param(rule, ex, id=f"{rule.ID}-VALID-{i}")
        for i, ex in enumerate(rule.INVALID):
            yield pytest.param(rule, ex, id=f"{rule.ID}-INVALID-{i}")


def test_every_rule_has_examples():
    for rule in all_rules():
        assert rule.VALID and rule.INVALID, f"{rule.ID} needs inline VALID and INVALID examples"
        assert rule.SOURCE, f"{rule.ID} must cite its source in RULES.md"


def test_every_invalid_example_states_where_it_is_reported():
    """Line-exact expectations (semgrep's `# ruleid:` habit): an INVALID example says which file
    and line its finding points at, and a `line="text"` is on exactly one line of that file."""
    unstated = []
    for rule in all_rules():
        for i, ex in enumerate(rule.INVALID):
            try:
                expected_location(ex)
            except ValueError as exc:
                unstated.append(f"{rule.ID} INVALID[{i}] ({ex.note}): {exc}")
    assert not unstated, "\n".join(unstated)


@pytest.mark.parametrize("rule,example", list(_cases()))
def test_example(rule, example):
    sub = Submission.from_files(example_files(example))
    report = audit_submission(sub, Options(**(example.options or {})), rules=[rule], kinds=(rule.KIND,))
    assert not report.errors, report.errors
    if isinstance(example, Valid):
        loud = [f for f in report.findings
                if f.severity != Severity.INFO and f.rule_id in (rule.ID, *rule.ALSO_REPORTS)]
        assert not loud, f"{example.note}: unexpected {[(f.rule_id, f.line, f.message) for f in loud]}"
    else:
        assert isinstance(example, Invalid)
        want = example.rule_id or rule.ID
        hits = [f for f in report.findings if f.rule_id == want]
        assert hits, f"{example.note}: expected a {want} finding, got " \
                     f"{[(f.rule_id, f.line, f.message) for f in report.findings]}"
        where = expected_location(example)
        assert any((f.path, f.line) == where for f in hits), \
            f"{example.note}: expected a {want} finding at {where}, got {[(f.path, f.line) for f in hits]}"
        if example.severity is not None:
            assert any(f.severity == example.severity for f in hits), [f.severity for f in hits]
