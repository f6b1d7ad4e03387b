"""Byte-count lookup tables: the denominator of val_bpb.

val_bpb is tokenizer-agnostic only if every target token is charged the UTF-8 bytes of the text
it stands for. A SentencePiece piece "▁the" stands for " the" (4 bytes) except when the previous
token is a boundary (BOS / control), where the dummy space does not exist in the text; byte-fallback
pieces stand for exactly one byte; control / unknown / unused ids stand for none.
A CaseOps-style tokenizer (re-cased text) instead ships a per-token byte sidecar.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

LEADING_SPACE = "\u2581"


def build_byte_luts(sp, vocab_size: int, device: torch.device | str = "cpu") -> tuple[Tensor, Tensor, Tensor]:
    """(base_bytes int16, has_leading_space bool, is_boundary bool), sized max(sp vocab, vocab_size)."""
    sp_vocab = int(sp.vocab_size())
    size = max(sp_vocab, vocab_size)
    base = np.zeros(size, dtype=np.int16)
    space = np.zeros(size, dtype=np.bool_)
    boundary = np.ones(size, dtype=np.bool_)
    for tid in range(sp_vocab):
        if sp.is_control(tid) or sp.is_unknown(tid) or sp.is_unused(tid):
            continue
        boundary[tid] = False
        if sp.is_byte(tid):
            base[tid] = 1
            continue
        piece = sp.id_to_piece(tid)
        if piece.startswith(LEADING_SPACE):
            space[tid] = True
            piece = piece[1:]
        base[tid] = len(piece.encode("utf-8"))
    return (
        torch.tensor(base, dtype=torch.int16, device=device),
        torch.tensor(space, dtype=torch.bool, device=device),
        torch.tensor(boundary, dtype=torch.bool, device=device),
    )


def load_sentencepiece(path: str | Path, vocab_size: int | None = None):
    """Load a .model; refuse a tokenizer whose size disagrees with VOCAB_SIZE (as the baseline does)."""
    import sentencepiece as spm

    if not str(path).endswith(".model"):
        raise ValueError(f"Script only setup for SentencePiece .model file: {path}")
    sp = spm.SentencePieceProcessor(model_file=str(path))
    if vocab_size is not None and int(sp.vocab_size()) != vocab_size:
        raise ValueError(f"VOCAB_SIZE={vocab_size} does not match tokenizer vocab_size={int(sp.vocab_size())}")
    return sp


def target_bytes(prev_ids: Tensor, tgt_ids: Tensor, luts: tuple[Tensor, Tensor, Tensor]) -> Tensor:
    """Bytes charged to each target: base + 1 for a leading space unless the previous token is a boundary."""
    base, space, boundary = luts
    out = base[tgt_ids].to(torch.int32)
    out += (space[tgt_ids] & ~boundary[prev_ids]).to(torch.int32)
    return out


def sidecar_path(token_shard: Path) -> Path:
    """fineweb_val_000000.bin -> fineweb_val_bytes_000000.bin (the CaseOps naming)."""
    prefix, _, idx = token_shard.stem.rpartition("_")
    return token_shard.with_name(f"{prefix}_bytes_{idx}{token_shard.suffix}")


def token_byte_counts(sp, tokens: list[int]) -> list[int]:
    """Per-token original UTF-8 byte counts for a BOS-prefixed stream (a sidecar's content).

    For a plain SentencePiece tokenizer this equals the LUT rule, so a sidecar written with it
    must give the same val_bpb as the LUTs; CaseOps pipelines write their own counts instead.
    """
    base, space, boundary = (t.tolist() for t in build_byte_luts(sp, int(sp.vocab_size())))
    out = []
    prev = None
    for t in tokens:
        n = base[t] + (1 if space[t] and prev is not None and not boundary[prev] else 0)
        out.append(n)
        prev = t
    return out
