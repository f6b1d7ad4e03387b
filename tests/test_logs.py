"""parse_log on small hand-written logs in the formats of REFERENCE.md 1.10 and 2.3."""

from __future__ import annotations

import hashlib

import pytest

from audit.logs import (
    compare_sources,
    parse_log,
    parse_log_runs,
    parse_submission_logs,
    pick_canonical,
    score_rank,
    seed_from_filename,
)
from audit.submission import Submission

SEP = "=" * 100
SCRIPT = 'import os\n\n\ndef main():\n    print("hi")\n\n\nif __name__ == "__main__":\n    main()\n'


def file_log(code: str, body: str) -> str:
    """What the reference log0 writes: code, '=' * 100, banner, nvidia-smi, '=' * 100, then lines."""
    return (code + "\n" + SEP + "\nRunning Python 3.12.3\nRunning PyTorch 2.9.1\n"
            "| NVIDIA-SMI 570.0 |\n| 0 H100 80GB HBM3 |\n\n" + SEP + "\n" + body)


BASELINE = """\
logs/abc.txt
val_bpb:enabled tokenizer_kind=sentencepiece tokenizer_path=./data/tokenizers/fineweb_1024_bpe.model
train_loader:dataset:fineweb10B_sp1024 train_shards:10
val_loader:shards pattern=./data/fineweb_val_*.bin tokens:62021632
model_params:17059912
world_size:8 grad_accum_steps:1
tie_embeddings:True embed_lr:0.05 head_lr:0.0 matrix_lr:0.04 scalar_lr:0.04
train_batch_tokens:524288 train_seq_len:1024 iterations:20000 warmup_steps:20 max_wallclock_seconds:600.000
seed:7
warmup_step:1/20
warmup_step:20/20
step:0/20000 val_loss:6.9357 val_bpb:4.1077 train_time:0ms step_avg:0.01ms
step:1/20000 train_loss:6.9370 train_time:40ms step_avg:40.00ms
step:200/20000 train_loss:2.8000 train_time:8700ms step_avg:43.50ms
step:13000/20000 val_loss:2.0700 val_bpb:1.2260 train_time:599000ms step_avg:46.08ms
step:13010/20000 val_loss:2.0699 val_bpb:1.2259 train_time:600031ms step_avg:46.12ms
stopping_early: wallclock_cap train_time:600031ms step:13010/20000
peak memory allocated: 10184 MiB reserved: 10200 MiB
Serialized model: 67224983 bytes
Code size: 47000 bytes
Total submission size: 67271983 bytes
Serialized model int8+zlib: 15800000 bytes (payload:17178912 raw_torch:17224025 payload_ratio:3.91x)
Total submission size int8+zlib: 15847000 bytes
final_int8_zlib_roundtrip val_loss:2.0800 val_bpb:1.2300 eval_time:1400ms
final_int8_zlib_roundtrip_exact val_loss:2.08001234 val_bpb:1.23004567
"""


def test_baseline_file_log_every_field():
    run = parse_log("train_seed7.log", file_log(SCRIPT, BASELINE))
    assert run.family == "baseline"
    assert (run.seed, run.seed_from_name) == (7, 7)
    assert run.val_bpb == pytest.approx(1.23004567) and run.val_loss == pytest.approx(2.08001234)
    assert run.score_label == "final_int8_zlib_roundtrip_exact"
    assert run.eval_time_ms == 1400.0  # borrowed from the 4-digit twin line
    assert run.artifact_bytes == 15847000 and run.artifact_label == "int8+zlib"
    assert run.raw_total_bytes == 67271983 and run.raw_model_bytes == 67224983
    assert run.model_bytes == 15800000 and run.code_bytes == 47000
    assert run.train_time_ms == 600031.0 and run.step == 13010 and run.iterations == 20000
    assert run.stop_reason == "wallclock_cap" and run.max_wallclock_seconds == 600.0
    assert run.val_tokens == 62021632 and run.train_shards == 10
    assert run.hyperparameters["matrix_lr"] == "0.04" and run.hyperparameters["train_seq_len"] == "1024"
    assert "seed" not in run.config_for_comparison()
    assert run.timings_s["peak_memory_mib"] == 10184.0
    assert not run.truncated and run.is_training_log and not run.eval_only


