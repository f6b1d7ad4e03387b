"""The imports of a file too large to analyse are read from a walk of its statements alone; it
must find what `ast.walk` finds, in the same order."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from audit.analysis import package_imports
from audit.analysis.package_imports import imported_packages, statement_walk
from audit.context import AuditContext, Options
from audit.submission import Submission

BLOCKS = '''import a
try:
    import b
except ImportError:
    import c
else:
    from d import x
finally:
    import e
for i in range(3):
    import f
else:
    import g
match i:
    case 1:
        import h
    case _:
        import j
def k():
    class L:
        import m
    with open("x") as fh:
        while True:
            import n
    return lambda: __import__("o")
'''


def _statements(tree: ast.AST) -> list[ast.AST]:
    return [n for n in ast.walk(tree) if n is tree or isinstance(n, (ast.stmt, ast.excepthandler, ast.match_case))]


@pytest.mark.parametrize("module", ["ast", "argparse", "dataclasses", "inspect", "typing", "asyncio.base_events"])
def test_statement_walk_is_ast_walk_without_expressions(module):
    source = Path(importlib.import_module(module).__file__).read_text(encoding="utf-8")
    tree = ast.parse(source)
    assert statement_walk(tree) == _statements(tree)


def test_statement_walk_enters_every_block():
    tree = ast.parse(BLOCKS)
    assert statement_walk(tree) == _statements(tree)
    assert sorted(n.names[0].name for n in statement_walk(tree) if isinstance(n, ast.Import)) == list("abcefghjmn")


def test_a_file_too_large_to_analyse_gives_the_same_imports(monkeypatch):
    def found() -> list:
        ctx = AuditContext(Submission.from_files({"train_gpt.py": BLOCKS}), Options())
        return imported_packages(ctx)

    analysed = found()
    monkeypatch.setattr(package_imports, "MAX_ANALYSED_BYTES", 10)
    assert found() == analysed
    optional = {p.top: p.optional for p in analysed}
    assert optional == {**dict.fromkeys("acdefghjmn", False), "b": True}
