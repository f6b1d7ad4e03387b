"""GitHub Actions workflow commands: one `::error`/`::warning`/`::notice` annotation per finding.

Escaping follows @actions/core (toolkit `command.ts`): in the message `%`, `\\r`, `\\n` become
`%25`, `%0D`, `%0A`; in property values `:` and `,` are escaped too (`%3A`, `%2C`).
When GITHUB_STEP_SUMMARY is set, a Markdown summary table is appended to it as well. Callers pass
results sanitised by audit.report.sanitize ("github" for annotations, "summary" for the table).
"""

from __future__ import annotations

import os

from audit.findings import Finding, Severity
from audit.report.model import TargetResult
from audit.report.sanitize import markdown_cell

COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def escape_data(s: str) -> str:
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(s: str) -> str:
    return escape_data(s).replace(":", "%3A").replace(",", "%2C")


def annotation(res: TargetResult, f: Finding) -> str:
    props: list[tuple[str, str]] = []
    path, line, end_line = f.path, f.line, f.end_line
    if path is None:  # anchor it on the first evidence file, where the diff view can show it
        first = next((ev for ev in f.evidence if ev.path), None)
        if first is not None:
            path, line, end_line = first.path, first.line, None
    uri = res.file_uri(path) if path else None
    if uri:
        props.append(("file", uri))
        if line:
            props.append(("line", str(line)))
            if end_line and end_line > line:
                props.append(("endLine", str(end_line)))
    props.append(("title", f"{f.rule_id} ({res.name})"))
    body = f.message
    for ev in f.evidence:
        where = f"{ev.path or ''}:{ev.line}" if ev.line else (ev.path or "")
        body += f"\n  - {ev.label}" + (f" ({where})" if where else "") + (f": {ev.excerpt.strip()}" if ev.excerpt else "")
    if f.source:
        body += f"\nSource: {f.source}"
    prop_text = ",".join(f"{k}={escape_property(v)}" for k, v in props)
    return f"::{COMMAND[f.severity]} {prop_text}::{escape_data(body)}"


def render(results: list[TargetResult]) -> str:
    lines: list[str] = []
    for res in results:
        for f in res.report.sorted_findings():
            lines.append(annotation(res, f))
        for err in res.report.errors:
            lines.append(f"::error title={escape_property('pgolf-audit internal error')}::"
                         f"{escape_data(f'{res.report.target}: rule {err.where} crashed: {err.message}')}")
    return "\n".join(lines) + ("\n" if lines else "")


def step_summary(results: list[TargetResult]) -> str:
    """Markdown for $GITHUB_STEP_SUMMARY: one row per target."""
    rows = ["### pgolf-audit", "", "| folder | verdict | errors | warnings | seeds | mean bpb |",
            "|---|---|---|---|---|---|"]
    for r in results:
        c = r.report.counts()
        mean = r.mean_bpb()
        seeds = str(len(r.scored_runs())) if r.kind == "folder" else "-"
        name = markdown_cell(r.name)
        rows.append(f"| {name} | {r.report.verdict.value} | {c['error']} | {c['warning']} | {seeds} | "
                    f"{f'{mean:.5f}' if mean is not None else '-'} |")
    return "\n".join(rows) + "\n"


def write_step_summary(results: list[TargetResult]) -> None:
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(step_summary(results))
    except OSError:
        pass  # a summary is a courtesy; annotations already carry the findings
