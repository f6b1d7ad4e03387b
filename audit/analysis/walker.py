"""Walk one function from start to end and fill its `FunctionFacts` (facts.py).

Called by `program.build_program` until the return summaries of all functions stop changing.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping

from audit.analysis import names as N
from audit.analysis.facts import EMPTY, FunctionFacts, Labels, ReturnSummary, assign_closure
from audit.analysis.grad_context import Walker
from audit.analysis.syntax import child_nodes, names_in


def walk_function(ff: FunctionFacts, body: list[ast.stmt], resolve: ReturnSummary,
                  fields: Mapping[str, Labels], outer_env: Mapping[str, Labels],
                  nested_env: dict[str, dict[str, Labels]], classes: frozenset[str] = frozenset(),
                  path_fields: Mapping[str, Labels] | None = None) -> None:
    """(Re)compute `ff.sites`, `ff.returns` and friends."""
    ff.return_names = set()
    ff.acc_params = {}
    ff.free_accs = {}
    ff.method_accs = {}
    ff.instance_types = {}
    ff.param_writes = {}
    ff.field_writes = {}
    ff.assign_sources = {}
    ff.deleted = set()
    ff.local_modules = set()
    ff.flag_aliases = {}
    ff.call_aliases = {}
    env: dict[str, Labels] = dict(outer_env)
    for p in [*ff.params, ff.vararg, ff.kwarg]:
        if p:
            env[p] = frozenset({N.PARAM + p})
    w = Walker(ff, env, resolve, fields, nested_env)
    w.classes = classes
    w.path_fields = path_fields if path_fields is not None else {}
    if ff.parent is not None and not ff.parent.endswith("<module>"):
        w.free = _enclosing_names(ff, body)
    w.block(body)
    for q in w.nested_defs:
        seen = nested_env[q]
        for k, v in w.env.items():
            seen[k] = seen.get(k, EMPTY) | v
    ff.sites = sorted(w.sites.values(), key=lambda s: (s.order, s.line, s.kind))
    ff.returns = frozenset(w.returns)
    ff.return_elts = tuple(w.ret_elts) if w.ret_elts else None
    ff.returns_classes = w.ret_classes or frozenset()
    valued = [s for s in ff.sites if s.kind == "return" and isinstance(s.node, ast.Return) and s.node.value is not None]
    ff.returns_detached = bool(valued) and all(s.grad_off for s in valued)
    ff.reported_names = _reported_names(ff)


def _enclosing_names(ff: FunctionFacts, body: list[ast.stmt]) -> frozenset[str]:
    """Names a nested function uses but does not bind (or declares `nonlocal`): they live in
    the enclosing function, so writes into them are the enclosing function's."""
    bound = {p for p in (*ff.params, ff.vararg, ff.kwarg) if p}
    used: set[str] = set()
    nonlocal_: set[str] = set()
    todo: list[ast.AST] = list(body)
    while todo:
        n = todo.pop()
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            if not isinstance(n, ast.Lambda):
                bound.add(n.name)
            continue  # their own scope
        if isinstance(n, ast.Nonlocal):
            nonlocal_.update(n.names)
        elif isinstance(n, ast.Global):
            bound.update(n.names)
        elif isinstance(n, ast.Name):
            (bound if isinstance(n.ctx, (ast.Store, ast.Del)) else used).add(n.id)
        elif isinstance(n, ast.alias):
            bound.add((n.asname or n.name).split(".", 1)[0])
        elif isinstance(n, ast.ExceptHandler) and n.name:
            bound.add(n.name)
        todo.extend(child_nodes(n))
    return frozenset((used - bound) | nonlocal_)


def _reported_names(ff: FunctionFacts) -> set[str]:
    """Names whose value reaches a `return` or a logging call (backward closure over assignments)."""
    seeds = set(ff.return_names)
    for s in ff.sites:
        if s.kind == "call" and N.LOG_CALLS.search(s.name.rsplit(".", 1)[-1]) and s.node is not None:
            seeds |= names_in(s.node)
    out = assign_closure(ff, seeds)
    return out
