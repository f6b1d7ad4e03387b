"""Training entry point: `torchrun --standalone --nproc_per_node=N train_gpt.py` (or `python -m reference_impl.train`).

Follows the baseline run step by step so its log is a baseline log: source code at the top of
`logs/<RUN_ID>.txt`, warm-up then restore, timed training with a wallclock cap (clock paused during
validation), int8+zlib artifact, and a final evaluation of the *round-tripped* artifact, whose
`final_int8_zlib_roundtrip_exact` line is the score. CUDA: nccl, bf16 autocast, torch.compile,
flash SDPA. CPU: gloo, fp32, eager; otherwise the same code path.
"""

from __future__ import annotations

import copy
import os
import random
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from reference_impl.compress import load_quantized, serialize_quantized
from reference_impl.data import DistributedTokenLoader, load_validation_byte_sidecar, load_validation_tokens
from reference_impl.eval import TTTConfig, autocast_for, eval_full, eval_sliding, eval_ttt_score_first
from reference_impl.hparams import Hyperparameters
from reference_impl.model import build_model, cast_for_cuda
from reference_impl.optim import build_optimizers, lr_multiplier, muon_momentum_at
from reference_impl.quant import (
    collect_hessians,
    dequantize_state_dict,
    generate_calibration,
    quantize_state_dict,
)
from reference_impl.tokenizer import build_byte_luts, load_sentencepiece


def setup_distributed() -> tuple[bool, int, int, int, torch.device]:
    """(distributed, rank, world_size, local_rank, device); nccl on CUDA, gloo on CPU."""
    distributed = "RANK" in os.environ and "WORLD_SIZE" in os.environ
    rank = int(os.environ.get("RANK", "0"))
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if world_size <= 0 or 8 % world_size != 0:
        raise ValueError(f"WORLD_SIZE={world_size} must divide 8 so grad_accum_steps stays integral")
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cuda.enable_flash_sdp(True)
        torch.backends.cuda.enable_cudnn_sdp(False)
        torch.backends.cuda.enable_mem_efficient_sdp(False)
        torch.backends.cuda.enable_math_sdp(False)
        if distributed:
            dist.init_process_group(backend="nccl", device_id=device)
    else:
        device = torch.device("cpu")
        if distributed:
            dist.init_process_group(backend="gloo")
    if distributed:
        dist.barrier()
    return distributed, rank, world_size, local_rank, device


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def make_logger(run_id: str, master: bool) -> Callable[..., None]:
    """Rank 0 prints and appends to logs/<run_id>.txt; other ranks stay silent."""
    logfile = None
    if master:
        os.makedirs("logs", exist_ok=True)
        logfile = f"logs/{run_id}.txt"
        print(logfile)

    def log0(msg: str, console: bool = True) -> None:
        if not master:
            return
        if console:
            print(msg, flush=True)
        if logfile is not None:
            with open(logfile, "a", encoding="utf-8") as f:
                print(msg, file=f)

    return log0


def log_environment(log0, code: str, device: torch.device) -> None:
    """The script's own source first (the auditor compares it with the submitted file), then versions."""
    log0(code, console=False)
    log0("=" * 100, console=False)
    log0(f"Running Python {sys.version}", console=False)
    log0(f"Running PyTorch {torch.__version__}", console=False)
    if device.type == "cuda":
        smi = subprocess.run(["nvidia-smi"], capture_output=True, text=True, check=False)
        log0(smi.stdout, console=False)
    else:
        log0("device:cpu (no nvidia-smi)", console=False)
    log0("=" * 100, console=False)


