"""Unit tests of the runtime harness pieces that need no torchrun: sandbox, tracking, measuring, storing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from audit.findings import Severity
from audit.harness import procs, store
from audit.harness.claims_view import ClaimSet, SeedClaim
from audit.harness.compare import Limits, claim_findings, seed_findings
from audit.harness.launch import Deadlines, PhaseTracker, run_group
from audit.harness.measure import SeedResult, pick_model_file, produced_files
from audit.harness.sandbox import copy_submission, file_manifest, folder_digest, scrub_env
from audit.harness.vocab import sentencepiece_vocab_size


def test_scrub_env_drops_credentials_and_keeps_the_basics():
    env = {"PATH": "/bin", "HOME": "/root", "LANG": "C.UTF-8", "PYTHONPATH": "/x", "HF_TOKEN": "t",
           "AWS_SECRET_ACCESS_KEY": "s", "GITHUB_TOKEN": "g", "WANDB_API_KEY": "w", "MY_PASSWORD": "p",
           "https_proxy": "http://user:pw@proxy:8080", "NCCL_DEBUG": "INFO", "CUDA_VISIBLE_DEVICES": "0",
           "RANK": "3", "SSH_AUTH_SOCK": "/tmp/agent", "GOOGLE_APPLICATION_CREDENTIALS": "/k.json"}
    kept, dropped = scrub_env(env)
    assert set(kept) == {"PATH", "HOME", "LANG", "PYTHONPATH", "NCCL_DEBUG", "CUDA_VISIBLE_DEVICES"}
    assert "HF_TOKEN" in dropped and "https_proxy" in dropped and "RANK" in dropped
    assert all(v not in kept.values() for v in ("t", "s", "g", "w", "p"))


def test_folder_digest_sees_content_names_and_symlinks(tmp_path):
    root = tmp_path / "sub"
    (root / "d").mkdir(parents=True)
    (root / "a.py").write_text("x = 1\n")
    (root / "d" / "b.log").write_text("log\n")
    first = folder_digest(root)
    assert folder_digest(root) == first
    (root / "a.py").write_text("x = 2\n")
    assert folder_digest(root) != first
    (root / "a.py").write_text("x = 1\n")
    assert folder_digest(root) == first
    os.symlink("/etc/passwd", root / "link")
    assert folder_digest(root) != first


def test_copy_skips_symlinks_that_leave_the_folder(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "train_gpt.py").write_text("print(1)\n")
    (tmp_path / "secret.txt").write_text("outside\n")
    os.symlink(tmp_path / "secret.txt", src / "escape.txt")
    os.symlink("train_gpt.py", src / "alias.py")
    notes = copy_submission(src, tmp_path / "dst")
    assert (tmp_path / "dst" / "alias.py").read_text() == "print(1)\n"
    assert not (tmp_path / "dst" / "alias.py").is_symlink()
    assert not (tmp_path / "dst" / "escape.txt").exists()
    assert any("escape.txt" in n for n in notes)


def test_vocab_size_matches_sentencepiece(fixture_data):
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(fixture_data.tokenizer_path))
    assert sentencepiece_vocab_size(fixture_data.tokenizer_path) == sp.vocab_size() == fixture_data.vocab_size


def test_vocab_size_of_a_non_model_is_none(tmp_path):
    (tmp_path / "x.model").write_bytes(b"\xff\xff\xff")
    assert sentencepiece_vocab_size(tmp_path / "x.model") is None
    assert sentencepiece_vocab_size(tmp_path / "missing.model") is None


@pytest.mark.parametrize("line,phase", [
    ("step:5/20 train_loss:3.1 train_time:100ms step_avg:20.00ms", "train"),
    ("step:5/20 val_loss:3.1 val_bpb:1.9 train_time:100ms step_avg:20.00ms", "train"),
    ("step:20/20 val_loss:3.1 val_bpb:1.9 train_time:100ms step_avg:20.00ms", "eval"),
    ("stopping_early: wallclock_cap train_time:600038ms step:13780/20000", "eval"),
    ("1776142360.538 Serialized model quantized+brotli: 15900000 bytes", "eval"),
    ("Total submission size int6+lzma: 15990006 bytes", "eval"),
    ("Hyperparameters:", "train"),
    ("final_int8_zlib_roundtrip_exact val_loss:2.0 val_bpb:1.2", "eval"),
])
def test_phase_tracker_finds_the_end_of_training(line, phase):
    t = PhaseTracker()
    t.feed("seed:42", 0.5)
    t.feed(line, 1.0)
    assert t.phase == phase


def test_run_group_kills_a_double_forked_daemon_without_namespaces(tmp_path):
    """The fallback path: no PID namespace, a grandchild re-parented away, SIGTERM ignored."""
    script = tmp_path / "daemon.py"
    script.write_text(
        "import os, signal, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        time.sleep(300)\n"
        "    os._exit(0)\n"
        "print('step:1/10 train_loss:1.0', flush=True)\n"
        "time.sleep(300)\n"
    )
    outcome = run_group([sys.executable, str(script)], cwd=tmp_path, env=dict(os.environ),
                        log_path=tmp_path / "out.log", deadlines=Deadlines(train_s=2.0, total_s=30.0, grace_s=1.0))
    assert outcome.timed_out == "train"
    assert outcome.survivors == []
    assert len(outcome.pids_seen) >= 2  # the launcher and the detached grandchild
    time.sleep(0.2)
    for pid in outcome.pids_seen:
        st = procs._stat(pid)
        assert st is None or st[2] == "Z", f"pid {pid} still running"


def test_an_interrupted_harness_kills_the_run(tmp_path):
    script = tmp_path / "sleeper.py"
    script.write_text("import time\nprint('step:1/9 train_loss:1.0', flush=True)\ntime.sleep(300)\n")
    seen: list[int] = []

    def interrupt(tick):
        if tick.elapsed_s > 1.0:
            seen.extend(procs.descendants(os.getpid()))
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_group([sys.executable, str(script)], cwd=tmp_path, env=dict(os.environ), log_path=tmp_path / "o.log",
                  deadlines=Deadlines(60, 60, 1.0), on_tick=interrupt)
    assert seen and not any(procs.alive(p) for p in seen)


def test_run_group_reports_stragglers_after_a_normal_exit(tmp_path):
    script = tmp_path / "leaver.py"
    script.write_text(
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    time.sleep(300)\n"
        "    os._exit(0)\n"
        "print('done', flush=True)\n"
    )
    outcome = run_group([sys.executable, str(script)], cwd=tmp_path, env=dict(os.environ),
                        log_path=tmp_path / "out.log", deadlines=Deadlines(30.0, 30.0, 1.0))
    assert outcome.exit_code == 0 and outcome.timed_out is None
    assert len(outcome.stragglers) == 1 and outcome.survivors == []


def test_run_group_reports_a_launch_error(tmp_path):
    outcome = run_group([str(tmp_path / "no-such-binary")], cwd=tmp_path, env={}, log_path=tmp_path / "o.log",
                        deadlines=Deadlines(5, 5, 1))
    assert outcome.launch_error and outcome.exit_code is None


def test_produced_files_and_model_choice(tmp_path):
    (tmp_path / "train_gpt.py").write_text("x\n")
    before = file_manifest(tmp_path)
    (tmp_path / "final_model.pt").write_bytes(b"r" * 500)
    (tmp_path / "final_model.int8.ptz").write_bytes(b"m" * 123)
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "run.txt").write_text("log\n")
    produced = produced_files(before, file_manifest(tmp_path))
    assert produced == {"final_model.int8.ptz": 123, "final_model.pt": 500, "logs/run.txt": 4}
    assert pick_model_file(produced, 123)[0] == "final_model.int8.ptz"
    assert pick_model_file(produced, None)[0] == "final_model.int8.ptz"
    assert pick_model_file({"final_model.pt": 500}, None)[0] is None


def test_write_json_atomic_keeps_the_old_file_when_interrupted(tmp_path, monkeypatch):
    path = tmp_path / "seed-42.json"
    store.write_json_atomic(path, {"a": 1})

    def boom(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        store.write_json_atomic(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["seed-42.json"]


def test_load_finished_needs_the_same_configuration(tmp_path):
    store.seed_log_path(tmp_path, 7).write_text("step:1/1 val_bpb:1.0\n")
    store.write_seed(tmp_path, 7, "k1", {"seed": 7, "status": "ok", "val_bpb": 1.0})
    assert store.load_finished(tmp_path, 7, "k1") is not None
    assert store.load_finished(tmp_path, 7, "k2") is None
    assert store.load_finished(tmp_path, 8, "k1") is None
    store.seed_path(tmp_path, 9).write_text("{truncated")
    assert store.load_finished(tmp_path, 9, "k1") is None
    store.write_seed(tmp_path, 10, "k1", {"seed": 10, "status": "interrupted"})
    assert store.load_finished(tmp_path, 10, "k1") is None  # never reuse a run that did not finish


def test_config_key_changes_with_what_shapes_the_run(tmp_path):
    from audit.harness.runner import RerunOptions, config_key

    base = RerunOptions(folder=tmp_path, seeds=[1], out=tmp_path)
    key = config_key(base, "digest", "train_gpt.py")
    assert config_key(RerunOptions(folder=tmp_path, seeds=[1, 2], out=tmp_path), "digest", "train_gpt.py") == key
    assert config_key(RerunOptions(folder=tmp_path, seeds=[1], out=tmp_path, env={"A": "1"}), "digest",
                      "train_gpt.py") != key
    assert config_key(RerunOptions(folder=tmp_path, seeds=[1], out=tmp_path, nproc=2), "digest", "train_gpt.py") != key
    assert config_key(base, "other-digest", "train_gpt.py") != key


def _result(**kw) -> SeedResult:
    base = dict(seed=42, run_id="r", status="ok", exit_code=0, wall_s=10.0, train_phase_wall_s=5.0,
                eval_phase_wall_s=5.0, timed_out=None, survivors=[], stragglers=[], log_file="/tmp/x.log",
                log_tail=["a", "b"], parsed_log="/tmp/x.log", val_bpb=1.2, model_file="m.ptz",
                model_file_bytes=15_000_000, code_bytes_raw=50_000, code_bytes_counted=20_000,
                artifact_bytes_raw=15_050_000, artifact_bytes_counted=15_020_000)
    base.update(kw)
    return SeedResult(**base)


def test_cap_counts_both_code_conventions():
    limits = Limits()
    assert not [f for f in seed_findings(_result(), "train_gpt.py", limits) if f.rule_id.startswith("R-ARTIFACT-CAP")]
    raw_only = seed_findings(_result(artifact_bytes_raw=16_010_000, artifact_bytes_counted=15_990_000),
                             "train_gpt.py", limits)
    assert [(f.rule_id, f.severity.value) for f in raw_only] == [("R-ARTIFACT-CAP.rerun", "warning")]
    both = seed_findings(_result(artifact_bytes_raw=16_050_000, artifact_bytes_counted=16_020_000),
                         "train_gpt.py", limits)
    assert [(f.rule_id, f.severity.value) for f in both] == [("R-ARTIFACT-CAP.rerun", "error")]


def test_train_time_tolerates_a_sub_step_overshoot_only():
    limits = Limits()
    assert not seed_findings(_result(train_time_ms=600_038.0), "train_gpt.py", limits)
    over = seed_findings(_result(train_time_ms=601_153.0), "train_gpt.py", limits)
    assert [f.rule_id for f in over] == ["R-TRAIN-TIME-600.rerun"]


def test_bpb_tolerance_per_seed_and_mean():
    claims = ClaimSet(per_seed={42: SeedClaim(42, val_bpb=1.2000, bpb_source="train_seed42.log")}, mean_bpb=1.2000)
    limits = Limits()
    assert not claim_findings([_result(val_bpb=1.2008)], claims, "train_gpt.py", limits)
    worse = claim_findings([_result(val_bpb=1.2030)], claims, "train_gpt.py", limits)
    assert sorted((f.rule_id, f.severity.value) for f in worse) == [
        ("R-REC-REPRODUCIBLE.rerun-bpb", "warning"), ("R-REC-REPRODUCIBLE.rerun-mean", "error")]
    better = claim_findings([_result(val_bpb=1.1970)], claims, "train_gpt.py", limits)
    assert [f.rule_id for f in better] == ["R-REC-REPRODUCIBLE.rerun-bpb"]  # a gap, but not a failed claim


def test_mean_is_compared_over_the_same_seeds():
    """A one-seed re-run is not held to a three-seed headline mean."""
    claims = ClaimSet(per_seed={s: SeedClaim(s, val_bpb=v, bpb_source="submission.json")
                                for s, v in ((1, 1.190), (2, 1.200), (3, 1.210))}, mean_bpb=1.200)
    assert not claim_findings([_result(seed=3, val_bpb=1.2105)], claims, "train_gpt.py", Limits())
    headline_only = ClaimSet(mean_bpb=1.200)
    worse = claim_findings([_result(seed=3, val_bpb=1.2105)], headline_only, "train_gpt.py", Limits())
    assert [f.rule_id for f in worse] == ["R-REC-REPRODUCIBLE.rerun-mean"]


def test_harness_modules_do_not_import_torch():
    code = ("import sys, audit.harness.cli, audit.harness.rerun, audit.harness.runner; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


README_WITH_COMMAND = """# My record

