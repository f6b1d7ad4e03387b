"""Is the scored cache distribution proven normalised? (RULES.md R-EVAL-C2-NORMALIZED)

A count ratio `full[hash(ctx, v)] / ctx[hash(ctx)]` whose numerator and denominator are read
from two separately hashed tables is not a distribution, even when it is gathered for every
vocabulary token: collisions make the sum over v of full[hash(ctx, v)] differ from
ctx[hash(ctx)] (PR #886 measured ~277). Additive smoothing with the model's probability,
`(full + b * p_model) / (ctx + b)`, does not repair it. A ratio counts as normalised only when
  * its denominator is the sum over the vocabulary axis of the same quantity as its numerator
    (`rows / rows.sum(-1, keepdim=True)`);
  * or a softmax / log_softmax over the vocabulary, or such a row-normalisation, follows it
    before the score;
  * (a convex combination of normalised distributions stays normalised, so only the
    components need the proof).
Dict-keyed exact counts (`totals[ctx]` kept with `counts[ctx][v]`) sum exactly and are not
flagged: both lookups must use hashed keys (`^`, `*`, `&`, `%`, shifts).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from audit.analysis.ngram import Step, _count_tables, _has_hash_op, _reaches_score, _step, ngram_facts
from audit.analysis.targets import Function, base_of, call_name, names_in, target_flow, walk_nodes

_RENORM_CALLS = {"softmax", "log_softmax"}


@dataclass
class UnprovenRatio:
    """A scored count ratio that is not proven to be a distribution, and the failing step."""

    fn: Function
    line: int
    numerator: set[str]
    denominator: set[str]
    steps: list[Step]


def unproven_ratios(ctx) -> list[UnprovenRatio]:  # type: ignore[no-untyped-def]
    return ctx.memo("analysis.normalisation", lambda: _compute(ctx))


def _compute(ctx) -> list[UnprovenRatio]:  # type: ignore[no-untyped-def]
    flow = target_flow(ctx)
    tables = _count_tables(flow)
    if not tables:
        return []
    reported = {(lk.fn.qualname, lk.ratio_step.line) for lk in ngram_facts(ctx).lookups if lk.ratio_step}
    reported |= {(lk.fn.qualname, lk.line) for lk in ngram_facts(ctx).lookups}
    out: list[UnprovenRatio] = []
    for fn in flow.functions:
        origin = _count_origins(fn, tables)
        if not origin:
            continue
        for a in fn.assigns:
            if isinstance(a.node, (ast.For, ast.AsyncFor)) or (fn.qualname, a.line) in reported:
                continue
            for d in walk_nodes(a.value):
                if not (isinstance(d, ast.BinOp) and isinstance(d.op, ast.Div)):
                    continue
                num, den = _tables_in(d.left, origin), _tables_in(d.right, origin)
                if not num or not den or num & den or _sum_of_same(d.left, d.right):
                    continue
                sink, _ = _reaches_score(fn, set(a.names), a.node)
                if sink is None or _renormalised_after(fn, set(a.names)):
                    continue
                steps = [origin[n][1] for n in sorted(names_in(d.left) & origin.keys())][:1]
                steps += [origin[n][1] for n in sorted(names_in(d.right) & origin.keys())][:1]
                steps.append(_step(fn, a.line, f"not proven normalised: the denominator comes from "
                                   f"{_list(den)}, looked up at its own hashed key, not from the sum over "
                                   f"the vocabulary of the numerator's {_list(num)} (hash collisions: the "
                                   "rows do not sum to 1)"))
                steps.append(sink)
                out.append(UnprovenRatio(fn, a.line, num, den, steps))
                break
    return out


def _list(tables: set[str]) -> str:
    return ", ".join(f"`{t}`" for t in sorted(tables))


def _count_origins(fn: Function, tables: dict[str, Step]) -> dict[str, tuple[set[str], Step]]:
    """Names holding values read from count tables at hashed keys -> (tables, the read's step)."""
    hashed_names = {n for a in fn.assigns if _has_hash_op(a.value) for n in a.names}
    origin: dict[str, tuple[set[str], Step]] = {}
    for _ in range(3):
        grew = False
        for a in fn.assigns:
            if isinstance(a.node, (ast.For, ast.AsyncFor)):
                continue
            got: set[str] = set()
            for n in walk_nodes(a.value):
                if isinstance(n, ast.Subscript) and isinstance(n.ctx, ast.Load):
                    t = base_of(n.value)
                    if t in tables and (_has_hash_op(n.slice) or names_in(n.slice) & hashed_names):
                        got.add(t)
            got |= _tables_in(a.value, origin)
            if not got:
                continue
            for name in a.names:
                prev = origin.get(name)
                if prev is None or not got <= prev[0]:
                    step = prev[1] if prev else _step(fn, a.line, f"`{name}` is read from the count table(s) "
                                                      f"{_list(got)} at a hashed key")
                    origin[name] = ((prev[0] if prev else set()) | got, step)
                    grew = True
        if not grew:
            break
    return origin


def _tables_in(e: ast.AST, origin: dict[str, tuple[set[str], Step]]) -> set[str]:
    out: set[str] = set()
    for n in names_in(e):
        if n in origin:
            out |= origin[n][0]
    return out


def _sum_of_same(num: ast.AST, den: ast.AST) -> bool:
    """The denominator sums the numerator's own quantity (over an axis)."""
    want = _strip(num)
    for n in walk_nodes(den):
        if isinstance(n, ast.Call) and call_name(n) == "sum":
            f = n.func
            inner = f.value if isinstance(f, ast.Attribute) and not n.args else (n.args[0] if n.args else None)
            if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id in {"np", "torch"}:
                inner = n.args[0] if n.args else None
            if inner is not None and _strip(inner) == want:
                return True
    return False


def _strip(e: ast.AST) -> str:
    return ast.dump(e, annotate_fields=False, include_attributes=False)


def _renormalised_after(fn: Function, start: set[str]) -> bool:
    """A softmax over the vocabulary, or a row normalisation, of a value derived from `start`."""
    reach = set(start)
    for _ in range(8):
        grew = False
        for a in fn.assigns:
            if not (names_in(a.value) & reach):
                continue
            for n in walk_nodes(a.value):
                if isinstance(n, ast.Call) and call_name(n) in _RENORM_CALLS and any(
                        names_in(x) & reach for x in n.args):
                    return True
                if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Div) and names_in(n.left) & reach \
                        and _sum_of_same(n.left, n.right):
                    return True
            if not set(a.names) <= reach:
                reach.update(a.names)
                grew = True
        if not grew:
            break
    return False
