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
        assert syntax.names_in(n) == syntax._bottom_up(n, "_test_ids", syntax.child_nodes, _own_ids)
        generic = syntax._bottom_up(n, "_test_call", syntax.child_nodes, lambda x, kids: any(kids) or _is_call(x))
        assert syntax.any_below(n, "_pga_test_call", _is_call) == generic


def test_names_in_of_a_tree_with_a_shared_subtree():
    """A node reachable from two parents (the analyses wrap nodes, `ast.Expr(call)`) is no
    problem: its set is computed once and read by both."""
    call = ast.parse("f(a.b, c)").body[0].value  # type: ignore[attr-defined]
    both = ast.Tuple(elts=[call, ast.Expr(call)], ctx=ast.Load())
    assert syntax.names_in(both) == {"f", "a", "b", "c"}


def _reference_depth(fn_node: ast.AST) -> int:
    """Nesting depth by `ast.iter_child_nodes`, shared operator and context nodes included."""
    level, depth = list(ast.iter_child_nodes(fn_node)), 0
    while level:
        depth += 1
        level = [c for n in level if not isinstance(n, syntax._DEFS) for c in ast.iter_child_nodes(n)]
    return depth


@pytest.mark.parametrize("module", [ast, inspect, random, names], ids=lambda m: m.__name__)
def test_walks_leave_out_only_the_shared_nodes_and_depth_still_counts_them(module):
    """`child_nodes` drops `ast.Load()`/`ast.Add()` (a third of all nodes): every walk is
    `ast.walk` without them, in the same order, and `nesting_depth` (the `MAX_NESTING` bound)
    is the depth `ast.walk` would give, to the level."""
    tree = ast.parse(inspect.getsource(module))
    assert list(syntax.walk(tree)) == [n for n in ast.walk(tree) if not isinstance(n, syntax._SHARED)]
    fns = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))]
    assert fns
    for fn in [tree, *fns]:
        assert syntax.nesting_depth(fn) == _reference_depth(fn)
        assert syntax.nesting_depth(fn, limit=3) == min(_reference_depth(fn), 4)


@pytest.mark.parametrize("code, depth", [("pass", 1), ("x = 1", 3), ("x = a", 3), ("x = -1", 3), ("x = (1, 2)", 3),
                                         ("x = a + b", 4), ("f()", 4), ("f(a)", 4), ("x = a.b.c", 5)])
def test_nesting_depth_of_small_statements(code, depth):
    tree = ast.parse(code)
    assert syntax.nesting_depth(tree) == _reference_depth(tree) == depth


@pytest.mark.parametrize("module", [ast, inspect, random, names], ids=lambda m: m.__name__)
def test_spans_a_line_holds_for_every_line_of_every_node_below(module):
    """`spans_a_line(node, [k])` is true for the line of every node below `node` (decorators
    included), so the analyses that skip a function by it skip only what holds none of them."""
    tree = ast.parse(inspect.getsource(module))
    for top in [tree, *(n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.stmt)))]:
        for n in syntax.walk(top):
            if hasattr(n, "lineno"):
                assert syntax.spans_a_line(top, [n.lineno]), (ast.dump(top)[:80], n.lineno)
    fn = ast.parse("@deco(a)\n\ndef f():\n    return 1\n\nx = 2\n").body[0]
    assert syntax.spans_a_line(fn, [1]) and syntax.spans_a_line(fn, [4])
    assert not syntax.spans_a_line(fn, [6]) and not syntax.spans_a_line(fn, [])


@pytest.mark.parametrize("module", [ast, inspect, random, names], ids=lambda m: m.__name__)
def test_dotted_memo_is_the_chain_it_stands_for(module):
    """`dotted` memoises the default reading on the node; asked in any order (a chain's inner
    node first or last), each node's answer is the unmemoised one, and asking twice agrees."""
    for order in ("top-down", "bottom-up"):
        for n in _nodes(module, order):
            assert syntax.dotted(n) == syntax._dotted_chain(n) == syntax.dotted(n)
    assert syntax.dotted(None) == "" and syntax.dotted(ast.Load()) == ""  # type: ignore[arg-type]
    assert "_pga_dot" not in ast.Load().__dict__


def test_lines_where_is_the_sorted_lines_of_the_matching_nodes_once():
    tree = ast.parse(inspect.getsource(random))
    expected = sorted(n.lineno for n in ast.walk(tree) if isinstance(n, ast.Call) and syntax.call_name(n) == "_floor")
    assert expected
    asked: list[ast.AST] = []

    def here(n: ast.Call) -> bool:
        asked.append(n)
        return syntax.call_name(n) == "_floor"

    assert syntax.lines_where(tree, "_pga_test_lines", here, ast.Call) == expected
    first = len(asked)
    assert syntax.lines_where(tree, "_pga_test_lines", here, ast.Call) == expected and len(asked) == first