Run:

```bash
NUM_LAYERS=11 MATRIX\\_LR=0.02 \\
DATA_DIR=./data SEED=$SEED RUN_ID=x \\
torchrun --standalone --nproc_per_node=8 train_gpt.py
```
"""


def test_readme_env_reads_the_torchrun_command():
    from audit.harness.readme_env import applicable, declared_env
    from audit.harness.runner import HARNESS_OWNED

    declared = declared_env(README_WITH_COMMAND)
    assert declared == {"NUM_LAYERS": "11", "MATRIX_LR": "0.02", "DATA_DIR": "./data", "SEED": "$SEED", "RUN_ID": "x"}
    usable, skipped = applicable(declared, HARNESS_OWNED)
    assert usable == {"NUM_LAYERS": "11", "MATRIX_LR": "0.02"}
    assert set(skipped) == {"DATA_DIR", "SEED", "RUN_ID"}
    assert declared_env("# no command here\n\n    python train_gpt.py\n") == {}


def test_readme_env_is_noted_or_applied(tmp_path):
    from audit.harness.rerun import _readme_env
    from audit.harness.runner import RerunOptions
    from audit.submission import Submission

    (tmp_path / "README.md").write_text(README_WITH_COMMAND)
    (tmp_path / "train_gpt.py").write_text("print('x')\n")
    sub = Submission.load(tmp_path)
    opts = RerunOptions(folder=tmp_path, seeds=[1], out=tmp_path / "out", env={"MATRIX_LR": "0.03"})
    same, note, _ = _readme_env(opts, sub, "train_gpt.py")
    assert same.env == {"MATRIX_LR": "0.03"}
    assert note is not None and note.rule_id == "R-REC-REPRODUCIBLE.rerun-env" and note.severity == Severity.INFO
    assert "NUM_LAYERS=11" in note.message and "MATRIX_LR" not in note.message
    applied, note2, _ = _readme_env(RerunOptions(folder=tmp_path, seeds=[1], out=tmp_path / "out",
                                              env={"MATRIX_LR": "0.03"}, env_from_readme=True), sub, "train_gpt.py")
    assert applied.env == {"NUM_LAYERS": "11", "MATRIX_LR": "0.03"}  # --env wins over the README
    assert note2 is not None and "DATA_DIR=./data" in note2.message and "NUM_LAYERS" not in note2.message


def test_outside_writes_and_masked_env(tmp_path):
    from audit.harness.runner import outside_writes, shown_env

    seed_dir = tmp_path / "seed-1"
    work = seed_dir / "run" / "sub"
    work.mkdir(parents=True)
    (seed_dir / "tmp").mkdir()
    (seed_dir / "home").mkdir()
    (seed_dir / "run" / "x.txt").write_text("1")
    (seed_dir / "y.txt").write_text("1")
    (tmp_path / "z.txt").write_text("1")
    assert sorted(outside_writes(seed_dir, work)) == ["../../../z.txt", "../../y.txt", "../x.txt"]
    assert shown_env({"NUM_LAYERS": "2", "HF_TOKEN": "abc"}) == {"NUM_LAYERS": "2", "HF_TOKEN": "***"}


def test_network_errors_of_torchrun_itself_are_not_blamed_on_the_script(tmp_path):
    from audit.harness.compare import _network_error_line

    log = tmp_path / "seed.log"
    log.write_text("torch.distributed.elastic.rendezvous.api.RendezvousConnectionError: ConnectionError\n"
                   "step:1/8 train_loss:3.9\n")
    assert _network_error_line(log) is None
    log.write_text("step:1/8 train_loss:3.9\nsocket.gaierror: [Errno -3] Temporary failure in name resolution\n")
    assert _network_error_line(log) == (2, "socket.gaierror: [Errno -3] Temporary failure in name resolution")


def test_wall_time_after_training_and_log_size_lines():
    limits = Limits()
    slow_tail = seed_findings(_result(eval_phase_wall_s=700.0, eval_time_ms=90_000.0), "train_gpt.py", limits)
    assert [(f.rule_id, f.severity.value) for f in slow_tail] == [("R-EVAL-TIME-600.rerun-wall", "warning")]
    lying = seed_findings(_result(log_model_bytes=14_000_000), "train_gpt.py", limits)
    assert [f.rule_id for f in lying] == ["R-ARTIFACT-CAP.rerun-log"]
    no_model = seed_findings(_result(model_file=None, model_file_bytes=None, artifact_bytes_raw=None,
                                     artifact_bytes_counted=None), "train_gpt.py", limits)
    assert [(f.rule_id, f.severity.value) for f in no_model] == [("R-ARTIFACT-CAP.rerun", "warning")]
