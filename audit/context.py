"""What a rule sees: the submission, options, and lazily computed shared facts (parse, logs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from audit.analysis.parse import ParsedModule, parse_file
from audit.submission import Submission


@dataclass
class Options:
    """Command-line options that rules may read."""

    sota: str | None = None  # --sota FILE|DIR: reference run set for significance tests
    strict_code_count: bool = False
    as_of: str | None = None  # --as-of YYYY-MM-DD: judge under the rulings made by then (audit/enforcement.py)


@dataclass
class AuditContext:
    submission: Submission
    options: Options = field(default_factory=Options)
    _parsed: dict[str, ParsedModule] = field(default_factory=dict)
    _cache: dict[str, Any] = field(default_factory=dict)
    # Free-form results that rules share with the report (per-seed table, statistics, facts).
    runs_table: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)

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
