"""JSON output: validates against audit/schema/report.schema.json; findings sorted; errors apart."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from report_helpers import TEST_RULES, sample_result

from audit import registry
from audit.report import json_report

REAL_ALL_RULES = registry.all_rules
FIXTURES = Path(__file__).parents[1] / "fixtures" / "submissions"
SCHEMA = json.loads(json_report.SCHEMA_PATH.read_text())


@pytest.fixture(autouse=True)
def test_registry(monkeypatch):
    monkeypatch.setattr("audit.registry.all_rules", lambda: TEST_RULES)


def test_schema_is_a_valid_schema():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_document_validates_and_is_strict_json():
    text = json_report.render([sample_result()])
    doc = json.loads(text)
    jsonschema.validate(doc, SCHEMA)
    assert "NaN" not in text
    assert doc["schema_version"] == json_report.SCHEMA_VERSION
    assert doc["tool"]["name"] == "pgolf-audit"


def test_findings_sorted_errors_apart_summary():
    doc = json_report.document([sample_result()])
    res = doc["results"][0]
    assert [f["severity"] for f in res["findings"]] == ["error", "warning", "info"]
    assert res["errors"] == [{"where": "R-BROKEN", "message": "RuntimeError: boom (at rules/x.py:1)"}]
    assert res["verdict"] == "FAIL" and res["summary"] == {"error": 1, "warning": 1, "info": 1}
    assert doc["summary"]["internal_errors"] == 1
    assert doc["summary"]["verdicts"] == {"PASS": 0, "REVIEW": 0, "FAIL": 1}
    f0 = res["findings"][0]
    assert f0["line"] == 10 and f0["end_line"] == 11 and len(f0["fingerprint"]) == 16
    assert f0["evidence"][0] == {"label": "val tokens loaded", "path": "train_gpt.py", "line": 3,
                                 "excerpt": "line_3 = 3"}
    assert res["runs"][0]["val_loss"] is None  # NaN -> null
    assert res["facts"]["tags"] == ["a", "b"]  # sets become sorted lists


def test_schema_rejects_a_broken_document():
    doc = json_report.document([sample_result()])
    doc["results"][0]["findings"][0]["severity"] = "fatal"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, SCHEMA)
    doc = json_report.document([sample_result()])
    del doc["results"][0]["verdict"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, SCHEMA)


def test_empty_document_validates():
    doc = json_report.document([])
    jsonschema.validate(doc, SCHEMA)
    assert doc["summary"]["verdict"] == "PASS"


def test_real_folder_through_the_cli_validates(tmp_path, capsys):
    from report_helpers import SEEDS, make_folder

    from audit import cli

    folder = make_folder(tmp_path, "2026-04-01_J", code="x = 1  # FLAG:warning\n", seeds=SEEDS)
    assert cli.main(["--format", "json", str(folder)]) == 1
    jsonschema.validate(json.loads(capsys.readouterr().out), SCHEMA)


@pytest.mark.skipif(not FIXTURES.is_dir(), reason="fixtures/submissions not built")
def test_every_real_rule_output_fits_the_schema(monkeypatch, capsys):
    """The schema must accept what the real rules put in findings, runs, stats and facts."""
    from audit import cli

    monkeypatch.setattr(registry, "all_rules", REAL_ALL_RULES)
    folders = sorted(str(p) for p in FIXTURES.iterdir() if p.is_dir() and not p.name.startswith("_"))
    code = cli.main(["--format", "json", "--exit-zero", *folders])
    doc = json.loads(capsys.readouterr().out)
    jsonschema.validate(doc, SCHEMA)
    assert code in (0, 2) and doc["summary"]["targets"] == len(folders)
