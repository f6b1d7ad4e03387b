"""The harness end to end on our fixture submissions (fixtures/harness/): torchrun, 2 processes.

The fixture scripts import no torch, so each run costs only torchrun's own start-up (a few
seconds); the reference-bundle acceptance run is in test_harness_reference.py (slow).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from audit.cli import UsageError, main
from audit.findings import Severity
from audit.harness.isolation import choose_isolation
from audit.harness.rerun import RerunResult, rerun
from audit.harness.runner import RerunOptions
from audit.logs import parse_log

pytest.importorskip("torch")  # torchrun is `python -m torch.distributed.run`

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "harness"


def tree_sha(root: Path) -> str:
    """Independent of the harness's own hashing: every file's path and bytes, sorted."""
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*")):
        h.update(path.relative_to(root).as_posix().encode())
        if path.is_file():
            h.update(path.read_bytes())
    return h.hexdigest()


def run_fixture(tmp_path: Path, case: str, seeds=(42,), static: bool = False, **kw) -> RerunResult:
    opts = RerunOptions(folder=FIXTURES / case, seeds=list(seeds), out=tmp_path / "out", nproc=2,
                        scratch_root=_scratch(tmp_path), show_progress=False, **kw)
    return rerun(opts, static=static)


def _scratch(tmp_path: Path) -> Path:
    (tmp_path / "scratch").mkdir(exist_ok=True)
    return tmp_path / "scratch"


def ids(res: RerunResult, severity: Severity | None = None) -> set[str]:
    return {f.rule_id for f in res.report.findings
            if f.rule_id.split(".")[-1].startswith("rerun") and (severity is None or f.severity == severity)}


def processes_under(root: Path) -> list[int]:
    """Live processes whose working directory is inside root (none may outlive a run)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cwd = os.readlink(f"/proc/{entry}/cwd")
            except OSError:
                continue
            if cwd.startswith(str(root)):
                found.append(int(entry))
    return found


