"""Findings, verdicts and reports: the vocabulary every part of the auditor speaks.

A finding must point at something a reviewer can open (a file and a line) and carry the chain
of evidence that proves it, so that it can be explained to the submitter in one paragraph.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Severity(str, Enum):
    """error: a maintainer ruled it illegal; warning: contested or de-facto; info: a note."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"error": 2, "warning": 1, "info": 0}[self.value]


class Verdict(str, Enum):
    PASS = "PASS"
    REVIEW = "REVIEW"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Evidence:
    """One link of an evidence chain: what was seen, and where."""

    label: str
    path: str | None = None
    line: int | None = None
    excerpt: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "path": self.path, "line": self.line, "excerpt": self.excerpt}

    def __str__(self) -> str:
        where = f"{self.path or ''}:{self.line}" if self.line else (self.path or "")
        text = f"{self.label} ({where})" if where else self.label
        return f"{text}: {self.excerpt}" if self.excerpt else text


@dataclass(frozen=True)
class Finding:
    """A rule's verdict on one place in a submission."""

    rule_id: str
    severity: Severity
    message: str
    path: str | None = None
    line: int | None = None
    end_line: int | None = None
    evidence: tuple[Evidence, ...] = ()
    # A stable key for the fingerprint (e.g. a function name); defaults to the message, so
    # that moving code up or down a file does not change a finding's identity.
    key: str | None = None
    source: str | None = None  # where RULES.md grounds the rule (URL or "README")

    @property
    def fingerprint(self) -> str:
        basis = "\x1f".join([self.rule_id, self.path or "", self.key or self.message])
        # surrogatepass: a non-UTF-8 file name (surrogate-escaped) must not make hashing raise
        return hashlib.sha256(basis.encode("utf-8", "surrogatepass")).hexdigest()[:16]

    def sort_key(self) -> tuple:
        return (-self.severity.rank, self.path or "", self.line or 0, self.rule_id, self.message)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "severity": self.severity.value,
            "path": self.path,
            "line": self.line,
            "end_line": self.end_line,
            "message": self.message,
            "evidence": [e.to_dict() for e in self.evidence],
            "source": self.source,
            "fingerprint": self.fingerprint,
        }


@dataclass(frozen=True)
class AuditError:
    """Something the auditor itself could not do (a rule crashed): not a judgement on the submission."""

    where: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"where": self.where, "message": self.message}


def verdict_for(findings: list[Finding]) -> Verdict:
    """FAIL on any error, REVIEW on warnings only, PASS otherwise (DESIGN.md "Verdicts")."""
    severities = {f.severity for f in findings}
    if Severity.ERROR in severities:
        return Verdict.FAIL
    if Severity.WARNING in severities:
        return Verdict.REVIEW
    return Verdict.PASS


@dataclass
class Report:
    """Everything the auditor concluded about one submission folder."""

    target: str
    findings: list[Finding] = field(default_factory=list)
    errors: list[AuditError] = field(default_factory=list)
    # Per-seed table and statistics, filled by the meta rules / harness (plain JSON-able data).
    runs: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> Verdict:
        return verdict_for(self.findings)

    def sorted_findings(self) -> list[Finding]:
        return sorted(self.findings, key=Finding.sort_key)

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in Severity}
        for f in self.findings:
            out[f.severity.value] += 1
        return out
