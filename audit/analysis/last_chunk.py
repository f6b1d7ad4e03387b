"""Whether a score-first TTT loop skips its update on the final chunk (asked by
R-TTT-IS-LAST-CHUNK): an `if` around the update, or an early `continue`/`break` before it in the
loop, whose test names a last-chunk flag or compares the loop index with `n - 1`."""

from __future__ import annotations

import ast
import re

from audit.analysis.syntax import walk
from audit.analysis.valflow import Classified

LAST = re.compile(r"last", re.IGNORECASE)


def skips_last_chunk(c: Classified) -> bool:
    """The update of this classified TTT result is guarded off on the last chunk."""
    return _last_chunk_guard(c)


def _last_chunk_guard(c: Classified) -> bool:
    """An `if` around the update, or an early `continue`/`break` before it in the loop, whose test
    names a last-chunk flag or compares the loop index with `n - 1`."""
    site = c.event.site
    loop = next((lp for lp in site.loops if lp.line == c.loop_line), None)
    targets = loop.target_names if loop is not None else frozenset()
    for test, _ in site.guard_tests:
        if _is_last_test(test, targets):
            return True
    if loop is None or not isinstance(loop.node, (ast.For, ast.While)):
        return False
    for stmt in loop.node.body:
        if stmt.lineno >= site.line:
            break
        if isinstance(stmt, ast.If) and _is_last_test(stmt.test, targets) and any(
                isinstance(s, (ast.Continue, ast.Break)) for s in stmt.body):
            return True
    return False


def _is_last_test(test: ast.AST, targets: frozenset[str]) -> bool:
    for n in walk(test):
        if isinstance(n, ast.Name) and LAST.search(n.id):
            return True
        if isinstance(n, ast.Compare) and any(isinstance(x, ast.Name) and x.id in targets
                                              for x in walk(n)):
            if any(isinstance(b, ast.BinOp) and isinstance(b.op, ast.Sub) for b in walk(n)):
                return True
    return False
