"""Where a finding points: the file a reviewer opens for an analysis path, and the line's text
(decoded wrapper text is labelled as such, since its line numbers are not the shipped file's)."""

from __future__ import annotations

from audit.analysis.sources import Source, analysis_sources
from audit.findings import Evidence


def source_of(ctx, path: str) -> Source | None:
    for s in analysis_sources(ctx):
        if s.path == path:
            return s
    return None


def display(ctx, path: str) -> tuple[str, bool]:
    """(file a reviewer can open, whether line numbers refer to a decoded wrapper text)."""
    src = source_of(ctx, path)
    if src is not None and src.decoded_from is not None:
        return src.decoded_from, True
    return path, False


def evidence_line(ctx, path: str, line: int | None, label: str) -> Evidence:
    src = source_of(ctx, path)
    excerpt = src.parsed.line_text(line) if src is not None else ""
    shown, decoded = display(ctx, path)
    if decoded:
        label = f"{label} [decoded wrapper text]"
    return Evidence(label, shown, line, excerpt[:200] or None)
