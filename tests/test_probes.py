"""The probes (issue 11): Kraft arithmetic, the CPU port, the byte tables, the evaluator finder,
the interface, and the mutation test-bed driven end to end in the sandbox.

End-to-end runs cost ~20 s each (a sandboxed process, V+1 evaluator runs): one legal and one
illegal mutant run by default, the whole test-bed under `slow`.
"""

from __future__ import annotations

import ast
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MUTANTS = ROOT / "fixtures" / "mutants"
EXPECTED = json.loads((MUTANTS / "expected.json").read_text())


# -- Kraft arithmetic ---------------------------------------------------------------------------
def test_kraft_sum_of_a_distribution_is_one_and_of_a_boosted_one_is_not():
    from audit.probes.kraft import KraftMeasure, tolerance, violated

    probs = [0.5, 0.25, 0.125, 0.125]
    nll_x = 10.0
    legal = KraftMeasure.of(nll_x, [nll_x - math.log(p) for p in probs])
    assert abs(legal.value - 1.0) < 1e-12
    boosted = KraftMeasure.of(nll_x, [nll_x - math.log(min(1.0, 1.04 * p)) for p in probs])
    tol = tolerance(legal, nll_x, nll_x)
    assert not violated(legal, tol)
    assert violated(boosted, tol), f"K={boosted.value}"
    huge = KraftMeasure.of(nll_x, [nll_x - 1e3] * 3)  # a 277x-style mixture does not overflow
    assert violated(huge, tol)


def test_tolerance_comes_from_the_twin_and_the_repeat_noise():
    from audit.probes.kraft import FLOAT32_EPS, TOLERANCE_FACTOR, KraftMeasure, tolerance, violated

    rounding = FLOAT32_EPS * 100.0
    tol = tolerance(KraftMeasure(1.0 + 5 * rounding, 0.5, 0.1, 4), 100.0, 100.0)  # twin off by float noise
    assert tol.reference == 1.0 and tol.value == pytest.approx(TOLERANCE_FACTOR * 5 * rounding)
    noisy = tolerance(KraftMeasure(1.0, 0.5, 0.1, 4), 100.0, 100.01)  # a non-repeatable evaluator
    assert noisy.value == pytest.approx(TOLERANCE_FACTOR * 0.01)
    # a twin off by far more than float noise (a z-loss in model(x, y)) becomes the reference
    offset = tolerance(KraftMeasure(0.9964, 0.5, 0.1, 4), 100.0, 100.0)
    assert offset.twin_offset and offset.reference == 0.9964
    assert not violated(KraftMeasure(0.99641, 0.5, 0.1, 4), offset)
    assert violated(KraftMeasure(1.0, 0.5, 0.1, 4), offset)


# -- CPU port -----------------------------------------------------------------------------------
CUDA_SNIPPET = '''from __future__ import annotations
import torch
from flash_attn_interface import (
    flash_attn_func as flash_attn_3_func,
)
import torch.distributed as dist


@torch.compile
def step(x):
    return x


def main():
    device = torch.device("cuda", 0)
    dist.init_process_group(backend="nccl")
    model = torch.compile(Net().cuda(), dynamic=False)
    model = model.bfloat16()
    with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
        y = flash_attn_3_func(q, k, v, causal=True)
    torch.cuda.synchronize()
    return torch.cuda.is_available()
'''


def test_cpu_port_keeps_every_line_and_lists_every_rewrite():
    pytest.importorskip("libcst")
    from audit.probes.port import port_source

    ported = port_source(CUDA_SNIPPET)
    assert ported.source.count("\n") == CUDA_SNIPPET.count("\n")
    kinds = {r.kind for r in ported.rewrites}
    assert kinds >= {"device cuda -> cpu", "NCCL -> gloo", "torch.compile bypassed", "flash-attn -> sdpa shim",
                     "autocast -> float32", "bf16/fp16 -> float32", "torch.cuda call -> no-op"}
    text = ported.source
    assert '"cuda"' not in text and '"nccl"' not in text and "torch.bfloat16" not in text
    assert "from _pgolf_flash import" in text and ".cpu()" in text
    for r in ported.rewrites:  # every rewrite points at the original line that held the old code
        assert r.before.split("(")[0].split(".")[-1].strip('"@') in CUDA_SNIPPET.splitlines()[r.line - 1], r
    ast.parse(text)


