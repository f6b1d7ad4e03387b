"""Quantiser and compressor checks: int8 error bound, baseline format, GPTQ beats round-to-nearest,
.ptz round trip for every available compressor."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.usefixtures("torch_single_thread")

from reference_impl import compress, quant  # noqa: E402


def _state(seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {
        "blocks.0.mlp.fc.weight": torch.randn(320, 256, generator=g) * 0.05,  # 81,920 > 65,536: quantised
        "blocks.0.attn.c_q.weight": torch.randn(64, 64, generator=g),  # small: fp16 passthrough
        "blocks.0.attn_scale": torch.rand(64, generator=g),  # control: fp32 passthrough
        "big_vector": torch.randn(70_000, generator=g),  # non-2-D large: one scalar scale
        "step": torch.tensor(7),  # non-float: passthrough unchanged
    }


def test_int8_scale_floor_is_the_baselines():
    """Rows whose clip is below 1 get step 1/127: small weights round coarsely, as in the baseline."""
    w = torch.full((300, 300), 0.001)
    q, s = quant.quantize_tensor_rtn(w, 8)
    assert torch.allclose(s.float(), torch.full((300,), 1 / 127), atol=1e-5) and int(q.abs().max()) == 0


def test_int8_baseline_format_and_error_bound():
    sd = _state()
    obj, stats = quant.quantize_state_dict(sd, bits=8, keep_fp32_patterns=("attn_scale",))
    assert obj["__quant_format__"] == "int8_clean_per_row_v1"
    assert set(obj["quantized"]) == {"blocks.0.mlp.fc.weight", "big_vector"}
    assert obj["qmeta"]["blocks.0.mlp.fc.weight"] == {"scheme": "per_row", "axis": 0}
    assert obj["scales"]["blocks.0.mlp.fc.weight"].dtype == torch.float16
    assert obj["passthrough"]["blocks.0.attn.c_q.weight"].dtype == torch.float16
    assert obj["passthrough"]["blocks.0.attn_scale"].dtype == torch.float32
    assert obj["passthrough_orig_dtypes"] == {"blocks.0.attn.c_q.weight": "float32"}
    out = quant.dequantize_state_dict(obj)
    assert set(out) == set(sd) and all(out[k].dtype == sd[k].dtype for k in sd)
    w = sd["blocks.0.mlp.fc.weight"]
    clip, _ = quant.row_scales(w, 8)
    scale = obj["scales"]["blocks.0.mlp.fc.weight"].float()
    err = (out["blocks.0.mlp.fc.weight"] - w).abs()
    # rounding error <= half a step (+ fp16 scale rounding), plus whatever the 99.99984% clip cut off
    bound = scale * 127 * 1e-3 + scale / 2 + (w.abs().amax(dim=1) - clip) + 1e-7
    assert bool((err.amax(dim=1) <= bound).all())
    assert torch.equal(out["step"], sd["step"])
    assert stats["int8_payload_bytes"] < stats["baseline_tensor_bytes"]


@pytest.mark.parametrize("bits,qmax", [(6, 31), (5, 15)])
def test_low_bit_ranges(bits, qmax):
    obj, _ = quant.quantize_state_dict(_state(), bits=bits)
    q = obj["quantized"]["blocks.0.mlp.fc.weight"]
    assert q.dtype == torch.int8 and int(q.abs().max()) == qmax
    assert obj["__quant_format__"] == f"int{bits}_per_row_v1"
    if bits == 5:
        assert _rel_err(5) > _rel_err(6)  # fewer bits, coarser grid


def _rel_err(bits: int) -> float:
    sd = _state()
    out = quant.dequantize_state_dict(quant.quantize_state_dict(sd, bits=bits)[0])
    w = sd["blocks.0.mlp.fc.weight"]
    return float((out["blocks.0.mlp.fc.weight"] - w).norm() / w.norm())


def test_gptq_beats_round_to_nearest_on_its_calibration():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(96, 192, generator=g) * 0.05
    mix = torch.randn(192, 192, generator=g) / 192**0.5
    x = torch.randn(2048, 192, generator=g) @ mix + 0.3 * torch.randn(2048, 192, generator=g)  # correlated inputs
    h = x.T @ x / x.shape[0]
    for bits in (6, 5):
        q_rtn, s_rtn = quant.quantize_tensor_rtn(w, bits)
        q_gptq, s_gptq = quant.gptq_quantize(w, h, bits=bits, block_size=64)
        assert torch.equal(s_rtn, s_gptq)  # same grid: only the rounding decisions differ
        out_err = lambda q, s: float(((q.float() * s.float()[:, None] - w) @ x.T).square().mean())  # noqa: E731
        assert out_err(q_gptq, s_gptq) < 0.8 * out_err(q_rtn, s_rtn)


def test_collect_hessians_and_gptq_state_dict():
    from reference_impl.hparams import Hyperparameters
    from reference_impl.model import build_model

    torch.manual_seed(0)
    model = build_model(Hyperparameters(vocab_size=512, num_layers=2, model_dim=160, num_heads=4, num_kv_heads=2))
    batches = [torch.randint(0, 512, (2, 16)) for _ in range(2)]
    hs = quant.collect_hessians(model, batches)
    assert set(hs) == {"tok_emb.weight"}  # only matrices > 65,536 elements: here the tied embedding / head
    assert hs["tok_emb.weight"].shape == (160, 160)
    assert torch.allclose(hs["tok_emb.weight"], hs["tok_emb.weight"].T, atol=1e-6)
    obj, _ = quant.quantize_state_dict(model.state_dict(), bits=6, hessians=hs)
    assert obj["qmeta"]["tok_emb.weight"]["method"] == "gptq"
    model.load_state_dict(quant.dequantize_state_dict(obj))
    text = quant.generate_calibration(model, n_seqs=3, seq_len=12, seed=5)
    assert text.shape == (3, 12) and bool((text[:, 0] == 1).all()) and int(text.max()) < 512
    assert torch.equal(text, quant.generate_calibration(model, n_seqs=3, seq_len=12, seed=5))  # seeded
    assert set(quant.collect_hessians(model, text.split(1))) == {"tok_emb.weight"}


@pytest.mark.parametrize("method", compress.available_compressors())
def test_ptz_round_trip_every_compressor(tmp_path, method):
    obj, stats = quant.quantize_state_dict(_state(), bits=8)
    blob, raw = compress.serialize_quantized(obj, method)
    assert 0 < len(blob) < raw
    path = tmp_path / "final_model.int8.ptz"
    path.write_bytes(blob)
    assert compress.detect_compressor(blob) == method
    back = compress.load_quantized(path)  # compressor detected from the blob
    for section in ("quantized", "scales", "passthrough"):
        assert set(back[section]) == set(obj[section])
        for k, t in obj[section].items():
            assert back[section][k].dtype == t.dtype and torch.equal(back[section][k], t)
    print(f"{method}: raw {raw} -> {len(blob)} bytes (payload {stats['int8_payload_bytes']})")


def test_zlib_is_the_baseline_container():
    import io
    import zlib

    obj, _ = quant.quantize_state_dict(_state(), bits=8)
    blob, _ = compress.serialize_quantized(obj, "zlib")
    back = torch.load(io.BytesIO(zlib.decompress(blob)), map_location="cpu")  # what the baseline does
    assert back["__quant_format__"] == "int8_clean_per_row_v1"


@pytest.mark.parametrize("kw", [dict(), dict(tie_embeddings=False), dict(bigram_vocab_size=64, bigram_dim=16, mlp_mult=3)])
def test_score_reads_the_shape_back_from_an_artifact(tmp_path, kw):
    from reference_impl.model import GPT
    from reference_impl.score import infer_shape, load_artifact

    shape = {**dict(vocab_size=512, num_layers=3, model_dim=160, num_heads=4, num_kv_heads=2, mlp_mult=2), **kw}
    torch.manual_seed(0)
    model = GPT(**shape)
    assert infer_shape(model.state_dict()) == {"tie_embeddings": True, **shape}
    obj, _ = quant.quantize_state_dict(model.state_dict(), bits=8)
    path = tmp_path / "final_model.int8.ptz"
    path.write_bytes(compress.serialize_quantized(obj, "zlib")[0])
    back = load_artifact(path)
    want = quant.dequantize_state_dict(obj)
    assert all(torch.equal(back.state_dict()[k], want[k].float()) for k in want)
