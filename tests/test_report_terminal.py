"""Terminal output: banner, findings with evidence, tolerant seed table, statistics, no ANSI off-tty."""

from __future__ import annotations

import io

from report_helpers import sample_result

from audit.report import terminal
from audit.stats import RunSet, significance


def render(results, width: int = 120, **kw) -> str:
    """Rendered at a fixed width: the result must not depend on $COLUMNS or the test runner."""
    buf = io.StringIO()
    terminal.render(results, terminal.make_console(buf, width=width), **kw)
    return buf.getvalue()


def test_banner_findings_evidence_seeds():
    out = render([sample_result()])
    assert "\x1b[" not in out
    assert " FAIL " in out and "1 error(s), 1 warning(s), 1 note(s)" in out
    assert "AUDIT INCOMPLETE" in out and "internal error in R-BROKEN" in out
    assert "train_gpt.py:10-11" in out and "↳ val tokens loaded [train_gpt.py:3]" in out
    assert "line_3 = 3" in out
    assert "train_seed7.log" in out and "1.08010000" in out
    assert "seeds.val_bpb_mean" in out and "not tested" in out


def test_seed_table_drops_empty_columns_and_tolerates_junk():
    table = terminal.runs_table([{"seed": 1, "val_bpb": "n/a"}, {"odd": object()}, "not a dict"])  # type: ignore[list-item]
    headers = [c.header for c in table.columns]
    assert headers == ["seed", "val_bpb"]


def test_significance_lines():
    sig = significance(RunSet("new", val_bpb=(1.0566, 1.0561, 1.0568)),
                       RunSet("PR 2014", val_bpb=(1.0574, 1.0573, 1.0581)))
    res = sample_result()
    res.report.stats["significance"] = sig
    out = render([res])
    assert "practice (Welch one-sided on val_bpb vs PR 2014, p < 0.25)" in out
    assert "README (≥ 0.005 nats/byte at p < 0.01) [verdict]" in out


def test_summary_only_for_many():
    assert "Summary" not in render([sample_result()])
    out = render([sample_result(), sample_result()])
    assert "Summary" in out and "2026-04-01_Sample (!)" in out


def test_no_color_env_is_respected(monkeypatch):
    def colours(no_color: bool) -> str:
        if no_color:
            monkeypatch.setenv("NO_COLOR", "1")
        else:
            monkeypatch.delenv("NO_COLOR", raising=False)
        buf = io.StringIO()
        terminal.render([sample_result()], terminal.make_console(buf, force_terminal=True))
        return buf.getvalue()

    assert "\x1b[31m" in colours(False) or "\x1b[1;31m" in colours(False)  # a terminal gets red errors
    plain = colours(True)
    assert "\x1b[31m" not in plain and "\x1b[1;31m" not in plain and "\x1b[33m" not in plain


def test_narrow_terminal_drops_minor_columns_not_numbers():
    rows = [{"log": "train_seed42.log", "seed": 42, "val_bpb": 1.07928348, "val_loss": 2.78790132,
             "score_label": "quantized_ttt_phased", "artifact_bytes": 15_993_346, "code_bytes": 19_387,
             "train_time_ms": 588_052.0, "eval_time_ms": 341_841.0, "steps": 4911,
             "stop_reason": "wallclock_cap", "val_tokens": 40_540_160}]
    wide = terminal.runs_table(rows, width=300)
    narrow = terminal.runs_table(rows, width=90)
    assert len(wide.columns) == 12
    headers = [c.header for c in narrow.columns]
    assert "score line" not in headers and "val_bpb" in headers and "artifact B" in headers
    assert "not shown for width" in str(narrow.title)
    buf = io.StringIO()
    from rich.console import Console

    Console(file=buf, width=90).print(narrow)
    assert "1.07928348" in buf.getvalue() and "15,993,346" in buf.getvalue()