def test_cpu_port_stubs_triton_and_reports_extensions_as_blockers():
    pytest.importorskip("libcst")
    from audit.probes.port import port_source

    ported = port_source("import triton\nimport triton.language as tl\nfrom torch.utils.cpp_extension import load_inline\n")
    assert [b.split(" (")[0] for b in ported.blockers] == ["custom CUDA extension"]
    # Triton kernels are often training-only: the driver stands stubs in; a launch fails there
    assert ported.stubbed == ("triton", "triton.language")
    optional = port_source("try:\n    import triton\nexcept ImportError:\n    triton = None\n")
    assert optional.blockers == () and optional.stubbed == ()  # an optional import keeps its fallback


def test_a_launched_triton_stub_kernel_is_reported_as_a_triton_kernel():
    import sys

    from audit.probes import driver

    before = {k for k in sys.modules if k.split(".")[0] == "pgolf_fake_triton"}
    driver._install_stubs(["pgolf_fake_triton.language"])
    try:
        import pgolf_fake_triton as triton  # type: ignore[import-not-found]
        import pgolf_fake_triton.language as tl  # type: ignore[import-not-found]

        @triton.autotune(configs=[triton.Config({"B": 1})], key=["n"])
        @triton.jit
        def kernel(x, n: tl.constexpr):
            pass

        with pytest.raises(RuntimeError, match="Triton kernel kernel launched"):
            kernel[(1,)](1, 2)
        # a module function on its way to the launch fails first (a device query is 0 on the port)
        module_ns = {"kernel": kernel}
        exec("def launch():\n    props = 0\n    return kernel[(props.multi_processor_count,)](1, 2)\n", module_ns)
        with pytest.raises(AttributeError) as info:
            module_ns["launch"]()
        assert driver._category(info.value) == "Triton kernel"
        assert driver._category(AttributeError("x")) != "Triton kernel"
    finally:
        for k in [k for k in sys.modules if k.split(".")[0] == "pgolf_fake_triton"]:
            if k not in before:
                del sys.modules[k]


def test_flash_shim_matches_causal_and_windowed_attention():
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    from audit.probes.flash_shim import flash_attn_func

    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 7, 4, 8, generator=g) for _ in range(3))
    ref = F.scaled_dot_product_attention(*(t.transpose(1, 2) for t in (q, k, v)), is_causal=True).transpose(1, 2)
    assert torch.allclose(flash_attn_func(q, k, v, causal=True), ref, atol=1e-5)
    kv = k[:, :, :2], v[:, :, :2]  # GQA: 2 KV heads for 4 query heads
    out = flash_attn_func(q, *kv, causal=True, window_size=(2, 0))
    assert out.shape == q.shape
    # position 6 with a left window of 2 sees keys 4..6 only: changing key 0 leaves it alone
    k2 = kv[0].clone()
    k2[:, 0] += 5
    assert torch.allclose(out[:, 6], flash_attn_func(q, k2, kv[1], causal=True, window_size=(2, 0))[:, 6], atol=1e-6)


# -- byte tables --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def probe_sp():
    pytest.importorskip("torch")
    spm = pytest.importorskip("sentencepiece")
    from audit.probes.runner import probe_data

    return spm.SentencePieceProcessor(model_file=str(probe_data().tokenizer_path))


def test_byte_probe_accepts_the_tokenizer_tables(probe_sp):
    from audit.probes.bytes_probe import check_tables, reference_tables
    from audit.probes.runner import sample_texts

    check = check_tables(reference_tables(probe_sp, 400), probe_sp, sample_texts())
    assert check.ok, check.to_dict()
    assert check.sample_text_bytes > 1000


def _wrong_tables(sp, how: str):
    from audit.probes.bytes_probe import LEADING_SPACE, reference_tables

    base, space, boundary = reference_tables(sp, int(sp.vocab_size()))
    for tid in range(int(sp.vocab_size())):
        piece = sp.id_to_piece(tid)
        if how == "no-space" and space[tid]:
            space[tid] = False
        if how == "fallback-chars" and sp.is_byte(tid):
            base[tid] = len(piece.encode("utf-8"))
        if how == "space-as-text" and piece.startswith(LEADING_SPACE):
            base[tid], space[tid] = len(piece.encode("utf-8")), False
    return base, space, boundary


