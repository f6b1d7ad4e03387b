"""SARIF 2.1.0 output: the shape code-scanning viewers rely on (checked with our own subset schema)."""

from __future__ import annotations

import json

import jsonschema
import pytest
from report_helpers import TEST_RULES, sample_result

from audit.report import sarif

# The parts of the SARIF 2.1.0 schema (OASIS) that our output uses, written out as a subset.
LOCATION = {
    "type": "object",
    "required": ["physicalLocation"],
    "properties": {
        "physicalLocation": {
            "type": "object",
            "required": ["artifactLocation"],
            "properties": {
                "artifactLocation": {"type": "object", "required": ["uri"],
                                     "properties": {"uri": {"type": "string", "minLength": 1}}},
                "region": {"type": "object", "required": ["startLine"],
                           "properties": {"startLine": {"type": "integer", "minimum": 1},
                                          "endLine": {"type": "integer", "minimum": 1}}},
            },
        },
        "id": {"type": "integer", "minimum": 0},
        "message": {"type": "object", "required": ["text"]},
    },
}
SUBSET = {
    "type": "object",
    "required": ["version", "runs", "$schema"],
    "properties": {
        "version": {"const": "2.1.0"},
        "runs": {"type": "array", "minItems": 1, "items": {
            "type": "object",
            "required": ["tool", "results"],
            "properties": {
                "tool": {"type": "object", "required": ["driver"], "properties": {"driver": {
                    "type": "object", "required": ["name", "rules"],
                    "properties": {"rules": {"type": "array", "items": {
                        "type": "object",
                        "required": ["id", "shortDescription", "help", "defaultConfiguration"],
                        "properties": {
                            "shortDescription": {"type": "object", "required": ["text"]},
                            "help": {"type": "object", "required": ["text"]},
                            "defaultConfiguration": {"type": "object", "properties": {
                                "level": {"enum": ["none", "note", "warning", "error"]}}},
                        }}}}}}},
                "results": {"type": "array", "items": {
                    "type": "object",
                    "required": ["ruleId", "message", "level", "locations", "partialFingerprints"],
                    "properties": {
                        "level": {"enum": ["none", "note", "warning", "error"]},
                        "message": {"type": "object", "required": ["text"]},
                        "locations": {"type": "array", "minItems": 1, "items": LOCATION},
                        "relatedLocations": {"type": "array", "items": LOCATION},
                        "partialFingerprints": {"type": "object",
                                                "additionalProperties": {"type": "string"}},
                        "ruleIndex": {"type": "integer", "minimum": 0},
                    }}},
            }}},
    },
}


@pytest.fixture(autouse=True)
def test_registry(monkeypatch):
    monkeypatch.setattr("audit.registry.all_rules", lambda: TEST_RULES)


def test_shape_and_levels():
    doc = json.loads(sarif.render([sample_result()]))
    jsonschema.validate(doc, SUBSET)
    run = doc["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    results = run["results"]
    assert [r["level"] for r in results] == ["error", "warning", "note"]
    for r in results:  # ruleIndex points at the rule with that id
        assert rules[r["ruleIndex"]]["id"] == r["ruleId"]
    assert len({r["id"] for r in rules}) == len(rules)


def test_regions_fingerprints_and_evidence():
    res = sample_result()
    run = sarif.document([res])["runs"][0]
    first = run["results"][0]
    loc = first["locations"][0]["physicalLocation"]
    assert loc["region"] == {"startLine": 10, "endLine": 11}
    assert loc["artifactLocation"]["uri"].endswith("2026-04-01_Sample/train_gpt.py")
    assert first["partialFingerprints"] == {sarif.FINGERPRINT_KEY: res.report.sorted_findings()[0].fingerprint}
    related = first["relatedLocations"]
    assert [r["physicalLocation"]["region"]["startLine"] for r in related] == [3, 2]
    assert related[1]["physicalLocation"]["artifactLocation"]["uri"].endswith("train_seed42.log")
    # a finding with no path still has a location (GitHub code scanning requires one)
    assert run["results"][2]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]


def test_rule_metadata_from_base_id_and_builtin():
    doc = sarif.document([sample_result()])
    rules = {r["id"]: r for r in doc["runs"][0]["tool"]["driver"]["rules"]}
    assert rules["R-TTT-PREQUANT"]["defaultConfiguration"]["level"] == "error"
    assert rules["R-ARTIFACT-CAP.per-seed"]["name"] == "RArtifactCapPerSeed"


def test_crashed_rule_is_a_notification():
    inv = sarif.document([sample_result()])["runs"][0]["invocations"][0]
    assert inv["executionSuccessful"] is False
    assert "R-BROKEN" in inv["toolExecutionNotifications"][0]["message"]["text"]


def test_registered_rule_title_is_used(tmp_path):
    from audit.findings import Finding, Report, Severity
    from audit.report.model import TargetResult

    rep = Report(target=str(tmp_path), findings=[Finding("R-TEST-FLAG", Severity.WARNING, "m", path="a.py", line=1)])
    rule = sarif.document([TargetResult(rep)])["runs"][0]["tool"]["driver"]["rules"][0]
    assert rule["shortDescription"]["text"] == "Test rule: flags marked lines"
    assert "tests/report_helpers.py" in rule["help"]["text"]


def test_against_the_official_schema_when_available():
    """Set SARIF_SCHEMA to a copy of the OASIS sarif-schema-2.1.0.json to run this (not vendored)."""
    import os
    from pathlib import Path

    path = os.environ.get("SARIF_SCHEMA")
    if not path or not Path(path).is_file():
        pytest.skip("SARIF_SCHEMA not set")
    schema = json.loads(Path(path).read_text())
    if "Root" in schema.get("definitions", {}):  # some copies wrap the root object in a definition
        schema = {"$schema": schema["$schema"], "definitions": schema["definitions"], "$ref": "#/definitions/Root"}
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())
    errors = list(validator.iter_errors(sarif.document([sample_result()])))
    assert not errors, [(e.json_path, e.message) for e in errors[:5]]


def test_finding_without_path_uses_its_first_evidence_file(tmp_path):
    from audit.findings import Evidence, Finding, Report, Severity
    from audit.report.model import TargetResult

    f = Finding("R-SUB-FOLDER", Severity.ERROR, "two folders",
                evidence=(Evidence("no file"), Evidence("3 files in records/t/a", "records/t/a/README.md")))
    res = TargetResult(Report(target="main...HEAD", findings=[f]), kind="diff", root=str(tmp_path))
    loc = sarif.document([res])["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"].endswith("records/t/a/README.md")
