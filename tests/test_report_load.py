"""Reading a saved JSON report back (for `pgolf-audit report`): same content, clear refusals."""

from __future__ import annotations

import json

import pytest
from report_helpers import TEST_RULES, sample_result

from audit.report import json_report, sarif
from audit.report.load import ReportLoadError, load_report, results_of


@pytest.fixture(autouse=True)
def test_registry(monkeypatch):
    monkeypatch.setattr("audit.registry.all_rules", lambda: TEST_RULES)


def saved(tmp_path, doc) -> str:
    path = tmp_path / "report.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    return str(path)


def test_round_trip_keeps_everything_json_carries(tmp_path):
    original = [sample_result(), sample_result(tmp_path)]
    doc = json_report.document(original)
    loaded = load_report(saved(tmp_path, doc))
    assert json_report.document(loaded) == doc


def test_fingerprints_survive_although_keys_are_not_saved(tmp_path):
    original = sample_result()
    keyed = next(f for f in original.report.findings if f.key)
    loaded = load_report(saved(tmp_path, json_report.document([original])))[0]
    again = next(f for f in loaded.report.findings if f.rule_id == keyed.rule_id)
    assert again.fingerprint == keyed.fingerprint
    fps = [r["partialFingerprints"] for r in sarif.document([loaded])["runs"][0]["results"]]
    assert fps == [r["partialFingerprints"] for r in sarif.document([original])["runs"][0]["results"]]
    assert loaded.report.verdict == original.report.verdict


def test_a_finding_without_fingerprint_gets_one(tmp_path):
    doc = json_report.document([sample_result()])
    del doc["results"][0]["findings"][0]["fingerprint"]
    f = results_of(doc)[0].report.sorted_findings()[0]
    assert len(f.fingerprint) == 16


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update(schema_version="2.0"), "schema_version '2.0' is not supported"),
    (lambda d: d.update(schema_version=1), "schema_version 1 is not supported"),
    (lambda d: d.pop("schema_version"), "no `schema_version`"),
    (lambda d: d["tool"].update(name="other-tool"), "written by 'other-tool'"),
    (lambda d: d.update(results={}), "`results` must be a list"),
    (lambda d: d["results"][0].update(kind="repo"), "results[0].kind"),
    (lambda d: d["results"][0].update(findings=[1]), "results[0].findings[0]: expected an object, found number"),
    (lambda d: d["results"][0]["findings"][0].update(severity="fatal"), "'fatal' is not error, warning or info"),
    (lambda d: d["results"][0]["findings"][0].update(line=0), "findings[0].line: expected a line number"),
    (lambda d: d["results"][0]["findings"][0].update(message=None), "findings[0].message: expected a string"),
    (lambda d: d["results"][0]["findings"][0]["evidence"][0].update(label=3), "evidence[0].label"),
    (lambda d: d["results"][0]["findings"][0].update(fingerprint="XYZ"), "fingerprint: 'XYZ'"),
    (lambda d: d["results"][0].update(runs=["x"]), "runs[0]: expected an object"),
    (lambda d: d["results"][0].update(stats=[]), "stats: expected an object, found array"),
    (lambda d: d["results"][0]["errors"].append({"where": 1}), "errors[1].where"),
])
def test_malformed_documents_are_refused_with_where(tmp_path, mutate, message):
    doc = json_report.document([sample_result()])
    mutate(doc)
    with pytest.raises(ReportLoadError) as exc:
        load_report(saved(tmp_path, doc))
    assert message in str(exc.value)


@pytest.mark.parametrize("content, message", [
    ("[1, 2", "not valid JSON (line 1, column 6"),
    ("[]", "the top level is a JSON array"),
    ('{"version": "2.1.0", "runs": []}', "this looks like SARIF"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
])
def test_not_a_report(tmp_path, content, message):
    with pytest.raises(ReportLoadError) as exc:
        load_report(saved(tmp_path, content))
    assert message in str(exc.value)


def test_unreadable_inputs(tmp_path):
    with pytest.raises(ReportLoadError, match="no such file"):
        load_report(tmp_path / "missing.json")
    with pytest.raises(ReportLoadError, match="is a directory"):
        load_report(tmp_path)
    bad = tmp_path / "latin1.json"
    bad.write_bytes(b'{"schema_version": "1.0", "x": "\xe9"}')
    with pytest.raises(ReportLoadError, match="not UTF-8"):
        load_report(bad)
