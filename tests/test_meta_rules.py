"""Metadata rules: the cases their inline examples cannot show (files on disk, tolerances, shared table)."""

from __future__ import annotations

import base64
import json
import lzma
from pathlib import Path

from audit.engine import audit_submission
from audit.findings import Severity
from audit.registry import all_rules, rule_by_id
from audit.submission import Submission
from rules._meta_examples import SCRIPT, SEEDS, bpb, folder, log
from rules.claims_match_logs import decimals, tolerance

META = [r for r in all_rules() if r.KIND == "meta"]


def _write(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return root


def _loud(report, rule_id: str | None = None):
    return [f for f in report.findings if f.severity != Severity.INFO and (rule_id is None or f.rule_id == rule_id)]


def test_claim_tolerance_follows_written_decimals():
    assert decimals(1.1194) == 4 and decimals(1.2243657) == 7
    assert tolerance(1.1194) > 1e-4 - 1e-12  # one unit of the 4th decimal
    assert tolerance(1.22436570) < 2e-7
    assert tolerance(1.1) == tolerance(1.123)  # fewer than 3 decimals is held to 3


def test_train_time_tolerance_bounds():
    from audit.logs import parse_log
    from rules.train_time_600 import _step_tolerance_ms

    fast = parse_log("a.log", log(1337, 2.07, train_time_ms=600_038, step=13_780))
    slow = parse_log("b.log", log(1337, 2.07, train_time_ms=600_500, step=1_000))

    assert _step_tolerance_ms(fast) == 250.0
    assert _step_tolerance_ms(slow) == 1_000.0


def test_model_file_on_disk_over_cap(tmp_path: Path):
    root = _write(tmp_path / "sub", folder())
    with open(root / "final_model.int8.ptz", "wb") as f:  # sparse: 16 MB of size, no data written
        f.truncate(16_000_001)
    report = audit_submission(Submission.load(root), rules=[rule_by_id("R-ARTIFACT-CAP")], kinds=("meta",))
    hits = _loud(report, "R-ARTIFACT-CAP")
    assert hits and hits[0].path == "final_model.int8.ptz"


def test_over_cap_log_that_fits_when_code_is_packed_is_dated():
    """#1412's shape: the log counted readable code; the model plus the packed code fits. Before
    #1835 (2026-04-26) that was accepted (a warning); since then the log's total decides (an error)."""
    from audit.context import Options

    big = SCRIPT + "".join(f"\ndef helper_{i}(x):\n    return x + {i}\n" for i in range(3000))
    code = len(big.encode())
    logs = {f"train_seed{s}.log": log(s, v, source=big, model_bytes=15_990_000, code_bytes=code) for s, v in SEEDS}
    severities = {}
    for as_of in ("2026-04-09", "2026-04-27"):
        sub = Submission.from_files(folder(logs, script=big))
        report = audit_submission(sub, Options(as_of=as_of), rules=[rule_by_id("R-ARTIFACT-CAP")], kinds=("meta",))
        hits = _loud(report, "R-ARTIFACT-CAP")
        assert hits
        severities[as_of] = {f.severity for f in hits}
    assert severities == {"2026-04-09": {Severity.WARNING}, "2026-04-27": {Severity.ERROR}}


def test_launcher_counts_the_file_it_runs():
    """A 60-byte train_gpt.py that execs train_gpt_decode.py is measured by the decoded file."""
    from audit.artifact import counted_code
    from audit.context import AuditContext

    launcher = 'exec(open(__file__.replace("train_gpt.py","train_gpt_decode.py")).read())\n'
    sub = Submission.from_files(folder(script=launcher, extra_files={"train_gpt_decode.py": SCRIPT * 20}))
    code = counted_code(AuditContext(sub))
    assert code is not None and code.files == ("train_gpt.py", "train_gpt_decode.py")
    assert code.raw == len((SCRIPT * 20).encode())


def test_log_source_matches_decoded_wrapper():
    """Logs of a self-extracting script may embed the readable inner source."""
    packed = base64.b85encode(lzma.compress(SCRIPT.encode())).decode()
    wrapper = f'import lzma as L,base64 as B\nexec(L.decompress(B.b85decode("{packed}")))\n'
    sub = Submission.from_files(folder(script=wrapper))  # logs embed SCRIPT, the decoded source
    report = audit_submission(sub, rules=[rule_by_id("R-SUB-SEEDS-SAME-CONFIG.log-source")], kinds=("meta",))
    assert not _loud(report)


def test_relabelled_seed_claim_is_a_warning():
    """The claim is the mean of two logs, but submission.json names another seed for one of them."""
    logs = {"a_seed1341.log": log(1341, 2.10), "b.log": log(1342, 2.0727), "c_s42.log": log(42, 2.0739)}
    mean = round((bpb(2.0727) + bpb(2.0739)) / 2, 8)
    sub = Submission.from_files(folder(logs, json_extra={
        "val_bpb": mean, "seeds": [1341, 42],
        "seed_results": {"1341": {"val_bpb": bpb(2.0727)}, "42": {"val_bpb": bpb(2.0739)}}}))
    report = audit_submission(sub, rules=[rule_by_id("R-SUB-JSON.claims-match-logs")], kinds=("meta",))
    hits = _loud(report)
    assert hits and all(f.severity == Severity.WARNING for f in hits), [(f.severity, f.message) for f in hits]


def test_claim_worse_than_logs_is_a_warning_not_an_error():
    sub = Submission.from_files(folder(json_extra={"val_bpb": 1.2301}))
    report = audit_submission(sub, rules=[rule_by_id("R-SUB-JSON.claims-match-logs")], kinds=("meta",))
    assert [f.severity for f in _loud(report)] == [Severity.WARNING]


def test_one_seed_table_whatever_rules_run():
    sub = Submission.from_files(folder())
    report = audit_submission(sub, rules=META, kinds=("meta",))
    assert len(report.runs) == 3
    assert sorted(r["seed"] for r in report.runs) == sorted(s for s, _ in SEEDS)
    stats = report.stats["seeds"]
    assert stats["n_scored"] == 3 and stats["val_bpb_std_ddof1"] is not None
    claimed = json.loads(folder()["submission.json"])["val_bpb"]
    assert abs(stats["val_bpb_mean"] - claimed) < 1e-8


def test_bad_inputs_never_crash_meta_rules(tmp_path: Path):
    cases = {
        "empty": {},
        "json_list": {"submission.json": "[]", "README.md": "x"},
        "garbage_log": {"train.log": b"\xff\xfe seed: val_bpb:abc step:1/0 Total submission size: x bytes\n"},
        "huge_numbers": {"train_seed1.log": log(1, 2.07, model_bytes=10**30, train_time_ms=10**15)},
        "no_script": {k: v for k, v in folder().items() if k != "train_gpt.py"},
    }
    for name, files in cases.items():
        root = _write(tmp_path / name, files)
        report = audit_submission(Submission.load(root), rules=META, kinds=("meta",))
        assert not report.errors, (name, report.errors)