def test_embedded_source_is_exact_with_and_without_final_newline():
    for code in (SCRIPT, SCRIPT.rstrip("\n"), SCRIPT + "\n\n"):
        run = parse_log("train.log", file_log(code, BASELINE))
        assert run.embedded_source == code
        assert hashlib.sha256(run.embedded_source.encode()).hexdigest() == hashlib.sha256(code.encode()).hexdigest()
        assert run.embedded_source_line == 1


def test_source_lines_are_not_parsed_as_log_lines():
    code = SCRIPT + 'print("final_int8_zlib_roundtrip_exact val_loss:9.0 val_bpb:9.0")\nseed:1\n'
    run = parse_log("train.log", file_log(code, BASELINE))
    assert run.val_bpb == pytest.approx(1.23004567) and run.seed == 7


def test_stdout_capture_with_torchrun_noise_and_no_source():
    noise = ("W0318 14:37:59.159000 871689 site-packages/torch/distributed/run.py:852] *****\n"
             "[W318 14:38:11.514 Utils.hpp:137] Warning: NCCL_ASYNC_ERROR_HANDLING is deprecated\n"
             "NCCL version 2.27.5+cuda12.9\n\n[2026-03-18 14:38:12] pgut1-0:871784 NCCL WARN Call to ibv_open_device failed\n")
    run = parse_log("train.log", noise + BASELINE)
    assert run.embedded_source is None
    assert run.seed == 7 and run.val_bpb == pytest.approx(1.23004567) and run.artifact_bytes == 15847000


INT6_TAIL = """\
stopping_early: wallclock_cap train_time:600128ms step:7182/9000
DIAGNOSTIC post_ema val_loss:1.9208 val_bpb:1.1376 eval_time:1977ms
Serialized model: 106027446 bytes
Code size: 89000 bytes
Serialized model int6+lzma: 15787052 bytes
Total submission size int6+lzma: 15876052 bytes
final_int6_roundtrip val_loss:1.9350 val_bpb:1.1460 eval_time:20430ms
final_int6_roundtrip_exact val_loss:1.93502821 val_bpb:1.14603270
final_int6_sliding_window val_loss:1.8956 val_bpb:1.1227 stride:64 eval_time:97749ms
final_int6_sliding_window_exact val_loss:1.89556781 val_bpb:1.12266500
final_int8_zlib_roundtrip_exact val_loss:1.89556781 val_bpb:1.12266500
"""
TTT_TAIL = """\
ttt_sliding:start chunks=1893 chunk_tokens=32768 total_windows=969088 stride=64 ttt_lr=0.002
  ttt_chunk [1/1893] bpb=1.150000 time=0.5s
ttt_sliding:done val_loss=1.891102 val_bpb=1.120020 elapsed=407.5s
legal_ttt val_loss:1.8911 val_bpb:1.1200 eval_time:408049ms
legal_ttt_exact val_loss:1.89110239 val_bpb:1.12002032
"""


def test_int6_echo_never_overrides_the_sliding_line():
    run = parse_log("train_seed42.log", "seed:42\n" + INT6_TAIL)
    assert run.family == "int6"
    assert run.score_label == "final_int6_sliding_window_exact" and run.val_bpb == pytest.approx(1.122665)
    assert run.eval_time_ms == 97749.0
    assert run.artifact_bytes == 15876052 and run.artifact_label == "int6+lzma" and run.model_bytes == 15787052
    assert [s.label for s in run.scores][:2] == ["DIAGNOSTIC post_ema", "final_int6_roundtrip"]
    assert run.eval_times_ms["final_int6_roundtrip"] == 20430.0


