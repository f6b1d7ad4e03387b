"""Shared fixtures for the CLI and report tests: tiny rules we control, and folders they judge.

The CLI tests must not depend on what the real rules think of a folder (they change as rules
land), so the registry is replaced by these rules. A line `# FLAG:<severity>` in train_gpt.py
makes R-TEST-FLAG report that line; `# CRASH` makes R-TEST-CRASH raise.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from audit.context import AuditContext
from audit.findings import Evidence, Finding, Severity
from audit.rule import Rule


class FlagRule(Rule):
    ID = "R-TEST-FLAG"
    TITLE = "Test rule: flags marked lines"
    SEVERITY = Severity.ERROR
    KIND = "static"
    SOURCE = "tests/report_helpers.py"

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        tf = ctx.submission.code.get("train_gpt.py")
        for i, line in enumerate(tf.lines if tf else [], start=1):
            if "# FLAG:" in line:
                sev = Severity(line.split("# FLAG:")[1].split()[0])
                yield self.finding(
                    f"marked line: {line.strip()}", path="train_gpt.py", line=i, severity=sev,
                    evidence=[Evidence("the mark", "train_gpt.py", i, line.strip()),
                              Evidence("first line of the file", "train_gpt.py", 1)],
                    key=f"flag:{i}",
                )


class CrashRule(Rule):
    ID = "R-TEST-CRASH"
    TITLE = "Test rule: crashes on request"
    SEVERITY = Severity.ERROR
    KIND = "static"
    SOURCE = "tests/report_helpers.py"

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        tf = ctx.submission.code.get("train_gpt.py")
        if tf is not None and "# CRASH" in (tf.text or ""):
            raise RuntimeError("boom")
        return []


class RunsRule(Rule):
    ID = "R-TEST-RUNS"
    TITLE = "Test rule: fills the seed table from submission.json"
    SEVERITY = Severity.INFO
    KIND = "meta"
    SOURCE = "tests/report_helpers.py"
    ALSO_REPORTS = ("R-TEST-RUNS-ALSO",)

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        data = ctx.submission.json_data or {}
        for seed, res in sorted((data.get("seed_results") or {}).items()):
            ctx.runs_table.append({"log": f"train_seed{seed}.log", "seed": int(seed), **res})
        if ctx.runs_table:
            ctx.stats["seeds"] = {"n": len(ctx.runs_table), "odd": float("nan")}
        return []


TEST_RULES = (CrashRule, FlagRule, RunsRule)

CLEAN = "import os\n\n\ndef main():\n    return os.getcwd()\n"


def make_folder(root: Path, name: str, code: str = CLEAN, seeds: dict | None = None) -> Path:
    folder = root / "records" / "track_10min_16mb" / name
    folder.mkdir(parents=True)
    (folder / "train_gpt.py").write_text(code, encoding="utf-8")
    (folder / "README.md").write_text("# Test submission\n", encoding="utf-8")
    data = {"author": "A", "github_id": "a", "name": name, "val_bpb": 1.1}
    if seeds is not None:
        data["seed_results"] = seeds
    (folder / "submission.json").write_text(json.dumps(data), encoding="utf-8")
    return folder


SEEDS = {
    "42": {"val_bpb": 1.0801, "val_loss": 2.79, "artifact_bytes": 15_990_000, "train_time_ms": 599_000.0},
    "1337": {"val_bpb": 1.0812, "val_loss": 2.793},
    "2025": {"val_bpb": 1.0795},
}


def sample_result(tmp_path: Path | None = None):
    """A TargetResult with every kind of content: severities, evidence, excerpts, runs, stats, errors."""
    from audit.findings import AuditError, Report
    from audit.report.model import TargetResult, build_excerpts
    from audit.submission import Submission

    code = "".join(f"line_{i} = {i}\n" for i in range(1, 21))
    code = code.replace("line_10 = 10", "loss = ttt(val_tokens)  # <b>&</b>")
    sub = Submission.from_files({"train_gpt.py": code, "train_seed42.log": "seed:42\nval_bpb:1.08\n"})
    findings = [
        Finding("R-TTT-PREQUANT", Severity.ERROR, "trains on <script>alert(1)</script> val tokens, 100% sure",
                path="train_gpt.py", line=10, end_line=11, source="RULES.md R-TTT-PREQUANT",
                evidence=(Evidence("val tokens loaded", "train_gpt.py", 3, "line_3 = 3"),
                          Evidence("score line", "train_seed42.log", 2, "val_bpb:1.08"),
                          Evidence("no location")),
                key="k1"),
        Finding("R-ARTIFACT-CAP.per-seed", Severity.WARNING, "over the cap\nby 12 bytes, a:b",
                path="train_seed42.log", line=1),
        Finding("R-TTT-IS-LAST-CHUNK", Severity.INFO, "a note without a place"),
    ]
    report = Report(
        target=str(tmp_path / "2026-04-01_Sample") if tmp_path else "records/track_10min_16mb/2026-04-01_Sample",
        findings=findings,
        errors=[AuditError("R-BROKEN", "RuntimeError: boom (at rules/x.py:1)")] if tmp_path is None else [],
        runs=[{"log": "train_seed42.log", "seed": 42, "val_bpb": 1.0801, "val_loss": float("nan")},
              {"log_path": "train_seed7.log", "seed": 7}],
        stats={"seeds": {"n": 2, "val_bpb_mean": 1.0801}, "significance": {"note": "not tested"}},
        facts={"track": "track_10min_16mb", "tags": {"b", "a"}},
    )
    return TargetResult(report, excerpts=build_excerpts(sub, findings))