@pytest.mark.parametrize("how", ["no-space", "fallback-chars", "space-as-text"])
def test_byte_probe_rejects_wrong_tables(probe_sp, how):
    from audit.probes.bytes_probe import check_tables
    from audit.probes.runner import sample_texts

    texts = sample_texts() + ["Zürich café 東京 🙂 naïve"]  # byte-fallback pieces in the sample
    check = check_tables(_wrong_tables(probe_sp, how), probe_sp, texts)
    assert not check.ok
    assert check.mismatches and check.sample_charged_bytes != check.sample_text_bytes, check.to_dict()


# -- which evaluator ----------------------------------------------------------------------------
@pytest.mark.parametrize("variant", ["base", "names", "helper", "method", "closure", "partial", "module"])
def test_score_call_is_found_through_every_indirection(variant):
    from audit.analysis.score_call import find_score_call

    path = MUTANTS / f"slot__{variant}" / "train_gpt.py"
    text = path.read_text()
    call = find_score_call("train_gpt.py", ast.parse(text), text)
    assert call is not None and call.label == "final_int8_zlib_roundtrip_exact"
    assert call.model is not None and call.model.source.startswith("GPT(")
    assert call.hparams[0].source == "Hyperparameters()"
    assert call.luts is not None and "build_sentencepiece_luts" in call.luts.source


