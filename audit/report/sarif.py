"""SARIF 2.1.0 for GitHub code scanning and other SARIF viewers, built from plain dicts.

Only the parts of the standard that viewers use: a rules table (id, title, help, default level),
one result per finding with a 1-based region, the evidence chain as related locations, and
`partialFingerprints` from Finding.fingerprint so that a finding keeps its identity across pushes.
"""

from __future__ import annotations

import json
from typing import Any

from audit.findings import Finding, Severity
from audit.report.model import INFORMATION_URI, TOOL_NAME, TargetResult, tool_version
from audit.report.rulemeta import RuleInfo, describe, info_markdown, registered

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}
FINGERPRINT_KEY = "pgolfAudit/v1"


def document(results: list[TargetResult]) -> dict[str, Any]:
    known = {r.id: r for r in registered()}
    rule_ids: list[str] = []
    infos: dict[str, RuleInfo] = {}
    sarif_results: list[dict[str, Any]] = []
    notifications: list[dict[str, Any]] = []
    for res in results:
        for f in res.report.sorted_findings():
            if f.rule_id not in infos:
                infos[f.rule_id] = describe(f.rule_id, known, f)
                rule_ids.append(f.rule_id)
            sarif_results.append(_result(res, f, rule_ids.index(f.rule_id)))
        for err in res.report.errors:
            notifications.append({
                "level": "error",
                "message": {"text": f"{res.report.target}: rule {err.where} crashed: {err.message}"},
            })
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": TOOL_NAME,
                "version": tool_version(),
                "informationUri": INFORMATION_URI,
                "rules": [_rule(infos[rid]) for rid in rule_ids],
            }},
            "invocations": [{
                "executionSuccessful": not notifications,
                "toolExecutionNotifications": notifications,
            }],
            "results": sarif_results,
        }],
    }


def render(results: list[TargetResult]) -> str:
    return json.dumps(document(results), indent=2, allow_nan=False) + "\n"


def _rule(info: RuleInfo) -> dict[str, Any]:
    help_md = info_markdown(info)  # the rule's documentation (What it checks / Why / examples / Sources)
    return {
        "id": info.id,
        "name": _pascal(info.id),
        "shortDescription": {"text": info.title},
        "fullDescription": {"text": info.doc or info.title},
        "help": {"text": help_md, "markdown": help_md},
        "defaultConfiguration": {"level": LEVEL[info.severity]},
        "properties": {"kind": info.kind, "source": info.source, "tags": [info.kind]},
    }


def _result(res: TargetResult, f: Finding, index: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ruleId": f.rule_id,
        "ruleIndex": index,
        "level": LEVEL[f.severity],
        "message": {"text": f.message},
        "locations": [_primary_location(res, f)],
        "partialFingerprints": {FINGERPRINT_KEY: f.fingerprint},
    }
    related = []
    for i, ev in enumerate(f.evidence):
        if ev.path is None and ev.line is None:
            continue
        loc = _location(res, ev.path or f.path, ev.line, None)
        loc["id"] = i
        loc["message"] = {"text": f"{ev.label}: {ev.excerpt.strip()}" if ev.excerpt else ev.label}
        related.append(loc)
    if related:
        out["relatedLocations"] = related
    if f.evidence:
        out["properties"] = {"evidence": [e.to_dict() for e in f.evidence], "target": res.report.target}
    return out


def _primary_location(res: TargetResult, f: Finding) -> dict[str, Any]:
    """Code scanning needs a file for every result: the finding's, else its first evidence file."""
    if f.path is None:
        for ev in f.evidence:
            if ev.path:
                return _location(res, ev.path, ev.line, None)
    return _location(res, f.path, f.line, f.end_line)


def _location(res: TargetResult, path: str | None, line: int | None, end_line: int | None) -> dict[str, Any]:
    uri = res.file_uri(path) if path else res.file_uri("submission.json") if res.kind == "folder" else None
    physical: dict[str, Any] = {"artifactLocation": {"uri": uri or "."}}
    if line is not None and line >= 1:
        region: dict[str, Any] = {"startLine": line}
        if end_line is not None and end_line >= line:
            region["endLine"] = end_line
        physical["region"] = region
    return {"physicalLocation": physical}


def _pascal(rule_id: str) -> str:
    parts = rule_id.replace(".", "-").replace("_", "-").split("-")
    return "".join(p[:1].upper() + p[1:].lower() for p in parts if p)
