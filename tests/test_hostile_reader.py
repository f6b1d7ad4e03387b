"""Hostile folders and submission.json files: the reader stays bounded and every problem is reported.

Issue 10 §9 (directory depth), §12 (numbers in submission.json) and §14 (a total read budget).
"""

from __future__ import annotations

import os
import pathlib

import pytest

import audit.submission as submission_mod
from audit.engine import audit_submission
from audit.findings import Finding, Severity
from audit.read_problems import ReadProblemKind
from audit.strict_json import MAX_PROBLEMS, JsonProblemKind
from audit.submission import Submission
from rules._meta_examples import folder
from rules.sub_files import SubFiles
from rules.sub_json import SubJson

LOG = "seed:42\nstep:1/10 train_loss:6.0\nfinal_int8_zlib_roundtrip_exact val_loss:2.0 val_bpb:1.2\n"


def _write(root: pathlib.Path, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_bytes(content)


def _report(sub: Submission, rule) -> list[Finding]:
    report = audit_submission(sub, rules=[rule])
    assert not report.errors, report.errors
    return [f for f in report.findings if f.rule_id == rule.ID]


def _kinds(sub: Submission) -> list[ReadProblemKind]:
    return [p.kind for p in sub.problems]


# -- directory depth (§9) -------------------------------------------------------------------------
def _remove_chain(top: pathlib.Path) -> None:
    """Delete a deep chain of folders bottom-up (shutil.rmtree recurses, and would fail here)."""
    chain = [top]
    while (chain[-1] / "d").is_dir():
        chain.append(chain[-1] / "d")
    for d in reversed(chain):
        for f in d.iterdir():
            if not f.is_dir():
                f.unlink()
        d.rmdir()


def test_hostile_1000_nested_directories(tmp_path):
    _write(tmp_path, folder())
    deep = tmp_path
    try:
        for _ in range(1000):  # os.walk raised RecursionError here (exit 2)
            deep = deep / "d"
            deep.mkdir()
        (deep / "hidden.log").write_text(LOG)
        sub = Submission.load(tmp_path)
    finally:
        _remove_chain(tmp_path / "d")
    assert "train_gpt.py" in sub.code and len(sub.logs) == 3
    (too_deep,) = [p for p in sub.problems if p.kind == ReadProblemKind.TOO_DEEP]
    assert too_deep.path == "/".join(["d"] * (submission_mod.MAX_DEPTH + 1))
    deep_findings = [f for f in _report(sub, SubFiles) if "folders deep" in f.message]
    assert [f.severity for f in deep_findings] == [Severity.ERROR]
    assert deep_findings[0].path == too_deep.path


def test_hostile_folder_depth_within_the_limit_is_read(tmp_path):
    rel = "/".join(["d"] * submission_mod.MAX_DEPTH) + "/train.log"
    _write(tmp_path, {rel: LOG})
    sub = Submission.load(tmp_path)
    assert rel in sub.logs and not sub.problems


def test_hostile_too_many_directory_entries(tmp_path, monkeypatch):
    monkeypatch.setattr(submission_mod, "MAX_ENTRIES", 50)
    for i in range(30):
        (tmp_path / f"dir{i:02d}").mkdir()
        (tmp_path / f"dir{i:02d}" / "x.bin").write_bytes(b"x")
    sub = Submission.load(tmp_path)
    assert ReadProblemKind.TOO_MANY_ENTRIES in _kinds(sub)
    assert len(sub.files) < 30
    assert any("more than 50 entries" in f.message and f.severity == Severity.ERROR for f in _report(sub, SubFiles))


def test_hostile_junk_entries_cannot_hide_the_submission(tmp_path, monkeypatch):
    monkeypatch.setattr(submission_mod, "MAX_ENTRIES", 20)
    _write(tmp_path, folder())
    for i in range(200):  # listed in any order by the OS; names that sort first, too
        (tmp_path / f"0junk{i:03d}.bin").touch()
    sub = Submission.load(tmp_path)
    assert ReadProblemKind.TOO_MANY_ENTRIES in _kinds(sub)
    assert "train_gpt.py" in sub.code and sub.json_data is not None and sub.readme and len(sub.logs) == 3


def test_hostile_file_limit_keeps_reading_what_rules_read(tmp_path, monkeypatch):
    monkeypatch.setattr(submission_mod, "MAX_FILES", 3)
    _write(tmp_path, {**folder(), **{f"0junk{i}.bin": b"x" for i in range(10)}})
    sub = Submission.load(tmp_path)
    assert ReadProblemKind.TOO_MANY_FILES in _kinds(sub)
    assert "train_gpt.py" in sub.code and sub.json_data is not None and len(sub.logs) == 3
    assert not any(p.startswith("0junk") for p in list(sub.files)[3:])


# -- read budget (§14) ----------------------------------------------------------------------------
def test_hostile_hardlinked_logs_are_read_once(tmp_path):
    _write(tmp_path, folder())
    big = tmp_path / "big.log"
    big.write_text(LOG + "x" * 100_000)
    for i in range(100):
        os.link(big, tmp_path / f"link{i:03d}.log")
    sub = Submission.load(tmp_path)
    assert sub.bytes_read < 2 * big.stat().st_size  # not 100 copies
    assert "big.log" in sub.logs and not any(p.startswith("link") for p in sub.logs)
    assert len(sub.files) == len(folder()) + 101  # every link is still listed
    links = [p for p in sub.problems if p.kind == ReadProblemKind.HARDLINK]
    assert len(links) == 100 and {p.detail for p in links} == {"big.log"}
    (finding,) = [f for f in _report(sub, SubFiles) if "hard links to big.log" in f.message]
    assert "link000.log and 99 other file(s)" in finding.message and finding.severity == Severity.WARNING


def test_hostile_read_budget_stops_reading(tmp_path, monkeypatch):
    monkeypatch.setattr(submission_mod, "MAX_READ_BYTES", 300_000)
    _write(tmp_path, folder())
    for i in range(10):  # copies, not links: each costs its bytes
        (tmp_path / f"a{i}.log").write_text(LOG + "x" * 100_000)
    sub = Submission.load(tmp_path)
    assert sub.bytes_read <= 300_000
    # The JSON, README and code are read first, whatever the logs are called.
    assert sub.json_data is not None and sub.readme is not None and "train_gpt.py" in sub.code
    (budget,) = [p for p in sub.problems if p.kind == ReadProblemKind.READ_BUDGET]
    assert budget.count is not None and budget.count >= 7 and budget.limit == 300_000
    (finding,) = [f for f in _report(sub, SubFiles) if "read budget" in f.message]
    assert finding.severity == Severity.ERROR and f"{budget.count} file(s)" in finding.message


def test_hostile_read_budget_applies_to_in_memory_folders(monkeypatch):
    monkeypatch.setattr(submission_mod, "MAX_READ_BYTES", 50_000)
    files = {**folder(), **{f"a{i}.log": LOG + "x" * 20_000 for i in range(5)}}
    sub = Submission.from_files(files)
    assert sub.bytes_read <= 50_000 and "train_gpt.py" in sub.code
    assert ReadProblemKind.READ_BUDGET in _kinds(sub)


# -- numbers and keys in submission.json (§12) ----------------------------------------------------
def _json_findings(text: str) -> tuple[Submission, list[Finding]]:
    sub = Submission.from_files({**folder(), "submission.json": text})
    return sub, _report(sub, SubJson)


def _with(fragment: str) -> str:
    return '{\n  "author": "A",\n  "github_id": "a",\n  "name": "n",\n' + fragment + '\n}\n'


@pytest.mark.parametrize("literal", ["1" + "0" * 399, "-" + "9" * 25])
def test_hostile_json_huge_integer(literal):
    sub, findings = _json_findings(_with(f'  "val_bpb": 1.1,\n  "bytes_total": {literal}'))
    assert sub.json_data is None and [p.kind for p in sub.json_problems] == [JsonProblemKind.BIG_INTEGER]
    (f,) = findings
    assert f.severity == Severity.ERROR and f.line == 6 and "digits" in f.message


@pytest.mark.parametrize("literal", ["1e400", "-1E+999"])
def test_hostile_json_float_overflow(literal):
    sub, findings = _json_findings(_with(f'  "val_bpb": 1.1,\n  "bytes_total": {literal}'))
    assert [p.kind for p in sub.json_problems] == [JsonProblemKind.NUMBER_OVERFLOW]
    (f,) = findings
    assert f.severity == Severity.ERROR and f.line == 6 and "infinity" in f.message


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_hostile_json_nan_val_bpb_is_an_error(literal):
    sub, findings = _json_findings(_with(f'  "val_bpb": {literal}'))
    assert [p.kind for p in sub.json_problems] == [JsonProblemKind.NON_FINITE]
    (f,) = findings
    assert f.severity == Severity.ERROR and f.line == 5 and literal in f.message


def test_hostile_json_nan_as_a_string_is_an_error():
    _, findings = _json_findings(_with('  "val_bpb": "NaN"'))
    assert [f.severity for f in findings] == [Severity.ERROR] and "not a finite number" in findings[0].message


def test_hostile_json_duplicate_keys():
    sub, findings = _json_findings(_with('  "val_bpb": 1.30,\n  "val_bpb": 1.05'))
    assert sub.json_data is None and [p.kind for p in sub.json_problems] == [JsonProblemKind.DUPLICATE_KEY]
    (f,) = findings
    assert f.severity == Severity.ERROR and f.line == 6 and '"val_bpb" twice' in f.message


def test_hostile_json_duplicate_keys_nested():
    text = _with('  "val_bpb": 1.1,\n  "seed_results": {"1337": {"val_bpb": 1.2, "val_bpb": 1.0}}')
    sub, findings = _json_findings(text)
    assert [p.kind for p in sub.json_problems] == [JsonProblemKind.DUPLICATE_KEY]
    (f,) = findings  # the key is written three times: no line rather than a wrong one
    assert f.severity == Severity.ERROR and f.line is None and f.path == "submission.json"


def test_hostile_json_many_duplicates_are_bounded():
    body = ",".join(f'"k{i % 100}": {i}' for i in range(10_000))  # 100 keys, each 100 times
    sub, findings = _json_findings("{" + body + "}")
    assert len(sub.json_problems) == MAX_PROBLEMS and sub.json_problems_dropped == 100 - MAX_PROBLEMS
    assert len(findings) == MAX_PROBLEMS + 1 and any("80 more problem(s)" in f.message for f in findings)


def test_hostile_json_parse_problems_are_reported():
    # Values audit.claims cannot use were collected in Claims.problems and never reported.
    _, findings = _json_findings(_with('  "val_bpb": 1.1,\n  "bytes_total": "about 16MB"'))
    (f,) = findings
    assert f.severity == Severity.ERROR and "bytes_total" in f.message and "not a whole number" in f.message


def test_hostile_json_ordinary_numbers_pass():
    sub, findings = _json_findings(_with('  "val_bpb": 1.10, "bytes_total": 15999999, "val_loss": 1e-3, '
                                         '"seeds": [1337, 42, 4294967295]'))
    assert sub.json_data is not None and not sub.json_problems and not findings


def test_hostile_deep_folder_through_the_cli(tmp_path, capsys):
    """The whole check, as CI runs it: a finding and exit 1, not an internal error (exit 2)."""
    import json

    from audit.cli import main

    _write(tmp_path, folder())
    deep = tmp_path
    try:
        for _ in range(1000):
            deep = deep / "d"
            deep.mkdir()
        code = main(["check", str(tmp_path), "--format", "json"])
    finally:
        _remove_chain(tmp_path / "d")
    out = json.loads(capsys.readouterr().out)
    assert code == 1
    (result,) = out["results"]
    assert not result["errors"]
    assert any(f["rule_id"] == "R-SUB-FILES" and "folders deep" in f["message"] for f in result["findings"])
