"""Every rule is documented under the same fixed headings, rendered once for every output."""

from __future__ import annotations

import json

import pytest

from audit.registry import all_rules
from audit.report import rulemeta
from audit.rule import RuleDoc


@pytest.mark.parametrize("rule", all_rules(), ids=lambda r: r.ID)
def test_every_rule_has_every_heading(rule):
    assert isinstance(rule.DOC, RuleDoc), f"{rule.ID} needs DOC = RuleDoc(...) (see audit/rule.py)"
    assert rule.DOC.why.strip() and rule.DOC.ruling.strip() and rule.DOC.date.strip() and rule.DOC.sources
    sections = rulemeta.doc_sections(rule)
    assert list(sections) == list(rulemeta.HEADINGS)
    empty = [h for h, body in sections.items() if not body.strip()]
    assert not empty, f"{rule.ID}: empty heading(s) {empty}"
    text = rulemeta.doc_markdown(rule)
    for heading in rulemeta.HEADINGS:
        assert f"### {heading}\n" in text


@pytest.mark.parametrize("rule", all_rules(), ids=lambda r: r.ID)
def test_sources_are_urls_or_named_documents(rule):
    for src in rule.DOC.sources:
        assert src.startswith(("https://", "README", "RFC ")), f"{rule.ID}: {src!r}"


def test_the_illegal_example_shows_where_it_is_reported():
    rule = next(r for r in all_rules() if r.ID == "R-TTT-PREQUANT")
    illegal = rulemeta.doc_sections(rule)["Illegal example"]
    assert "Reported at `train_gpt.py:" in illegal and "# <- reported here" in illegal
    legal = rulemeta.doc_sections(rule)["Legal example"]
    assert "Passes (no warning or error)." in legal and "reported here" not in legal


def test_one_text_for_every_output(capsys):
    """`rules --markdown`, SARIF fullDescription/help and the HTML report carry the same doc."""
    from audit.cli import main
    from audit.findings import Finding, Report, Severity
    from audit.report import html, sarif
    from audit.report.model import TargetResult

    rule = next(r for r in all_rules() if r.ID == "R-SUB-FILES")
    doc = rulemeta.doc_markdown(rule)
    assert main(["rules", "--markdown"]) == 0
    assert doc in capsys.readouterr().out

    rep = Report(target="t", findings=[Finding("R-SUB-FILES", Severity.ERROR, "m", path="README.md")])
    (entry,) = sarif.document([TargetResult(rep)])["runs"][0]["tool"]["driver"]["rules"]
    assert entry["help"]["markdown"] == doc and entry["help"]["text"] == doc
    assert entry["fullDescription"]["text"].startswith("What it checks: ")
    assert rule.DOC.why.split(".")[0] in entry["fullDescription"]["text"]
    json.dumps(entry)  # serialisable

    page = html.render([TargetResult(rep)])
    assert 'id="rule-R-SUB-FILES"' in page and "<h3>Illegal example</h3>" in page
    assert "href=\"#rule-R-SUB-FILES\"" in page