def main() -> None:
    code = Path(__file__).read_text(encoding="utf-8")
    hp = Hyperparameters.from_env()
    distributed, rank, world_size, local_rank, device = setup_distributed()
    master = rank == 0
    grad_accum_steps = 8 // world_size
    grad_scale = 1.0 / grad_accum_steps
    log0 = make_logger(hp.run_id, master)
    log_environment(log0, code, device)

    random.seed(hp.seed)
    np.random.seed(hp.seed)
    torch.manual_seed(hp.seed)
    if device.type == "cuda":
        torch.cuda.manual_seed_all(hp.seed)

    # Tokenizer, byte LUTs and the validation stream (the metric's inputs).
    sp = load_sentencepiece(hp.tokenizer_path, hp.vocab_size)
    dataset_dir = Path(hp.data_path).resolve()
    train_shards = len(list(dataset_dir.glob("fineweb_train_*.bin")))
    val_tokens = load_validation_tokens(hp.val_files, hp.train_seq_len)
    luts = build_byte_luts(sp, hp.vocab_size, device)
    token_bytes = None
    if hp.caseops_enabled:
        token_bytes = load_validation_byte_sidecar(hp.val_files, hp.train_seq_len, val_tokens.numel())
    log0(f"val_bpb:enabled tokenizer_kind=sentencepiece tokenizer_path={hp.tokenizer_path}")
    log0(f"train_loader:dataset:{dataset_dir.name} train_shards:{train_shards}")
    log0(f"val_loader:shards pattern={hp.val_files} tokens:{val_tokens.numel() - 1}")

    # Model and optimizers.
    base_model = build_model(hp).to(device)
    if device.type == "cuda":
        base_model = cast_for_cuda(base_model, hp.control_patterns)
        compiled = torch.compile(base_model, dynamic=False, fullgraph=True)
    else:
        compiled = base_model
    model = compiled
    if distributed:
        with warnings.catch_warnings():  # torch >= 2.13 deprecates broadcast_buffers; the semantics we want
            warnings.simplefilter("ignore", FutureWarning)
            ids = [local_rank] if device.type == "cuda" else None
            model = DDP(compiled, device_ids=ids, broadcast_buffers=False)
    optimizers, muon = build_optimizers(base_model, hp)
    if device.type == "cuda":
        muon.orthogonalize = torch.compile(muon.orthogonalize)
    log0(f"model_params:{sum(p.numel() for p in base_model.parameters())}")
    log0(f"world_size:{world_size} grad_accum_steps:{grad_accum_steps}")
    flash = device.type == "cuda"
    log0(f"sdp_backends:cudnn=False flash={flash} mem_efficient=False math={not flash}")
    log0(f"attention_mode:gqa num_heads:{hp.num_heads} num_kv_heads:{hp.num_kv_heads}")
    embed_lr = hp.tied_embed_lr if hp.tie_embeddings else hp.embed_lr
    head_lr = hp.head_lr if base_model.lm_head is not None else 0.0
    log0(
        f"tie_embeddings:{hp.tie_embeddings} embed_lr:{embed_lr} head_lr:{head_lr} "
        f"matrix_lr:{hp.matrix_lr} scalar_lr:{hp.scalar_lr}"
    )
    log0(
        f"train_batch_tokens:{hp.train_batch_tokens} train_seq_len:{hp.train_seq_len} "
        f"iterations:{hp.iterations} warmup_steps:{hp.warmup_steps} "
        f"max_wallclock_seconds:{hp.max_wallclock_seconds:.3f}"
    )
    log0(f"seed:{hp.seed}")

    train_loader = DistributedTokenLoader(hp.train_files, rank, world_size, device)
    val_batch_seqs = hp.val_batch_size // (world_size * grad_accum_steps) // hp.train_seq_len
    if val_batch_seqs < 1:
        raise ValueError("VAL_BATCH_SIZE must provide at least one sequence per rank")

    def zero_grad_all() -> None:
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)

    def train_step() -> torch.Tensor:
        """One optimizer step's worth of micro-batches; grads synchronised on the last only."""
        total = torch.zeros((), device=device)
        for micro in range(grad_accum_steps):
            if distributed:
                model.require_backward_grad_sync = micro == grad_accum_steps - 1
            x, y = train_loader.next_batch(hp.train_batch_tokens, hp.train_seq_len, grad_accum_steps)
            with autocast_for(device):
                loss = model(x, y)
            total += loss.detach()
            (loss * grad_scale).backward()
        return total / grad_accum_steps

    def validate():
        return eval_full(base_model, val_tokens, hp.train_seq_len, luts, val_batch_seqs, device, token_bytes)

    # Warm-up primes compiled paths, then the initial weights and optimizer state come back.
    if hp.warmup_steps > 0:
        init_model = {k: v.detach().cpu().clone() for k, v in base_model.state_dict().items()}
        init_opts = [copy.deepcopy(opt.state_dict()) for opt in optimizers]
        model.train()
        for i in range(hp.warmup_steps):
            zero_grad_all()
            train_step()
            for opt in optimizers:
                opt.step()
            zero_grad_all()
            if hp.warmup_steps <= 20 or (i + 1) % 10 == 0 or i + 1 == hp.warmup_steps:
                log0(f"warmup_step:{i + 1}/{hp.warmup_steps}")
        base_model.load_state_dict(init_model, strict=True)
        for opt, state in zip(optimizers, init_opts):
            opt.load_state_dict(state)
        zero_grad_all()
        train_loader = DistributedTokenLoader(hp.train_files, rank, world_size, device)

    max_wallclock_ms = 1000.0 * hp.max_wallclock_seconds if hp.max_wallclock_seconds > 0 else None
    if max_wallclock_ms is not None and hp.quant_method == "gptq" and hp.gptq_calib_source == "train":
        max_wallclock_ms -= 1000.0 * hp.gptq_reserve_seconds  # train-data Hessians must fit in the budget
        log0(f"gptq:reserving {hp.gptq_reserve_seconds:g}s, effective={max_wallclock_ms:.0f}ms")
    training_time_ms = 0.0
    stop_after_step: int | None = None
    sync(device)
    t0 = time.perf_counter()
    step = 0
    while True:
        last_step = step == hp.iterations or (stop_after_step is not None and step >= stop_after_step)
        if last_step or (hp.val_loss_every > 0 and step % hp.val_loss_every == 0):
            sync(device)
            training_time_ms += 1000.0 * (time.perf_counter() - t0)
            res = validate()
            log0(
                f"step:{step}/{hp.iterations} val_loss:{res.val_loss:.4f} val_bpb:{res.val_bpb:.4f} "
                f"train_time:{training_time_ms:.0f}ms step_avg:{training_time_ms / max(step, 1):.2f}ms"
            )
            sync(device)
            t0 = time.perf_counter()
        if last_step:
            if stop_after_step is not None and step < hp.iterations:
                log0(f"stopping_early: wallclock_cap train_time:{training_time_ms:.0f}ms step:{step}/{hp.iterations}")
            break

        scale = lr_multiplier(step, training_time_ms + 1000.0 * (time.perf_counter() - t0), hp)
        zero_grad_all()
        train_loss = train_step()
        for group in muon.param_groups:
            group["momentum"] = muon_momentum_at(step, hp)
        for opt in optimizers:
            for group in opt.param_groups:
                group["lr"] = group["base_lr"] * scale
        if hp.grad_clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(base_model.parameters(), hp.grad_clip_norm)
        for opt in optimizers:
            opt.step()
        zero_grad_all()

        step += 1
        approx_ms = training_time_ms + 1000.0 * (time.perf_counter() - t0)
        if hp.train_log_every > 0 and (step <= 10 or step % hp.train_log_every == 0 or stop_after_step is not None):
            log0(
                f"step:{step}/{hp.iterations} train_loss:{train_loss.item():.4f} "
                f"train_time:{approx_ms:.0f}ms step_avg:{approx_ms / step:.2f}ms"
            )
        reached_cap = max_wallclock_ms is not None and approx_ms >= max_wallclock_ms
        if distributed and max_wallclock_ms is not None:
            flag = torch.tensor(int(reached_cap), device=device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            reached_cap = bool(flag.item())
        if stop_after_step is None and reached_cap:
            stop_after_step = step

    if device.type == "cuda":
        log0(
            f"peak memory allocated: {torch.cuda.max_memory_allocated() // 1024 // 1024} MiB "
            f"reserved: {torch.cuda.max_memory_reserved() // 1024 // 1024} MiB"
        )
    t_cal = time.perf_counter()
    hessians = gptq_calibration(hp, base_model, device) if master else None
    if hessians is not None:
        log0(f"GPTQ:collected {len(hessians)} Hessians in {time.perf_counter() - t_cal:.1f}s")
    serialize_and_score(hp, base_model, code, master, distributed, device, val_tokens, luts, token_bytes, val_batch_seqs, log0, hessians)
    if distributed:
        dist.barrier()  # gloo aborts a rank that tears down while its peer is still in a collective
        dist.destroy_process_group()
        # Even after a clean destroy, gloo's threads can be torn down in any order during interpreter
        # finalisation, and a rank then dies of SIGABRT ("terminate called without an active
        # exception") after its results are written: a re-run reported as crashed at random on a
        # busy host. Everything is written and closed by now, so leave without finalisation.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def gptq_calibration(hp, base_model, device):
    """GPTQ Hessians from training (or self-generated) text, never validation; part of training time."""
    if hp.quant_method != "gptq":
        return None
    if hp.gptq_calib_source == "selfgen":
        batches = iter(generate_calibration(base_model, 8 * hp.gptq_calib_batches, hp.train_seq_len, seed=hp.seed).split(8))
    else:
        calib = DistributedTokenLoader(hp.train_files, 0, 1, device)
        batches = (calib.next_batch(hp.train_batch_tokens // 8, hp.train_seq_len, 1)[0] for _ in range(hp.gptq_calib_batches))
    return {k: v.cpu() for k, v in collect_hessians(base_model, batches).items()}


def serialize_and_score(hp, base_model, code, master, distributed, device, val_tokens, luts, token_bytes, val_batch_seqs, log0, hessians) -> None:
    """Write final_model.pt and the quantised artifact (rank 0), reload it everywhere, score it."""
    tag = f"int{hp.quant_bits}+{hp.compressor}"
    label = f"final_int{hp.quant_bits}_{hp.compressor}"
    artifact = f"final_model.int{hp.quant_bits}.ptz"
    code_bytes = len(code.encode("utf-8"))
    if master:
        torch.save(base_model.state_dict(), "final_model.pt")
        model_bytes = os.path.getsize("final_model.pt")
        log0(f"Serialized model: {model_bytes} bytes")
        log0(f"Code size: {code_bytes} bytes")
        log0(f"Total submission size: {model_bytes + code_bytes} bytes")
        state = {k: v.detach().cpu() for k, v in base_model.state_dict().items()}
        obj, stats = quantize_state_dict(state, hp.quant_bits, hp.keep_fp32_patterns, hessians)
        blob, raw_bytes = serialize_quantized(obj, hp.compressor)
        with open(artifact, "wb") as f:
            f.write(blob)
        file_bytes = os.path.getsize(artifact)
        ratio = stats["baseline_tensor_bytes"] / max(stats["int8_payload_bytes"], 1)
        log0(
            f"Serialized model {tag}: {file_bytes} bytes "
            f"(payload:{stats['int8_payload_bytes']} raw_torch:{raw_bytes} payload_ratio:{ratio:.2f}x)"
        )
        log0(f"Total submission size {tag}: {file_bytes + code_bytes} bytes")
    if distributed:
        dist.barrier()
    restored = dequantize_state_dict(load_quantized(artifact, hp.compressor))
    base_model.load_state_dict(restored, strict=True)
    sync(device)
    t = time.perf_counter()
    res = eval_full(base_model, val_tokens, hp.train_seq_len, luts, val_batch_seqs, device, token_bytes)
    sync(device)
    log0(f"{label}_roundtrip val_loss:{res.val_loss:.4f} val_bpb:{res.val_bpb:.4f} eval_time:{1000.0 * (time.perf_counter() - t):.0f}ms")
    log0(f"{label}_roundtrip_exact val_loss:{res.val_loss:.8f} val_bpb:{res.val_bpb:.8f}")
    if hp.eval_stride > 0:
        t = time.perf_counter()
        res = eval_sliding(base_model, val_tokens, hp.train_seq_len, hp.eval_stride, luts, hp.ttt_batch_seqs, device, token_bytes)
        sync(device)
        log0(
            f"{label}_sliding_window val_loss:{res.val_loss:.4f} val_bpb:{res.val_bpb:.4f} "
            f"stride:{hp.eval_stride} eval_time:{1000.0 * (time.perf_counter() - t):.0f}ms"
        )
        log0(f"{label}_sliding_window_exact val_loss:{res.val_loss:.8f} val_bpb:{res.val_bpb:.8f}")
    if hp.ttt_enabled:
        cfg = TTTConfig(hp.ttt_chunk_tokens, hp.ttt_epochs, hp.ttt_lr, hp.ttt_momentum, hp.ttt_batch_seqs, hp.ttt_grad_clip)
        stride = hp.eval_stride if hp.eval_stride > 0 else hp.train_seq_len
        t = time.perf_counter()
        res = eval_ttt_score_first(base_model, val_tokens, hp.train_seq_len, stride, luts, cfg, hp.ttt_batch_seqs, device, token_bytes)
        sync(device)
        log0(f"legal_ttt val_loss:{res.val_loss:.4f} val_bpb:{res.val_bpb:.4f} eval_time:{1000.0 * (time.perf_counter() - t):.0f}ms")
        log0(f"legal_ttt_exact val_loss:{res.val_loss:.8f} val_bpb:{res.val_bpb:.8f}")


if __name__ == "__main__":
    main()
