"""The written-out bottom-up memos (`syntax.names_in`, `syntax.any_below`) against the generic
pass (`syntax._bottom_up`) they stand for: the same answer for every node of real modules, asked in
any order (a node asked first, then its parent, reuses the child's memo)."""

from __future__ import annotations

import ast
import inspect
import random

import pytest

from audit.analysis import names, syntax


def _own_ids(n: ast.AST, kids: list) -> frozenset[str]:
    own = {n.id} if isinstance(n, ast.Name) else {n.attr} if isinstance(n, ast.Attribute) else set()
    return frozenset(own).union(*kids)


def _is_call(n: ast.AST) -> bool:
    return isinstance(n, ast.Call) and syntax.call_name(n) in ("walk", "search", "get")


def _nodes(module, order: str) -> list[ast.AST]:
    tree = ast.parse(inspect.getsource(module))
    nodes = [n for n in ast.walk(tree) if not isinstance(n, syntax._SHARED)]
    if order == "bottom-up":
        nodes.reverse()
    elif order == "shuffled":
        random.Random(7).shuffle(nodes)
    return nodes


@pytest.mark.parametrize("module", [ast, inspect, random, names], ids=lambda m: m.__name__)
@pytest.mark.parametrize("order", ["top-down", "bottom-up", "shuffled"])
def test_names_in_and_any_below_match_the_generic_pass(module, order):
    for n in _nodes(module, order):
        assert syntax.names_in(n) == syntax._bottom_up(n, "_test_ids", syntax._kids, _own_ids)
        generic = syntax._bottom_up(n, "_test_call", syntax._kids, lambda x, kids: any(kids) or _is_call(x))
        assert syntax.any_below(n, "_pga_test_call", _is_call) == generic


def test_names_in_of_a_tree_with_a_shared_subtree():
    """A node reachable from two parents (the analyses wrap nodes, `ast.Expr(call)`) is no
    problem: its set is computed once and read by both."""
    call = ast.parse("f(a.b, c)").body[0].value  # type: ignore[attr-defined]
    both = ast.Tuple(elts=[call, ast.Expr(call)], ctx=ast.Load())
    assert syntax.names_in(both) == {"f", "a", "b", "c"}
