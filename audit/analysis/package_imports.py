"""Absolute imports of every shipped code file, each marked optional when it sits inside
`try: ... except ImportError` (asked by R-LIBRARIES; which packages count is the rule's policy)."""

from __future__ import annotations

import ast
from dataclasses import dataclass

from audit.analysis.sources import MAX_ANALYSED_BYTES
from audit.analysis.syntax import nodes_of, walk

_OPTIONAL_GUARDS = ("ImportError", "ModuleNotFoundError", "Exception")


@dataclass(frozen=True)
class ImportedPackage:
    path: str
    line: int
    top: str  # top-level package name (`torch` for `torch.nn.functional`)
    optional: bool  # inside a try whose handler catches ImportError (a fallback exists)


def imported_packages(ctx) -> list[ImportedPackage]:  # type: ignore[no-untyped-def]
    """`import x` / `from x import y` (level 0) of the shipped .py files, in file and walk order."""
    def build() -> list[ImportedPackage]:
        out = []
        for rel in sorted(ctx.submission.code):
            parsed = ctx.parsed(rel)
            if parsed.tree is None:
                continue
            # Every shipped file, analysed or not. An analysed tree is indexed once for every
            # analysis (`nodes_of`); a file too large to analyse (a 4 MB script) gets a walk of
            # its statements alone, which leaves nothing memoised on its tree.
            if len(parsed.source) <= MAX_ANALYSED_BYTES:
                nodes = nodes_of(parsed.tree, ast.Import, ast.ImportFrom, ast.Try)
            else:
                nodes = statement_walk(parsed.tree)
            guarded = _guarded_imports([n for n in nodes if isinstance(n, ast.Try)])
            for node in nodes:
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    out.append(ImportedPackage(rel, node.lineno, name.split(".")[0], node.lineno in guarded))
        return out
    return ctx.memo("patterns.imported_packages", build)


def statement_walk(tree: ast.AST) -> list[ast.AST]:
    """The statements of `tree` (and the except and case clauses that hold some) in `ast.walk`
    order. Imports and `try` are statements, and a statement's parent is always a statement or a
    clause, so this is `ast.walk` without the expressions, a tenth of the nodes to visit."""
    out: list[ast.AST] = []
    level = [tree]
    while level:
        out += level
        level = [c for n in level for f in _BLOCK_FIELDS for c in getattr(n, f, ())
                 if isinstance(c, (ast.stmt, ast.excepthandler, ast.match_case))]
    return out


# the fields that hold statements or clauses, in `_fields` order of every node class that has them
_BLOCK_FIELDS = ("body", "handlers", "orelse", "finalbody", "cases")


def _guarded_imports(tries: list[ast.Try]) -> set[int]:
    """Line numbers of imports inside `try: ... except ImportError` (optional dependencies)."""
    lines: set[int] = set()
    for node in tries:
        names = set()
        for h in node.handlers:
            if h.type is None:
                names.add("Exception")
            for n in walk(h.type) if h.type is not None else ():
                if isinstance(n, ast.Name):
                    names.add(n.id)
        if names & set(_OPTIONAL_GUARDS):
            for stmt in node.body:
                for sub in walk(stmt):
                    if isinstance(sub, (ast.Import, ast.ImportFrom)):
                        lines.add(sub.lineno)
    return lines
