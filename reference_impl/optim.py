"""Muon for the block matrices, Adam for embeddings and scalars; the baseline's LR schedule.

Muon replaces each matrix update by the nearest (semi-)orthogonal matrix, computed with a few
Newton-Schulz iterations; it trains the square-ish block matrices much faster than Adam, while
embeddings and per-channel scales keep Adam. In a process group each rank orthogonalises a
round-robin share of the matrices and one all-reduce shares the results.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor

NS_COEFFS = (3.4445, -4.7750, 2.0315)


def zeropower_via_newtonschulz5(g: Tensor, steps: int = 5, eps: float = 1e-7) -> Tensor:
    """Approximately orthogonalise g (quintic Newton-Schulz, bf16 on GPU, fp32 on CPU)."""
    a, b, c = NS_COEFFS
    dtype = torch.bfloat16 if g.is_cuda else torch.float32
    x = g.to(dtype)
    x = x / (x.norm() + eps)
    transposed = x.size(0) > x.size(1)
    if transposed:
        x = x.T
    for _ in range(steps):
        m = x @ x.T
        x = a * x + (b * m + c * m @ m) @ x
    return x.T if transposed else x


class Muon(torch.optim.Optimizer):
    """Nesterov momentum + Newton-Schulz orthogonalised update, scaled by sqrt(max(1, rows/cols))."""

    def __init__(self, params, lr: float, momentum: float, backend_steps: int, nesterov: bool = True):
        super().__init__(params, dict(lr=lr, momentum=momentum, backend_steps=backend_steps, nesterov=nesterov))
        self.orthogonalize = zeropower_via_newtonschulz5  # train.py swaps in a torch.compile'd copy on CUDA

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        distributed = dist.is_available() and dist.is_initialized()
        world = dist.get_world_size() if distributed else 1
        rank = dist.get_rank() if distributed else 0
        for group in self.param_groups:
            params = group["params"]
            if not params:
                continue
            total = sum(p.numel() for p in params)
            ref = params[0]
            flat = torch.zeros(total, device=ref.device, dtype=torch.bfloat16 if ref.is_cuda else torch.float32)
            offset = 0
            for i, p in enumerate(params):
                if i % world == rank and p.grad is not None:
                    g = p.grad
                    state = self.state[p]
                    if "momentum_buffer" not in state:
                        state["momentum_buffer"] = torch.zeros_like(g)
                    buf = state["momentum_buffer"]
                    buf.mul_(group["momentum"]).add_(g)
                    if group["nesterov"]:
                        g = g.add(buf, alpha=group["momentum"])
                    else:
                        g = buf
                    g = self.orthogonalize(g, steps=group["backend_steps"])
                    g = g * max(1.0, g.size(0) / g.size(1)) ** 0.5
                    flat[offset : offset + p.numel()] = g.reshape(-1).to(flat.dtype)
                offset += p.numel()
            if distributed:
                dist.all_reduce(flat, op=dist.ReduceOp.SUM)
            offset = 0
            for p in params:
                p.add_(flat[offset : offset + p.numel()].view_as(p).to(p.dtype), alpha=-group["lr"])
                offset += p.numel()
        return loss


def split_params(model, control_patterns: tuple[str, ...]) -> dict[str, list]:
    """Which optimizer owns which parameter (the baseline's split, plus BigramHash)."""
    groups: dict[str, list] = {"embed": [model.tok_emb.weight], "head": [], "matrix": [], "scalar": []}
    if getattr(model, "lm_head", None) is not None:
        groups["head"].append(model.lm_head.weight)
    bigram = getattr(model, "bigram", None)
    if bigram is not None:
        groups["embed"].append(bigram.embed.weight)
        if bigram.proj is not None:
            groups["matrix"].append(bigram.proj.weight)
        groups["scalar"].append(bigram.scale)
    for name, p in model.blocks.named_parameters():
        is_control = any(pat in name for pat in control_patterns)
        groups["matrix" if p.ndim == 2 and not is_control else "scalar"].append(p)
    if model.skip_weights.numel() > 0:
        groups["scalar"].append(model.skip_weights)
    return groups


def build_optimizers(model, hp) -> tuple[list[torch.optim.Optimizer], Muon]:
    """Adam (token embedding / head / scalars) + Muon (matrices); each group remembers base_lr."""
    g = split_params(model, hp.control_patterns)
    fused = bool(next(model.parameters()).is_cuda)
    adam_kw = dict(betas=(hp.beta1, hp.beta2), eps=hp.adam_eps, fused=fused)
    embed_lr = hp.tied_embed_lr if hp.tie_embeddings else hp.embed_lr
    opts: list[torch.optim.Optimizer] = [
        torch.optim.Adam([{"params": g["embed"], "lr": embed_lr, "base_lr": embed_lr}], **adam_kw)
    ]
    muon = Muon(g["matrix"], lr=hp.matrix_lr, momentum=hp.muon_momentum, backend_steps=hp.muon_backend_steps)
    for group in muon.param_groups:
        group["base_lr"] = hp.matrix_lr
    opts.append(muon)
    opts.append(torch.optim.Adam([{"params": g["scalar"], "lr": hp.scalar_lr, "base_lr": hp.scalar_lr}], **adam_kw))
    if g["head"]:
        opts.append(torch.optim.Adam([{"params": g["head"], "lr": hp.head_lr, "base_lr": hp.head_lr}], **adam_kw))
    return opts, muon


def muon_momentum_at(step: int, hp) -> float:
    """Momentum warm-up: linear from MUON_MOMENTUM_WARMUP_START to MUON_MOMENTUM."""
    frac = min(step / hp.muon_momentum_warmup_steps, 1.0) if hp.muon_momentum_warmup_steps > 0 else 1.0
    return (1 - frac) * hp.muon_momentum_warmup_start + frac * hp.muon_momentum


def lr_multiplier(step: int, elapsed_ms: float, hp) -> float:
    """Warmdown to zero: over the last WARMDOWN_ITERS steps, or (with a cap) over the projected end time."""
    if hp.warmdown_iters <= 0:
        return 1.0
    cap_ms = 1000.0 * hp.max_wallclock_seconds if hp.max_wallclock_seconds > 0 else None
    if cap_ms is None:
        start = max(hp.iterations - hp.warmdown_iters, 0)
        if start <= step < hp.iterations:
            return max((hp.iterations - step) / max(hp.warmdown_iters, 1), 0.0)
        return 1.0
    step_ms = elapsed_ms / max(step, 1)
    warmdown_ms = hp.warmdown_iters * step_ms
    remaining_ms = max(cap_ms - elapsed_ms, 0.0)
    return remaining_ms / max(warmdown_ms, 1e-9) if remaining_ms <= warmdown_ms else 1.0
