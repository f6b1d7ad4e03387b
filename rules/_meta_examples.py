"""Small submission folders for the metadata rules' inline VALID / INVALID examples.

Our own text in the shape of the baseline log (REFERENCE.md 1.10): the script's source, a line of
100 '=', then the run's lines. Parameters change one fact at a time so that each example shows
exactly one pattern.
"""

from __future__ import annotations

import json
import math
from typing import Any

SCRIPT = '''"""Example training script (metadata-rule examples)."""
import os
import torch

SEED = int(os.environ.get("SEED", 1337))


def main():
    torch.manual_seed(SEED)


if __name__ == "__main__":
    main()
'''
SEP = "=" * 100
TOKENS_PER_BYTE = 0.4094


def bpb(val_loss: float) -> float:
    return round(val_loss / math.log(2.0) * TOKENS_PER_BYTE, 8)


def log(
    seed: int = 1337,
    val_loss: float = 2.0727,
    *,
    source: str | None = SCRIPT,
    model_bytes: int = 15_815_847,
    code_bytes: int | None = None,
    train_time_ms: int = 600_038,
    step: int = 13_780,
    eval_time_ms: int = 1_401,
    max_wallclock: str = "600.000",
    iterations: int = 20_000,
    val_tokens: int = 62_021_632,
    vocab_size: int | None = None,
    train_shards: int = 80,
    dataset: str = "fineweb10B_sp1024",
    tokenizer: str = "./data/tokenizers/fineweb_1024_bpe.model",
    stop_early: bool = True,
    extra: tuple[str, ...] = (),
) -> str:
    """One baseline-format log; `source=None` gives a torchrun stdout capture (no embedded code)."""
    code = code_bytes if code_bytes is not None else len((source or SCRIPT).encode("utf-8"))
    lines: list[str] = []
    if source is not None:
        lines += [source, SEP, "Running Python 3.12.3", "Running PyTorch 2.13.0", SEP]
    lines += [
        f"val_bpb:enabled tokenizer_kind=sentencepiece tokenizer_path={tokenizer}",
        f"train_loader:dataset:{dataset} train_shards:{train_shards}",
        f"val_loader:shards pattern=./data/datasets/{dataset}/fineweb_val_*.bin tokens:{val_tokens}",
        f"train_batch_tokens:524288 train_seq_len:1024 iterations:{iterations} warmup_steps:20 "
        f"max_wallclock_seconds:{max_wallclock}",
    ]
    if vocab_size is not None:
        lines.append(f"vocab_size:{vocab_size}")
    lines += [f"seed:{seed}", *extra]
    lines.append(
        f"step:{step}/{iterations} val_loss:{val_loss:.4f} val_bpb:{bpb(val_loss):.4f} "
        f"train_time:{train_time_ms}ms step_avg:{train_time_ms / step:.2f}ms"
    )
    if stop_early:
        lines.append(f"stopping_early: wallclock_cap train_time:{train_time_ms}ms step:{step}/{iterations}")
    lines += [
        f"Code size: {code} bytes",
        f"Serialized model int8+zlib: {model_bytes} bytes",
        f"Total submission size int8+zlib: {model_bytes + code} bytes",
        f"final_int8_zlib_roundtrip val_loss:{val_loss:.4f} val_bpb:{bpb(val_loss):.4f} eval_time:{eval_time_ms}ms",
        f"final_int8_zlib_roundtrip_exact val_loss:{val_loss:.8f} val_bpb:{bpb(val_loss):.8f}",
    ]
    return "\n".join(lines) + "\n"


SEEDS = ((1337, 2.0727), (42, 2.0739), (2025, 2.0718))


def folder(
    logs: dict[str, str] | None = None,
    *,
    json_extra: dict[str, Any] | None = None,
    json_drop: tuple[str, ...] = (),
    script: str | None = SCRIPT,
    extra_files: dict[str, str | bytes] | None = None,
) -> dict[str, str | bytes]:
    """A whole submission folder: three consistent seeds unless `logs` says otherwise."""
    if logs is None:
        logs = {f"train_seed{s}.log": log(s, loss) for s, loss in SEEDS}
    data: dict[str, Any] = {
        "author": "Example Author",
        "github_id": "example",
        "name": "Example",
        "date": "2026-04-01",
        "val_bpb": round(sum(bpb(loss) for _, loss in SEEDS) / len(SEEDS), 8),
        "bytes_total": 15_815_847 + len(SCRIPT.encode("utf-8")),
        "bytes_code": len(SCRIPT.encode("utf-8")),
    }
    data.update(json_extra or {})
    for key in json_drop:
        data.pop(key, None)
    files: dict[str, str | bytes] = {"README.md": "# Example\n\nAn example submission.\n"}
    files["submission.json"] = json.dumps(data, indent=2)
    if script is not None:
        files["train_gpt.py"] = script
    files.update(logs)
    files.update(extra_files or {})
    return files
