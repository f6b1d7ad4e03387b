"""Evaluation throughput of reference_impl on CPU: full vs sliding-window vs score-first TTT.

Prints tokens/s for each mode and its ratio to the full evaluation measured in the same run
(absolute speeds depend on the machine; the ratios are what to compare).

    python bench/reference_eval.py [--stride 16] [--tokens 8192] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stride", type=int, default=16)
    ap.add_argument("--seq-len", type=int, default=64)
    ap.add_argument("--tokens", type=int, default=8192, help="validation targets to score")
    ap.add_argument("--ttt-chunk", type=int, default=2048)
    ap.add_argument("--ttt-epochs", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args(argv)

    import sentencepiece as spm
    import torch

    from reference_impl.data import load_validation_tokens
    from reference_impl.eval import TTTConfig, eval_full, eval_sliding, eval_ttt_score_first
    from reference_impl.fixture_data import ensure_fixture_data
    from reference_impl.hparams import Hyperparameters
    from reference_impl.model import build_model
    from reference_impl.tokenizer import build_byte_luts

    torch.set_num_threads(args.threads)
    fx = ensure_fixture_data()
    sp = spm.SentencePieceProcessor(model_file=str(fx.tokenizer_path))
    luts = build_byte_luts(sp, fx.vocab_size)
    seq = args.seq_len
    val = load_validation_tokens(str(fx.data_path / "fineweb_val_*.bin"), seq)
    n = min(args.tokens // seq, (val.numel() - 1) // seq) * seq
    val = val[: n + 1]
    hp = Hyperparameters(vocab_size=fx.vocab_size, num_layers=2, model_dim=128, num_heads=4, num_kv_heads=2)
    torch.manual_seed(0)
    model = build_model(hp)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = TTTConfig(chunk_tokens=args.ttt_chunk, epochs=args.ttt_epochs, lr=0.002, batch_seqs=16)

    modes = {
        "full": lambda: eval_full(model, val, seq, luts, batch_seqs=32),
        f"sliding(stride={args.stride})": lambda: eval_sliding(model, val, seq, args.stride, luts, batch_seqs=32),
        f"ttt(stride={seq},epochs={args.ttt_epochs})": lambda: eval_ttt_score_first(
            model, val, seq, seq, luts, cfg, batch_seqs=32
        ),
    }
    results = {}
    for name, fn in modes.items():
        best = float("inf")
        for _ in range(args.repeats):
            model.load_state_dict(state)  # TTT mutates weights; every mode starts from the same model
            t = time.perf_counter()
            res = fn()
            best = min(best, time.perf_counter() - t)
        results[name] = (res.tokens / best, res.val_bpb)
    base = results["full"][0]
    print(f"targets:{n} seq_len:{seq} threads:{args.threads}")
    for name, (tps, bpb) in results.items():
        print(f"{name:32s} {tps:12.0f} tokens/s  ratio_to_full:{tps / base:6.3f}  val_bpb:{bpb:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
