"""A self-contained HTML report (one file, no external assets) for reviewers.

Rendered with jinja2 with autoescaping on: every message, excerpt and path comes from the
submission and is untrusted. The JSON document is embedded too, for tools that scrape the page.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from audit.report import json_report, rerun_view
from audit.report.model import TOOL_NAME, TargetResult, flatten_stats, tool_version, worst_verdict
from audit.report.rulemeta import describe, info_html, registered
from audit.report.terminal import RUN_COLUMNS, location

TEMPLATES = Path(__file__).parent / "templates"


def render(results: list[TargetResult]) -> str:
    import jinja2  # lazy: only the html format needs it
    from markupsafe import Markup

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["location"] = location
    env.filters["num"] = _num
    template = env.get_template("report.html.jinja2")
    known = {r.id: r for r in registered()}
    data = json.dumps(json_report.document(results), allow_nan=False)
    safe_data = Markup(data.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))
    views = [_target_view(r, known) for r in results]
    docs = {item["doc_id"]: describe(item["doc_id"], known) for v in views for item in v["findings"]}
    return template.render(
        rule_docs=[(rid, info_html(info)) for rid, info in sorted(docs.items())],
        tool=TOOL_NAME,
        version=tool_version(),
        verdict=worst_verdict(results).value,
        targets=views,
        show_summary=len(results) > 1,
        data_json=safe_data,
    )


def _target_view(res: TargetResult, known: dict) -> dict[str, Any]:
    rep = res.report
    findings = []
    for f in rep.sorted_findings():
        info = describe(f.rule_id, known, f)
        evidence = []
        for i, ev in enumerate(f.evidence):
            evidence.append({"ev": ev, "excerpt": res.excerpt_for(f, i)})
        findings.append({
            "f": f,
            "title": info.title,
            "doc_id": info.id,
            "source": f.source or info.source,
            "excerpt": res.excerpt_for(f),
            "evidence": evidence,
        })
    rows = [r for r in rep.runs if isinstance(r, dict)]
    cols = [(k, h) for k, h, _ in RUN_COLUMNS if any(_run_value(r, k) is not None for r in rows)]
    mean = res.mean_bpb()
    stats = dict(rep.stats)
    sig = stats.pop("significance", None)
    rerun = rerun_view.rerun_stats(stats)
    if rerun is not None:
        del stats["rerun"]
        if other := rerun_view.other_stats(rerun):
            stats["rerun"] = other
    return {
        "res": res,
        "name": res.name,
        "verdict": rep.verdict.value,
        "counts": rep.counts(),
        "errors": rep.errors,
        "findings": findings,
        "run_cols": cols,
        "runs": [[_run_value(r, k) for k, _ in cols] for r in rows],
        "seeds": len(res.scored_runs()),
        "mean_bpb": f"{mean:.5f}" if mean is not None else "-",
        "significance": sig if isinstance(sig, dict) else None,
        "rerun": _rerun_view(rerun) if rerun is not None else None,
        "stats": sorted((k, str(v)) for k, v in flatten_stats(stats)),
        "facts": sorted((k, str(v)) for k, v in flatten_stats(rep.facts)),
    }


def _rerun_view(rerun: dict[str, Any]) -> dict[str, Any]:
    rows = rerun_view.rows(rerun)
    cols = rerun_view.columns(rows)
    return {
        "headers": [h for _, h, _ in cols],
        "rows": [[rerun_view.cell(r, k, fmt) for k, _, fmt in cols] for r in rows],
        "summary": rerun_view.summary_line(rerun),
        "welch": rerun_view.welch_line(rerun),
        "welch_test": (rerun.get("claim_vs_rerun") or {}).get("test") if isinstance(
            rerun.get("claim_vs_rerun"), dict) else None,
    }


def _run_value(run: dict[str, Any], key: str) -> Any:
    val = run.get(key)
    if val is None and key == "log":
        val = run.get("log_path")
    if val is None and key == "steps":
        val = run.get("step")
    return val


def _num(v: Any, digits: int = 5) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}" if abs(v) >= 10 ** -digits or v == 0 else f"{v:.3g}"
    return str(v)
