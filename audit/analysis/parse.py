"""Parse a code file once, with the standard `ast` module (fast enough for 160 KB scripts).

Unparseable code (syntax errors, Python 2, NUL bytes, absurd nesting) yields a ParsedModule
with `tree=None` and an `error` the caller turns into a finding; it never raises.
"""

from __future__ import annotations

import ast
import warnings
from dataclasses import dataclass, field

from audit.submission import TextFile


@dataclass
class ParsedModule:
    path: str
    source: str
    tree: ast.Module | None
    error: str | None = None
    error_line: int | None = None
    lines: list[str] = field(default_factory=list)

    def line_text(self, lineno: int | None) -> str:
        if lineno is None or lineno < 1 or lineno > len(self.lines):
            return ""
        return self.lines[lineno - 1].strip()


def parse_source(path: str, source: str) -> ParsedModule:
    lines = source.splitlines()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarning for invalid escapes in old scripts
            tree = ast.parse(source, filename=path, type_comments=False)
    except SyntaxError as exc:
        return ParsedModule(path, source, None, f"syntax error: {exc.msg}", exc.lineno, lines)
    except (ValueError, RecursionError, MemoryError, OverflowError) as exc:
        return ParsedModule(path, source, None, f"cannot parse: {type(exc).__name__}: {exc}", None, lines)
    return ParsedModule(path, source, tree, None, None, lines)


def parse_file(tf: TextFile) -> ParsedModule:
    return parse_source(tf.path, tf.text or "")