def test_legal_ttt_is_canonical_and_claims_can_match_other_lines():
    run = parse_log("train_seed42.log", "seed:42\n" + INT6_TAIL + TTT_TAIL)
    assert run.score_label == "legal_ttt_exact" and run.val_bpb == pytest.approx(1.12002032)
    assert run.eval_time_ms == 408049.0
    hit = run.score_matching(1.122665)
    assert hit is not None and hit.label == "final_int8_zlib_roundtrip_exact"
    assert run.score_matching(1.5) is None


HPARAMS = """\
Hyperparameters:
  compressor: brotli
  iterations: 20000
  matrix_lr: 0.022
  max_wallclock_seconds: 600.0
  run_id: s{seed}
  seed: {seed}
train_shards: 80
val_tokens: 40540160
model_params:35944536
gptq:reserving 12s, effective=588000ms
warmup_step: 1/20
0/20000 val_loss: 9.0077 val_bpb: 3.4871
1/20000 train_loss: 9.0087 train_time: 0.0m tok/s: 17921784
4500/20000 train_loss: 2.9000 train_time: 9.7m tok/s: 7780000
4550/20000 val_loss: 2.8000 val_bpb: 1.0840
stopping_early: wallclock_cap train_time: 588047ms step: 4550/20000
peak memory allocated: 39000 MiB reserved: 41000 MiB
pre-quantization post-ema val_loss:2.81000000 val_bpb:1.08790000 eval_time:6000ms
Serialized model: 135000000 bytes
Code size (uncompressed): 120000 bytes
Code size (compressed): 27000 bytes
GPTQ:collected 67 Hessians in 3.6s
Serialized model quantized+brotli: 15960000 bytes
Total submission size quantized+brotli: 15987000 bytes
quantized val_loss:2.83000000 val_bpb:1.09600000 eval_time:9000ms
quantized_sliding_window val_loss:2.79000000 val_bpb:1.08000000 eval_time:90000ms
quantized_ttt_phased val_loss:2.77000000 val_bpb:1.07200000 eval_time:500100ms
total_eval_time:500.1s
"""


def test_hparams_family_with_unix_timestamps():
    body = HPARAMS.format(seed=0)
    stamped = "".join(f"1776142{i:03d}.538 {line}\n" for i, line in enumerate(body.splitlines()))
    for text in (body, stamped):
        run = parse_log("logs/train0.txt", text)
        assert run.family == "hparams" and run.timestamped == (text is stamped)
        assert run.seed == 0 and run.seed_from_name is None
        assert run.score_label == "quantized_ttt_phased" and run.val_bpb == pytest.approx(1.072)
        assert run.eval_time_ms == 500100.0 and run.total_eval_time_s == 500.1
        assert run.artifact_bytes == 15987000 and run.artifact_label == "quantized+brotli"
        assert (run.code_bytes, run.code_bytes_compressed) == (120000, 27000)
        assert run.train_time_ms == 588047.0 and run.step == 4550 and run.iterations == 20000
        assert run.val_tokens == 40540160 and run.train_shards == 80
        assert run.hyperparameters == {"compressor": "brotli", "iterations": "20000", "matrix_lr": "0.022",
                                       "max_wallclock_seconds": "600.0", "run_id": "s0", "seed": "0",
                                       "model_params": "35944536"}
        assert run.config_for_comparison() == {"compressor": "brotli", "iterations": "20000",
                                               "matrix_lr": "0.022", "max_wallclock_seconds": "600.0",
                                               "model_params": "35944536"}
        assert run.timings_s["gptq_reserve"] == 12.0 and run.timings_s["gptq_hessians"] == 3.6


def test_hparams_source_after_dump_and_in_source_code_frame():
    dump = "Hyperparameters:\n  seed: 3\n  vocab_size: 8192\n"
    later = "train_shards: 80\n" + HPARAMS.split("train_shards: 80\n", 1)[1].format(seed=3)
    banner = SEP + "\nRunning Python 3.12\n" + SEP + "\n"
    v0401 = SEP + "\n" + dump + SCRIPT + "\n" + banner + later
    v0410 = SEP + "\n" + dump + SEP + "\nSource code:\n" + SEP + "\n" + SCRIPT + "\n" + banner + later
    for text in (v0401, v0410):
        run = parse_log("train_seed3.log", text)
        assert run.embedded_source == SCRIPT
        assert run.seed == 3 and run.hyperparameters["vocab_size"] == "8192"
        assert run.val_bpb == pytest.approx(1.072)


