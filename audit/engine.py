"""Run the rules over a submission and collect a Report.

The engine, not a rule, prepares what every report shows and several rules read: the parsed seed
runs (on the context before any rule runs), the per-seed table and the statistics
(audit.run_stats). So `--select R-TTT-PREQUANT` still reports the seeds.

A rule that crashes, or runs past its time limit, becomes an AuditError naming the rule, never a
crash or a hang of the whole audit. The per-folder budget (README "Resource limits"): each rule gets
at most `Options.rule_timeout` seconds and the folder's rules together `Options.folder_budget`;
once that is spent the remaining rules are recorded as skipped errors.
"""

from __future__ import annotations

import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

from audit.analysis.execution import with_execution_state
from audit.collector import fewer_collections
from audit.context import AuditContext, Options
from audit.findings import AuditError, Finding, Report
from audit.registry import all_rules
from audit.rule import Rule
from audit.submission import Submission


class RuleTimeout(BaseException):
    """Raised in a rule that ran past its limit. A BaseException: a rule's `except Exception` must not eat it."""


def run_rules(ctx: AuditContext, rules: Iterable[type[Rule]], budget: _Budget | None = None
              ) -> tuple[list[Finding], list[AuditError]]:
    findings: list[Finding] = []
    errors: list[AuditError] = []
    budget = budget or _Budget(ctx.options)
    for rule_cls in rules:
        found: list[Finding] = []
        error = budget.run(rule_cls.ID, partial(_check, rule_cls, ctx, found))
        if error is not None:
            errors.append(error)  # a rule that did not finish in time reports nothing
            continue
        if rule_cls.KIND == "static":  # did the flagged code run? (DESIGN.md "Execution evidence")
            marked: list[Finding] = []
            error = budget.run(f"{rule_cls.ID} execution state", partial(_mark_execution, ctx, found, marked))
            if error is None:
                found = marked
            else:
                errors.append(error)  # keep the rule's findings as they are
        findings.extend(found)
    return findings, errors


def _check(rule_cls: type[Rule], ctx: AuditContext, into: list[Finding]) -> None:
    into.extend(rule_cls().check(ctx))


def _mark_execution(ctx: AuditContext, found: list[Finding], into: list[Finding]) -> None:
    into.extend(with_execution_state(ctx, found))


def audit_submission(
    submission: Submission,
    options: Options | None = None,
    rules: Iterable[type[Rule]] | None = None,
    kinds: tuple[str, ...] = ("static", "meta"),
) -> Report:
    ctx = AuditContext(submission, options or Options())
    selected = [r for r in (rules if rules is not None else all_rules()) if r.KIND in kinds]
    budget = _Budget(ctx.options)  # one per folder: the preparation and every rule draw on it
    with fewer_collections():
        prepared = _prepare(ctx, budget)
        findings, errors = run_rules(ctx, selected, budget)
    report = Report(
        target=str(submission.root) if submission.root is not None else submission.name,
        findings=_dedupe(findings),
        errors=prepared + errors,
        runs=ctx.runs_table,
        stats=ctx.stats,
        facts=ctx.facts,
    )
    ctx.release()  # frees the folder's trees now, not at the collector's next full pass
    return report


def audit_changes(changed_files: tuple[tuple[str, str], ...], target: str,
                  rules: Iterable[type[Rule]] | None = None) -> Report:
    """The PR-level audit of `--changed-since`: the "diff" rules over the changed files (status, path)."""
    ctx = AuditContext(Submission.from_files({}, name=target), Options(changed_files=changed_files))
    selected = [r for r in (rules if rules is not None else all_rules()) if r.KIND == "diff"]
    findings, errors = run_rules(ctx, selected)
    return Report(target=target, findings=_dedupe(findings), errors=errors)


def audit_path(path: str, options: Options | None = None) -> Report:
    return audit_submission(Submission.load(path), options)


def _prepare(ctx: AuditContext, budget: _Budget) -> list[AuditError]:
    """Parse the runs and build the seed table and statistics before any rule runs."""
    from audit.run_stats import fill_report_data

    def prepare() -> None:
        _ = ctx.runs
        fill_report_data(ctx)

    error = budget.run("engine: seed runs and statistics", prepare)
    return [error] if error is not None else []


class _Budget:
    """Per-rule time limits inside one folder's overall budget."""

    def __init__(self, options: Options):
        self.rule_timeout = options.rule_timeout
        self.deadline = time.monotonic() + options.folder_budget if options.folder_budget else None

    def run(self, where: str, work: Callable[[], Any]) -> AuditError | None:
        limit = self.rule_timeout
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                return AuditError(where, "skipped: the folder's time budget is spent (see README, Resource limits)")
            limit = min(limit, left) if limit else left
        timeout = AuditError(where, f"timed out after {limit or 0:.1f} s (per-rule limit; see README, Resource limits)")
        try:
            with _time_limit(limit) as expired:
                work()
            if expired():  # it caught the RuleTimeout itself and finished late
                return timeout
        except RuleTimeout:
            return timeout
        except Exception as exc:  # noqa: BLE001 - one broken rule must not hide the others
            tb = traceback.extract_tb(exc.__traceback__)[-1]
            return AuditError(where, f"{type(exc).__name__}: {exc} (at {tb.filename}:{tb.lineno})")
        return None


@contextmanager
def _time_limit(seconds: float | None) -> Iterator[Callable[[], bool]]:
    """Raise RuleTimeout in this (main) thread after `seconds`; yields "has it expired?".

    No limit off the main thread or where there is no setitimer (Windows).
    """
    fired: list[bool] = []
    if not seconds or seconds <= 0 or not hasattr(signal, "setitimer") \
            or threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return

    def on_alarm(signum: int, frame: Any) -> None:
        fired.append(True)
        raise RuleTimeout

    previous = signal.signal(signal.SIGALRM, on_alarm)
    # Re-fires every second after the limit: code that swallows the first RuleTimeout gets another.
    signal.setitimer(signal.ITIMER_REAL, seconds, 1.0)
    try:
        yield lambda: bool(fired)
    finally:
        while True:  # a re-fire may land here, before the timer is off: disarm again until it is
            try:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)
                break
            except RuleTimeout:
                continue


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen: set[tuple] = set()
    out = []
    for f in sorted(findings, key=Finding.sort_key):
        k = (f.rule_id, f.path, f.line, f.message)
        if k not in seen:
            seen.add(k)
            out.append(f)
    return out
