"""Audit many folders: each in a fresh worker process, `jobs` at a time, results in input order.

A folder's analysis builds large trees and caches; in a worker that exits after the folder
(`maxtasksperchild=1`) they die with it, so memory stays flat however many folders are given, and
the output for a folder is exactly what a run on that folder alone prints. Workers are forked:
they start with the rules already imported, so a folder costs no interpreter start-up.
"""

from __future__ import annotations

import multiprocessing
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from audit.context import Options
    from audit.report.model import TargetResult
    from audit.rule import Rule


@dataclass(frozen=True)
class Job:
    """What every folder is audited with (inherited by forked workers, not pickled)."""

    rules: tuple[type[Rule], ...]
    options: Options
    select: tuple[str, ...]
    ignore: tuple[str, ...]


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def audit_folders(targets: list[Path], job: Job, jobs: int | None = None) -> list[TargetResult]:
    """One TargetResult per folder, in the order given."""
    jobs = default_jobs() if jobs is None else jobs
    if len(targets) <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return [audit_folder(path, job) for path in targets]
    import audit.engine  # noqa: F401 - imported once here, so no forked worker pays for it
    import audit.report.model  # noqa: F401

    global _JOB
    _JOB = job
    ctx = multiprocessing.get_context("fork")
    # Largest folders first (their size predicts their cost), so that no big folder starts last
    # and leaves the other workers idle; results go back to the input order.
    order = sorted(range(len(targets)), key=lambda i: -_weight(targets[i]))
    results: list[TargetResult | None] = [None] * len(targets)
    with ctx.Pool(processes=min(jobs, len(targets)), maxtasksperchild=1) as pool:
        try:
            for i, result in pool.imap_unordered(_audit_in_worker, [(i, str(targets[i])) for i in order]):
                results[i] = result
            return [r for r in results if r is not None]
        except KeyboardInterrupt:
            pool.terminate()
            raise
        finally:
            _JOB = None


def audit_folder(path: Path, job: Job) -> TargetResult:
    """A folder's report (findings filtered by --select/--ignore) and its excerpts."""
    from audit.engine import audit_submission
    from audit.report.model import TargetResult, build_excerpts
    from audit.selection import wanted
    from audit.submission import Submission

    submission = Submission.load(path)
    report = audit_submission(submission, job.options, rules=job.rules)
    report.target = str(path)
    report.findings = [f for f in report.findings if wanted(f.rule_id, job.select, job.ignore)]
    return TargetResult(report, excerpts=build_excerpts(submission, report.findings))


_JOB: Job | None = None


def _audit_in_worker(task: tuple[int, str]) -> tuple[int, TargetResult]:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and ends the pool
    assert _JOB is not None
    index, path = task
    return index, audit_folder(Path(path), _JOB)


def _weight(folder: Path) -> int:
    """Bytes of the folder's top two levels of files (cheap; no symlink followed)."""
    total = 0
    try:
        for entry in os.scandir(folder):
            if entry.is_file(follow_symlinks=False):
                total += entry.stat(follow_symlinks=False).st_size
            elif entry.is_dir(follow_symlinks=False):
                total += sum(e.stat(follow_symlinks=False).st_size for e in os.scandir(entry.path)
                             if e.is_file(follow_symlinks=False))
    except OSError:
        pass
    return total
