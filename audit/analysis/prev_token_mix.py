"""Previous-token mixing without a document-boundary mask (the question behind R-BOS-BOUNDARY).

A SmearGate-style blend adds a gated copy of the hidden state shifted by one position
(`x[:, :-1]`, `roll(x, 1)`) to the current one. Unless the shifted term is multiplied by a mask
computed from BOS / document facts, the first position of a document sees the end of the previous
one. Integer hash embeddings over (t[i-1], t[i]) are not blends and are not reported.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from audit.analysis.code_functions import Function
from audit.analysis.eval_code import code_units
from audit.analysis.syntax import any_below, call_name, lines_where, names_in, spans_a_line, walk_nodes
from audit.analysis.targets import target_flow
from audit.findings import Evidence

MASK_NAME = re.compile(r"(bos|mask|boundar|doc|reset|first|segment|seq_start|cu_seqlens)", re.I)


@dataclass(frozen=True)
class PrevTokenMix:
    """The first unmasked blend of one function: where the shifted state is made and blended."""

    qualname: str
    path: str
    line: int
    steps: tuple[Evidence, ...]


def unmasked_prev_token_mixes(ctx) -> list[PrevTokenMix]:  # type: ignore[no-untyped-def]
    """Every function that blends the previous position into the current one with no BOS mask."""
    def build() -> list[PrevTokenMix]:
        units = [u for u in code_units(ctx) if u.parsed.tree is not None]
        out = []
        for fn in target_flow(ctx, units).functions:
            for steps in _unmasked_mixes(fn):
                out.append(PrevTokenMix(fn.qualname, fn.path, steps[-1].line or 0, tuple(steps)))
        return out
    return ctx.memo("patterns.prev_token_mixes", build)


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


def _shifted(expr: ast.AST) -> bool:
    """A head slice or `roll(x, 1)` anywhere in the expression (memoised on the nodes: asked of
    every assignment, and again of the operands of every sum in them)."""
    return any_below(expr, "_pga_shift", _shift_here)


def _shift_here(n: ast.AST) -> bool:
    if isinstance(n, ast.Call) and call_name(n) == "roll":
        shifts = n.args[1] if len(n.args) > 1 else next((k.value for k in n.keywords if k.arg == "shifts"), None)
        return isinstance(shifts, ast.Constant) and shifts.value == 1
    return _is_head_slice(n)


def _has_hash(expr: ast.AST) -> bool:
    return any_below(expr, "_pga_mixhash", _mix_hash_here)


def _mix_hash_here(n: ast.AST) -> bool:
    return (isinstance(n, ast.BinOp) and isinstance(n.op, (ast.BitXor, ast.Mod, ast.BitAnd, ast.FloorDiv))
            or (isinstance(n, ast.Call) and call_name(n) in ("bitwise_xor", "remainder", "embed")))


def _may_shift(fn: Function) -> bool:
    """Whether a shift (`_shifted`) may be in the function: one lies within its lines. Without
    one nothing in it blends a previous position, and its assignments are not walked."""
    tree = fn.unit.parsed.tree
    assert tree is not None
    return spans_a_line(fn.node, lines_where(tree, "_pga_shift_lines", _shift_here, ast.Subscript, ast.Call))


def _may_read(expr: ast.AST, prev_vars: dict[str, tuple[int, bool]]) -> bool:
    """Whether any part of `expr` could read a shifted state: a shift in it, or the name of a
    shifted variable anywhere in it (every identifier, lambdas and comprehensions included, so
    no sub-expression reads a variable this misses)."""
    if _shifted(expr):
        return True
    ids = names_in(expr)
    return any(p.rsplit(".", 1)[-1] in ids for p in prev_vars)


def _masked(expr: ast.AST, mask_vars: set[str]) -> bool:
    return any(n in mask_vars or MASK_NAME.search(n.split(".")[-1]) for n in names_in(expr, variables=True))


def _mask_vars(fn: Function) -> set[str]:
    """Names computed from BOS/document-boundary facts (`keep = input_ids != bos_id`)."""
    out: set[str] = set()
    for _ in range(3):
        before = len(out)
        for a in fn.assigns:
            if _masked(a.value, out):
                out.update(a.names)
        if len(out) == before:
            break  # a pass reads only `out`: one that adds nothing ends the propagation
    return out


def _unmasked_mixes(fn: Function) -> list[list[Evidence]]:

    def step(line: int, label: str) -> Evidence:
        return fn.evidence(line, label)

    if not _may_shift(fn):
        return []
    masks = _mask_vars(fn)
    prev_vars: dict[str, tuple[int, bool]] = {}  # name -> (line, masked at definition)
    for a in fn.assigns:
        if isinstance(a.node, (ast.For, ast.AsyncFor)):
            continue
        v = a.value
        if _shifted(v) and not _has_hash(v) and not _is_head_slice(v):
            for name in a.names:
                prev_vars[name] = (a.line, _masked(v, masks))
    found: list[list[Evidence]] = []
    exprs = [(a.value, a.line) for a in fn.assigns if not isinstance(a.node, (ast.For, ast.AsyncFor))]
    exprs += [(r.value, r.lineno) for r in fn.returns if r.value is not None]
    for expr, line in exprs:
        if _has_hash(expr) or not _may_read(expr, prev_vars):
            continue
        for n in walk_nodes(expr):
            if not (isinstance(n, ast.BinOp) and isinstance(n.op, (ast.Add, ast.Sub))) and \
                    not (isinstance(n, ast.Call) and call_name(n) == "lerp"):
                continue
            operands = [n.left, n.right] if isinstance(n, ast.BinOp) else list(n.args[:2])
            if len(operands) < 2:
                continue
            prev_side = next((o for o in operands if _shifted(o)
                              or names_in(o, variables=True) & prev_vars.keys()), None)
            if prev_side is None:
                continue
            other = operands[1] if prev_side is operands[0] else operands[0]
            if _shifted(other) and not (names_in(prev_side, variables=True) & prev_vars.keys()):
                continue  # both sides shifted: a difference of shifted tensors, not a blend
            prev_names = names_in(prev_side, variables=True) & prev_vars.keys()
            if not prev_names and not _shifted(prev_side):
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