# -- interface ----------------------------------------------------------------------------------
def test_audit_does_not_import_torch_or_libcst_at_module_level():
    code = ("import sys, audit.cli, audit.probes, audit.probes.cli, audit.probes.findings, audit.probes.kraft, "
            "audit.probes.port, audit.probes.runner, audit.probes.bytes_probe, audit.analysis.score_call\n"
            "print(sorted(m for m in ('torch', 'libcst', 'sentencepiece') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


def test_probe_without_the_torch_extra_says_so_and_exits_2(monkeypatch, capsys, tmp_path):
    import audit.probes
    from audit.cli import main

    monkeypatch.setattr(audit.probes, "missing_extra", lambda: ["libcst"])
    assert main(["probe", str(tmp_path)]) == 2
    assert "[torch] extra" in capsys.readouterr().err
    assert main([str(tmp_path), "--probe"]) == 2


def test_probe_rule_ids_are_described_as_runtime_rules():
    from audit.report.rulemeta import registered

    infos = {r.id: r for r in registered()}
    assert infos["R-PROBE-KRAFT"].kind == "runtime" and infos["R-PROBE-BYTES"].kind == "runtime"


def test_probe_stream_repeats_a_phrase_so_ngram_contexts_recur():
    """Every context of the stream's last tokens has been seen before with a continuation; the
    marker occurs once; the stream starts a document."""
    from audit.probes.driver import PERIOD, choose_stream

    val = [1, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 1, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69] * 4
    x, marker = choose_stream(val, 24, bos=1, vocab=384)
    assert len(x) == 25 and x[0] == 1 and x.count(marker) == 1
    body = x[2:]
    assert body == [body[i % PERIOD] for i in range(len(body))] and len(set(body)) == PERIOD
    for order in range(1, 8):
        ctx = x[-order:]
        seen = sum(1 for i in range(2, len(x) - order) if x[i:i + order] == ctx)
        assert seen >= 2, (order, seen)


# -- end to end: the mutation test-bed ----------------------------------------------------------
def _probe(name: str):
    pytest.importorskip("torch")
    pytest.importorskip("libcst")
    from audit.probes.findings import probe_findings
    from audit.probes.runner import run_probe

    outcome = run_probe(MUTANTS / name)
    return outcome, {f.rule_id: f for f in probe_findings(outcome)}


def _check_mutant(name: str):
    exp = EXPECTED[name]
    outcome, found = _probe(name)
    k = outcome.kraft
    assert outcome.status == "ok", f"{name}: not driven: {outcome.category}: {outcome.reason}"
    assert k is not None
    measured = f"{name}: K = {k['value']:.6f} (tolerance {k['tolerance']:.1e}, twin {k['twin']:.6f})"
    if exp["legal"]:
        assert "R-PROBE-KRAFT.passed" in found, measured
    else:
        assert "R-PROBE-KRAFT" in found and found["R-PROBE-KRAFT"].severity.value == "error", measured
    if exp["bytes_ok"]:
        assert "R-PROBE-BYTES.passed" in found, f"{name}: {outcome.bytes}"
    else:
        assert "R-PROBE-BYTES" in found, f"{name}: {outcome.bytes}"
    assert outcome.rewrites and {r["kind"] for r in outcome.rewrites} >= {"device cuda -> cpu", "torch.compile bypassed"}
    return outcome, found


@pytest.mark.parametrize("name", ["sliding_window__base", "target_keyed_hash__closure"])
def test_probe_on_a_legal_and_an_illegal_mutant(name):
    _check_mutant(name)


def test_a_sum_far_past_one_stops_the_candidate_loop_early():
    """Score-after-update sums to hundreds: the loop stops once twice the twin's sum is passed, and
    the partial sum (a lower bound of the whole) is reported as the violation."""
    outcome, found = _check_mutant("score_after_update__base")
    k = outcome.kraft
    assert k["stopped_early"] and k["candidates"] < k["vocab"], k
    assert k["value"] > 2.0 * max(1.0, k["twin"])
    assert "at least" in found["R-PROBE-KRAFT"].message


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_probe_on_every_mutant(name):
    _check_mutant(name)


def test_committed_mutants_equal_the_generator_output(tmp_path):
    import shutil

    copy = tmp_path / "mutants"
    shutil.copytree(MUTANTS, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = {p.relative_to(copy).as_posix(): p.read_bytes() for p in copy.rglob("*") if p.is_file()}
    root = tmp_path / "repo"
    (root / "fixtures").mkdir(parents=True)
    shutil.move(str(copy), root / "fixtures" / "mutants")
    shutil.copytree(ROOT / "reference_impl", root / "reference_impl")
    subprocess.run([sys.executable, str(root / "fixtures" / "mutants" / "make_mutants.py")], check=True,
                   capture_output=True, timeout=120)
    gen = root / "fixtures" / "mutants"
    after = {p.relative_to(gen).as_posix(): p.read_bytes() for p in gen.rglob("*") if p.is_file()
             and "__pycache__" not in p.parts}
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"make_mutants.py no longer reproduces the committed mutants: {changed[:10]}"


def test_probe_findings_render_in_every_format_with_the_measurements_as_evidence():
    import jsonschema

    from audit.findings import Report
    from audit.probes.findings import probe_findings
    from audit.probes.runner import ProbeOutcome
    from audit.report import html, json_report, sarif
    from audit.report.model import TargetResult

    outcome = ProbeOutcome(
        "sub", "ok", evaluator="eval_val", path="train_gpt.py", line=12,
        rewrites=[{"line": 3, "kind": "device cuda -> cpu", "before": '"cuda"', "after": '"cpu"', "path": "train_gpt.py"}],
        kraft={"value": 1.04, "p_max": 0.2, "p_min": 1e-4, "candidates": 384, "violated": True, "tolerance": 2e-4,
               "tolerance_explained": "tolerance 2.0e-04 = ...", "twin": 1.000008},
        bytes={"status": "ok", "ok": False, "table_size": 384, "mismatch_count": 1, "sample_docs": 2,
               "sample_text_bytes": 100, "sample_charged_bytes": 98, "line": 9, "expression": "luts(sp)",
               "mismatches": [{"id": 7, "piece": "\u2581a", "field": "has_leading_space", "theirs": 0, "ours": 1}]},
        config={"windows": "one window", "seq_len": 32, "stride": 32, "chunk": 12, "vocab": 384, "n": 24})
    found = probe_findings(outcome)
    assert [(f.rule_id, f.severity.value) for f in found] == [("R-PROBE-KRAFT", "error"), ("R-PROBE-BYTES", "error")]
    results = [TargetResult(Report(target="sub", findings=found))]
    doc = json.loads(json_report.render(results))
    jsonschema.validate(doc, json.loads((ROOT / "audit" / "schema" / "report.schema.json").read_text()))
    page = html.render(results)
    assert "Kraft sum K = 1.040000" in page and "98 bytes charged" in page and "device cuda -&gt; cpu" in page
    rules = {r["id"] for r in json.loads(sarif.render(results))["runs"][0]["tool"]["driver"]["rules"]}
    assert {"R-PROBE-KRAFT", "R-PROBE-BYTES"} <= rules
    na = probe_findings(ProbeOutcome("sub", "not-applicable", "Triton kernel", "import triton (line 3)"))
    assert [f.rule_id for f in na] == ["R-PROBE-KRAFT.not-applicable", "R-PROBE-BYTES.not-applicable"]
    assert "Triton kernel" in na[0].message
