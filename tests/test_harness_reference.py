"""Acceptance test of `rerun` (issue 5): the bundled reference submission on the fixture data.

Two CPU processes with gloo, tiny config, three seeds: the runs pass, and every number the harness
reports per seed is what that seed's own log says (score, artifact size, model file, code). Then
the produced logs are committed into the folder as its claims, and a fresh re-run of one seed
must reproduce them within the tolerance.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.findings import Severity
from audit.harness.rerun import rerun
from audit.harness.runner import RerunOptions
from audit.logs import parse_log

pytestmark = [pytest.mark.slow, pytest.mark.torch]
SEEDS = [42, 1337, 2025]


def _opts(folder: Path, out: Path, seeds: list[int], fixture_data, scratch: Path) -> RerunOptions:
    from reference_impl.hparams import TINY_ENV

    return RerunOptions(folder=folder, seeds=seeds, out=out, nproc=2, data=fixture_data.data_path,
                        tokenizer=fixture_data.tokenizer_path, env=dict(TINY_ENV), scratch_root=scratch,
                        timeout_train=300, timeout_total=600, startup_allowance=120, show_progress=False)


def _loud(res) -> list:
    return [(f.rule_id, f.message) for f in res.report.findings
            if ".rerun" in f.rule_id and f.severity != Severity.INFO]


def test_reference_bundle_reruns_and_reproduces(tmp_path, fixture_data):
    from reference_impl.bundle import complete_submission, write_submission

    folder = write_submission(tmp_path / "records" / "track_10min_16mb" / "2026-01-01_Reference")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    res = rerun(_opts(folder, tmp_path / "out", SEEDS, fixture_data, scratch), static=False)
    assert [r.status for r in res.results] == ["ok"] * 3, [(r.crash_reason, r.error_excerpt or r.log_tail[-5:])
                                                           for r in res.results]
    assert not _loud(res)
    script_bytes = len((folder / "train_gpt.py").read_bytes())
    logs: dict[str, str] = {}
    for r in res.results:
        text = Path(r.log_file).read_text(encoding="utf-8")
        logs[f"train_seed{r.seed}.log"] = text
        produced = parse_log(f"train_seed{r.seed}.log", text)
        assert produced.seed == r.seed
        assert r.val_bpb == produced.val_bpb and r.val_bpb is not None and 0.5 < r.val_bpb < 10
        assert r.model_file == "final_model.int8.ptz"
        assert r.model_file_bytes == produced.model_bytes
        assert r.code_bytes_raw == script_bytes == produced.code_bytes
        assert r.artifact_bytes_raw == produced.artifact_bytes
        assert r.train_time_ms == produced.train_time_ms and r.eval_time_ms == produced.eval_time_ms
    assert len({r.val_bpb for r in res.results}) == 3  # the seed reached the run
    stats = res.report.stats["rerun"]
    assert stats["n_scored"] == 3 and stats["val_bpb_sd"] > 0

    # The produced logs become the submission's evidence; a fresh re-run must reproduce them.
    claims = complete_submission(folder, logs)
    again = rerun(_opts(folder, tmp_path / "out2", [1337], fixture_data, scratch), static=False)
    [r] = again.results
    assert r.status == "ok" and not _loud(again), (r.crash_reason, _loud(again))
    row = again.report.stats["rerun"]["runs"][0]
    assert row["claimed_val_bpb"] == pytest.approx(next(x.val_bpb for x in res.results if x.seed == 1337))
    assert abs(row["delta_bpb"]) <= 0.001
    assert claims["bytes_total"] >= r.artifact_bytes_raw - 1000