def test_minutes_only_train_time_and_no_stop_line():
    text = "seed: 5\n1/100 train_loss: 9.0 train_time: 0.0m tok/s: 1\n100/100 train_loss: 3.0 train_time: 2.5m tok/s: 1\n"
    run = parse_log("x.log", text)
    assert run.train_time_ms == 150000.0 and run.step == 100 and run.iterations == 100
    assert run.stop_reason == "iterations" and run.truncated
    assert any("minutes" in n for n in run.notes) and any("no final score" in n for n in run.notes)


def test_precedence_classes():
    assert score_rank("quantized_ttt_phased") > score_rank("quantized_ttt_lora") > score_rank("quantized_sliding_window")
    assert score_rank("legal_ttt_exact") > score_rank("final_int6_sliding_window_exact")
    assert score_rank("final_int6_sliding_window_exact") > score_rank("final_int8_zlib_roundtrip_exact")
    assert score_rank("final_int8_zlib_roundtrip_exact") > score_rank("diagnostic quantized") == 0
    assert score_rank("pre-quantization post-ema") == 0 == score_rank("DIAGNOSTIC post_ttt")
    assert score_rank("post-prequant-ttt") == 0
    assert pick_canonical([]) is None


def test_exact_twin_beats_rounded_line_of_same_label_even_when_later():
    text = "final_slot_exact val_loss:1.22581115 val_bpb:0.72599605\nfinal_slot val_loss:1.2258 val_bpb:0.7260 eval_time:5ms\n"
    run = parse_log("x.log", text)
    assert run.score_label == "final_slot_exact" and run.eval_time_ms == 5.0


def test_diagnostic_only_log_still_reports_it():
    run = parse_log("x.log", "DIAGNOSTIC post_ema val_loss:1.9 val_bpb:1.1 eval_time:2ms\n")
    assert run.score_label == "DIAGNOSTIC post_ema" and run.val_bpb == 1.1


def test_unlabelled_total_after_quantised_model_line_is_the_artifact():
    text = ("Serialized model: 111 bytes\nCode size: 80 bytes\nTotal submission size: 191 bytes\n"
            "Serialized model rdquant+zstd: 16558180 bytes\nTotal submission size: 16638260 bytes\n")
    run = parse_log("x.log", text)
    assert run.artifact_bytes == 16638260 and run.artifact_label == "rdquant+zstd" and run.raw_total_bytes == 191
    glued = parse_log("x.log", "Serialized model+cache fp16+lzma: 7982788 bytes\nTotal submission size: 8136109 bytes\n")
    assert (glued.model_bytes, glued.artifact_bytes, glued.artifact_label) == (7982788, 8136109, "+cache fp16+lzma")


def test_budget_and_harness_artifact_fallbacks_and_kv_dump():
    text = ("--- Hyperparameters ---\nseed=42 iterations=10 max_wallclock_seconds=599.0 lr=0.1\n"
            "artifact:15.60MB binary:1(1B) fp:2(2B) code:70399\nbudget:15670651/16000000 (15.67/16.00MB) FITS\n"
            "final_sliding val_loss:2.9027 val_bpb:1.1239 (stride=16, T=0.90) eval_time:768782ms\n")
    run = parse_log("binary_log.txt", text)
    assert run.seed == 42 and run.hyperparameters["lr"] == "0.1" and run.max_wallclock_seconds == 599.0
    assert run.artifact_bytes == 15670651 and run.artifact_label == "budget" and run.code_bytes == 70399
    assert run.val_bpb == 1.1239 and run.eval_time_ms == 768782.0


def test_nan_scores_are_kept():
    run = parse_log("x.log", "final_int8_zlib_roundtrip_exact val_loss:nan val_bpb:nan\n")
    assert run.score_label is not None and run.val_bpb != run.val_bpb


