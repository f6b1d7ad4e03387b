"""Token shards in the challenge's binary format, and the train / validation loaders.

Shard = 256 little-endian int32 header (magic 20240520, version 1, token count) + uint16 tokens.
The loaders reproduce the baseline's order exactly (one sequential stream over sorted shards,
each rank taking its span of every micro-batch; validation trimmed to whole sequences), because
the metric and the train/val separation the auditor checks both depend on that order.
This is the only module that reads validation tokens (`load_validation_tokens`).
"""

from __future__ import annotations

import glob
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

SHARD_MAGIC = 20240520
SHARD_VERSION = 1
HEADER_INTS = 256
HEADER_BYTES = HEADER_INTS * 4


def write_data_shard(path: Path, tokens: np.ndarray | list[int]) -> None:
    """Write tokens (each < 65536) as one shard; the header carries the count the reader checks."""
    arr = np.asarray(tokens, dtype=np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= 2**16):
        raise ValueError("shard tokens must fit in uint16")
    header = np.zeros(HEADER_INTS, dtype="<i4")
    header[0], header[1], header[2] = SHARD_MAGIC, SHARD_VERSION, arr.size
    Path(path).write_bytes(header.tobytes() + arr.astype("<u2").tobytes())


def load_data_shard(path: Path) -> Tensor:
    """Read one shard; reject a wrong magic, version or a size that disagrees with the header."""
    path = Path(path)
    header = np.fromfile(path, dtype="<i4", count=HEADER_INTS)
    if header.size != HEADER_INTS or header[0] != SHARD_MAGIC or header[1] != SHARD_VERSION:
        raise ValueError(f"unexpected shard header for {path}")
    num_tokens = int(header[2])
    expected = HEADER_BYTES + 2 * num_tokens
    if path.stat().st_size != expected:
        raise ValueError(f"shard size mismatch for {path}: expected {expected} bytes")
    tokens = np.fromfile(path, dtype="<u2", count=num_tokens, offset=HEADER_BYTES)
    if tokens.size != num_tokens:
        raise ValueError(f"short read for {path}")
    return torch.from_numpy(tokens.astype(np.uint16, copy=False))


def shard_files(pattern: str) -> list[Path]:
    """Sorted shard paths of a glob; `_bytes_` sidecars (CaseOps) are never token shards."""
    return [Path(p) for p in sorted(glob.glob(pattern)) if "_bytes_" not in Path(p).name]


def load_validation_tokens(pattern: str, seq_len: int) -> Tensor:
    """All validation shards, trimmed to whole `seq_len` sequences plus the one extra target token."""
    files = shard_files(pattern)
    if not files:
        raise FileNotFoundError(f"No files found for pattern: {pattern}")
    tokens = torch.cat([load_data_shard(f) for f in files]).contiguous()
    usable = ((tokens.numel() - 1) // seq_len) * seq_len
    if usable <= 0:
        raise ValueError(f"Validation split is too short for TRAIN_SEQ_LEN={seq_len}")
    return tokens[: usable + 1]


def load_validation_byte_sidecar(pattern: str, seq_len: int, num_tokens: int) -> Tensor:
    """CaseOps-style per-token byte counts (`fineweb_val_bytes_*.bin`), trimmed like the tokens.

    Used instead of the LUTs when the tokenizer's pieces do not spell the original text.
    """
    files = [Path(p) for p in sorted(glob.glob(pattern.replace("fineweb_val_", "fineweb_val_bytes_")))]
    if not files:
        raise FileNotFoundError(f"No byte sidecar next to {pattern}")
    counts = torch.cat([load_data_shard(f) for f in files])
    usable = ((counts.numel() - 1) // seq_len) * seq_len
    if usable + 1 != num_tokens:
        raise ValueError(f"byte sidecar covers {usable + 1} tokens, validation stream has {num_tokens}")
    return counts[: usable + 1].to(torch.int32)


class TokenStream:
    """Reads shards in order and wraps around forever; no shuffling, so runs are reproducible."""

    def __init__(self, pattern: str):
        self.files = shard_files(pattern)
        if not self.files:
            raise FileNotFoundError(f"No files found for pattern: {pattern}")
        self.file_idx = 0
        self.tokens = load_data_shard(self.files[0])
        self.pos = 0

    def _advance_file(self) -> None:
        self.file_idx = (self.file_idx + 1) % len(self.files)
        self.tokens = load_data_shard(self.files[self.file_idx])
        self.pos = 0

    def take(self, n: int) -> Tensor:
        chunks: list[Tensor] = []
        remaining = n
        while remaining > 0:
            avail = self.tokens.numel() - self.pos
            if avail <= 0:
                self._advance_file()
                continue
            k = min(remaining, avail)
            chunks.append(self.tokens[self.pos : self.pos + k])
            self.pos += k
            remaining -= k
        return chunks[0] if len(chunks) == 1 else torch.cat(chunks)


class DistributedTokenLoader:
    """Every rank reads the same stream and keeps its own contiguous span of each micro-batch."""

    def __init__(self, pattern: str, rank: int, world_size: int, device: torch.device):
        self.rank = rank
        self.world_size = world_size
        self.device = device
        self.stream = TokenStream(pattern)

    def next_batch(self, global_tokens: int, seq_len: int, grad_accum_steps: int) -> tuple[Tensor, Tensor]:
        local_tokens = global_tokens // (self.world_size * grad_accum_steps)
        span = local_tokens + 1
        chunk = self.stream.take(span * self.world_size)
        local = chunk[self.rank * span : (self.rank + 1) * span].to(dtype=torch.int64)
        x = local[:-1].reshape(-1, seq_len)
        y = local[1:].reshape(-1, seq_len)
        return x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
