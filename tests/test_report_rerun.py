"""The re-run section of a report (stats["rerun"]): a per-seed table and statistics lines, in the
terminal and the HTML page; harness finding IDs get their titles and sources in SARIF and HTML."""

from __future__ import annotations

import io

import pytest
from report_helpers import TEST_RULES

from audit.findings import Finding, Report, Severity
from audit.harness.checks import CHECKS
from audit.harness.claims_view import ClaimSet, SeedClaim
from audit.harness.compare import rerun_stats
from audit.harness.measure import SeedResult
from audit.harness.rerun import _row
from audit.report import html, rerun_view, sarif, terminal
from audit.report.model import TargetResult
from audit.report.rulemeta import describe, registered


@pytest.fixture(autouse=True)
def test_registry(monkeypatch):
    monkeypatch.setattr("audit.registry.all_rules", lambda: TEST_RULES)


def _seed(seed: int, bpb: float | None, status: str = "ok", **kw) -> SeedResult:
    base = dict(seed=seed, run_id=f"r{seed}", status=status, exit_code=0 if status == "ok" else 1, wall_s=1234.5,
                train_phase_wall_s=700.0, eval_phase_wall_s=520.25, timed_out=None, survivors=[], stragglers=[],
                log_file=f"seed-{seed}.log", log_tail=[], parsed_log=None, val_bpb=bpb, train_time_ms=600_038.0,
                eval_time_ms=431_876.0, artifact_bytes_raw=15_912_345, artifact_bytes_counted=15_901_000,
                model_file="final_model.int6.ptz", model_file_bytes=15_850_000)
    base.update(kw)
    return SeedResult(**base)  # type: ignore[arg-type]


def rerun_result() -> TargetResult:
    """A report as `pgolf-audit rerun` leaves it: the harness's own rows and statistics."""
    claims = ClaimSet(per_seed={s: SeedClaim(s, v, "submission.json", None, 15_911_000, "submission.json")
                                for s, v in ((42, 1.0801), (1337, 1.0805), (2025, 1.0797))}, mean_bpb=1.0801)
    seeds = [_seed(42, 1.08052), _seed(1337, 1.08101), _seed(2025, None, "crashed", exit_code=137)]
    stats = rerun_stats(seeds, claims)
    stats["runs"] = [_row(r, claims) for r in seeds]
    findings = [Finding("R-REC-REPRODUCIBLE.rerun-mean", Severity.ERROR, "mean worse than claimed",
                        path="train_gpt.py", source=CHECKS["R-REC-REPRODUCIBLE.rerun-mean"].source),
                Finding("R-SUB-FILES.rerun-runs", Severity.ERROR, "seed 2025 crashed", path="train_gpt.py")]
    report = Report("records/track_10min_16mb/2026-05-01_Rerun", findings=findings, stats={"rerun": stats},
                    facts={"rerun": {"network_cut": True, "limits": {"train_s": 600.0}}})
    return TargetResult(report)


def render_terminal(res: TargetResult, width: int = 250) -> str:
    buf = io.StringIO()
    console = terminal.make_console(buf)
    console.width = width
    terminal.render([res], console)
    return buf.getvalue()


def test_terminal_shows_a_rerun_table_not_dicts():
    out = render_terminal(rerun_result())
    assert "{'seed'" not in out and "'status':" not in out
    assert "Re-run" in out
    for header in ("seed", "status", "exit", "wall s", "train ms", "eval ms", "val_bpb", "claimed val_bpb",
                   "Δ bpb", "artifact B", "claimed B"):
        assert header in out
    assert "600,038" in out and "431,876" in out  # ms as measured: a 38 ms overshoot stays visible
    assert "1.08052000" in out and "1.08010000" in out and "+0.000420" in out
    assert "15,912,345" in out and "crashed" in out and "137" in out


def test_terminal_rerun_statistics_lines():
    out = render_terminal(rerun_result())
    assert "re-run: 2 of 3 seed(s) scored; re-run mean val_bpb 1.08076500" in out
    assert "claim vs re-run (one-sided Welch, H1: claimed mean < re-run mean): p = " in out
    assert "claimed mean 1.080100 (sd 0.000400, n 3) vs re-run mean 1.080765" in out
    assert "rerun.runs" not in out and "rerun.claim_vs_rerun" not in out