def test_appended_rerun_reports_last_scored_run():
    first = file_log(SCRIPT, BASELINE)
    second_body = BASELINE.replace("val_bpb:1.23004567", "val_bpb:1.22000000")
    crashed = file_log(SCRIPT, "seed:7\nstep:0/20000 val_loss:6.9 val_bpb:4.1 train_time:0ms step_avg:0.01ms\n")
    text = first + file_log(SCRIPT, second_body) + crashed
    runs = parse_log_runs("train.log", text)
    assert [r.runs_in_log for r in runs] == [3, 3, 3]
    assert [r.val_bpb for r in runs] == [pytest.approx(1.23004567), pytest.approx(1.22), None]
    assert all(r.embedded_source == SCRIPT for r in runs)
    chosen = parse_log("train.log", text)
    assert chosen.run_index == 1 and chosen.val_bpb == pytest.approx(1.22)
    assert any("3 runs" in n for n in chosen.notes)


def test_several_seeds_in_one_file_become_several_runs(tmp_path):
    text = "".join(HPARAMS.format(seed=s) for s in (314, 42, 999))
    sub = Submission.from_files({"train.log": text, "README.md": "x"})
    runs = parse_submission_logs(sub)
    assert [r.seed for r in runs] == [314, 42, 999]
    assert [r.run_start_line for r in runs] == [1, 1 + HPARAMS.count("\n"), 1 + 2 * HPARAMS.count("\n")]


def test_parse_submission_logs_skips_summaries_and_keeps_order():
    summary = '=== seed=42 result ===\n{\n  "seed": 42,\n  "post_ttt_val_bpb": 1.064\n}\n'
    sub = Submission.from_files({
        "train_seed42.log": HPARAMS.format(seed=42),
        "logs/train_seed_1.txt": HPARAMS.format(seed=1),
        "summary.log": summary,
    })
    runs = parse_submission_logs(sub)
    assert [r.log_path for r in runs] == ["logs/train_seed_1.txt", "train_seed42.log"]
    assert any("summary.log" in n for n in runs[0].notes)


def test_seed_mismatch_between_log_and_name_is_noted():
    run = parse_log("train_seed_2026.txt", "seed:1337\n" + INT6_TAIL)
    assert run.seed == 1337 and run.seed_from_name == 2026
    assert any("differs" in n for n in run.notes)


def test_eval_only_log():
    run = parse_log("ttt/seed_0.log", "quantized_ttt_phased val_loss:2.3 val_bpb:1.06 eval_time:416500ms\n")
    assert run.eval_only and run.seed_from_name == 0


def test_crlf_log():
    run = parse_log("x.log", BASELINE.replace("\n", "\r\n"))
    assert run.val_bpb == pytest.approx(1.23004567) and run.seed == 7


@pytest.mark.parametrize(
    "name,seed",
    [("train_seed42.log", 42), ("train_seed_42.txt", 42), ("log_10mins_seed-42.txt", 42), ("seed_42.log", 42),
     ("logs/train_seed1337_rerun_gptq8s.log", 1337), ("record_smearfix_s42.txt", 42), ("SEED7.out", 7),
     ("train.log", None), ("logs/train0.txt", None), ("train_v3.txt", None), ("seq32768.txt", None)],
)
def test_seed_from_filename(name, seed):
    assert seed_from_filename(name) == seed


def test_compare_sources():
    assert compare_sources(SCRIPT, SCRIPT) == "exact"
    assert compare_sources(SCRIPT, SCRIPT.rstrip("\n")) == "trailing-newline"
    assert compare_sources(SCRIPT, SCRIPT.replace("\n", "\r\n")) == "line-endings"
    assert compare_sources(SCRIPT, SCRIPT.replace("hi", "ho")) is None


def test_to_dict_is_json_ready():
    import json

    run = parse_log("train_seed7.log", file_log(SCRIPT, BASELINE))
    d = run.to_dict()
    assert d["has_embedded_source"] and "embedded_source" not in d
    json.dumps(d)
