"""`flash_attn_interface` replacement on CPU: scaled_dot_product_attention with causal and window masks.

Copied into the sandbox as `_pgolf_flash.py` by the probe. FlashAttention's layout is (batch, seq,
heads, head_dim) and it accepts fewer KV heads (GQA); `window_size=(left, right)` limits how far a
query looks back (left) and ahead (right), -1 meaning unlimited. Returns the output only, as
flash_attn_func does by default (`return_attn_probs=False`).
"""



def flash_attn_func(q, k, v, softmax_scale=None, causal=False, window_size=(-1, -1), *args, **kwargs):
    import torch  # inside: audit/ imports no torch at module level (this file is also copied into the sandbox)
    import torch.nn.functional as F

    qt, kt, vt = (t.transpose(1, 2).float() for t in (q, k, v))
    if kt.size(1) != qt.size(1):  # GQA: repeat KV heads
        rep = qt.size(1) // kt.size(1)
        kt, vt = kt.repeat_interleave(rep, dim=1), vt.repeat_interleave(rep, dim=1)
    tq, tk = qt.size(2), kt.size(2)
    i = torch.arange(tq)[:, None] + (tk - tq)
    j = torch.arange(tk)[None, :]
    allowed = torch.ones(tq, tk, dtype=torch.bool)
    left, right = (window_size if window_size is not None else (-1, -1))
    if causal:
        allowed &= j <= i
    if left is not None and left >= 0:
        allowed &= j >= i - left
    if right is not None and right >= 0 and not causal:
        allowed &= j <= i + right
    out = F.scaled_dot_product_attention(qt, kt, vt, attn_mask=allowed, scale=softmax_scale)
    return out.transpose(1, 2).to(q.dtype)


def flash_attn_varlen_func(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q=None, max_seqlen_k=None,
                           softmax_scale=None, causal=False, window_size=(-1, -1), *args, **kwargs):
    """Packed sequences (total, heads, dim) split at cu_seqlens; each attended on its own."""
    import torch

    outs = []
    bounds_q, bounds_k = cu_seqlens_q.tolist(), cu_seqlens_k.tolist()
    for (q0, q1), (k0, k1) in zip(zip(bounds_q, bounds_q[1:]), zip(bounds_k, bounds_k[1:])):
        outs.append(flash_attn_func(q[None, q0:q1], k[None, k0:k1], v[None, k0:k1], softmax_scale, causal,
                                    window_size)[0])
    return torch.cat(outs, dim=0)
