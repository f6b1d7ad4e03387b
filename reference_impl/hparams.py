"""Hyperparameters read from environment variables, with the challenge baseline's names and defaults.

Why env vars: the harness drives the reference exactly as it drives a real submission
(`SEED=.. RUN_ID=.. torchrun train_gpt.py`), so the same knobs must exist under the same names.
Reference-only extensions (quantiser, compressor, eval mode, TTT, BigramHash) default to the
baseline's behaviour, so an unconfigured run is the baseline.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field, fields

# The control-tensor name patterns of the baseline (module-level env in the original script).
DEFAULT_CONTROL_PATTERNS = (
    "attn_scale,attn_scales,mlp_scale,mlp_scales,resid_mix,resid_mixes,q_gain,skip_weight,skip_weights"
)

# A configuration that makes a 2-process CPU run on the fixture data finish in seconds.
# Use as `env = {**os.environ, **TINY_ENV, "DATA_PATH": ..., "TOKENIZER_PATH": ...}`.
TINY_ENV: dict[str, str] = {
    "VOCAB_SIZE": "512",
    "NUM_LAYERS": "2",
    "MODEL_DIM": "160",  # tok_emb 512x160 > 65,536 elements, so the int8 path (not passthrough) runs
    "NUM_HEADS": "4",
    "NUM_KV_HEADS": "2",
    "MLP_MULT": "2",
    "TRAIN_SEQ_LEN": "64",
    "TRAIN_BATCH_TOKENS": "4096",
    "ITERATIONS": "12",
    "WARMDOWN_ITERS": "4",
    "WARMUP_STEPS": "2",
    "VAL_BATCH_SIZE": "16384",
    "VAL_LOSS_EVERY": "6",
    "TRAIN_LOG_EVERY": "4",
    "MAX_WALLCLOCK_SECONDS": "600",  # the record-track cap: never reached here, and the log shows it on
    "MUON_MOMENTUM_WARMUP_STEPS": "10",
}


def _env_bool(name: str, default: str) -> bool:
    """The baseline parses booleans as bool(int(x))."""
    return bool(int(os.environ.get(name, default)))


def _patterns(name: str, default: str) -> tuple[str, ...]:
    return tuple(p for p in os.environ.get(name, default).split(",") if p)


@dataclass
class Hyperparameters:
    """One run's configuration. Build with `Hyperparameters.from_env()`."""

    data_path: str = "./data/datasets/fineweb10B_sp1024"
    tokenizer_path: str = "./data/tokenizers/fineweb_1024_bpe.model"
    run_id: str = ""
    seed: int = 1337
    val_batch_size: int = 524_288
    val_loss_every: int = 1000
    train_log_every: int = 200
    iterations: int = 20000
    warmdown_iters: int = 1200
    warmup_steps: int = 20
    train_batch_tokens: int = 524_288
    train_seq_len: int = 1024
    max_wallclock_seconds: float = 600.0
    qk_gain_init: float = 1.5
    vocab_size: int = 1024
    num_layers: int = 9
    num_kv_heads: int = 4
    model_dim: int = 512
    num_heads: int = 8
    mlp_mult: int = 2
    tie_embeddings: bool = True
    rope_base: float = 10000.0
    logit_softcap: float = 30.0
    embed_lr: float = 0.6
    head_lr: float = 0.008
    tied_embed_lr: float = 0.05
    tied_embed_init_std: float = 0.005
    matrix_lr: float = 0.04
    scalar_lr: float = 0.04
    muon_momentum: float = 0.95
    muon_backend_steps: int = 5
    muon_momentum_warmup_start: float = 0.85
    muon_momentum_warmup_steps: int = 500
    beta1: float = 0.9
    beta2: float = 0.95
    adam_eps: float = 1e-8
    grad_clip_norm: float = 0.0
    # Reference-only extensions (defaults reproduce the baseline).
    bigram_vocab_size: int = 0  # 0 = no BigramHash input embedding
    bigram_dim: int = 128
    quant_bits: int = 8  # 8 (baseline per-row int8), 6 or 5 (per-row, int8 containers)
    quant_method: str = "rtn"  # rtn | gptq (gptq uses training-data Hessians)
    gptq_calib_batches: int = 4
    gptq_calib_source: str = "train"  # train (training-stream batches) | selfgen (text sampled from the model)
    gptq_reserve_seconds: float = 10.0  # train-data calibration runs inside the 600 s, so the loop stops earlier
    compressor: str = "zlib"  # zlib | zstd | lzma | brotli
    caseops_enabled: bool = False  # bytes from fineweb_val_bytes_*.bin instead of the tokenizer LUTs
    eval_stride: int = 0  # > 0: also run sliding-window eval with this stride
    ttt_enabled: bool = False  # legal score-first TTT on the final (dequantised) model
    ttt_chunk_tokens: int = 32768
    ttt_epochs: int = 3
    ttt_lr: float = 0.002
    ttt_momentum: float = 0.9
    ttt_batch_seqs: int = 32
    ttt_grad_clip: float = 1.0
    control_patterns: tuple[str, ...] = field(default_factory=lambda: tuple(DEFAULT_CONTROL_PATTERNS.split(",")))
    keep_fp32_patterns: tuple[str, ...] = field(default_factory=lambda: tuple(DEFAULT_CONTROL_PATTERNS.split(",")))

    @property
    def train_files(self) -> str:
        return os.path.join(self.data_path, "fineweb_train_*.bin")

    @property
    def val_files(self) -> str:
        return os.path.join(self.data_path, "fineweb_val_*.bin")

    @classmethod
    def from_env(cls) -> Hyperparameters:
        """Read every field from its upper-case env var; unset vars keep the baseline default."""
        hp = cls()
        for f in fields(cls):
            name = f.name.upper()
            if f.name == "control_patterns":
                hp.control_patterns = _patterns("CONTROL_TENSOR_NAME_PATTERNS", DEFAULT_CONTROL_PATTERNS)
                continue
            if f.name == "keep_fp32_patterns":
                hp.keep_fp32_patterns = _patterns(
                    "INT8_KEEP_FLOAT_FP32_NAME_PATTERNS", ",".join(hp.control_patterns)
                )
                continue
            if name not in os.environ:
                continue
            default = getattr(hp, f.name)
            if isinstance(default, bool):
                setattr(hp, f.name, _env_bool(name, "0"))
            elif isinstance(default, int):
                setattr(hp, f.name, int(os.environ[name]))
            elif isinstance(default, float):
                setattr(hp, f.name, float(os.environ[name]))
            else:
                setattr(hp, f.name, os.environ[name])
        if not hp.run_id:
            hp.run_id = str(uuid.uuid4())
        return hp
