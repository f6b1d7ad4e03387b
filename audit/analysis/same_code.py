"""Whether two program texts differ only in comments or formatting (asked by the log-source
check for every log whose embedded source is not byte-identical to a shipped file). Texts are
parsed only within the limit of shipped code, the submitted side once per folder, and the trees
are compared node by node, stopping at the first difference (what `ast.dump` equality means,
without printing both trees)."""

from __future__ import annotations

import ast
import hashlib
import itertools
import warnings

from audit.analysis.parse import MAX_PARSE_CHARS
from audit.analysis.sources import analysis_sources
from audit.tokens import code_tokens, same_program


def same_syntax(ctx, embedded: str, submitted: str) -> bool:  # type: ignore[no-untyped-def]
    """True when both texts parse to the same syntax tree (positions aside). Seeds' logs usually
    embed the same text: each pair is answered once per folder."""
    theirs = _digest(submitted)
    key = f"analysis.same_syntax:{_digest(embedded)}:{theirs}"
    return ctx.memo(key, lambda: _same(ctx, embedded, submitted, theirs))


def _same(ctx, embedded: str, submitted: str, theirs: str) -> bool:  # type: ignore[no-untyped-def]
    """`theirs`: the digest of `submitted`, which keys its parse and its tokens."""
    b = ctx.memo("analysis.submitted_tree:" + theirs, lambda: _shared_parse(ctx, submitted))
    if b is None:
        return False
    # Most logs' copies differ from the script in comments and spacing only, or in names (a
    # variable added): the tokens tell both without a parse (`same_program`).
    if len(embedded) <= MAX_PARSE_CHARS:
        mine = ctx.memo("analysis.submitted_tokens:" + theirs, lambda: code_tokens(submitted))
        told = same_program(embedded, mine) if mine is not None else None
        if told is not None:
            return told
    a = _parse(embedded)
    return a is not None and same_tree(a, b)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).hexdigest()


def _shared_parse(ctx, text: str) -> ast.AST | None:  # type: ignore[no-untyped-def]
    """The folder's own parse of this text when a shipped file or an analysed source (a decoded
    wrapper) is exactly it, parsed as is. Shipped files come first: a file too large to analyse
    is still parsed once for its imports, and a second tree of a 4 MB script doubled the peak."""
    shipped = (ctx.parsed(rel) for rel, tf in sorted(ctx.submission.code.items()) if tf.text == text)
    for pm in itertools.chain(shipped, (src.parsed for src in analysis_sources(ctx))):
        if pm.tree is not None and not pm.downgraded_fstrings and pm.source == text:
            return pm.tree  # the first that fits: copies of one file are not all parsed here
    return _parse(text)


def _parse(text: str) -> ast.AST | None:
    if len(text) > MAX_PARSE_CHARS:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return None


def same_tree(a: ast.AST, b: ast.AST) -> bool:
    """`ast.dump(a) == ast.dump(b)`, iteratively and with an early exit."""
    todo: list[tuple[object, object]] = [(a, b)]
    while todo:
        x, y = todo.pop()
        if isinstance(x, ast.AST) or isinstance(y, ast.AST):
            if type(x) is not type(y):
                return False
            for field in x._fields:  # type: ignore[attr-defined]
                todo.append((getattr(x, field, None), getattr(y, field, None)))
        elif isinstance(x, list) or isinstance(y, list):
            if not (isinstance(x, list) and isinstance(y, list)) or len(x) != len(y):
                return False
            todo.extend(zip(x, y))
        elif type(x) is not type(y) or repr(x) != repr(y):
            return False
    return True
