"""HTML report: self-contained, escaped, with excerpts, evidence, sources, seeds and statistics."""

from __future__ import annotations

import json
import re

import pytest
from report_helpers import TEST_RULES, sample_result

from audit.report import html


@pytest.fixture(autouse=True)
def test_registry(monkeypatch):
    monkeypatch.setattr("audit.registry.all_rules", lambda: TEST_RULES)


@pytest.fixture
def page() -> str:
    return html.render([sample_result()])


def test_untrusted_text_is_escaped(page):
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "# &lt;b&gt;&amp;&lt;/b&gt;" in page  # from the code excerpt


def test_self_contained(page):
    assert not re.search(r"<(link|img)\b", page)
    assert not re.search(r"<script[^>]*\bsrc=", page)
    assert "http://" not in page.split("<script")[0].replace("https://", "")


def test_excerpt_with_focus_lines(page):
    # lines 7..14 around the finding at 10-11, with 10 and 11 highlighted
    assert '<tr class="hit"><td class="no">10</td><td>loss = ttt(val_tokens)' in page
    assert '<tr class="hit"><td class="no">11</td>' in page
    assert '<td class="no">7</td>' in page and '<td class="no">14</td>' in page
    assert '<td class="no">6</td>' not in page.split("Evidence")[0].split("R-TTT-PREQUANT")[1]


def test_evidence_rule_source_seeds_stats(page):
    assert "val tokens loaded" in page and "no location" in page
    assert "Source: RULES.md R-TTT-PREQUANT" in page
    assert "train_gpt.py:10-11" in page
    assert "<th>val_bpb</th>" in page and "1.08010000" in page and "train_seed7.log" in page
    assert "seeds.val_bpb_mean" in page and "not tested" in page
    assert "Internal error in rule R-BROKEN" in page
    assert 'class="verdict FAIL"' in page


def test_embedded_json_is_parseable_and_inert(page):
    blob = page.split('<script type="application/json" id="pgolf-audit-data">')[1].split("</script>")[0]
    assert "<" not in blob
    doc = json.loads(blob)
    assert doc["results"][0]["findings"][0]["message"].startswith("trains on <script>")


def test_significance_table():
    from audit.stats import RunSet, significance

    res = sample_result()
    res.report.stats["significance"] = significance(
        RunSet("new", val_bpb=(1.0566, 1.0561, 1.0568)), RunSet("PR 2014", val_bpb=(1.0574, 1.0573, 1.0581)))
    page = html.render([res, sample_result()])
    assert "Leaderboard practice: one-sided Welch vs PR 2014" in page
    assert "nats/byte" in page and "(verdict)" in page
    assert "<th>folder</th><th>verdict</th>" in page  # summary table for two targets


def test_decoded_wrapper_lines_are_excerpted_from_the_decoded_source():
    from audit.findings import Evidence, Finding, Report, Severity
    from audit.report.model import DECODED_MARK, TargetResult, build_excerpts
    from audit.submission import Submission, TextFile

    sub = Submission.from_files({"train_gpt.py": "import lzma\nexec(lzma.decompress(b'...'))\n"})
    inner = "".join(f"inner_{i} = {i}\n" for i in range(1, 30))
    sub.decoded["train_gpt.py"] = TextFile("train_gpt.py", len(inner), inner, "0" * 64, decoded_from="train_gpt.py")
    f = Finding("R-TTT-PREQUANT", Severity.ERROR, "m", path="train_gpt.py", line=20,
                evidence=(Evidence(f"update {DECODED_MARK}", "train_gpt.py", 20),))
    g = Finding("R-ARTIFACT-CODE-COUNT", Severity.WARNING, "wrapper", path="train_gpt.py", line=2)
    res = TargetResult(Report(target="t", findings=[f, g]), excerpts=build_excerpts(sub, [f, g]))
    ex_f, ex_ev, ex_g = res.excerpt_for(f), res.excerpt_for(f, 0), res.excerpt_for(g)
    assert ex_f is not None and ex_f.decoded and "inner_20 = 20" in ex_f.lines
    assert ex_ev is not None and ex_ev.decoded
    assert ex_g is not None and not ex_g.decoded and "exec(lzma.decompress(b'...'))" in ex_g.lines
    page = html.render([res])
    assert "statically decoded source of the self-extracting wrapper" in page
