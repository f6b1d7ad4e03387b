"""Human output for a terminal (rich): a verdict banner, findings with their evidence, seeds, statistics.

rich honours NO_COLOR and writes no ANSI codes when the stream is not a terminal (pipes, CI logs),
so the same renderer serves both.
"""

from __future__ import annotations

import math
import os
from typing import IO, Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from audit.findings import Finding, Severity, Verdict
from audit.report import rerun_view
from audit.report.model import TargetResult, flatten_stats

VERDICT_STYLE = {Verdict.PASS: "bold green", Verdict.REVIEW: "bold yellow", Verdict.FAIL: "bold red"}
SEVERITY_STYLE = {Severity.ERROR: "red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}
VERDICT_HINT = {
    Verdict.PASS: "no error or warning findings",
    Verdict.REVIEW: "warnings only: a reviewer must judge them",
    Verdict.FAIL: "at least one rule a maintainer ruled on is broken",
}

# The per-seed columns in display order: (key, header, formatter).
RUN_COLUMNS: list[tuple[str, str, Any]] = [
    ("log", "log", str),
    ("seed", "seed", str),
    ("val_bpb", "val_bpb", lambda v: f"{v:.8f}"),
    ("val_loss", "val_loss", lambda v: f"{v:.8f}"),
    ("score_label", "score line", str),
    ("artifact_bytes", "artifact B", lambda v: f"{int(v):,}"),
    ("code_bytes", "code B", lambda v: f"{int(v):,}"),
    ("train_time_ms", "train s", lambda v: f"{v / 1000:.1f}"),
    ("eval_time_ms", "eval s", lambda v: f"{v / 1000:.1f}"),
    ("steps", "steps", str),
    ("stop_reason", "stop", str),
    ("val_tokens", "val tokens", lambda v: f"{int(v):,}"),
]


def make_console(stream: IO[str] | None = None, *, force_terminal: bool | None = None,
                 width: int | None = None) -> Console:
    """A console on `stream`; rich decides colour (NO_COLOR, FORCE_COLOR, isatty).

    Off a terminal the width is `width`, else $COLUMNS, else 120 (tests pass `width` so that they
    do not depend on the environment they run in).
    """
    tty = force_terminal or (stream is not None and stream.isatty()) or stream is None
    if width is None:
        width = None if tty else _int_env("COLUMNS", 120)
    # markup=False: file names and log lines are data, "[reverse green] PASS [/]" must print as typed
    return Console(file=stream, width=width, highlight=False, soft_wrap=False, force_terminal=force_terminal,
                   markup=False)


def _int_env(name: str, default: int) -> int:
    try:
        return max(40, int(os.environ.get(name, "")))
    except ValueError:
        return default


def render(results: list[TargetResult], console: Console, *, summary: bool | None = None) -> None:
    for result in results:
        render_target(result, console)
    if summary if summary is not None else len(results) > 1:
        console.print(summary_table(results))


def render_target(result: TargetResult, console: Console) -> None:
    rep = result.report
    verdict = rep.verdict
    counts = rep.counts()
    banner = Text.assemble(
        (f" {verdict.value} ", f"reverse {VERDICT_STYLE[verdict]}"),
        "  ",
        (rep.target, "bold"),
        f"\n{counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} note(s) — "
        f"{VERDICT_HINT[verdict]}",
    )
    if rep.errors:
        banner.append(f"\nAUDIT INCOMPLETE: {len(rep.errors)} rule(s) crashed (see below)", style="bold magenta")
    console.print(Panel(banner, border_style=VERDICT_STYLE[verdict].split()[-1], expand=True))
    if rep.errors:
        for err in rep.errors:
            console.print(Text(f"internal error in {err.where}: {err.message}", style="bold magenta"))
    if rep.findings:
        console.print(findings_table(result))
    if rep.runs:
        console.print(runs_table(rep.runs, console.width))
    rerun = rerun_view.rerun_stats(rep.stats)
    if rerun is not None and rerun_view.rows(rerun):
        console.print(rerun_table(rerun, console.width))
    if rep.stats:
        console.print(stats_view(rep.stats))


def findings_table(result: TargetResult) -> Table:
    table = Table(title="Findings", title_justify="left", show_lines=True, expand=True)
    table.add_column("severity", no_wrap=True)
    table.add_column("rule", no_wrap=True)
    table.add_column("where", overflow="fold")
    table.add_column("message (evidence indented)", ratio=1, overflow="fold")
    for f in result.report.sorted_findings():
        table.add_row(
            Text(f.severity.value, style=SEVERITY_STYLE[f.severity]),
            f.rule_id,
            location(f),
            _message_with_evidence(f),
        )
    return table


def location(f: Finding) -> str:
    if f.path is None:
        return "-"
    if f.line is None:
        return f.path
    if f.end_line and f.end_line != f.line:
        return f"{f.path}:{f.line}-{f.end_line}"
    return f"{f.path}:{f.line}"


def _message_with_evidence(f: Finding) -> Text:
    text = Text(f.message)
    for ev in f.evidence:
        where = ""
        if ev.path or ev.line:
            where = f" [{ev.path or ''}{':' + str(ev.line) if ev.line else ''}]"
        text.append(f"\n  ↳ {ev.label}{where}", style="dim")
        if ev.excerpt:
            text.append(f"\n      {ev.excerpt.strip()}", style="italic dim")
    if f.source:
        text.append(f"\n  source: {f.source}", style="dim")
    return text


# Columns given up first when the seed table is wider than the terminal (JSON/HTML keep them all).
DROP_ORDER = ("score_label", "stop_reason", "code_bytes", "val_tokens", "steps", "eval_time_ms", "val_loss")


def runs_table(runs: list[dict[str, Any]], width: int | None = None) -> Table:
    rows = [r for r in runs if isinstance(r, dict)]
    cols = [(k, h, fmt) for k, h, fmt in RUN_COLUMNS if any(_value(r, k) is not None for r in rows)]
    cells = {k: [_fmt(_value(r, k), fmt) for r in rows] for k, _, fmt in cols}
    return _fitted_table("Seeds", cols, cells, len(rows), DROP_ORDER, width)


def rerun_table(rerun: dict[str, Any], width: int | None = None) -> Table:
    """The harness's per-seed re-run table (stats["rerun"]["runs"]): measured vs claimed."""
    rows = rerun_view.rows(rerun)
    cols = rerun_view.columns(rows)
    cells = {k: [rerun_view.cell(r, k, fmt) for r in rows] for k, _, fmt in cols}
    return _fitted_table("Re-run", cols, cells, len(rows), rerun_view.RERUN_DROP_ORDER, width)


def _fitted_table(name: str, cols: list[tuple[str, str, Any]], cells: dict[str, list[str]], n_rows: int,
                  drop_order: tuple[str, ...], width: int | None) -> Table:
    # Numbers must never be cut: a column is as wide as its widest value; log names may fold.
    need = {k: max([len(h.split()[0])] + [len(c) for c in cells[k]]) for k, h, _ in cols}
    need = {k: min(w, 14) if k in ("log", "log_file") else w for k, w in need.items()}
    dropped = []
    for key in drop_order:
        if width is None or sum(need.values()) + 3 * len(need) + 1 <= width:
            break
        if key in need:
            dropped.append(key)
            del need[key]
    kept = [(k, h) for k, h, _ in cols if k in need]
    title = name + (f" (not shown for width: {', '.join(dropped)})" if dropped else "")
    table = Table(title=title, title_justify="left")
    for key, header in kept:
        table.add_column(header, overflow="fold", min_width=need[key])
    for i in range(n_rows):
        table.add_row(*[cells[k][i] for k, _ in kept])
    return table


def stats_view(stats: dict[str, Any]) -> Group:
    parts: list[Any] = [Text("Statistics", style="bold")]
    sig = stats.get("significance")
    if isinstance(sig, dict):
        parts.extend(significance_lines(sig))
    rerun = rerun_view.rerun_stats(stats)
    if rerun is not None:
        parts.extend(rerun_lines(rerun))
    rest = {k: v for k, v in stats.items() if k not in ("significance", "rerun")}
    if rerun is not None and (other := rerun_view.other_stats(rerun)):
        rest["rerun"] = other
    if rest:
        table = Table(show_header=False, box=None, padding=(0, 2))
        for key, val in flatten_stats(rest):
            table.add_row(key, _fmt(val, str))
        parts.append(table)
    return Group(*parts)


def rerun_lines(rerun: dict[str, Any]) -> list[Text]:
    lines = []
    summary = rerun_view.summary_line(rerun)
    if summary:
        lines.append(Text(f"  re-run: {summary}"))
    welch = rerun_view.welch_line(rerun)
    if welch:
        lines.append(Text(f"  {welch}"))
    return lines


def significance_lines(sig: dict[str, Any]) -> list[Text]:
    lines: list[Text] = []
    ref = (sig.get("reference") or {}).get("name", "reference")
    practice = sig.get("practice")
    if isinstance(practice, dict):
        lines.append(_test_line(
            f"practice (Welch one-sided on val_bpb vs {ref}, p < {practice.get('alpha')})",
            practice, f"improvement {_fmt(practice.get('improvement'), _sci)} bpb"))
    readme = sig.get("readme")
    if isinstance(readme, dict):
        for key in ("per_byte", "per_token"):
            part = readme.get(key)
            if not isinstance(part, dict):
                continue
            used = " [verdict]" if part.get("unit") == readme.get("verdict_unit") else ""
            note = "" if part.get("comparable", True) else " (different tokenizers: not comparable)"
            lines.append(_test_line(
                f"README (≥ {readme.get('margin')} {part.get('unit')} at p < {readme.get('alpha')}){used}",
                part, f"improvement {_fmt(part.get('improvement'), _sci)} {part.get('unit')}{note}"))
    if not lines and sig.get("note"):
        lines.append(Text(f"  {sig['note']}", style="dim"))
    return lines


def _test_line(title: str, res: dict[str, Any], detail: str) -> Text:
    ok = bool(res.get("passed"))
    return Text.assemble(
        ("  ✔ " if ok else "  ✘ ", "green" if ok else "yellow"),
        f"{title}: p = {_fmt(res.get('p'), lambda v: f'{v:.4f}')}, "
        f"n = {res.get('n_new')} vs {res.get('n_ref')}, {detail}",
    )


def summary_table(results: list[TargetResult]) -> Table:
    table = Table(title="Summary", title_justify="left")
    for col in ("folder", "verdict", "errors", "warnings", "seeds", "mean bpb"):
        table.add_column(col, no_wrap=col != "folder", overflow="fold")
    for r in results:
        c = r.report.counts()
        mean = r.mean_bpb()
        v = r.report.verdict
        table.add_row(
            r.name + (" (!)" if r.report.errors else ""),
            Text(v.value, style=VERDICT_STYLE[v]),
            str(c["error"]),
            str(c["warning"]),
            str(len(r.scored_runs())) if r.kind == "folder" else "-",
            f"{mean:.5f}" if mean is not None else "-",
        )
    return table


def _value(run: dict[str, Any], key: str) -> Any:
    val = run.get(key)
    if val is None and key == "log":
        val = run.get("log_path")
    if val is None and key == "steps":
        val = run.get("step")
    if isinstance(val, float) and not math.isfinite(val):
        return None
    return val


def _fmt(val: Any, fmt: Any) -> str:
    if val is None:
        return "-"
    try:
        return str(fmt(val))
    except (TypeError, ValueError):
        return str(val)


def _sci(v: float) -> str:
    return f"{v:+.5f}"
