"""Parse a code file once, with the standard `ast` module (fast enough for 160 KB scripts).

Unparseable code (syntax errors, Python 2, NUL bytes, absurd nesting) yields a ParsedModule
with `tree=None` and an `error` the caller turns into a finding; it never raises.
"""

from __future__ import annotations

import ast
import sys
import warnings
from dataclasses import dataclass, field

from audit.analysis.fstrings import downgrade_fstrings
from audit.submission import TextFile


@dataclass
class ParsedModule:
    path: str
    source: str
    tree: ast.Module | None
    error: str | None = None
    error_line: int | None = None
    lines: list[str] = field(default_factory=list)
    # Parsed only after rewriting Python 3.12 f-strings for this interpreter (see fstrings.py).
    downgraded_fstrings: bool = False

    def line_text(self, lineno: int | None) -> str:
        if lineno is None or lineno < 1 or lineno > len(self.lines):
            return ""
        return self.lines[lineno - 1].strip()


# ast.parse of a multi-megabyte file of simple statements takes tens of seconds; no real
# submission script comes near this (the largest records are ~200 KB).
MAX_PARSE_CHARS = 4 * 1024 * 1024


def parse_source(path: str, source: str) -> ParsedModule:
    # Python runs a file with a UTF-8 byte-order mark; ast.parse of the decoded str does not.
    source = source.removeprefix("\ufeff")
    lines = source.splitlines()
    if len(source) > MAX_PARSE_CHARS:
        return ParsedModule(
            path, source, None,
            f"not parsed: {len(source):,} characters, over the {MAX_PARSE_CHARS:,}-character limit", None, lines,
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarning for invalid escapes in old scripts
            tree = ast.parse(source, filename=path, type_comments=False)
    except SyntaxError as exc:
        retry = _parse_pep701(path, source, lines, exc)
        if retry is not None:
            return retry
        return ParsedModule(path, source, None, f"syntax error: {exc.msg}", exc.lineno, lines)
    except (ValueError, RecursionError, MemoryError, OverflowError) as exc:
        return ParsedModule(path, source, None, f"cannot parse: {type(exc).__name__}: {exc}", None, lines)
    return ParsedModule(path, source, tree, None, None, lines)


def _parse_pep701(path: str, source: str, lines: list[str], exc: SyntaxError) -> ParsedModule | None:
    """Valid 3.12 code with nested-quote f-strings fails on older Pythons: retry once rewritten."""
    if sys.version_info >= (3, 12) or "f-string" not in (exc.msg or ""):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(downgrade_fstrings(source), filename=path, type_comments=False)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return None
    return ParsedModule(path, source, tree, None, None, lines, downgraded_fstrings=True)


def parse_file(tf: TextFile) -> ParsedModule:
    return parse_source(tf.path, tf.text or "")
