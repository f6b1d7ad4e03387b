"""Untrusted strings made safe for each output, in one place.

Every string in a report may come from the submission: file and folder names, log lines quoted
as evidence, messages that embed them. Each output has its own hazards:

* all outputs: a file name that is not UTF-8 reaches us as lone surrogates (Python's
  `surrogateescape`) and makes UTF-8 writers raise. It is shown as `\\xNN`, the original byte,
  so nothing is lost and nothing raises.
* terminal and GitHub annotations: control characters (ANSI escapes can clear the screen and draw
  a fake PASS; a carriage return overwrites a line), bidi overrides and line separators are shown
  as visible escapes (`\\x1b`, `\\u202e`). Newlines are kept only inside finding messages; a
  newline in a name or an excerpt is escaped so it cannot start a line of its own.
* step summary (Markdown): everything is one line, and Markdown/HTML punctuation is escaped
  (`markdown_cell`), so a folder name cannot add rows, links or headings.
* SARIF and HTML: visible escapes as for the terminal, newlines kept (the formats quote them).
* JSON: lossless interchange (it is re-rendered by `pgolf-audit report`): only the surrogates are
  escaped; the JSON encoder escapes control characters itself.

`for_format(results, fmt)` returns sanitised copies; the originals are not touched.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from enum import Enum
from typing import Any

from audit.findings import Finding, Report
from audit.report.model import Excerpt, TargetResult, excerpt_key

# C0/C1 controls and DEL, lone surrogates, bidi controls, line/paragraph separators, BOM/zero-width.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
_UNSAFE_NL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
# What can start markup inside a table cell: code spans, emphasis, links/images, cell breaks, strikethrough.
_MARKDOWN = re.compile(r"([\\`*\[\]!|~])")


def _escape_char(m: re.Match[str]) -> str:
    c = m.group(0)
    code = ord(c)
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape: the original byte
        return f"\\x{code - 0xDC00:02x}"
    if c == "\t":
        return "\\t"
    if c == "\n":
        return "\\n"
    if c == "\r":
        return "\\r"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def lossless(s: str) -> str:
    """Only the lone surrogates escaped: any UTF-8 writer accepts the result."""
    return _SURROGATE.sub(_escape_char, s) if _SURROGATE.search(s) else s


def visible_multiline(s: str) -> str:
    """Controls escaped, newlines and tabs kept: finding messages."""
    return _UNSAFE.sub(_escape_char, s)


def terminal_line(s: str) -> str:
    """Everything unsafe escaped, newlines too (tabs kept): names, paths, excerpts, stderr lines."""
    return _UNSAFE_NL.sub(lambda m: "\t" if m.group(0) == "\t" else _escape_char(m), s)


def markdown_cell(s: str) -> str:
    """One Markdown table cell: a single line, markup characters backslash-escaped, HTML brackets as entities."""
    one_line = terminal_line(s).replace("\t", " ")
    return _MARKDOWN.sub(r"\\\1", one_line).replace("<", "&lt;").replace(">", "&gt;")


# fmt -> (function for finding messages, function for every other string)
POLICIES: dict[str, tuple[Callable[[str], str], Callable[[str], str]]] = {
    "json": (lossless, lossless),
    "sarif": (visible_multiline, visible_multiline),
    "html": (visible_multiline, visible_multiline),
    "terminal": (visible_multiline, terminal_line),
    "github": (visible_multiline, terminal_line),
    "summary": (terminal_line, terminal_line),
}


def for_format(results: list[TargetResult], fmt: str) -> list[TargetResult]:
    message_fn, text_fn = POLICIES[fmt]
    return [_result(r, message_fn, text_fn) for r in results]


def _result(res: TargetResult, message_fn: Callable[[str], str], text_fn: Callable[[str], str]) -> TargetResult:
    rep = res.report
    pairs = [(f, _finding(f, message_fn, text_fn)) for f in rep.findings]
    excerpts: dict[str, Excerpt] = {}
    for old, new in pairs:  # excerpt keys derive from the finding: re-key them with the new finding
        for index in (None, *range(len(old.evidence))):
            ex = res.excerpts.get(excerpt_key(old, index))
            if ex is not None:
                excerpts[excerpt_key(new, index)] = _map(ex, text_fn)
    report = Report(
        target=text_fn(rep.target),
        findings=[new for _, new in pairs],
        errors=[_map(e, message_fn) for e in rep.errors],
        runs=_map(rep.runs, text_fn),
        stats=_map(rep.stats, text_fn),
        facts=_map(rep.facts, text_fn),
    )
    return dataclasses.replace(res, report=report, excerpts=excerpts,
                               root=text_fn(res.root) if res.root is not None else None)


def _finding(f: Finding, message_fn: Callable[[str], str], text_fn: Callable[[str], str]) -> Finding:
    mapped = _map(f, text_fn)
    return dataclasses.replace(mapped, message=message_fn(f.message))


def _map(obj: Any, fn: Callable[[str], str]) -> Any:
    """A copy of `obj` with `fn` applied to every string in it (dataclasses, containers, keys)."""
    if isinstance(obj, Enum):  # Severity and Verdict are str Enums: kept as they are
        return obj
    if isinstance(obj, str):
        return fn(obj)
    if isinstance(obj, dict):
        return {(fn(k) if isinstance(k, str) else k): _map(v, fn) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_map(v, fn) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_map(v, fn) for v in obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        changes = {f.name: _map(getattr(obj, f.name), fn) for f in dataclasses.fields(obj) if f.init}
        return dataclasses.replace(obj, **changes)
    return obj  # numbers, None