def test_ok_fixture_reproduces_its_claims_through_the_cli(tmp_path):
    out = tmp_path / "out"
    before = tree_sha(FIXTURES / "ok")
    code = main(["rerun", str(FIXTURES / "ok"), "--seeds-from-logs", "--nproc", "2", "--out", str(out),
                 "--scratch", str(_scratch(tmp_path)), "--no-progress", "--format", "json"])
    assert code == 0
    assert tree_sha(FIXTURES / "ok") == before
    doc = json.loads((out / "report.json").read_text())
    target = doc["results"][0]
    assert target["verdict"] == "PASS", target["findings"]
    runs = target["stats"]["rerun"]["runs"]
    assert [r["seed"] for r in runs] == [42, 1337, 2025]
    for row in runs:
        produced = parse_log("seed.log", Path(row["log_file"]).read_text())
        committed = parse_log("c.log", (FIXTURES / "ok" / f"train_seed{row['seed']}.log").read_text())
        assert row["status"] == "ok" and row["delta_bpb"] == 0.0
        assert row["val_bpb"] == produced.val_bpb == committed.val_bpb
        # The artifact measured on disk is what the run's own log says it wrote.
        assert row["artifact_bytes_raw"] == produced.artifact_bytes
        assert row["model_file_bytes"] == produced.model_bytes
    assert sorted(p.name for p in out.iterdir()) == [
        "report.json", "seed-1337.json", "seed-1337.log", "seed-2025.json", "seed-2025.log", "seed-42.json",
        "seed-42.log", "summary.json"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["facts"]["folder_sha256_before"] == summary["facts"]["folder_sha256_after"]


def test_resume_skips_finished_seeds(tmp_path):
    first = run_fixture(tmp_path, "ok", seeds=[42])
    seed_file = tmp_path / "out" / "seed-42.json"
    stamp = seed_file.stat().st_mtime_ns
    second = run_fixture(tmp_path, "ok", seeds=[42, 1337], resume=True)
    assert second.report.facts["rerun"]["resumed_seeds"] == [42]
    assert seed_file.stat().st_mtime_ns == stamp
    assert [r.seed for r in second.results] == [42, 1337]
    assert second.results[0].val_bpb == first.results[0].val_bpb
    assert second.results[1].status == "ok" and (tmp_path / "out" / "seed-1337.json").is_file()


def test_crash_is_a_finding_with_the_log_tail(tmp_path):
    res = run_fixture(tmp_path, "crash", static=True)
    assert res.results[0].status == "crashed" and res.results[0].exit_code != 0
    [f] = [f for f in res.report.findings if f.rule_id == "R-SUB-FILES.rerun-runs"]
    assert f.severity == Severity.ERROR
    assert any("simulated failure in training step 3" in (e.excerpt or "") for e in f.evidence)
    assert res.report.verdict.value == "FAIL"
    # One report: the static audit ran too, and the harness itself had no trouble.
    assert res.report.stats["rerun"]["statuses"] == {42: "crashed"}
    assert not [e for e in res.report.errors if e.where == "harness"]


@pytest.mark.parametrize("allow_network,unsafe", [(False, False), (True, False), (False, True)],
                         ids=["namespaces", "network-allowed", "no-namespaces"])
def test_hang_is_killed_with_every_process(tmp_path, allow_network, unsafe):
    res = run_fixture(tmp_path, "hang", timeout_train=1.0, startup_allowance=4.0, timeout_total=30.0, grace=1.0,
                      keep_scratch=True, allow_network=allow_network, unsafe=unsafe)
    r = res.results[0]
    assert r.status == "timeout" and r.timed_out == "train"
    assert "R-TRAIN-TIME-600.rerun-timeout" in ids(res, Severity.ERROR)
    assert r.survivors == [] and not res.report.errors
    assert processes_under(tmp_path) == []
    not_cut = [f for f in res.report.findings if f.rule_id == "R-ARTIFACT-SELF-CONTAINED.rerun-network"]
    if allow_network or unsafe:  # the report must say the run could not show the script works offline
        assert [f.severity for f in not_cut] == [Severity.INFO]


def test_no_final_line_is_a_finding(tmp_path):
    res = run_fixture(tmp_path, "noscore")
    assert res.results[0].status == "no-score"
    assert "R-REC-REPRODUCIBLE.rerun-no-score" in ids(res, Severity.ERROR)


def test_over_the_cap_is_measured_on_disk(tmp_path):
    res = run_fixture(tmp_path, "overcap")
    r = res.results[0]
    assert r.model_file == "final_model.int8.ptz" and r.model_file_bytes == 16_100_000
    assert "R-ARTIFACT-CAP.rerun" in ids(res, Severity.ERROR)
    assert "R-REC-REPRODUCIBLE.rerun-bytes" in ids(res)  # claims 15,990,000


def test_claims_that_do_not_reproduce(tmp_path):
    res = run_fixture(tmp_path, "mismatch")
    assert res.results[0].status == "ok"
    assert "R-REC-REPRODUCIBLE.rerun-bpb" in ids(res, Severity.WARNING)
    assert "R-REC-REPRODUCIBLE.rerun-mean" in ids(res, Severity.ERROR)
    row = res.report.stats["rerun"]["runs"][0]
    assert row["delta_bpb"] == pytest.approx(0.02, abs=1e-6)


def test_times_over_the_limits(tmp_path):
    res = run_fixture(tmp_path, "slow")
    assert {"R-TRAIN-TIME-600.rerun", "R-EVAL-TIME-600.rerun"} <= ids(res, Severity.ERROR)


def test_writes_outside_touch_only_the_scratch_copy(tmp_path):
    original = FIXTURES / "outside"
    before = tree_sha(original)
    res = run_fixture(tmp_path, "outside")
    assert tree_sha(original) == before
    assert not (original.parent / "outside_marker.txt").exists()
    assert not (original.parent.parent / "escape_marker.txt").exists()
    assert "R-SUB-FILES.rerun-writes-outside" in ids(res, Severity.WARNING)
    assert "R-SUB-FILES.rerun-original-modified" not in ids(res)
    assert any("outside_marker.txt" in w for w in res.results[0].outside_writes)


def test_network_use_with_the_network_cut(tmp_path):
    res = run_fixture(tmp_path, "network")
    if choose_isolation().network_cut:
        assert res.results[0].status == "crashed"
        assert "R-ARTIFACT-SELF-CONTAINED.rerun-network" in ids(res, Severity.ERROR)
    else:  # a host without network namespaces: the report must say the check was not possible
        [f] = [f for f in res.report.findings if f.rule_id == "R-ARTIFACT-SELF-CONTAINED.rerun-network"]
        assert f.severity == Severity.INFO and "could not cut" in f.message


def test_folder_without_a_script(tmp_path):
    folder = tmp_path / "empty_submission"
    folder.mkdir()
    (folder / "README.md").write_text("# nothing to run\n")
    res = rerun(RerunOptions(folder=folder, seeds=[1], out=tmp_path / "out", show_progress=False), static=False)
    assert [f.key for f in res.report.findings if f.rule_id == "R-SUB-FILES.rerun-runs"] == ["no-script"]


def test_env_cannot_override_the_seed(tmp_path):
    with pytest.raises(UsageError):
        import argparse

        from audit.harness.cli import add_arguments, options_from_args

        parser = argparse.ArgumentParser()
        add_arguments(parser)
        options_from_args(parser.parse_args([str(FIXTURES / "ok"), "--env", "SEED=1"]))
