"""Post-training quantisation: the baseline's per-row int8 format, int6/int5 per-row, and GPTQ.

Format (REFERENCE.md 1.8): large float tensors -> int8 container + one fp16 scale per row (2-D)
or one fp32 scale (other ranks); small tensors (<= 65,536 elements) pass through, as fp16 unless
their name is a control tensor (kept fp32); non-float tensors pass through unchanged. With
bits=8 and round-to-nearest the object is byte-for-byte the baseline's `int8_clean_per_row_v1`,
so a baseline `.ptz` loads here and ours loads in the baseline.

GPTQ quantises columns one at a time and pushes each column's rounding error onto the columns
not yet quantised, weighted by the inverse Hessian of the layer inputs; the Hessians must come
from *training* (or self-generated) data, never validation tokens.
"""

from __future__ import annotations

import torch
from torch import Tensor

from reference_impl.model import CastedLinear

KEEP_FLOAT_MAX_NUMEL = 65_536
CLIP_Q = 99.99984 / 100.0
INT8_FORMAT = "int8_clean_per_row_v1"


def tensor_nbytes(t: Tensor) -> int:
    return int(t.numel()) * int(t.element_size())


def qmax_for(bits: int) -> int:
    if not 2 <= bits <= 8:
        raise ValueError(f"bits must be in [2, 8], got {bits}")
    return 2 ** (bits - 1) - 1


def row_scales(w: Tensor, bits: int) -> tuple[Tensor, Tensor]:
    """(clip_abs, scale) per row. int8 keeps the baseline's floor of 1/127 on the scale."""
    qmax = qmax_for(bits)
    clip_abs = torch.quantile(w.abs(), CLIP_Q, dim=1) if w.numel() else torch.empty(w.shape[0])
    floor = 1.0 / 127.0 if bits == 8 else 1e-10
    return clip_abs, (clip_abs / qmax).clamp_min(floor)


def quantize_tensor_rtn(t: Tensor, bits: int = 8) -> tuple[Tensor, Tensor]:
    """Round-to-nearest: per-row for matrices, one scale for anything else."""
    qmax = qmax_for(bits)
    t32 = t.float()
    if t32.ndim == 2:
        clip_abs, scale = row_scales(t32, bits)
        clipped = torch.maximum(torch.minimum(t32, clip_abs[:, None]), -clip_abs[:, None])
        q = torch.clamp(torch.round(clipped / scale[:, None]), -qmax, qmax).to(torch.int8).contiguous()
        return q, scale.to(torch.float16).contiguous()
    clip = float(torch.quantile(t32.abs().flatten(), CLIP_Q).item()) if t32.numel() else 0.0
    scale = torch.tensor(clip / qmax if clip > 0 else 1.0, dtype=torch.float32)
    q = torch.clamp(torch.round(torch.clamp(t32, -clip, clip) / scale), -qmax, qmax).to(torch.int8).contiguous()
    return q, scale


def gptq_quantize(
    w: Tensor, h: Tensor, bits: int = 6, block_size: int = 128, damp: float = 0.01, act_order: bool = True
) -> tuple[Tensor, Tensor]:
    """GPTQ of one (rows=out, cols=in) matrix given H = E[x x^T] of its inputs: (int8 q, fp16 row scale)."""
    qmax = qmax_for(bits)
    w = w.detach().float().clone()
    h = h.detach().float().clone()
    cols = w.shape[1]
    scale = row_scales(w, bits)[1].to(torch.float16).float()  # quantise with the scale we store
    dead = torch.diag(h) == 0
    h[dead, dead] = 1.0
    w[:, dead] = 0.0
    h += damp * torch.diag(h).mean() * torch.eye(cols)
    perm = torch.argsort(torch.diag(h), descending=True) if act_order else torch.arange(cols)
    w, h = w[:, perm], h[perm][:, perm]
    hinv = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(h)), upper=True)
    q = torch.zeros_like(w, dtype=torch.int8)
    for i1 in range(0, cols, block_size):
        i2 = min(i1 + block_size, cols)
        w1 = w[:, i1:i2].clone()
        err = torch.zeros_like(w1)
        hinv1 = hinv[i1:i2, i1:i2]
        for i in range(i2 - i1):
            col = w1[:, i]
            qc = torch.clamp(torch.round(col / scale), -qmax, qmax)
            q[:, i1 + i] = qc.to(torch.int8)
            e = (col - qc * scale) / hinv1[i, i]
            w1[:, i:] -= e[:, None] * hinv1[i, i:][None, :]
            err[:, i] = e
        w[:, i2:] -= err @ hinv[i1:i2, i2:]
    return q[:, torch.argsort(perm)].contiguous(), scale.to(torch.float16)


def _keep_float(name: str, t: Tensor, keep_fp32: tuple[str, ...], orig_dtypes: dict[str, str]) -> Tensor:
    if any(p in name for p in keep_fp32):
        return t.float().contiguous()
    if t.dtype in (torch.float32, torch.bfloat16):
        orig_dtypes[name] = str(t.dtype).removeprefix("torch.")
        return t.to(torch.float16).contiguous()
    return t


