"""Machine-readable report: one versioned JSON document for all audited targets.

The shape is fixed by `audit/schema/report.schema.json`; bump SCHEMA_VERSION (major on breaking
changes) whenever it changes, so that consumers can tell.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from audit.findings import Severity, Verdict
from audit.report.model import TOOL_NAME, TargetResult, jsonable, tool_version, worst_verdict

SCHEMA_VERSION = "1.0"
SCHEMA_PATH = Path(__file__).parents[1] / "schema" / "report.schema.json"


def target_dict(result: TargetResult) -> dict[str, Any]:
    rep = result.report
    return {
        "target": rep.target,
        "name": result.name,
        "kind": result.kind,
        "verdict": rep.verdict.value,
        "summary": rep.counts(),
        "findings": [jsonable(f.to_dict()) for f in rep.sorted_findings()],
        "errors": [e.to_dict() for e in rep.errors],
        "runs": jsonable(rep.runs),
        "stats": jsonable(rep.stats),
        "facts": jsonable(rep.facts),
    }


def document(results: list[TargetResult]) -> dict[str, Any]:
    findings = {s.value: 0 for s in Severity}
    verdicts = {v.value: 0 for v in Verdict}
    for r in results:
        verdicts[r.report.verdict.value] += 1
        for k, v in r.report.counts().items():
            findings[k] += v
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": TOOL_NAME, "version": tool_version()},
        "summary": {
            "targets": len(results),
            "verdict": worst_verdict(results).value,
            "verdicts": verdicts,
            "findings": findings,
            "internal_errors": sum(len(r.report.errors) for r in results),
        },
        "results": [target_dict(r) for r in results],
    }


def render(results: list[TargetResult]) -> str:
    return json.dumps(document(results), indent=2, allow_nan=False) + "\n"
