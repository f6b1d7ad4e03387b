"""What every output format renders: one audited target (a folder, or a PR's diff) and its report.

The renderers get plain data only. Anything they need from the submission itself (code excerpts
for the HTML page) is computed once here, so that a Report stays self-sufficient and no renderer
reads the submission folder again.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from audit.findings import Finding, Report, Verdict
from audit.submission import Submission

TOOL_NAME = "pgolf-audit"
INFORMATION_URI = "https://github.com/openai/parameter-golf"
EXCERPT_CONTEXT = 3  # lines either side of a finding's line
EVIDENCE_CONTEXT = 1  # and of each evidence line (a chain has several)


def tool_version() -> str:
    try:
        return metadata.version(TOOL_NAME)
    except metadata.PackageNotFoundError:
        return "0+unknown"


@dataclass(frozen=True)
class Excerpt:
    """Some lines of a submitted file around `focus` (1-based line numbers)."""

    path: str
    start: int
    lines: tuple[str, ...]
    focus: int
    focus_end: int
    decoded: bool = False  # lines of the statically decoded source of a self-extracting wrapper

    def numbered(self) -> list[tuple[int, str, bool]]:
        return [(self.start + i, text, self.focus <= self.start + i <= self.focus_end)
                for i, text in enumerate(self.lines)]


@dataclass
class TargetResult:
    """One audited target. `kind` is "folder" (a submission) or "diff" (a PR's changed files)."""

    report: Report
    kind: str = "folder"
    excerpts: dict[str, Excerpt] = field(default_factory=dict)
    root: str | None = None  # for kind "diff": the repository the finding paths are relative to

    @property
    def name(self) -> str:
        if self.kind != "folder":
            return f"changes {self.report.target}"
        return Path(self.report.target).resolve().name or self.report.target

    def excerpt_for(self, f: Finding, evidence_index: int | None = None) -> Excerpt | None:
        return self.excerpts.get(excerpt_key(f, evidence_index))

    def file_uri(self, rel: str | None) -> str | None:
        """The path of a finding's file as seen from the working directory (POSIX separators)."""
        if rel is None:
            return None
        base = self.report.target if self.kind == "folder" else self.root
        return _display_path(os.path.join(base, rel)) if base else rel

    # -- seed table ---------------------------------------------------------------------------
    def scored_runs(self) -> list[dict[str, Any]]:
        return [r for r in self.report.runs if isinstance(r, dict) and _number(r.get("val_bpb")) is not None]

    def mean_bpb(self) -> float | None:
        vals = [float(r["val_bpb"]) for r in self.scored_runs()]
        return math.fsum(vals) / len(vals) if vals else None


DECODED_MARK = "[decoded wrapper text]"  # audit.analysis marks evidence whose lines are decoded-wrapper lines


def excerpt_key(f: Finding, evidence_index: int | None = None) -> str:
    """Where a finding's excerpt (or that of its evidence link) is kept in TargetResult.excerpts."""
    base = f"{f.fingerprint}:{f.line}"
    return base if evidence_index is None else f"{base}/{evidence_index}"


def build_excerpts(submission: Submission, findings: list[Finding], context: int = EXCERPT_CONTEXT
                   ) -> dict[str, Excerpt]:
    """Excerpts of the submitted text files around every finding and evidence line.

    A self-extracting wrapper is analysed through its statically decoded source; evidence lines
    marked as decoded-wrapper lines (and a finding on such a file whose evidence is) are excerpted
    from the decoded text, everything else from the file as shipped.
    """
    texts = {**submission.code, **submission.logs}
    if submission.readme is not None:
        texts[submission.readme.path] = submission.readme
    decoded_texts = getattr(submission, "decoded", {}) or {}
    split: dict[tuple[str, bool], list[str]] = {}  # a multi-MB log is split into lines once

    def excerpt(path: str | None, line: int | None, end: int | None, decoded: bool, context: int) -> Excerpt | None:
        if not path or not line:
            return None
        tf = decoded_texts.get(path) if decoded else texts.get(path)
        if tf is None or tf.text is None:
            return None
        lines = split.setdefault((path, decoded), tf.lines)
        if not 1 <= line <= len(lines):
            return None
        stop = max(line, min(end or line, line + 2 * context, len(lines)))  # long spans are cut
        lo, hi = max(1, line - context), min(len(lines), stop + context)
        return Excerpt(path, lo, tuple(_clip(x) for x in lines[lo - 1:hi]), line, stop, decoded)

    out: dict[str, Excerpt] = {}
    for f in findings:
        marks = [DECODED_MARK in ev.label for ev in f.evidence if (ev.path or f.path) == f.path and ev.line]
        ex = excerpt(f.path, f.line, f.end_line, bool(marks) and all(marks), context)
        if ex is not None:
            out[excerpt_key(f)] = ex
        for i, ev in enumerate(f.evidence):
            ex = excerpt(ev.path or f.path, ev.line, ev.line, DECODED_MARK in ev.label, EVIDENCE_CONTEXT)
            if ex is not None:
                out[excerpt_key(f, i)] = ex
    return out


def flatten_stats(d: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Nested statistics as dotted (key, value) rows; long or nested lists point at the JSON report."""
    out: list[tuple[str, Any]] = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.extend(flatten_stats(v, key + "."))
        elif isinstance(v, float):
            out.append((key, f"{v:.6g}"))
        elif isinstance(v, (list, tuple)) and (len(v) > 20 or any(isinstance(x, (dict, list)) for x in v)):
            out.append((key, f"[{len(v)} entries: see the JSON report]"))
        else:
            out.append((key, v))
    return out


def worst_verdict(results: list[TargetResult]) -> Verdict:
    order = {Verdict.PASS: 0, Verdict.REVIEW: 1, Verdict.FAIL: 2}
    return max((r.report.verdict for r in results), key=order.__getitem__, default=Verdict.PASS)


def jsonable(obj: Any) -> Any:
    """Plain JSON data: NaN/inf become null, unknown objects their str()."""
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = sorted(obj, key=str) if isinstance(obj, (set, frozenset)) else obj
        return [jsonable(v) for v in items]
    to_dict = getattr(obj, "to_dict", None)
    if callable(to_dict):
        return jsonable(to_dict())
    if hasattr(obj, "value") and isinstance(obj.value, (str, int)):
        return obj.value
    return str(obj)


def _number(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return float(x) if math.isfinite(x) else None


def _clip(s: str, width: int = 240) -> str:
    return s if len(s) <= width else s[: width - 1] + "…"


def _display_path(p: str) -> str:
    absolute = os.path.abspath(p)
    try:
        rel = os.path.relpath(absolute)
    except ValueError:  # another drive on Windows
        return Path(absolute).as_posix()
    return Path(absolute).as_posix() if rel.startswith("..") else Path(rel).as_posix()
