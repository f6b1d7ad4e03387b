"""Count tables: arrays or dicts an n-gram cache adds counts into.

`np.add.at(T, k, 1)`, `T.scatter_add_`/`index_add_`/`put_`, `T[k] += 1`, `T = bincount(...)`,
`T[k] = T.get(k, 0) + 1`, and helpers that add counts into one of their parameters (the caller's
argument is then the table). Each table comes with the evidence line that shows it is counted.
"""

from __future__ import annotations

import ast

from audit.analysis.syntax import base_of, call_name, calls_below, names_in, strip_chain
from audit.analysis.targets import TargetFlow
from audit.findings import Evidence

_UPDATE_METHODS = {"scatter_add_", "index_add_", "put_", "index_put_", "scatter_reduce_", "add_at"}


def count_table_params(flow: TargetFlow) -> dict[str, set[int]]:
    """Helpers that add counts into one of their parameters: name -> argument positions."""
    out: dict[str, set[int]] = {}
    for fn in flow.functions:
        params = fn.params[1:] if fn.params and fn.params[0] in ("self", "cls") else fn.params
        counted = {n for a in fn.assigns for n in a.names
                   if "bincount" in calls_below(a.value)}
        for aug in fn.augassigns:
            if isinstance(aug.target, ast.Subscript) and isinstance(aug.op, ast.Add):
                b = base_of(aug.target)  # `def bump(t, a, b): t[a, b] += 1`
                if b in params:
                    out.setdefault(fn.name, set()).add(params.index(b))
                continue
            if isinstance(aug.target, ast.Name) and aug.target.id in params and isinstance(aug.op, ast.Add):
                if names_in(aug.value, variables=True) & counted or "bincount" in calls_below(aug.value):
                    out.setdefault(fn.name, set()).add(params.index(aug.target.id))
        for call in fn.calls:
            f = call.func
            if call_name(call) == "at" and isinstance(f, ast.Attribute) and isinstance(f.value, ast.Attribute) \
                    and f.value.attr == "add" and call.args and isinstance(call.args[0], ast.Name) \
                    and call.args[0].id in params:
                out.setdefault(fn.name, set()).add(params.index(call.args[0].id))
            elif call_name(call) in _UPDATE_METHODS and isinstance(f, ast.Attribute) and base_of(f.value) in params:
                out.setdefault(fn.name, set()).add(params.index(base_of(f.value) or ""))  # `t.index_add_(...)`
    return out


def count_tables(flow: TargetFlow) -> dict[str, Evidence]:
    tables: dict[str, Evidence] = {}
    helpers = count_table_params(flow)
    for fn in flow.functions:
        for call in fn.calls:
            for i in helpers.get(call_name(call), ()):
                if i < len(call.args):
                    b = base_of(call.args[i])
                    if b:
                        tables.setdefault(b, fn.evidence(call.lineno, f"`{b}` is a count table "
                                                                    f"(counts added by `{call_name(call)}`)"))
    for fn in flow.functions:
        for call in fn.calls:
            name = call_name(call)
            f = call.func
            if name == "at" and isinstance(f, ast.Attribute) and isinstance(f.value, ast.Attribute) \
                    and f.value.attr in ("add", "maximum", "minimum") and call.args:
                b = base_of(call.args[0])
                if b:
                    tables.setdefault(b, fn.evidence(call.lineno, f"`{b}` is a count table (np.add.at)"))
            elif name in _UPDATE_METHODS and isinstance(f, ast.Attribute):
                b = base_of(f.value)
                if b:
                    tables.setdefault(b, fn.evidence(call.lineno, f"`{b}` is a count table (`.{name}`)"))
        for aug in fn.augassigns:
            if isinstance(aug.target, ast.Subscript) and isinstance(aug.op, ast.Add):
                b = base_of(aug.target)
                if b:
                    tables.setdefault(b, fn.evidence(aug.lineno, f"`{b}` is a count table (`+=` on an entry)"))
        for a in fn.assigns:
            v = strip_chain(a.value)
            if isinstance(v, ast.Call) and call_name(v) == "bincount":
                for n in a.names:
                    tables.setdefault(n, fn.evidence(a.line, f"`{n}` is a count table (bincount)"))
            node = a.node
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Subscript):
                b = base_of(node.targets[0])
                if b and isinstance(v, ast.BinOp) and isinstance(v.op, ast.Add) and b in names_in(v, variables=True):
                    tables.setdefault(b, fn.evidence(a.line, f"`{b}` is a count table (entry incremented)"))
    return tables


