"""Which tokenizer family a run used, and how many validation tokens the full split has for it.

The full validation split is the first 50,000 FineWeb documents; its token count depends only on
the tokenizer (REFERENCE.md 1.1, RULES.md R-DATA-VAL-SPLIT), so a logged `val_tokens` far below
the family's count means a subset was scored. The family is read from what the run logged (vocab
size, tokenizer path, dataset directory), never from the defaults in the embedded source.
"""

from __future__ import annotations

import re

from audit.logs import SeedRun

# Counts seen in accepted logs (after the reference truncation to a multiple of the eval length,
# except the second CaseOps value which is untruncated). sp1024 has an older export too.
FULL_VAL_TOKENS: dict[str, tuple[int, ...]] = {
    "sp1024": (62_021_632, 63_779_840),
    "sp4096": (45_508_608,),
    "sp8192": (40_540_160,),
    "caseops-sp8192": (47_851_520, 47_853_343),
    "byte260": (151_130_112,),
}
# The reference eval drops up to eval_seq_len - 1 tail tokens; eval lengths reach 8192.
TRUNCATION_SLACK = 8_192

_VOCAB_KEYS = ("vocab_size",)
_CASEOPS = re.compile(r"caseops|lossless_caps", re.IGNORECASE)
_BYTE260 = re.compile(r"byte260", re.IGNORECASE)
_TOKENIZER_VOCAB = re.compile(r"fineweb_(\d+)_bpe|fineweb10B_sp(\d+)|_sp(\d+)\b|\bsp(\d+)_", re.IGNORECASE)
_LOGGED_VOCAB = re.compile(r"\bvocab(?:_size)?\s*[:=]\s*(\d+)", re.IGNORECASE)


def log_body(text: str, run: SeedRun) -> str:
    """The log without the embedded source (whose defaults are not what ran)."""
    if run.embedded_source and text.startswith(run.embedded_source[:200]):
        return text[len(run.embedded_source):]
    if run.embedded_source:
        idx = text.find(run.embedded_source[-200:])
        if idx >= 0:
            return text[idx + min(200, len(run.embedded_source)):]
    return text


def family(run: SeedRun, body: str) -> str | None:
    """sp1024 | sp4096 | sp8192 | caseops-sp8192 | byte260 | sp<V> | None when nothing says."""
    vocab: int | None = None
    for k, v in run.hyperparameters.items():
        if k.lower() in _VOCAB_KEYS:
            try:
                vocab = int(float(v))
            except ValueError:
                pass
    head = body[:200_000]
    if vocab is None:
        m = _LOGGED_VOCAB.search(head)
        if m:
            vocab = int(m.group(1))
    if vocab is None:
        m = _TOKENIZER_VOCAB.search(head)
        if m:
            vocab = int(next(g for g in m.groups() if g))
    caseops = bool(_CASEOPS.search(head)) or any(
        _CASEOPS.search(str(v)) for v in run.hyperparameters.values()
    ) or _truthy(run, "caseops_enabled")
    if _BYTE260.search(head) or vocab == 260:
        return "byte260"
    if vocab is None:
        return None
    if caseops and vocab == 8192:
        return "caseops-sp8192"
    return f"sp{vocab}"


def _truthy(run: SeedRun, key: str) -> bool:
    for k, v in run.hyperparameters.items():
        if k.lower() == key:
            return str(v).strip().lower() in {"1", "true", "yes"}
    return False


def matches_full_split(tokens: int, fam: str) -> bool | None:
    """True/False when the family's count is known, None when it is not."""
    counts = FULL_VAL_TOKENS.get(fam)
    if counts is None:
        return None
    return any(abs(tokens - c) <= TRUNCATION_SLACK for c in counts)


def any_known_count(tokens: int) -> str | None:
    for fam, counts in FULL_VAL_TOKENS.items():
        if any(abs(tokens - c) <= TRUNCATION_SLACK for c in counts):
            return fam
    return None
