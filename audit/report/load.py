"""Read a saved JSON report (`--format json`) back into TargetResults, for `pgolf-audit report`.

Re-rendering must not re-audit, so everything comes from the document: findings keep the
fingerprint they were saved with (the key it was computed from is not in the JSON), and code
excerpts are not rebuilt (the HTML shows each evidence link's saved excerpt instead). A document
of another schema major version, or one that does not have our shape, is refused with a message
that says where it is wrong.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit.findings import AuditError, Evidence, Finding, Report, Severity
from audit.report.json_report import SCHEMA_VERSION
from audit.report.model import TOOL_NAME, TargetResult

SUPPORTED_MAJOR = SCHEMA_VERSION.split(".", 1)[0]
FINGERPRINT = re.compile(r"^[0-9a-f]{16}$")
KINDS = ("folder", "diff")


class ReportLoadError(ValueError):
    """The file is not a JSON report this version can render; the message says why."""


@dataclass(frozen=True)
class SavedFinding(Finding):
    """A finding read back from a report: its identity is the fingerprint it was saved with."""

    saved_fingerprint: str | None = field(default=None, compare=False)

    @property
    def fingerprint(self) -> str:
        return self.saved_fingerprint or super().fingerprint


def load_report(path: str | Path) -> list[TargetResult]:
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ReportLoadError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ReportLoadError(f"{path}: is a directory (give the report.json file)") from None
    except OSError as exc:
        raise ReportLoadError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ReportLoadError(f"{path}: not UTF-8 text (byte {exc.start}); expected a pgolf-audit JSON report") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportLoadError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except RecursionError:
        raise ReportLoadError(f"{path}: JSON nested too deeply to be a pgolf-audit report") from None
    return results_of(doc, str(path))


def results_of(doc: Any, where: str = "report") -> list[TargetResult]:
    """The TargetResults of a parsed document, after checking its version and shape."""
    if not isinstance(doc, dict):
        raise ReportLoadError(f"{where}: the top level is a JSON {_kind(doc)}, not an object; "
                              "expected a pgolf-audit JSON report (`--format json`)")
    _check_version(doc, where)
    results = doc.get("results")
    if not isinstance(results, list):
        raise ReportLoadError(f"{where}: `results` must be a list (found {_kind(results)})")
    return [_target(r, f"{where}: results[{i}]") for i, r in enumerate(results)]


def _check_version(doc: dict[str, Any], where: str) -> None:
    version = doc.get("schema_version")
    if version is None:
        hint = " (this looks like SARIF: give the JSON report)" if "runs" in doc and "version" in doc else ""
        raise ReportLoadError(f"{where}: no `schema_version`: not a pgolf-audit JSON report{hint}")
    tool = doc.get("tool")
    name = tool.get("name") if isinstance(tool, dict) else None
    if name is not None and name != TOOL_NAME:
        raise ReportLoadError(f"{where}: written by {name!r}, not {TOOL_NAME}")
    major = str(version).split(".", 1)[0]
    if not isinstance(version, str) or major != SUPPORTED_MAJOR:
        wrote = tool.get("version") if isinstance(tool, dict) else None
        raise ReportLoadError(
            f"{where}: schema_version {version!r} is not supported: this {TOOL_NAME} renders "
            f"{SUPPORTED_MAJOR}.x reports (schema {SCHEMA_VERSION}). Render it with the version that wrote it"
            + (f" ({TOOL_NAME} {wrote})" if wrote else "") + ", or audit the folder again.")


def _target(data: Any, where: str) -> TargetResult:
    d = _obj(data, where)
    target = _str(d.get("target"), f"{where}.target")
    kind = d.get("kind", "folder")
    if kind not in KINDS:
        raise ReportLoadError(f"{where}.kind: {kind!r} is not one of {', '.join(KINDS)}")
    findings = [_finding(f, f"{where}.findings[{i}]") for i, f in enumerate(_list(d.get("findings", []),
                                                                                  f"{where}.findings"))]
    errors = []
    for i, e in enumerate(_list(d.get("errors", []), f"{where}.errors")):
        e = _obj(e, f"{where}.errors[{i}]")
        errors.append(AuditError(_str(e.get("where"), f"{where}.errors[{i}].where"),
                                 _str(e.get("message"), f"{where}.errors[{i}].message")))
    runs = _list(d.get("runs", []), f"{where}.runs")
    for i, r in enumerate(runs):
        _obj(r, f"{where}.runs[{i}]")
    report = Report(target=target, findings=findings, errors=errors, runs=runs,
                    stats=_obj(d.get("stats", {}), f"{where}.stats"),
                    facts=_obj(d.get("facts", {}), f"{where}.facts"))
    return TargetResult(report, kind=kind)


def _finding(data: Any, where: str) -> Finding:
    d = _obj(data, where)
    severity = d.get("severity")
    try:
        sev = Severity(severity)
    except ValueError:
        raise ReportLoadError(f"{where}.severity: {severity!r} is not error, warning or info") from None
    evidence = []
    for i, e in enumerate(_list(d.get("evidence", []), f"{where}.evidence")):
        e = _obj(e, f"{where}.evidence[{i}]")
        evidence.append(Evidence(_str(e.get("label"), f"{where}.evidence[{i}].label"),
                                 _opt_str(e.get("path"), f"{where}.evidence[{i}].path"),
                                 _line(e.get("line"), f"{where}.evidence[{i}].line"),
                                 _opt_str(e.get("excerpt"), f"{where}.evidence[{i}].excerpt")))
    fingerprint = d.get("fingerprint")
    if fingerprint is not None and not (isinstance(fingerprint, str) and FINGERPRINT.match(fingerprint)):
        raise ReportLoadError(f"{where}.fingerprint: {fingerprint!r} is not 16 lowercase hex digits")
    return SavedFinding(
        rule_id=_str(d.get("rule_id"), f"{where}.rule_id"),
        severity=sev,
        message=_str(d.get("message"), f"{where}.message"),
        path=_opt_str(d.get("path"), f"{where}.path"),
        line=_line(d.get("line"), f"{where}.line"),
        end_line=_line(d.get("end_line"), f"{where}.end_line"),
        evidence=tuple(evidence),
        source=_opt_str(d.get("source"), f"{where}.source"),
        saved_fingerprint=fingerprint,
    )


# -- shape checks ---------------------------------------------------------------------------------
def _kind(x: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(x), "number" if isinstance(x, (int, float)) else type(x).__name__)


def _obj(x: Any, where: str) -> dict[str, Any]:
    if not isinstance(x, dict):
        raise ReportLoadError(f"{where}: expected an object, found {_kind(x)}")
    return x


def _list(x: Any, where: str) -> list[Any]:
    if not isinstance(x, list):
        raise ReportLoadError(f"{where}: expected a list, found {_kind(x)}")
    return x


def _str(x: Any, where: str) -> str:
    if not isinstance(x, str):
        raise ReportLoadError(f"{where}: expected a string, found {_kind(x)}")
    return x


def _opt_str(x: Any, where: str) -> str | None:
    return None if x is None else _str(x, where)


def _line(x: Any, where: str) -> int | None:
    if x is None:
        return None
    if isinstance(x, bool) or not isinstance(x, int) or x < 1:
        raise ReportLoadError(f"{where}: expected a line number ≥ 1 or null, found {x!r}"[:300])
    return x
