"""The vocabulary of the data-flow analysis: which names are validation data, training data,
optimizers, scoring accumulators. Kept in one place so every rule agrees on it.

Patterns are about *roles*, never about particular submissions: the challenge's reference script
calls its tensors `val_tokens`, its shards `fineweb_val_*`, its loader `load_validation_tokens`,
and submissions keep those names (DESIGN.md "The static analyses that matter most").
"""

from __future__ import annotations

import re
from functools import lru_cache

# Labels carried by values in the taint analysis.
VAL = "VAL"  # derived from the validation split
TRAIN = "TRAIN"  # derived from the training split
PARAM = "P:"  # prefix: derived from the enclosing function's parameter of that name

# An identifier (variable, parameter, attribute) that holds validation data.
VAL_NAME = re.compile(
    r"(?:^|_)(?:val|valid|validation)_(?:tokens?|toks?|data|ids|stream|files?|shards?|docs?|"
    r"pattern|glob|np|dataset|loader)(?:$|_)",
    re.IGNORECASE,
)
# A call that loads validation data.
VAL_LOADER = re.compile(r"(?:^|_)load_?val(?:idation)?(?:_|$)|^load_validation", re.IGNORECASE)
# A string literal naming validation shards.
VAL_STRING = re.compile(r"fineweb_val|_val_\d|val_\*|/val\b", re.IGNORECASE)

TRAIN_NAME = re.compile(
    r"(?:^|_)train_(?:tokens?|toks?|files?|shards?|loader|stream|data|pattern|glob)(?:$|_)",
    re.IGNORECASE,
)
TRAIN_STRING = re.compile(r"fineweb_train", re.IGNORECASE)

# Calls whose result is a size or a flag, not data (`val_tokens.numel()` must not taint loop
# indices, or every index-driven tensor downstream would look val-derived).
SIZE_CALLS = frozenset({
    "len", "numel", "size", "dim", "ndimension", "nelement", "range", "isinstance", "hasattr",
    "getattr_static", "id", "type", "bool", "print", "str", "repr", "format", "max_len",
})
SIZE_ATTRS = frozenset({"shape", "device", "dtype", "ndim", "is_cuda", "requires_grad", "grad_fn"})

# Methods that write their argument into the receiver (weak update of the receiver's taint).
MUTATING_METHODS = frozenset({
    "append", "extend", "insert", "update", "copy_", "add_", "index_copy_", "index_add_",
    "scatter_", "scatter_add_", "put_", "masked_scatter_", "set_", "fill_", "push", "add",
})

# Optimizer constructors (`torch.optim.AdamW(...)`, `Muon(...)`, `make_optimizer(...)`).
OPTIMIZER_CTOR = re.compile(r"(?:^|\.)(?:optim\.\w+|\w*(?:Adam\w*|SGD|Muon\w*|Lion|RMSprop|Adagrad|"
                            r"Optimizer)|\w*(?:build|make|create|get)_\w*opt\w*)$")
SCHEDULER_NAME = re.compile(r"sched|lr_|scaler", re.IGNORECASE)

# Functions whose output is written into the artifact or to disk.
SAVE_CALLS = re.compile(r"(?:^|\.)(?:save|save_file|dump|dumps|write|write_bytes|savez\w*|tofile)$")

# Taking a log of a probability (not logging): where a looked-up count becomes a score.
LOGARITHM_FUNCS = frozenset({"log", "log1p", "log2", "log10", "log_"})

# Logging calls: an accumulator printed by one of these is "reported".
LOG_CALLS = re.compile(r"^(?:log\w*|print\w*|\w*log0|info|warning)$", re.IGNORECASE)

# Quantisation calibration (GPTQ Hessians, clip search, activation statistics).
CALIB_NAME = re.compile(r"gptq|hessian|(?:^|_)clip_?(?:search|calib)|calib(?!\w*(?:alpha|temp|mix|gate|ngram|entropy))",
                        re.IGNORECASE)
NOT_QUANT_CALIB = re.compile(r"alpha|temp|mix|gate|ngram|entropy|cache", re.IGNORECASE)
TEMPERATURE_NAME = re.compile(r"temp|calib", re.IGNORECASE)

# Warm-up (torch.compile warm-up): updates here are not adaptation if the state is discarded.
WARMUP_NAME = re.compile(r"warm_?up|compile|precompile|prime|(?:^|_)warm(?:_|$)", re.IGNORECASE)
WARMDOWN_NAME = re.compile(r"warmdown|cooldown", re.IGNORECASE)

# Module-ish receivers whose attributes are never user methods (`torch.cat`, `F.softmax`).
LIBRARY_ROOTS = frozenset({
    "torch", "F", "nn", "np", "numpy", "math", "os", "sys", "dist", "time", "json", "glob",
    "re", "io", "lzma", "zlib", "brotli", "base64", "pickle", "random", "functools", "itertools",
    "collections", "subprocess", "shutil", "pathlib", "Path", "sentencepiece", "spm", "triton",
    "tl", "flash_attn", "copy", "struct", "zstandard", "zstd", "logging", "warnings", "contextlib",
    "inspect", "typing", "dataclasses", "datetime", "uuid", "hashlib", "tempfile", "string",
})
# Method names so common on tensors / modules that resolving them to a user method would be
# guesswork (`x.to(...)`, `model.eval()`); they are treated as library calls.
COMMON_METHODS = frozenset({
    "to", "view", "reshape", "float", "half", "bfloat16", "long", "int", "cuda", "cpu", "eval",
    "train", "forward", "__call__", "sum", "mean", "item", "detach", "clone", "contiguous",
    "zero_grad", "step", "backward", "state_dict", "load_state_dict", "parameters",
    "named_parameters", "modules", "named_modules", "apply", "register_buffer", "append",
    "extend", "update", "items", "keys", "values", "get", "pop", "format", "join", "split",
    "numel", "size", "reset", "__init__", "__enter__", "__exit__", "copy_", "add_", "mul_",
    "requires_grad_", "fill_", "zero_", "unsqueeze", "squeeze", "expand", "permute",
    "transpose", "flatten", "chunk", "split_with_sizes", "gather", "scatter", "index_select",
    "masked_fill", "softmax", "log_softmax", "exp", "log", "max", "min", "argmax", "topk",
})


# Names that *mention* validation data but hold a size, a count or a setting.
NOT_DATA_NAME = re.compile(r"count|len|size|num|every|batch|seq|frac|limit|bytes|budget|steps", re.IGNORECASE)


# The walkers ask about every name they meet, and a script has a few thousand distinct names:
# the answers are cached by name (strings only, so the cache holds no folder's trees).
@lru_cache(maxsize=16_384)
def is_val_name(name: str) -> bool:
    return VAL_NAME.search(name) is not None and NOT_DATA_NAME.search(name) is None


@lru_cache(maxsize=16_384)
def is_train_name(name: str) -> bool:
    return TRAIN_NAME.search(name) is not None and NOT_DATA_NAME.search(name) is None


def is_warmup_name(name: str) -> bool:
    return WARMUP_NAME.search(name) is not None and WARMDOWN_NAME.search(name) is None


# Attributes that hold a file name or pattern (`h.ttt_files = h.val_files if ... else ...`): a
# config object holding one is not itself validation data; reading the attribute is.
PATH_ATTR = re.compile(r"(?:^|_)(?:files?|paths?|pattern|glob|dir|prefix)$")
