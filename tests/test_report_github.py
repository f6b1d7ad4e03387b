"""GitHub workflow annotations: command per severity, properties, toolkit escaping."""

from __future__ import annotations

from report_helpers import sample_result

from audit.report import github


def test_escaping_follows_the_toolkit():
    assert github.escape_data("100%\r\nnext: a,b") == "100%25%0D%0Anext: a,b"
    assert github.escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"


def test_annotation_lines():
    lines = github.render([sample_result()]).splitlines()
    assert lines[0].startswith("::error file=records/track_10min_16mb/2026-04-01_Sample/train_gpt.py,"
                               "line=10,endLine=11,title=R-TTT-PREQUANT (2026-04-01_Sample)::")
    assert "100%25 sure" in lines[0] and "%0A  - val tokens loaded (train_gpt.py:3): line_3 = 3" in lines[0]
    assert lines[1].startswith("::warning file=") and "over the cap%0Aby 12 bytes, a:b" in lines[1]
    assert lines[2].startswith("::notice title=R-TTT-IS-LAST-CHUNK (2026-04-01_Sample)::")
    assert lines[3].startswith("::error title=pgolf-audit internal error::") and "R-BROKEN" in lines[3]
    assert all("\n" not in line for line in lines)


def test_property_values_are_escaped():
    from audit.findings import Finding, Report, Severity
    from audit.report.model import TargetResult

    res = TargetResult(Report(target="x,y:z", findings=[Finding("R-A", Severity.ERROR, "m")]))
    assert "title=R-A (x%2Cy%3Az)::m" in github.render([res])


def test_step_summary(tmp_path, monkeypatch):
    dest = tmp_path / "s.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(dest))
    github.write_step_summary([sample_result()])
    text = dest.read_text()
    assert "| 2026-04-01_Sample | FAIL | 1 | 1 | 1 | 1.08010 |" in text
