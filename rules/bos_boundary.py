"""R-BOS-BOUNDARY: previous-token mixing must not cross document boundaries.

Documents are packed into one stream, each starting with BOS. A SmearGate-style blend of the
previous position into the current one carries the last token of document N into the BOS
position of document N+1 unless positions whose input is BOS are masked (cocohearts' audit of
#1797; fixed in #1851/#1855 with a `not_bos` mask in every forward used for scoring and TTT).
Integer hash embeddings over (t[i-1], t[i]) are not this pattern and are not reported.
"""

from __future__ import annotations

from collections.abc import Iterable

from audit.analysis.api import unmasked_prev_token_mixes
from audit.context import AuditContext
from audit.enforcement import enforce
from audit.findings import Finding, Severity
from audit.rule import Invalid, Rule, RuleDoc, Valid

# cocohearts' audit of #1797 (late April 2026) made the mask a requirement for later rows; folders
# merged before it were not re-judged: audit/enforcement.py lowers the error to a warning for them.

_SMEAR = '''
import torch


class SmearGate(torch.nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.gate = torch.nn.Parameter(torch.zeros(dim))

    def forward(self, x):
        g = torch.sigmoid(self.gate)[None, None, :]
        x_prev = torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], dim=1)
        return (1 - g) * x + g * x_prev
'''

_SMEAR_INLINE = '''
import torch

BOS_ID = 1


def smear(x, g, input_ids):
    return torch.cat([x[:, :1], x[:, 1:] + g * x[:, :-1]], dim=1)
'''

_SMEAR_FIXED = '''
import torch

BOS_ID = 1


def smear(x, g, input_ids):
    not_bos = (input_ids[:, 1:] != BOS_ID).to(x.dtype).unsqueeze(-1)
    return torch.cat([x[:, :1], x[:, 1:] + g * x[:, :-1] * not_bos], dim=1)
'''

_SMEAR_FIXED_PREV = '''
import torch


class SmearGate(torch.nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.gate = torch.nn.Parameter(torch.zeros(dim))

    def forward(self, x, input_ids, bos_id=1):
        g = torch.sigmoid(self.gate)[None, None, :]
        keep = (input_ids != bos_id).unsqueeze(-1).to(x.dtype)
        x_prev = torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], dim=1) * keep
        return (1 - g) * x + g * x_prev
'''

_BIGRAM = '''
import torch


def bigram_hash(t, mod):
    out = torch.empty_like(t)
    out[..., 0] = mod
    out[..., 1:] = torch.bitwise_xor(36313 * t[..., 1:], 27191 * t[..., :-1]) % mod
    return out
'''


class BosBoundary(Rule):
    ID = "R-BOS-BOUNDARY"
    TITLE = "Previous-token mixing without a mask at document boundaries (BOS)"
    SEVERITY = Severity.ERROR
    KIND = "static"
    SOURCE = (
        "RULES.md E R-BOS-BOUNDARY: https://github.com/openai/parameter-golf/pull/1797#issuecomment-4322526174 ; "
        "https://github.com/openai/parameter-golf/pull/1851 ; https://github.com/openai/parameter-golf/pull/1855 ; "
        "https://github.com/openai/parameter-golf/issues/1988 (dispute)"
    )
    DOC = RuleDoc(
        why="Token-mixing shortcuts (SmearGate previous-token blend, and similar 1-position "
            "mechanisms) must not carry the last token of document N into the BOS position of "
            "document N+1 when documents are packed; mask positions whose input is BOS. Required "
            "for leaderboard rows after cocohearts' audit of #1797.",
        ruling="RULING (cocohearts audit on #1797, comment 4322526174: would not merge/rebank "
               "#1797 as-is; fix applied in #1851/#1855 via a `not_bos` mask in both eval and TTT"
               " forward paths; #1902 added the \"BOS-fixed\" rows).",
        date="RULES.md gives no date for this ruling; audit/enforcement.py dates it to the #1902 "
             "leaderboard update that enforced the #1797 audit (merged 2026-04-29): folders merged by "
             "then get a warning, later ones an error; non-record folders (not leaderboard rows) a warning",
        sources=(
            "https://github.com/openai/parameter-golf/pull/1797#issuecomment-4322526174",
            "https://github.com/openai/parameter-golf/pull/1851",
            "https://github.com/openai/parameter-golf/pull/1855",
            "https://github.com/openai/parameter-golf/issues/1988",
        ),
    )
    VALID = [
        Valid(_SMEAR_FIXED, "inline smear with a not_bos mask"),
        Valid(_SMEAR_FIXED_PREV, "prev-token tensor zeroed at BOS before the blend"),
        Valid(_BIGRAM, "integer bigram hash over input ids is not a hidden-state blend"),
    ]
    INVALID = [
        Invalid(_SMEAR, "SmearGate module with no BOS mask", line=12),
        Invalid(_SMEAR_INLINE, "inline smear that ignores input_ids", line=7),
        Invalid(_SMEAR, "the same module in a folder merged before the ruling took effect: a warning",
                severity=Severity.WARNING, options={"as_of": "2026-04-20"}, line=12),
    ]

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        yield from enforce(ctx, self._check(ctx))

    def _check(self, ctx: AuditContext) -> Iterable[Finding]:
        for mix in unmasked_prev_token_mixes(ctx):
            yield self.finding(
                f"R-BOS-BOUNDARY: `{mix.qualname}` blends the previous position's hidden state into the "
                "current one with no mask at document boundaries. In a packed stream the first (BOS) "
                "position of a document then carries information from the end of the previous "
                "document. Zero the previous-token term wherever the current input token is BOS "
                "(e.g. multiply by `(input_ids != BOS_ID)`) in every forward used for scoring and TTT. "
                "(Disputed in issue #1988, but no maintainer reversed the ruling; audit/enforcement.py dates "
                "it to the #1797 audit.)",
                path=mix.path, line=mix.line, evidence=list(mix.steps),
                key=f"{mix.qualname}:smear",
            )
