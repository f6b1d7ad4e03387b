"""Score a baseline-architecture artifact independently: `.ptz` in, val_loss / val_bpb out.

A verifier does not have to trust a submission's own evaluator: the model shape is read back from
the state dict (vocab and width from tok_emb, heads from q_gain, KV heads from c_k, MLP width
from fc, depth from the block count, tied or not from lm_head, BigramHash from its tables), the
artifact is dequantised with our loader and scored with our metric. Works for the baseline's
`final_model.int8.ptz` and for ours; other architectures are out of scope (the harness re-runs
those instead).

    python -m reference_impl.score final_model.int8.ptz --data DIR --tokenizer X.model [--seq-len 1024]
        [--val-batch-size 524288] [--world-size 8] [--stride 64] [--softcap 30] [--rope-base 10000]
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import torch

from reference_impl.compress import load_quantized
from reference_impl.data import load_validation_tokens
from reference_impl.eval import EvalResult, eval_sliding, full_eval_sums, result_from_sums
from reference_impl.model import GPT
from reference_impl.quant import dequantize_state_dict
from reference_impl.tokenizer import build_byte_luts, load_sentencepiece


def infer_shape(sd: dict[str, torch.Tensor]) -> dict:
    """GPT(...) keyword arguments recovered from a state dict's names and shapes."""
    vocab, dim = sd["tok_emb.weight"].shape
    layers = 1 + max(int(m.group(1)) for k in sd if (m := re.match(r"blocks\.(\d+)\.", k)))
    heads = sd["blocks.0.attn.q_gain"].numel()
    kv_heads = sd["blocks.0.attn.c_k.weight"].shape[0] // (dim // heads)
    kw = dict(
        vocab_size=int(vocab),
        num_layers=layers,
        model_dim=int(dim),
        num_heads=int(heads),
        num_kv_heads=int(kv_heads),
        mlp_mult=sd["blocks.0.mlp.fc.weight"].shape[0] // dim,
        tie_embeddings="lm_head.weight" not in sd,
    )
    if "bigram.embed.weight" in sd:
        kw["bigram_vocab_size"], kw["bigram_dim"] = (int(n) for n in sd["bigram.embed.weight"].shape)
    return kw


def load_artifact(path: str | Path, logit_softcap: float = 30.0, rope_base: float = 10000.0) -> GPT:
    """Dequantise a .ptz (any supported compressor) into a GPT in fp32 on CPU."""
    sd = dequantize_state_dict(load_quantized(path))
    model = GPT(**infer_shape(sd), logit_softcap=logit_softcap, rope_base=rope_base)
    model.load_state_dict({k: v.float() for k, v in sd.items()}, strict=True)
    return model


def score_artifact(path, data_dir, tokenizer, seq_len: int = 1024, stride: int = 0, val_batch_size: int = 524_288,
                   world_size: int = 8, logit_softcap: float = 30.0, rope_base: float = 10000.0) -> EvalResult:
    """Full eval split over `world_size` virtual ranks with the run's batches, as the run did it.

    The fp32 batch means depend on which sequences share a batch, so reproducing a logged
    `_exact` line to the last digit needs the run's world size and VAL_BATCH_SIZE (the baseline's
    per-rank batch is VAL_BATCH_SIZE // 8 // seq_len sequences at any world size).
    """
    model = load_artifact(path, logit_softcap, rope_base)
    sp = load_sentencepiece(tokenizer, model.tok_emb.num_embeddings)
    luts = build_byte_luts(sp, model.tok_emb.num_embeddings)
    val = load_validation_tokens(str(Path(data_dir) / "fineweb_val_*.bin"), seq_len)
    batch_seqs = max(val_batch_size // 8 // seq_len, 1)
    if stride > 0:
        return eval_sliding(model, val, seq_len, stride, luts, batch_seqs)
    sums = sum(full_eval_sums(model, val, seq_len, luts, batch_seqs, r, world_size) for r in range(world_size))
    return result_from_sums(sums, None)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Score a baseline-architecture .ptz with the challenge's val_bpb.")
    ap.add_argument("artifact", type=Path)
    ap.add_argument("--data", type=Path, required=True, help="dir with fineweb_val_*.bin")
    ap.add_argument("--tokenizer", type=Path, required=True)
    ap.add_argument("--seq-len", type=int, default=1024)
    ap.add_argument("--stride", type=int, default=0, help="> 0: sliding-window evaluation")
    ap.add_argument("--val-batch-size", type=int, default=524_288, help="the run's VAL_BATCH_SIZE")
    ap.add_argument("--world-size", type=int, default=8, help="processes of the run being reproduced")
    ap.add_argument("--softcap", type=float, default=30.0)
    ap.add_argument("--rope-base", type=float, default=10000.0)
    a = ap.parse_args(argv)
    res = score_artifact(a.artifact, a.data, a.tokenizer, a.seq_len, a.stride, a.val_batch_size, a.world_size,
                         a.softcap, a.rope_base)
    print(f"reference_score val_loss:{res.val_loss:.8f} val_bpb:{res.val_bpb:.8f} tokens:{res.tokens} bytes:{res.bytes}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
