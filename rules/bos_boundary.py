"""R-BOS-BOUNDARY: previous-token mixing must not cross document boundaries.

Documents are packed into one stream, each starting with BOS. A SmearGate-style blend of the
previous position into the current one carries the last token of document N into the BOS
position of document N+1 unless positions whose input is BOS are masked (cocohearts' audit of
#1797; fixed in #1851/#1855 with a `not_bos` mask in every forward used for scoring and TTT).
Integer hash embeddings over (t[i-1], t[i]) are not this pattern and are not reported.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable

from audit.analysis.eval_code import code_units
from audit.analysis.ngram import Step
from audit.analysis.targets import Function, call_name, names_in, target_flow, walk_nodes
from audit.context import AuditContext
from audit.enforcement import enforce
from audit.findings import Finding, Severity
from audit.rule import Invalid, Rule, RuleDoc, Valid

# cocohearts' audit of #1797 (late April 2026) made the mask a requirement for later rows; folders
# merged before it were not re-judged: audit/enforcement.py lowers the error to a warning for them.

MASK_NAME = re.compile(r"(bos|mask|boundar|doc|reset|first|segment|seq_start|cu_seqlens)", re.I)

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


def _is_head_slice(node: ast.AST) -> bool:
    """`X[:, :-1]` / `X[..., :-1, :]`: every position but the last, along a non-leading axis."""
    if not isinstance(node, ast.Subscript) or not isinstance(node.slice, ast.Tuple):
        return False
    for elt in node.slice.elts[1:]:
        if isinstance(elt, ast.Slice) and elt.lower is None and isinstance(elt.upper, ast.UnaryOp) \
                and isinstance(elt.upper.op, ast.USub) and isinstance(elt.upper.operand, ast.Constant) \
                and elt.upper.operand.value == 1:
            return True
    return False


def _shift_sites(expr: ast.AST) -> list[ast.AST]:
    out = []
    for n in walk_nodes(expr):
        if _is_head_slice(n):
            out.append(n)
        elif isinstance(n, ast.Call) and call_name(n) == "roll":
            shifts = n.args[1] if len(n.args) > 1 else next((k.value for k in n.keywords if k.arg == "shifts"), None)
            if isinstance(shifts, ast.Constant) and shifts.value == 1:
                out.append(n)
    return out


def _has_hash(expr: ast.AST) -> bool:
    return any(isinstance(n, ast.BinOp) and isinstance(n.op, (ast.BitXor, ast.Mod, ast.BitAnd, ast.FloorDiv))
               or (isinstance(n, ast.Call) and call_name(n) in ("bitwise_xor", "remainder", "embed"))
               for n in walk_nodes(expr))


def _masked(expr: ast.AST, mask_vars: set[str]) -> bool:
    return any(n in mask_vars or MASK_NAME.search(n.split(".")[-1]) for n in names_in(expr))


def _mask_vars(fn: Function) -> set[str]:
    """Names computed from BOS/document-boundary facts (`keep = input_ids != bos_id`)."""
    out: set[str] = set()
    for _ in range(3):
        for a in fn.assigns:
            if _masked(a.value, out):
                out.update(a.names)
    return out


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
        units = [u for u in code_units(ctx) if u.parsed.tree is not None]
        flow = target_flow(ctx, units)
        for fn in flow.functions:
            for steps in _unmasked_mixes(fn):
                mix = steps[-1]
                yield self.finding(
                    f"R-BOS-BOUNDARY: `{fn.qualname}` blends the previous position's hidden state into the "
                    "current one with no mask at document boundaries. In a packed stream the first (BOS) "
                    "position of a document then carries information from the end of the previous "
                    "document. Zero the previous-token term wherever the current input token is BOS "
                    "(e.g. multiply by `(input_ids != BOS_ID)`) in every forward used for scoring and TTT. "
                    "(Disputed in issue #1988, but no maintainer reversed the ruling; audit/enforcement.py dates "
                    "it to the #1797 audit.)",
                    path=fn.path, line=mix.line, evidence=[s.evidence() for s in steps],
                    key=f"{fn.qualname}:smear",
                )


def _unmasked_mixes(fn: Function) -> list[list[Step]]:
    decoded = fn.unit.decoded_from is not None

    def step(line: int, label: str) -> Step:
        return Step(fn.path, line, label, fn.text(line), decoded)

    masks = _mask_vars(fn)
    prev_vars: dict[str, tuple[int, bool]] = {}  # name -> (line, masked at definition)
    for a in fn.assigns:
        if isinstance(a.node, (ast.For, ast.AsyncFor)):
            continue
        v = a.value
        if _shift_sites(v) and not _has_hash(v) and not _is_head_slice(v):
            for name in a.names:
                prev_vars[name] = (a.line, _masked(v, masks))
    found: list[list[Step]] = []
    exprs = [(a.value, a.line) for a in fn.assigns if not isinstance(a.node, (ast.For, ast.AsyncFor))]
    exprs += [(r.value, r.lineno) for r in fn.returns if r.value is not None]
    for expr, line in exprs:
        if _has_hash(expr):
            continue
        for n in walk_nodes(expr):
            if not (isinstance(n, ast.BinOp) and isinstance(n.op, (ast.Add, ast.Sub))) and \
                    not (isinstance(n, ast.Call) and call_name(n) == "lerp"):
                continue
            operands = [n.left, n.right] if isinstance(n, ast.BinOp) else list(n.args[:2])
            if len(operands) < 2:
                continue
            prev_side = next((o for o in operands if _shift_sites(o)
                              or names_in(o) & prev_vars.keys()), None)
            if prev_side is None:
                continue
            other = operands[1] if prev_side is operands[0] else operands[0]
            if _shift_sites(other) and not (names_in(prev_side) & prev_vars.keys()):
                continue  # both sides shifted: a difference of shifted tensors, not a blend
            prev_names = names_in(prev_side) & prev_vars.keys()
            if not prev_names and not _shift_sites(prev_side):
                continue
            if _masked(n, masks) or any(prev_vars[p][1] for p in prev_names):
                continue
            # Blends only: the previous term is scaled by a gate (a product), as in SmearGate.
            if not any(isinstance(x, ast.BinOp) and isinstance(x.op, ast.Mult) for x in walk_nodes(n)) \
                    and not (isinstance(n, ast.Call) and call_name(n) == "lerp"):
                continue
            steps = [step(prev_vars[p][0], f"`{p}` is the hidden state shifted by one position")
                     for p in sorted(prev_names)]
            steps.append(step(line, "previous position blended into the current one, no BOS mask"))
            found.append(steps)
            return found  # one finding per function: the first unmasked blend
    return found
