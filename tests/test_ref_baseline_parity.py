"""Parity with the challenge's own baseline `train_gpt.py` (read from a local openai/parameter-golf mirror).

Skipped when no baseline script is available: set PGOLF_BASELINE_SCRIPT to a copy of the upstream
train_gpt.py, or have the bare mirror at /work/.mirror/openai+parameter-golf/repo. The script is
imported (its module level only defines functions and classes); nothing of it is stored here.
"""

from __future__ import annotations

import importlib.util
import io
import os
import subprocess
import warnings
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
spm = pytest.importorskip("sentencepiece")
pytestmark = pytest.mark.usefixtures("torch_single_thread")

MIRROR = Path("/work/.mirror/openai+parameter-golf/repo")


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    path = os.environ.get("PGOLF_BASELINE_SCRIPT")
    if not path:
        if not MIRROR.is_dir():
            pytest.skip("no baseline train_gpt.py available")
        proc = subprocess.run(["git", f"--git-dir={MIRROR}", "show", "HEAD:train_gpt.py"], capture_output=True, text=True)
        if proc.returncode:
            pytest.skip("baseline train_gpt.py not readable from the mirror")
        path = str(tmp_path_factory.mktemp("baseline") / "baseline_train_gpt.py")
        Path(path).write_text(proc.stdout, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("pgolf_baseline", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


KW = dict(vocab_size=512, num_layers=3, model_dim=160, num_heads=4, num_kv_heads=2, mlp_mult=2, tie_embeddings=True,
          tied_embed_init_std=0.005, logit_softcap=30.0, rope_base=10000.0, qk_gain_init=1.5)


def _models(baseline):
    from reference_impl.model import GPT

    torch.manual_seed(0)
    ours = GPT(**KW)
    with torch.no_grad():
        for p in ours.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    theirs = baseline.GPT(**KW)
    theirs.load_state_dict(ours.state_dict(), strict=True)  # same parameter names and shapes
    return ours, theirs


def test_same_model_same_loss(baseline):
    ours, theirs = _models(baseline)
    x, y = torch.randint(0, 512, (2, 64)), torch.randint(0, 512, (2, 64))
    assert torch.equal(ours(x, y), theirs(x, y))


def test_same_luts_val_tokens_and_metric(baseline, fixture_data):
    from reference_impl.data import load_validation_tokens
    from reference_impl.eval import eval_full
    from reference_impl.tokenizer import build_byte_luts

    sp = spm.SentencePieceProcessor(model_file=str(fixture_data.tokenizer_path))
    ours_luts = build_byte_luts(sp, 512)
    their_luts = baseline.build_sentencepiece_luts(sp, 512, torch.device("cpu"))
    assert all(torch.equal(a, b) for a, b in zip(ours_luts, their_luts))
    pattern = str(fixture_data.data_path / "fineweb_val_*.bin")
    val = load_validation_tokens(pattern, 64)
    assert torch.equal(val, baseline.load_validation_tokens(pattern, 64))
    ours, theirs = _models(baseline)

    class Args:
        val_batch_size = 8 * 32 * 64
        train_seq_len = 64

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the baseline asks for CUDA autocast; on CPU it is a no-op
        loss, bpb = baseline.eval_val(Args, theirs, 0, 1, torch.device("cpu"), 8, val, *their_luts)
    res = eval_full(ours, val, 64, ours_luts, batch_seqs=32)
    assert (res.val_loss, res.val_bpb) == (loss, bpb)  # bit for bit: the same arithmetic


def test_int8_export_is_byte_identical(baseline):
    from reference_impl.quant import dequantize_state_dict, quantize_state_dict

    ours, _ = _models(baseline)
    sd = {k: v.detach().clone() for k, v in ours.state_dict().items()}
    mine, my_stats = quantize_state_dict(sd, 8, baseline.INT8_KEEP_FLOAT_FP32_NAME_PATTERNS)
    theirs, their_stats = baseline.quantize_state_dict_int8(sd)

    def saved(obj) -> bytes:
        buf = io.BytesIO()
        torch.save(obj, buf)
        return buf.getvalue()

    assert saved(mine) == saved(theirs) and my_stats == their_stats
    a, b = dequantize_state_dict(theirs), baseline.dequantize_state_dict_int8(mine)
    assert all(torch.equal(a[k], b[k]) for k in a)