def quantize_state_dict(
    state_dict: dict[str, Tensor],
    bits: int = 8,
    keep_fp32_patterns: tuple[str, ...] = (),
    hessians: dict[str, Tensor] | None = None,
) -> tuple[dict, dict[str, int]]:
    """Quantise a state dict -> (object for torch.save, byte stats). GPTQ where a Hessian is given."""
    hessians = hessians or {}
    quantized: dict[str, Tensor] = {}
    scales: dict[str, Tensor] = {}
    dtypes: dict[str, str] = {}
    passthrough: dict[str, Tensor] = {}
    orig_dtypes: dict[str, str] = {}
    qmeta: dict[str, dict] = {}
    keys = ("param_count", "num_tensors", "num_float_tensors", "num_nonfloat_tensors")
    stats = dict.fromkeys((*keys, "baseline_tensor_bytes", "int8_payload_bytes"), 0)
    for name, tensor in state_dict.items():
        t = tensor.detach().to("cpu").contiguous()
        stats["param_count"] += t.numel()
        stats["num_tensors"] += 1
        stats["baseline_tensor_bytes"] += tensor_nbytes(t)
        if not t.is_floating_point():
            stats["num_nonfloat_tensors"] += 1
            passthrough[name] = t
            stats["int8_payload_bytes"] += tensor_nbytes(t)
            continue
        if t.numel() <= KEEP_FLOAT_MAX_NUMEL:
            kept = _keep_float(name, t, keep_fp32_patterns, orig_dtypes)
            passthrough[name] = kept
            stats["int8_payload_bytes"] += tensor_nbytes(kept)
            continue
        stats["num_float_tensors"] += 1
        if name in hessians and t.ndim == 2:
            q, s = gptq_quantize(t, hessians[name], bits=bits)
            qmeta[name] = {"scheme": "per_row", "axis": 0, "method": "gptq", "bits": bits}
        else:
            q, s = quantize_tensor_rtn(t, bits)
            if s.ndim > 0:
                qmeta[name] = {"scheme": "per_row", "axis": 0}
                if bits != 8:
                    qmeta[name]["bits"] = bits
        quantized[name], scales[name] = q, s
        dtypes[name] = str(t.dtype).removeprefix("torch.")
        stats["int8_payload_bytes"] += tensor_nbytes(q) + tensor_nbytes(s)
    obj: dict = {
        "__quant_format__": INT8_FORMAT if bits == 8 else f"int{bits}_per_row_v1",
        "quantized": quantized,
        "scales": scales,
        "dtypes": dtypes,
        "passthrough": passthrough,
    }
    if qmeta:
        obj["qmeta"] = qmeta
    if orig_dtypes:
        obj["passthrough_orig_dtypes"] = orig_dtypes
    return obj, stats


def dequantize_state_dict(obj: dict) -> dict[str, Tensor]:
    """Inverse of quantize_state_dict (and of the baseline's int8 export)."""
    out: dict[str, Tensor] = {}
    qmeta = obj.get("qmeta", {})
    orig_dtypes = obj.get("passthrough_orig_dtypes", {})
    for name, q in obj["quantized"].items():
        dtype = getattr(torch, obj["dtypes"][name])
        s = obj["scales"][name]
        if qmeta.get(name, {}).get("scheme") == "per_row" or s.ndim > 0:
            s = s.float().view(q.shape[0], *([1] * (q.ndim - 1)))
            out[name] = (q.float() * s).to(dtype).contiguous()
        else:
            out[name] = (q.float() * float(s.item())).to(dtype).contiguous()
    for name, t in obj["passthrough"].items():
        t = t.detach().to("cpu").contiguous()
        if isinstance(orig_dtypes.get(name), str):
            t = t.to(getattr(torch, orig_dtypes[name])).contiguous()
        out[name] = t
    return out


@torch.no_grad()
def collect_hessians(model, batches) -> dict[str, Tensor]:
    """H = mean over calibration tokens of x x^T for every large block matrix and the tied head.

    `batches` yields input-id tensors from the *training* stream (or self-generated text).
    """
    sums: dict[str, Tensor] = {}
    counts: dict[str, int] = {}

    def add(name: str, x: Tensor) -> None:
        x = x.detach().float().reshape(-1, x.size(-1))
        sums[name] = sums.get(name, 0) + x.T @ x
        counts[name] = counts.get(name, 0) + x.size(0)

    hooks = []
    for mod_name, mod in model.named_modules():
        if isinstance(mod, CastedLinear) and mod.weight.numel() > KEEP_FLOAT_MAX_NUMEL:
            key = f"{mod_name}.weight"
            hooks.append(mod.register_forward_pre_hook(lambda m, args, key=key: add(key, args[0])))
    was_training = model.training
    model.eval()
    try:
        for ids in batches:
            hidden = model.hidden(ids)
            if model.lm_head is None:
                add("tok_emb.weight", hidden)
    finally:
        for hk in hooks:
            hk.remove()
        model.train(was_training)
    return {k: sums[k] / counts[k] for k in sums}


@torch.no_grad()
def generate_calibration(model, n_seqs: int, seq_len: int, temperature: float = 0.8, seed: int = 0, bos_id: int = 1) -> Tensor:
    """Self-generated calibration text: sample from the trained model itself, starting at BOS.

    The alternative to training-stream batches when the training data is no longer available
    (it never touches validation tokens either way). No KV cache: a reference, not a fast path.
    """
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed)
    ids = torch.full((n_seqs, 1), bos_id, dtype=torch.int64, device=device)
    was_training = model.training
    model.eval()
    for _ in range(seq_len - 1):
        logits = model.forward_logits(ids)[:, -1].float() / max(temperature, 1e-6)
        nxt = torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=gen)
        ids = torch.cat((ids, nxt), dim=1)
    model.train(was_training)
    return ids
