"""Run the rules over a submission and collect a Report. A crashing rule is an AuditError, not a crash."""

from __future__ import annotations

import traceback
from collections.abc import Iterable

from audit.analysis.execution import with_execution_state
from audit.context import AuditContext, Options
from audit.findings import AuditError, Finding, Report
from audit.registry import all_rules
from audit.rule import Rule
from audit.submission import Submission


def run_rules(ctx: AuditContext, rules: Iterable[type[Rule]]) -> tuple[list[Finding], list[AuditError]]:
    findings: list[Finding] = []
    errors: list[AuditError] = []
    for rule_cls in rules:
        try:
            found = list(rule_cls().check(ctx))
        except Exception as exc:  # noqa: BLE001 - one broken rule must not hide the others
            tb = traceback.extract_tb(exc.__traceback__)[-1]
            errors.append(AuditError(rule_cls.ID, f"{type(exc).__name__}: {exc} (at {tb.filename}:{tb.lineno})"))
            continue
        if rule_cls.KIND == "static":  # did the flagged code run? (DESIGN.md "Execution evidence")
            try:
                found = with_execution_state(ctx, found)
            except Exception as exc:  # noqa: BLE001 - keep the rule's findings as they are
                tb = traceback.extract_tb(exc.__traceback__)[-1]
                errors.append(AuditError(f"{rule_cls.ID} execution state",
                                         f"{type(exc).__name__}: {exc} (at {tb.filename}:{tb.lineno})"))
        findings.extend(found)
    return findings, errors


def audit_submission(
    submission: Submission,
    options: Options | None = None,
    rules: Iterable[type[Rule]] | None = None,
    kinds: tuple[str, ...] = ("static", "meta"),
) -> Report:
    ctx = AuditContext(submission, options or Options())
    selected = [r for r in (rules if rules is not None else all_rules()) if r.KIND in kinds]
    findings, errors = run_rules(ctx, selected)
    report = Report(
        target=str(submission.root) if submission.root is not None else submission.name,
        findings=_dedupe(findings),
        errors=errors,
        runs=ctx.runs_table,
        stats=ctx.stats,
        facts=ctx.facts,
    )
    return report


def audit_path(path: str, options: Options | None = None) -> Report:
    return audit_submission(Submission.load(path), options)


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen: set[tuple] = set()
    out = []
    for f in sorted(findings, key=Finding.sort_key):
        k = (f.rule_id, f.path, f.line, f.message)
        if k not in seen:
            seen.add(k)
            out.append(f)
    return out
