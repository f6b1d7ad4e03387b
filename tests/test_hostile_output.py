"""Hostile names and texts against every output, the module entry, and the per-rule time limit.

Issue 10 §10 (escape sequences), §11 (non-UTF-8 names), §13 (`python -m audit` in a folder),
§14 (a rule that never returns). Each test reproduces the attack and checks the mechanism holds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import pytest
from report_helpers import make_folder

from audit import cli
from audit.context import AuditContext, Options
from audit.engine import audit_submission
from audit.findings import Evidence, Finding, Report, Severity
from audit.report import output, sanitize
from audit.report.model import TargetResult
from audit.rule import Rule
from audit.submission import Submission

ROOT = Path(__file__).resolve().parents[1]
CLEAR_AND_FAKE = "\x1b[2J\x1b[H\x1b[32m PASS \x1b[0m"
SEED_LOG = "seed: 42\nstep:100/100 val_loss:2.0000 val_bpb:1.1000\nfinal_int8_zlib_roundtrip_exact val_loss:2.00000000 val_bpb:1.10000000\n"


def hostile_result() -> TargetResult:
    """A result whose every string carries an attack: ANSI, CR, newline + markdown, bidi, a non-UTF-8 byte."""
    name = f"x{CLEAR_AND_FAKE}\n# injected heading\r| a | b |\u202e\udcff.log"
    finding = Finding("R-TEST", Severity.ERROR, f"bad log {name}", path=name, line=1,
                      evidence=(Evidence(f"seen in {name}", name, 1, f"excerpt {CLEAR_AND_FAKE}"),), key="k")
    report = Report(target=f"records/track/x{CLEAR_AND_FAKE}\n## PASS\udcff", findings=[finding],
                    runs=[{"log": name, "seed": 1, "val_bpb": 1.1}], stats={"seeds": {"n_logs": 1}})
    return TargetResult(report)


def _controls(text: str) -> list[str]:
    return sorted({c for c in text if (ord(c) < 32 and c not in "\n\t") or 0x7f <= ord(c) <= 0x9f
                   or c == "\u202e" or 0xd800 <= ord(c) <= 0xdfff})


def test_hostile_names_in_terminal_output(capsys):
    output.emit([hostile_result()], {"terminal": None})
    out = capsys.readouterr().out
    assert _controls(out) == [], "a control character reached the terminal"
    assert "\\x1b[2J" in out and "\\xff" in out  # shown, escaped, not dropped
    assert not any(line.startswith(("# injected", "## PASS", " PASS")) for line in out.splitlines())
    banner = out.splitlines()[1]
    assert "\\n## PASS" in banner  # the folder name's newline is shown, not obeyed


def test_hostile_rich_markup_in_names_prints_as_typed(tmp_path):
    import io

    from audit.report import terminal

    fake = "[reverse green] PASS [/]"
    res = hostile_result()
    res.report.findings[0] = Finding("R-TEST", Severity.ERROR, "m", path=f"{fake}.log", key="k")
    res.report.runs[0]["log"] = f"{fake}.log"
    buf = io.StringIO()
    terminal.render(sanitize.for_format([res], "terminal"), terminal.make_console(buf, force_terminal=True, width=200))
    out = buf.getvalue()
    assert out.count(fake) == 2  # in the findings table and the seed table, literally


def test_hostile_names_in_github_annotations_and_step_summary(tmp_path, monkeypatch, capsys):
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    output.emit([hostile_result()], {"github": None})
    out = capsys.readouterr().out
    assert _controls(out) == []
    assert all(line.startswith("::") for line in out.splitlines()), "a name started a workflow command line"
    md = summary.read_text(encoding="utf-8")
    rows = [line for line in md.splitlines() if line.startswith("|")]
    assert len(rows) == 3, md  # header, rule, one target: the newline added no row or heading
    assert not any(line.startswith("#") for line in md.splitlines()[1:]), md
    assert _controls(md) == []


@pytest.mark.parametrize("fmt", ["json", "sarif", "html"])
def test_hostile_non_utf8_names_in_file_outputs(tmp_path, fmt):
    dest = tmp_path / f"report.{fmt}"
    output.emit([hostile_result()], {fmt: dest})  # used to raise UnicodeEncodeError
    text = dest.read_text(encoding="utf-8")
    assert "\\xff" in text  # the byte, escaped: nothing lost
    if fmt == "json":
        doc = json.loads(text)
        assert doc["results"][0]["runs"][0]["log"].endswith("\\xff.log")
        assert "\x1b" in doc["results"][0]["runs"][0]["log"]  # JSON stays lossless; its encoder escapes it
    else:
        assert "\x1b" not in text
    if fmt == "sarif":
        json.loads(text)


def test_hostile_log_file_names_end_to_end(tmp_path, capsys):
    """A real folder: a log named with ANSI codes and one with a non-UTF-8 byte, through the real rules."""
    folder = make_folder(tmp_path, "2026-04-01_Hostile")
    (folder / f"train_seed42{CLEAR_AND_FAKE}.log").write_text(SEED_LOG, encoding="utf-8")
    with open(os.fsencode(folder) + b"/train_seed7\xff.log", "w", encoding="utf-8") as fh:
        fh.write(SEED_LOG.replace("42", "7"))
    code = cli.main(["--format", "terminal", "--exit-zero", str(folder)])
    out = capsys.readouterr().out
    assert code == 0 and _controls(out) == []
    assert "\\xff" in out
    code = cli.main(["--format", "sarif,json", "--out", str(tmp_path / "out"), "--exit-zero", str(folder)])
    assert code == 0
    sarif = json.loads((tmp_path / "out" / "report.sarif").read_text(encoding="utf-8"))
    assert "\x1b" not in json.dumps(sarif, ensure_ascii=False)


def test_markdown_cell_and_lines_are_single_line():
    assert "\n" not in sanitize.markdown_cell("a\nb") and "\\|" in sanitize.markdown_cell("a|b")
    assert sanitize.terminal_line("a\x1b[31mb\r") == "a\\x1b[31mb\\r"
    assert sanitize.visible_multiline("line1\nline2\x07") == "line1\nline2\\x07"
    assert sanitize.lossless("x\udcff.log") == "x\\xff.log"


# -- python -m audit inside a submission folder ----------------------------------------------------
def test_hostile_module_entry_ignores_the_working_directory(tmp_path):
    marker = tmp_path / "pwned"
    (tmp_path / "json.py").write_text(f"open({str(marker)!r}, 'w').write('x')\nraise SystemExit(99)\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "audit", "rules", "--markdown"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists(), "the folder's json.py was imported"
    assert "R-SUB-FOLDER" in proc.stdout


# -- per-rule time limit -------------------------------------------------------------------------------
class Spins(Rule):
    ID = "R-TEST-SPIN"
    TITLE = "Test rule: never returns"
    KIND = "static"
    SOURCE = "tests/test_hostile_output.py"

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        while True:
            try:
                sum(range(1000))
            except Exception:  # noqa: BLE001 - a rule that swallows errors must still be stopped
                pass


class SwallowsEverything(Rule):
    ID = "R-TEST-SWALLOW"
    TITLE = "Test rule: catches even BaseException and goes on"
    KIND = "static"
    SOURCE = "tests/test_hostile_output.py"

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        caught = 0
        while caught < 3:  # a rule that outlives two timeouts is still stopped by the third
            try:
                while True:
                    sum(range(1000))
            except BaseException:  # noqa: BLE001 - hostile on purpose
                caught += 1
        return []


class Quick(Rule):
    ID = "R-TEST-QUICK"
    TITLE = "Test rule: reports at once"
    KIND = "static"
    SOURCE = "tests/test_hostile_output.py"

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        yield self.finding("seen")


def test_hostile_rule_that_never_returns_becomes_an_internal_error():
    sub = Submission.from_files({"train_gpt.py": "x = 1\n"})
    start = time.monotonic()
    report = audit_submission(sub, Options(rule_timeout=0.3), rules=[Spins, Quick], kinds=("static",))
    assert time.monotonic() - start < 30  # bounded, not a hang (the limit itself is not asserted)
    assert [e.where for e in report.errors] == ["R-TEST-SPIN"] and "timed out" in report.errors[0].message
    assert [f.rule_id for f in report.findings if f.rule_id.startswith("R-TEST")] == ["R-TEST-QUICK"]


def test_hostile_rule_that_swallows_the_timeout_is_stopped_again():
    sub = Submission.from_files({"train_gpt.py": "x = 1\n"})
    report = audit_submission(sub, Options(rule_timeout=0.2), rules=[SwallowsEverything, Quick], kinds=("static",))
    assert [e.where for e in report.errors] == ["R-TEST-SWALLOW"]
    assert [f.rule_id for f in report.findings if f.rule_id.startswith("R-TEST")] == ["R-TEST-QUICK"]


def test_hostile_folder_budget_skips_the_remaining_rules():
    sub = Submission.from_files({"train_gpt.py": "x = 1\n"})
    report = audit_submission(sub, Options(rule_timeout=0.3, folder_budget=0.3), rules=[Spins, Quick],
                              kinds=("static",))
    assert [e.where for e in report.errors] == ["R-TEST-SPIN", "R-TEST-QUICK"]
    assert "budget" in report.errors[1].message


def test_hostile_timed_out_rule_exits_2_through_the_cli(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("audit.registry.all_rules", lambda: (Spins, Quick))
    folder = make_folder(tmp_path, "2026-04-01_Spin")
    code = cli.main(["--rule-timeout", "0.3", "--format", "json", str(folder)])
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert code == 2 and "R-TEST-SPIN" in captured.err
    assert doc["results"][0]["errors"][0]["where"] == "R-TEST-SPIN"


def test_sanitised_copies_keep_every_excerpt_and_leave_the_original_alone():
    from report_helpers import sample_result

    res = sample_result()
    before = [(f, res.excerpt_for(f), [res.excerpt_for(f, i) for i in range(len(f.evidence))])
              for f in res.report.findings]
    for fmt in sanitize.POLICIES:
        safe = sanitize.for_format([res], fmt)[0]
        for (orig, ex, evs), new in zip(before, safe.report.findings, strict=True):
            assert (safe.excerpt_for(new) is None) == (ex is None), fmt
            assert [safe.excerpt_for(new, i) is None for i in range(len(new.evidence))] == [e is None for e in evs]
            assert new.severity is orig.severity  # enums stay enums
    assert res.report.findings == [f for f, _, _ in before]
