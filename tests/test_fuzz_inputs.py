"""Property tests: the readers never raise, whatever text, bytes or JSON they are given."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.claims import Claims
from audit.codesize import code_sizes, find_wrapper
from audit.logs import SeedRun, parse_log, parse_log_runs, parse_submission_logs
from audit.submission import Submission

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Fragments of real log grammar, recombined at random, reach the parser's deeper branches.
FRAGMENTS = [
    "=" * 100, "Running Python 3.12", "Hyperparameters:", "  seed: 42", "  iterations: 20", "seed:1337",
    "step:1/20 train_loss:6.9 train_time:40ms step_avg:40ms", "12/20 val_loss: 2.3 val_bpb: 1.07",
    "stopping_early: wallclock_cap train_time:600000ms step:7/20", "stopping_early:", "stopping_early: x train_time:",
    "Total submission size int6+lzma: 15 bytes", "Total submission size: 3 bytes", "Serialized model int8+zlib: 9 bytes",
    "Code size: 5 bytes", "Code size (compressed): 2 bytes", "final_int8_zlib_roundtrip_exact val_loss:2.0 val_bpb:1.2",
    "legal_ttt val_loss:nan val_bpb:inf eval_time:1ms", "quantized_ttt_phased val_loss:2 val_bpb:1 eval_time:ms",
    "total_eval_time:5.0s", "budget:1/16000000", "artifact_bytes: 12", "val_tokens: 99", "train_shards: 1",
    "a=1 b=2 c=3", "x:1 y:2", "1776142360.538 ", "import os", '"""', "Source code:", "", "\r", "\x00", "é",
    "val_loss val_bpb", "val_loss:1 val_bpb:", "gptq:reserving 4s, effective=5ms", "GPTQ:collected 1 Hessians in 2s",
]
log_like = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=40), max_size=40).map("\n".join)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=12,
)
claim_keys = st.sampled_from(["val_bpb", "val_loss", "mean_val_bpb", "bytes_total", "artifact_bytes", "bytes_code",
                              "seeds", "seed_results", "seed_scores", "name", "author", "results", "score",
                              "score_metric", "seed", "track", "val_bpb_std"])


@FAST
@given(st.text(max_size=2000))
def test_parse_log_never_raises_on_text(text):
    run = parse_log("train_seed42.log", text)
    assert isinstance(run, SeedRun) and not any(n.startswith("parser error") for n in run.notes)


@FAST
@given(log_like, st.text(max_size=30))
def test_parse_log_never_raises_on_log_like_text(text, name):
    runs = parse_log_runs(name, text)
    assert runs and all(not any(n.startswith("parser error") for n in r.notes) for r in runs)
    json.dumps([r.to_dict() for r in runs], default=str)


@FAST
@given(st.binary(max_size=500))
def test_parse_log_accepts_bytes(data):
    assert isinstance(parse_log("x.log", data), SeedRun)  # type: ignore[arg-type]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(claim_keys | st.text(max_size=8), json_values, max_size=8))
def test_claims_never_raise_on_json_objects(data):
    claims = Claims.from_json(data)
    assert isinstance(claims, Claims)
    claims.seed_claims()
    claims.per_seed_bpbs()


@FAST
@given(json_values)
def test_claims_never_raise_on_any_json(data):
    assert isinstance(Claims.from_json(data), Claims)


paths = st.sampled_from(["train_gpt.py", "README.md", "submission.json", "submission_x.json", "train.log",
                         "logs/train0.txt", "requirements.txt", "a/../b.py", "/abs.log", "", "x.out", "w.py"])
contents = st.binary(max_size=300) | st.text(max_size=300) | log_like | json_values.map(json.dumps)


@FAST
@given(st.dictionaries(paths | st.text(max_size=15), contents, max_size=6))
def test_submission_from_files_never_raises(files):
    sub = Submission.from_files(files)
    sub.analysis_sources()
    parse_submission_logs(sub)
    Claims.from_json(sub.json_data)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(["train_gpt.py", "train.log", "submission.json", "README.md", "d/x.txt"]),
                       contents, max_size=5))
def test_submission_load_never_raises(tmp_path_factory, files):
    root = tmp_path_factory.mktemp("sub")
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass"))
    sub = Submission.load(root)
    parse_submission_logs(sub)


@FAST
@given(st.text(max_size=400) | st.sampled_from([
    "import lzma,base64\nexec(lzma.decompress(base64.b85decode('')))",
    "import zlib as z\nexec(z.decompress(b'x'))",
    "exec(bytes.fromhex('zz'))", "exec(compile(1, 2, 3))", "import base64\nexec(base64.b64decode(1+2))",
]))
def test_code_sizes_never_raise(source):
    sizes = code_sizes(source, estimate=False)
    assert sizes.raw >= 0
    find_wrapper(source)
