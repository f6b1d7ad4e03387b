"""Whether two program texts differ only in comments or formatting (asked by the log-source
check for every log that embeds a source). Each distinct text is parsed once per folder, and only
within the limit of shipped code."""

from __future__ import annotations

import ast
import hashlib
import warnings

from audit.analysis.parse import MAX_PARSE_CHARS


def same_syntax(ctx, a: str, b: str) -> bool:  # type: ignore[no-untyped-def]
    """True when both texts parse to the same syntax tree."""
    da, db = _tree_digest(ctx, a), _tree_digest(ctx, b)
    return da is not None and da == db


def _tree_digest(ctx, text: str) -> str | None:  # type: ignore[no-untyped-def]
    key = "analysis.tree_digest:" + hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).hexdigest()
    return ctx.memo(key, lambda: _digest(text))


def _digest(text: str) -> str | None:
    if len(text) > MAX_PARSE_CHARS:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dump = ast.dump(ast.parse(text))
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return None
    return hashlib.sha256(dump.encode("utf-8", errors="surrogatepass")).hexdigest()