def test_terminal_rerun_table_drops_columns_for_width_never_cuts_numbers():
    out = render_terminal(rerun_result(), width=100)
    table = out[out.index("Re-run"):out.index("Statistics")]
    assert "not shown for width" in table and "log_file" in table
    assert all(len(line) <= 100 for line in table.splitlines())
    assert "1.08052000" in table and "+0.000420" in table and "600,038" in table


def test_rerun_rows_tolerate_junk():
    rerun = {"runs": [{"seed": 1, "val_bpb": "n/a", "delta_bpb": float("nan")}, "junk", 3], "claim_vs_rerun": "x"}
    rows = rerun_view.rows(rerun)
    assert [c[1] for c in rerun_view.columns(rows)] == ["seed", "val_bpb"]
    assert rerun_view.cell(rows[0], "val_bpb", rerun_view.RERUN_COLUMNS[8][2]) == "n/a"
    assert rerun_view.welch_line(rerun) is None and rerun_view.summary_line(rerun) is None
    out = render_terminal(TargetResult(Report("t", stats={"rerun": rerun})))
    assert "n/a" in out


def test_statuses_kept_when_there_is_no_table():
    rerun = {"n_seeds": 1, "n_scored": 0, "statuses": {"42": "timeout"}}
    assert rerun_view.other_stats(rerun) == {"statuses": {"42": "timeout"}}
    assert "rerun.statuses.42" in render_terminal(TargetResult(Report("t", stats={"rerun": rerun})))


def test_html_rerun_table_and_statistics():
    page = html.render([rerun_result()])
    assert "<h3>Re-run</h3>" in page
    assert "<th>claimed val_bpb</th>" in page and "<td class=\"num\">1.08052000</td>" in page
    assert "<td class=\"num\">600,038</td>" in page and "<td class=\"num\">crashed</td>" in page
    assert "claim vs re-run (one-sided Welch" in page and "re-run mean val_bpb 1.08076500" in page
    assert "H1: claimed per-seed val_bpb mean &lt; re-run mean" in page  # the harness's own wording, escaped
    assert "{&#39;seed&#39;" not in page and "rerun.runs" not in page


def test_harness_ids_are_described_from_the_harness():
    known = {r.id: r for r in registered()}
    for cid, check in CHECKS.items():
        info = known[cid]
        assert (info.title, info.severity, info.source, info.kind) == (check.title, check.severity, check.source,
                                                                        "runtime")
    info = describe("R-SUB-FILES.rerun-runs", known)
    assert info.title == "train_gpt.py runs to completion from its own folder under torchrun"


def test_sarif_and_html_use_harness_titles():
    res = rerun_result()
    rules = {r["id"]: r for r in sarif.document([res])["runs"][0]["tool"]["driver"]["rules"]}
    rule = rules["R-SUB-FILES.rerun-runs"]
    assert rule["shortDescription"]["text"] == CHECKS["R-SUB-FILES.rerun-runs"].title
    assert "pull/561" in rule["help"]["text"] and rule["properties"]["kind"] == "runtime"
    assert rules["R-REC-REPRODUCIBLE.rerun-mean"]["defaultConfiguration"]["level"] == "error"
    page = html.render([res])
    assert CHECKS["R-REC-REPRODUCIBLE.rerun-mean"].title.replace("'", "&#39;") in page
    # a finding without its own source gets the harness's
    assert "Source: RULES.md R-SUB-FILES (README &#39;Submission Process&#39;" in page


def test_without_the_harness_rule_metadata_still_works(monkeypatch):
    import sys

    from rules.sub_files import (
        SubFiles,  # R-SUB-FILES and R-SUB-FOLDER are registered rules, not built-in rows
    )
    from rules.sub_folder import SubFolder

    monkeypatch.setattr("audit.registry.all_rules", lambda: [*TEST_RULES, SubFiles, SubFolder])
    monkeypatch.setitem(sys.modules, "audit.harness.checks", None)
    known = {r.id: r for r in registered()}
    assert "R-SUB-FILES.rerun-runs" not in known and "R-SUB-FOLDER" in known
    info = describe("R-SUB-FILES.rerun-runs", known)
    assert info.id == "R-SUB-FILES.rerun-runs" and info.title == known["R-SUB-FILES"].title
