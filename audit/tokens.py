"""The tokens of a Python text, fast: minify reads them, and the log-source check compares two
programs by them before it parses either."""

from __future__ import annotations

import io
import sys
import tokenize
from collections.abc import Iterator

# Python 3.11's `tokenize` is pure Python: 0.08 s of a 170 KB script, more than the codecs after
# it. Its C tokenizer (`_tokenize.TokenizerIter`, which 3.12's `tokenize` wraps with another
# signature) yields the same tokens without the comments and NL tokens minify drops anyway, in a
# sixth of the time. The minified text is identical on 14,161 of 14,166 files (standard library,
# site-packages, corpus); the 5 others hold identifiers with combining marks, which `tokenize`
# splits in two (a CPython bug) and the C tokenizer keeps whole (tests/test_codesize.py).
# Anything unexpected from the private API falls back to `tokenize`.
try:
    from _tokenize import TokenizerIter as _C_TOKENIZER  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - every CPython 3.11 has it
    _C_TOKENIZER = None
if sys.version_info[:2] != (3, 11):
    _C_TOKENIZER = None


def python_tokens(source: str, *, fast: bool = True) -> list[tuple]:
    """(type, string, start, end) of each token of valid code; start/end only from `tokenize`
    (the fast path runs only on 3.11, which has no f-string tokens that need them)."""
    if fast and _C_TOKENIZER is not None:
        try:
            return [(t[1], t[0], None, None) for t in _C_TOKENIZER(source)]
        except Exception:  # noqa: BLE001 - a private API: any surprise means the slow path
            pass
    return list(tokenize.generate_tokens(io.StringIO(source).readline))


_LAYOUT = frozenset({tokenize.INDENT, tokenize.DEDENT, tokenize.NEWLINE, tokenize.ENDMARKER})
_DROPPED = frozenset({tokenize.COMMENT, tokenize.NL, tokenize.ENCODING})


def code_tokens(source: str) -> list[tuple[int, str]] | None:
    """(type, text) of each token that reaches the parser: no comments, no blank lines, layout
    tokens by kind only (their text is indentation or a line end). Two texts with the same list
    parse to the same tree. None when the text does not tokenize."""
    try:
        return list(_code_tokens(source))
    except Exception:  # noqa: BLE001 - SyntaxError, TokenError, or a surprise from a private API
        return None


def same_code_tokens(source: str, tokens: list[tuple[int, str]]) -> bool:
    """Whether `source` has exactly these `code_tokens`, reading it only up to the first token
    that differs (a copy with a real change usually stops long before its end)."""
    try:
        n = 0
        for n, tok in enumerate(_code_tokens(source), 1):
            if n > len(tokens) or tokens[n - 1] != tok:
                return False
        return n == len(tokens)
    except Exception:  # noqa: BLE001 - as in code_tokens: a text that does not tokenize differs
        return False


def _code_tokens(source: str) -> Iterator[tuple[int, str]]:
    # No fallback to `tokenize` on 3.11: a text the C tokenizer rejects has no token list.
    raw = ((t[1], t[0]) for t in _C_TOKENIZER(source)) if _C_TOKENIZER is not None else python_tokens(source)
    for kind, text, *_ in raw:
        if kind not in _DROPPED:
            yield (kind, "" if kind in _LAYOUT else text)
