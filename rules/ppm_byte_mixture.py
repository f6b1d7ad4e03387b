"""R-PPM-BYTE-MIXTURE: byte-level PPM mixtures do not score a distribution over the token alphabet.

The #1872 cluster spreads each token's model log-probability evenly over its bytes
(`lp / n_bytes`, `np.repeat`, `p ** (1/n)`), mixes those per-byte numbers with a byte-level PPM-D
model, and reports the mixture's bits per byte. The spread values are not a distribution over
bytes given the prefix, and the mixture is not a distribution over tokens, so C2 fails
(cocohearts excluded these rows as "PPM-D/byte-mixture C2", #1902). Gates that read the realized
byte's PPM confidence also break C1 (#1785).
"""

from __future__ import annotations

from collections.abc import Iterable

from audit.analysis.api import ppm_byte_mixtures
from audit.context import AuditContext
from audit.findings import Evidence, Finding, Severity
from audit.rule import Invalid, Rule, RuleDoc, Valid

_PPM = '''
import math
import numpy as np


def ppm_mixture_bpb(tok_logp, tok_bytes, lam=0.5, order=3):
    per_tok_len = np.array([len(b) for b in tok_bytes])
    stream = b"".join(tok_bytes)
    nn_byte_lp = np.repeat(tok_logp / per_tok_len, per_tok_len)
    tables = [dict() for _ in range(order + 1)]
    ppm_lp = np.zeros(len(stream))
    hist = b""
    for i, byte in enumerate(stream):
        ctx = tables[min(len(hist), order)].get(hist[-order:], {})
        total = sum(ctx.values()) + 1
        ppm_lp[i] = math.log((ctx.get(byte, 0) + 1 / 256) / total)
        ctx[byte] = ctx.get(byte, 0) + 1
        tables[min(len(hist), order)][hist[-order:]] = ctx
        hist = (hist + bytes([byte]))[-order:]
    mixed = lam * np.exp(nn_byte_lp) + (1 - lam) * np.exp(ppm_lp)
    return float(-np.log2(mixed).sum() / len(stream))


def final_eval(tok_logp, tok_bytes):
    val_bpb = ppm_mixture_bpb(tok_logp, tok_bytes)
    print(f"final_int8_zlib_roundtrip_exact val_bpb:{val_bpb:.8f}")
'''

_TOKEN_MIX = '''
import torch
import torch.nn.functional as F


def eval_mixture(logits, cache_probs, y, alpha=0.2):
    p = (1 - alpha) * F.softmax(logits, dim=-1) + alpha * cache_probs
    nll = -torch.log(p.gather(-1, y[:, None])).squeeze(-1)
    n_bytes = torch.ones_like(nll) * 3.0
    return nll.sum() / n_bytes.sum()
'''

_PPM_REPORT_ONLY = '''
def describe():
    return "we tried a byte-level PPM mixture; it is not used for the score"
'''


class PpmByteMixture(Rule):
    ID = "R-PPM-BYTE-MIXTURE"
    TITLE = "Byte-level PPM mixture with token scores spread over bytes (not a token distribution)"
    SEVERITY = Severity.ERROR
    KIND = "static"
    SOURCE = (
        "RULES.md E R-PPM-BYTE-MIXTURE and R-EVAL-C2-NORMALIZED: https://github.com/openai/parameter-golf/issues/1872 ; "
        "https://github.com/openai/parameter-golf/pull/1902 ; https://github.com/openai/parameter-golf/pull/1905"
    )
    DOC = RuleDoc(
        why="Mixing a byte-level PPM-D model with per-byte \"spread\" token probabilities does not "
            "yield a valid distribution over the official token alphabet → fails C2; such rows "
            "are excluded. Additional defects: target-conditioned gate (#1785, "
            "self-acknowledged), subset-only coverage.",
        ruling="RULING (cocohearts #1902 excludes \"PPM-D/byte-mixture C2\"); issue #1872 framing; "
               "report PR #1905.",
        date="RULES.md gives no date for this ruling (the exclusion is in cocohearts' leaderboard"
             " update #1902)",
        sources=(
            "https://github.com/openai/parameter-golf/issues/1872",
            "https://github.com/openai/parameter-golf/pull/1902",
            "https://github.com/openai/parameter-golf/pull/1905",
        ),
    )
    VALID = [
        Valid(_TOKEN_MIX, "token-level mixture of full distributions, bytes only in the denominator"),
        Valid(_PPM_REPORT_ONLY, "mentions PPM but has no byte mixture"),
    ]
    INVALID = [Invalid(_PPM, "NN log-prob spread over bytes and mixed with byte PPM", line=8)]

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        for mix in ppm_byte_mixtures(ctx):
            unit, line, what = mix.unit, mix.line, mix.what
            tag = " [decoded wrapper text]" if unit.decoded_from else ""
            ev = [Evidence(f"byte-level PPM mixture `{mix.name}`{tag}", unit.path, mix.def_line,
                           unit.parsed.line_text(mix.def_line)[:200] or None),
                  Evidence(what + tag, unit.path, line, unit.parsed.line_text(line)[:200] or None)]
            yield self.finding(
                f"R-PPM-BYTE-MIXTURE / C2: `{mix.name}` in {unit.path} spreads each token's model score "
                "over its bytes and mixes it with a byte-level PPM model. The per-byte values are not a "
                "distribution over the next byte, and the mixture is not a distribution over the token "
                "alphabet, so its bits per byte are not a valid score (maintainers excluded these rows "
                "as 'PPM-D/byte-mixture C2'). Score a normalised distribution over tokens instead (e.g. "
                "a token-level mixture of full distributions).",
                path=unit.path, line=line, evidence=ev, key=f"ppm:{mix.name}",
            )
