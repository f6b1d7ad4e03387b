"""What the CPU port's rewrites call (installed as the builtin `_pgolf_cpu` by the driver).

Runs in the sandbox only. Imports torch lazily so that `audit.probes` stays torch-free.
"""

from __future__ import annotations

import contextlib


def no_compile(model=None, *args, **kwargs):
    """torch.compile(m, ...) -> m; torch.compile(mode=...) used as a decorator factory -> identity."""
    if model is None:
        return identity_decorator
    return model


def identity_decorator(fn=None, *args, **kwargs):
    if fn is None or not callable(fn):
        return lambda f: f
    return fn


def autocast(*args, **kwargs):
    """bf16 autocast -> exact float32 (a no-op context; also usable as a decorator)."""
    return contextlib.nullcontext()


def cuda_noop(*args, **kwargs):
    return 0


def cuda_false(*args, **kwargs):
    return False
