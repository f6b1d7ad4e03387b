"""Oracle gates: a choice, per position, between two predictors by how well each scored the
realized token (`torch.minimum(nll_model, nll_cache)`, `where(a < b, ...)`, `if a < b:`, also
when the comparison is held in a name: `m = a.lt(b)`, then `where(m, ...)`, `if m:`, `x[m] = ...`).

A gate may depend on the model's own outputs (its entropy), never on the target. A stable
log-sum-exp (`max(a, b) + log1p(exp(-abs(a - b)))`) is a mixture, not a choice.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from audit.analysis.code_functions import Function
from audit.analysis.names import LOGARITHM_FUNCS
from audit.analysis.syntax import (
    base_of,
    call_name,
    calls_below,
    names_in,
    own_nodes,
    strip_chain,
    walk_nodes,
)
from audit.analysis.targets import TargetFlow
from audit.findings import Evidence


@dataclass
class OracleGate:
    fn: Function
    line: int
    steps: list[Evidence]



_PROB_SOURCE = {"log_softmax", "softmax", "log_probs", "logsumexp"}
_SCORE_CALL = re.compile(r"(log|prob|nll|score|loss)", re.I)


def _gold_sources(flow: TargetFlow, fn: Function, value: ast.AST, probs: set[str],
                  gold_fns: frozenset[str] = frozenset()) -> bool:
    """Does this expression compute a per-position score of the realized token?"""
    for n in walk_nodes(value):
        if isinstance(n, ast.Call):
            cname = call_name(n)
            if cname in gold_fns:
                return True  # a user function that returns such a score, whatever its name
            if cname in ("cross_entropy", "nll_loss"):
                if any(kw.arg == "reduction" and isinstance(kw.value, ast.Constant)
                       and kw.value.value == "none" for kw in n.keywords):
                    return True
            elif cname == "gather" and n.args:
                if any(flow.is_target(fn, x) for x in names_in(n.args[-1], variables=True)):
                    return True
            elif _SCORE_CALL.search(cname) and cname not in LOGARITHM_FUNCS and cname not in _PROB_SOURCE:
                if any(flow.is_target(fn, x) for a in n.args for x in names_in(a, variables=True)):
                    return True
        elif isinstance(n, ast.Subscript) and isinstance(n.ctx, ast.Load):
            if base_of(n.value) in probs and any(flow.is_target(fn, x) for x in names_in(n.slice, variables=True)):
                return True
    return False


def gold_score_functions(flow: TargetFlow) -> frozenset[str]:
    """Names of user functions that return a per-position score of the realized token
    (`def tok_loss(lg, t): return F.cross_entropy(lg, t, reduction="none")`), nested ones too:
    a call of one is a gold score in the caller. Names bound to more than one function with
    different answers are left out."""
    found: set[str] = set()
    for _ in range(3):
        before = len(found)
        for fn in flow.functions:
            if fn.name in found or fn.name == "<module>" or len(flow.by_name.get(fn.name, [])) != 1:
                continue
            probs = _prob_names(fn)
            direct: set[str] = set()
            for a in fn.assigns:  # per-position scores and their slices, not reductions of them
                if not isinstance(a.node, (ast.For, ast.AsyncFor)) and len(a.names) == 1 \
                        and _is_gold_expr(flow, fn, a.value, probs, frozenset(found), direct):
                    direct.add(a.names[0])
            if any(r.value is not None and _is_gold_expr(flow, fn, r.value, probs, frozenset(found), direct)
                   for r in fn.returns):
                found.add(fn.name)
        if len(found) == before:
            break
    return frozenset(found)


def _is_gold_expr(flow: TargetFlow, fn: Function, value: ast.expr, probs: set[str],
                  gold_fns: frozenset[str], direct: set[str]) -> bool:
    """`value` is per-position scores of the realized token, or a slice/negation of them (not a
    sum, mean or any other function of them)."""
    v = strip_chain(value)
    if isinstance(v, ast.UnaryOp) and isinstance(v.op, ast.USub):
        return _is_gold_expr(flow, fn, v.operand, probs, gold_fns, direct)
    if isinstance(v, ast.Name):
        return v.id in direct
    if isinstance(v, ast.Subscript):
        if base_of(v.value) in probs and any(flow.is_target(fn, x) for x in names_in(v.slice, variables=True)):
            return True
        return _is_gold_expr(flow, fn, v.value, probs, gold_fns, direct)
    if isinstance(v, ast.Call):
        cname = call_name(v)
        if cname in gold_fns:
            return True
        if cname in ("cross_entropy", "nll_loss"):
            return any(kw.arg == "reduction" and isinstance(kw.value, ast.Constant) and kw.value.value == "none"
                       for kw in v.keywords)
        if cname == "gather" and v.args:
            return any(flow.is_target(fn, x) for x in names_in(v.args[-1], variables=True))
    return False


def _prob_names(fn: Function) -> set[str]:
    # asked again for every gold-score question about the function: memoised on the nodes
    return {n for a in fn.assigns for n in a.names if not calls_below(a.value).isdisjoint(_PROB_SOURCE)}


def _gold_scores(flow: TargetFlow, fn: Function, gold_fns: frozenset[str] = frozenset()) -> dict[str, frozenset[int]]:
    """Per-position scores of the realized token -> the lines of the predictors they come from."""
    probs = _prob_names(fn)
    gold: dict[str, frozenset[int]] = {}
    for a in fn.assigns:
        if _gold_sources(flow, fn, a.value, probs, gold_fns):
            for name in a.names:
                gold[name] = gold.get(name, frozenset()) | {a.line}
    for _ in range(6):
        grew = False
        for a in fn.assigns:
            if isinstance(a.node, (ast.For, ast.AsyncFor)):
                continue
            roots = frozenset().union(*[gold[n] for n in names_in(a.value, variables=True) if n in gold]) if \
                any(n in gold for n in names_in(a.value, variables=True)) else frozenset()
            if not roots:
                continue
            for name in a.names:
                if not roots <= gold.get(name, frozenset()):
                    gold[name] = gold.get(name, frozenset()) | roots
                    grew = True
        if not grew:
            break
    return gold


def oracle_gates(flow: TargetFlow, fn: Function, gold_fns: frozenset[str] = frozenset()) -> list[OracleGate]:
    gold = _gold_scores(flow, fn, gold_fns)
    if len(gold) < 2:
        return []
    out: list[OracleGate] = []

    def roots(node: ast.AST) -> frozenset[int]:
        found = [gold[n] for n in names_in(node, variables=True) if n in gold]
        return frozenset().union(*found) if found else frozenset()

    candidates: list[tuple[ast.AST, ast.AST, int, str]] = []
    compares = _compare_names(fn)
    for call in fn.calls:
        cname = call_name(call)
        if cname in ("minimum", "fmin", "min", "maximum", "fmax", "max") and len(call.args) == 2:
            if _is_logaddexp(fn, call):
                continue
            candidates.append((call.args[0], call.args[1], call.lineno, f"`{cname}`"))
        elif cname == "where" and call.args:
            sides = _comparison(call.args[0], compares)
            if sides is not None:
                candidates.append((*sides, call.lineno, "`where` on a comparison"))
    for node, _parent in _own_nodes_with_parent(fn):
        if isinstance(node, (ast.If, ast.IfExp)):
            sides = _comparison(node.test, compares)
            if sides is not None:
                candidates.append((*sides, node.lineno, "a comparison"))
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Subscript):
            sides = _comparison(node.targets[0].slice, compares)  # `nll[mask] = other[mask]`
            if sides is not None:
                candidates.append((*sides, node.lineno, "a masked overwrite on a comparison"))
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            for operand in (node.left, node.right):  # `w * a + (1 - w) * b` with `w = (a < b).float()`
                sides = _comparison(operand, compares) or next(
                    (compares[n] for n in names_in(operand, variables=True) if n in compares), None)
                if sides is not None:
                    candidates.append((*sides, node.lineno, "a product with a comparison mask"))
                    break
    for a_node, b_node, line, how in candidates:
        ra, rb = roots(a_node), roots(b_node)
        if ra and rb and ra != rb:
            steps = [fn.evidence(min(ra), "gold-token score of one predictor"),
                     fn.evidence(min(rb - ra) if rb - ra else min(rb), "gold-token score of another predictor"),
                     fn.evidence(line, f"{how} picks per position whichever scores the realized token "
                                     "better (an oracle gate reads the target)")]
            out.append(OracleGate(fn, line, steps))
    return out


_ORDER_OPS = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)
_ORDER_CALLS = frozenset({"lt", "le", "gt", "ge", "less", "less_equal", "greater", "greater_equal"})


def _compare_sides(node: ast.AST) -> tuple[ast.AST, ast.AST] | None:
    """(a, b) of an ordering comparison: `a < b`, `torch.lt(a, b)`, `a.lt(b)`; through `~m`/`not m`."""
    while isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Invert, ast.Not)):
        node = node.operand
    if isinstance(node, ast.Call) and call_name(node) == "logical_not" and node.args:
        return _compare_sides(node.args[0])
    if isinstance(node, ast.Compare) and len(node.comparators) == 1 and isinstance(node.ops[0], _ORDER_OPS):
        return node.left, node.comparators[0]
    if isinstance(node, ast.Call) and call_name(node) in _ORDER_CALLS:
        if len(node.args) == 2:
            return node.args[0], node.args[1]
        if len(node.args) == 1 and isinstance(node.func, ast.Attribute):
            return node.func.value, node.args[0]
    return None


def _compare_names(fn: Function) -> dict[str, tuple[ast.AST, ast.AST]]:
    """Names assigned once in fn from an ordering comparison (`gate = a < b`): a gate may be
    computed on one line and used on another."""
    out: dict[str, tuple[ast.AST, ast.AST]] = {}
    seen: dict[str, int] = {}
    for a in fn.assigns:
        if isinstance(a.node, (ast.For, ast.AsyncFor)) or a.unpacks:
            continue
        for n in a.names:
            seen[n] = seen.get(n, 0) + 1
        value = strip_chain(a.value)
        sides = _compare_sides(value)
        if sides is None and isinstance(value, ast.Name) and value.id in out:
            sides = out[value.id]  # `w = gate.float()`: the same mask as numbers
        if sides is not None and len(a.names) == 1:
            out[a.names[0]] = sides
    return {n: v for n, v in out.items() if seen.get(n) == 1}


def _comparison(node: ast.AST, compares: dict[str, tuple[ast.AST, ast.AST]]) -> tuple[ast.AST, ast.AST] | None:
    sides = _compare_sides(node)
    if sides is not None:
        return sides
    inner = node
    while isinstance(inner, ast.UnaryOp) and isinstance(inner.op, (ast.Invert, ast.Not)):
        inner = inner.operand
    inner = strip_chain(inner) if isinstance(inner, ast.expr) else inner
    if isinstance(inner, ast.Name) and inner.id in compares:
        return compares[inner.id]
    return None


def _is_logaddexp(fn: Function, call: ast.Call) -> bool:
    """`max(a, b) + log1p(exp(-abs(a - b)))` is a stable log-sum-exp (a mixture), not a choice."""
    parent = fn.parent_of.get(id(call))
    if isinstance(parent, ast.BinOp) and isinstance(parent.op, ast.Add):
        other = parent.right if parent.left is call else parent.left
        return any(isinstance(n, ast.Call) and call_name(n) in ("log1p", "log", "exp", "expm1")
                   for n in ast.walk(other))
    return False


def _own_nodes_with_parent(fn: Function) -> list[tuple[ast.AST, ast.AST]]:
    return [(n, p) for n, p in own_nodes(fn.node)]


