"""What a rule sees: the submission, options, the parsed seed runs, and lazily computed shared facts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from audit.analysis.parse import ParsedModule, parse_file
from audit.submission import Submission

if TYPE_CHECKING:
    from audit.claims import Claims
    from audit.logs import SeedRun

RULE_TIMEOUT_S = 120.0  # one rule on one folder; real folders need well under a second per rule
FOLDER_BUDGET_S = 600.0  # all rules of one folder together


@dataclass
class Options:
    """Command-line options and CLI-provided facts that rules may read."""

    sota: str | None = None  # --sota FILE|DIR: reference run set for significance tests
    strict_code_count: bool = False
    # --changed-since: the PR's changed files as (git status letter, repository-relative POSIX path)
    changed_files: tuple[tuple[str, str], ...] | None = None
    rule_timeout: float = RULE_TIMEOUT_S
    folder_budget: float = FOLDER_BUDGET_S
    as_of: str | None = None  # --as-of YYYY-MM-DD: judge under the rulings made by then (audit/enforcement.py)


@dataclass
class AuditContext:
    submission: Submission
    options: Options = field(default_factory=Options)
    _parsed: dict[str, ParsedModule] = field(default_factory=dict)
    _cache: dict[str, Any] = field(default_factory=dict)
    # What the report shows besides findings. The engine fills the seed table and the statistics
    # before the rules run (audit.run_stats); rules read them.
    runs_table: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def runs(self) -> list[SeedRun]:
        """Every training log of the folder parsed once, in path order (the engine does it first)."""
        from audit.logs import parse_submission_logs

        return self.memo("runs", lambda: parse_submission_logs(self.submission))

    @property
    def claims(self) -> Claims | None:
        """submission.json normalised by audit.claims (None when absent or unreadable); shared with
        audit.seeds.submission_claims, so analysis reads it here without importing a higher floor."""
        from audit.claims import Claims

        data = self.submission.json_data
        return self.memo("seeds.claims", lambda: Claims.from_json(data) if data is not None else None)

    def parsed(self, path: str) -> ParsedModule:
        """The one parse of a code file (by relative path)."""
        if path not in self._parsed:
            self._parsed[path] = parse_file(self.submission.code[path])
        return self._parsed[path]

    def memo(self, key: str, compute):
        """Compute a shared fact once per submission (e.g. the log parse, the taint analysis)."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def release(self) -> None:
        """Drop the memoised facts and parses once the folder's report is built. Some facts hold
        closures over this context (a lazily computed code size), a reference cycle that would
        leave the folder's trees to the garbage collector to trace; cleared, they are freed at
        once. The report keeps what it shows (`runs_table`, `stats`, `facts`)."""
        self._cache.clear()
        self._parsed.clear()
