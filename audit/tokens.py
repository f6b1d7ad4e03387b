"""The tokens of a Python text, fast: minify reads them, and the log-source check compares two
programs by them before it parses either."""

from __future__ import annotations

import io
import sys
import tokenize
import unicodedata
from collections import Counter

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
        if _C_TOKENIZER is not None:  # no fallback to `tokenize` here: a text 3.11 rejects has no list
            return [(t[1], "" if t[1] in _LAYOUT else t[0]) for t in _C_TOKENIZER(source) if t[1] not in _DROPPED]
        return [(t[0], "" if t[0] in _LAYOUT else t[1]) for t in python_tokens(source) if t[0] not in _DROPPED]
    except Exception:  # noqa: BLE001 - SyntaxError, TokenError, or a surprise from a private API
        return None


def same_program(source: str, tokens: list[tuple[int, str]]) -> bool | None:
    """Whether `source` parses to the tree of the text whose `code_tokens` are `tokens`, when the
    tokens alone can tell (one pass of the tokenizer over `source`, a fraction of a parse):

    - True: the same token list (the parser sees only tokens);
    - False: other names. Formatting (parentheses, quotes, spacing, number spelling, comments)
      never adds or drops a name token, and the only reordering a tree forgets (`f(k=v, *a)` is
      `f(*a, k=v)`) keeps the same names, so two texts with one tree have the same names, counted
      once `elif` is read as `else if` (the one keyword that spells two) and identifiers are
      NFKC-normalised as the parser does;
    - None: the names agree but other tokens differ, or the text does not tokenize: only a parse
      can tell.
    """
    mine = code_tokens(source)
    if mine is None:
        return None
    if mine == tokens:
        return True
    return False if _name_counts(mine) != _name_counts(tokens) else None


def _name_counts(tokens: list[tuple[int, str]]) -> Counter[str]:
    counts = Counter(text for kind, text in tokens if kind == tokenize.NAME)
    elifs = counts.pop("elif", 0)
    if elifs:
        counts["else"] += elifs
        counts["if"] += elifs
    for name in [n for n in counts if not n.isascii()]:
        same = unicodedata.normalize("NFKC", name)
        if same != name:
            counts[same] += counts.pop(name)
    return counts
