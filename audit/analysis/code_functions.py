"""The functions of the analysed code units, each with the facts the target/cache analyses read:
assignments (with `for` targets, `with ... as`, walrus, `rows.append(x)` as a store into `rows`),
calls, subscripts, returns, augmented assignments, imports, and each node's parent.

Functions nested deeper than `syntax.MAX_NESTING` get no facts (`too_deep`).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from audit.analysis.eval_code import CodeUnit
from audit.analysis.syntax import assigned_names, base_of, own_nodes, too_deep
from audit.findings import Evidence


@dataclass
class Assignment:
    names: list[str]
    value: ast.expr
    line: int
    node: ast.stmt

    @property
    def unpacks(self) -> bool:
        """A tuple target (`a, b = ...`), not counting `for` loops over a sequence."""
        return len(self.names) > 1 and not isinstance(self.node, (ast.For, ast.AsyncFor))


@dataclass
class Function:
    """One function (or the module body) with the facts the taint needs."""

    unit: CodeUnit
    qualname: str
    name: str
    node: ast.AST
    params: list[str]
    assigns: list[Assignment] = field(default_factory=list)
    calls: list[ast.Call] = field(default_factory=list)
    subscripts: list[ast.Subscript] = field(default_factory=list)
    returns: list[ast.Return] = field(default_factory=list)
    augassigns: list[ast.AugAssign] = field(default_factory=list)
    imports: list[ast.Import | ast.ImportFrom] = field(default_factory=list)
    parent_of: dict[int, ast.AST] = field(default_factory=dict)
    too_deep: bool = False  # nested deeper than `syntax.MAX_NESTING`: left without facts

    @property
    def path(self) -> str:
        return self.unit.path

    def text(self, line: int | None) -> str:
        return self.unit.parsed.line_text(line)

    def stmt_of(self, node: ast.AST) -> ast.AST:
        """The statement of this function that holds `node` (the node itself if none does)."""
        cur: ast.AST | None = node
        while cur is not None and not isinstance(cur, ast.stmt):
            cur = self.parent_of.get(id(cur))
        return cur or node

    def evidence(self, line: int, label: str) -> Evidence:
        """The evidence record for a line of this function, as findings show it (lines of a
        decoded wrapper are marked, the excerpt is cut to 200 characters)."""
        if self.unit.decoded_from is not None:
            label = f"{label} [decoded wrapper text]"
        return Evidence(label, self.path, line, self.text(line)[:200] or None)


def collect_functions(unit: CodeUnit) -> list[Function]:
    tree = unit.parsed.tree
    if tree is None:
        return []
    out = [_fill(Function(unit, "<module>", "<module>", tree, []))]
    _collect_defs(unit, tree.body, "", out)
    return out


def _collect_defs(unit: CodeUnit, body: list[ast.stmt], prefix: str, out: list[Function]) -> None:
    """The functions defined in `body`, nested ones after their parent, in source order. (A
    module-level function, not a recursive closure: a closure that calls itself is a reference
    cycle that would keep the folder's trees alive until a collection.)"""
    for child in body:
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = child.args
            params = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
            out.append(_fill(Function(unit, prefix + child.name, child.name, child, params)))
            _collect_defs(unit, child.body, prefix + child.name + ".", out)
        elif isinstance(child, ast.ClassDef):
            _collect_defs(unit, child.body, prefix + child.name + ".", out)
        else:
            for field in ("body", "orelse", "finalbody", "handlers", "cases"):
                inner = getattr(child, field, None)
                if isinstance(inner, list):
                    _collect_defs(unit, [x for x in inner if isinstance(x, ast.stmt)]
                                  + [s for h in inner if isinstance(h, (ast.ExceptHandler, ast.match_case))
                                     for s in h.body], prefix, out)


_RECORDED = frozenset({ast.Assign, ast.AnnAssign, ast.AugAssign, ast.For, ast.AsyncFor, ast.NamedExpr,
                       ast.withitem, ast.Call, ast.Subscript, ast.Return, ast.Import, ast.ImportFrom})


def _fill(fn: Function) -> Function:
    if too_deep(fn.node):
        fn.too_deep = True  # no facts: recorded by `unanalysed_sources`, never walked
        return fn
    parent_of = fn.parent_of
    for node, parent in own_nodes(fn.node):
        parent_of[id(node)] = parent
        if type(node) not in _RECORDED:
            continue  # most nodes (names, constants, operators) are only given a parent
        if isinstance(node, ast.Assign):
            names = [n for t in node.targets for n in assigned_names(t)]
            fn.assigns.append(Assignment(names, node.value, node.lineno, node))
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            fn.assigns.append(Assignment(assigned_names(node.target), node.value, node.lineno, node))
        elif isinstance(node, ast.AugAssign):
            fn.augassigns.append(node)
            fn.assigns.append(Assignment(assigned_names(node.target), node.value, node.lineno, node))
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            fn.assigns.append(Assignment(assigned_names(node.target), node.iter, node.lineno, node))
        elif isinstance(node, ast.NamedExpr):
            fn.assigns.append(Assignment(assigned_names(node.target), node.value, node.lineno, node))  # type: ignore[arg-type]
        elif isinstance(node, ast.withitem) and node.optional_vars is not None:
            fn.assigns.append(Assignment(assigned_names(node.optional_vars), node.context_expr,
                                         node.context_expr.lineno, node))  # type: ignore[arg-type]
        elif isinstance(node, ast.Call):
            fn.calls.append(node)
            # `rows.append((k, v))` stores into `rows` as far as the taint is concerned
            if isinstance(node.func, ast.Attribute) and node.func.attr in ("append", "extend", "add") and node.args:
                base = base_of(node.func.value)
                # `self.history.append(y)` is state that later serves as *context*: not a target copy
                if base and not base.startswith(("self.", "cls.")):
                    fn.assigns.append(Assignment([base], node.args[0], node.lineno, ast.Expr(node)))
        elif isinstance(node, ast.Subscript):
            fn.subscripts.append(node)
        elif isinstance(node, ast.Return):
            fn.returns.append(node)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            fn.imports.append(node)
    fn.assigns.sort(key=lambda a: a.line)
    fn.calls.sort(key=lambda c: c.lineno)
    fn.subscripts.sort(key=lambda c: c.lineno)
    return fn


