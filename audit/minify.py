"""Convention (b) of R-ARTIFACT-CODE-COUNT: minify a readable script, compress it and measure the
self-extracting wrapper that would carry it (see codesize.py for the numbers it lands on)."""

from __future__ import annotations

import ast
import base64
import io
import lzma
import tokenize
import warnings
import zlib

from audit.tokens import python_tokens

# The shell of the challenge's self-extracting scripts; its length is the fixed overhead added to
# the base85 payload when estimating convention (b).
WRAPPER_HEAD_LZMA = 'import lzma as L,base64 as B\nexec(L.decompress(B.b85decode("'
WRAPPER_TAIL_LZMA = '"),format=L.FORMAT_RAW,filters=[{"id":L.FILTER_LZMA2}]))\n'
# xz presets 6-9 differ only in the dictionary (8, 16, 32, 64 MiB). The estimate compresses at
# most codesize.MAX_FULL_ESTIMATE_BYTES (1 MiB), which an 8 MiB dictionary covers whole, so 6e
# writes the same bytes as the `-9e` authors use (identical on all 422 scripts of the dev corpus
# and the PR sample; tests/test_codesize.py) for a fifth of the CPU and a seventh of the memory.
LZMA_PRESET = 6 | lzma.PRESET_EXTREME
# The same holds for a 1 MiB dictionary, which still covers every input, and costs a quarter less
# CPU than 8 MiB (its match-finder tables are set up at each call): identical bytes on 595 files
# (corpus scripts and standard-library modules, minified); tests/test_codesize.py.
LZMA_DICT_BYTES = 1 << 20
WRAPPER_HEAD_BROTLI = 'import brotli as R,base64 as B\nexec(R.decompress(B.b85decode("'
WRAPPER_TAIL_BROTLI = '")))\n'


def minify_source(source: str, *, parses: bool | None = None) -> str:
    """Strip comments, docstrings, other bare string statements and blank lines; 1-space indent;
    a space between tokens only where two words would otherwise merge.

    Token-level (`audit.tokens`): on a 150 KB script it takes ~0.05 s where a libcst transform took
    2.5-3.5 s, and its estimate lands within ~2% of the libcst one. The result
    is valid Python with the same meaning (a block left empty gets `pass`). Unparseable source
    is returned unchanged. `parses` is whether `ast.parse(source)` succeeds, when the caller knows.
    """
    if parses is False:
        return source
    try:
        if parses is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ast.parse(source)
        tokens = python_tokens(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError, tokenize.TokenError):
        return source
    offsets: list[int] = []  # line start offsets, for f-string tokens only (3.12+)
    entries: list[tuple[int, str | None]] = []  # (depth, text); None = a dropped string statement
    depth = 0
    logical: list[str] = []
    only_strings = True
    i = 0
    n = len(tokens)
    while i < n:  # once per token: the kinds are compared with module constants, not `tokenize.X`
        tok = tokens[i]
        kind = tok[0]
        if kind in _SKIPPED:
            pass
        elif kind == _INDENT:
            depth += 1
        elif kind == _DEDENT:
            depth -= 1
        elif kind in _LINE_ENDS:
            if logical:
                entries.append((depth, None if only_strings else _join_words(logical)))
            logical, only_strings = [], True
        elif kind == _FSTRING_START:  # Python 3.12+: keep the whole f-string as written
            j, nest = i, 0
            while j < n:
                nest += {_FSTRING_START: 1, _FSTRING_END: -1}.get(tokens[j][0], 0)
                if nest == 0:
                    break
                j += 1
            end = tokens[min(j, n - 1)][3]
            offsets = offsets or _line_offsets(source)
            logical.append(source[offsets[tok[2][0] - 1] + tok[2][1]:offsets[end[0] - 1] + end[1]])
            only_strings, i = False, j + 1
            continue
        else:
            logical.append(tok[1])
            if only_strings and kind != _STRING:
                only_strings = False
        i += 1
    lines = []
    for k, (d, text) in enumerate(entries):
        if text is not None:
            lines.append(" " * d + text)
        elif not _block_has_code(entries, k):
            lines.append(" " * d + "pass")
    return "\n".join(lines) + "\n"


_FSTRING_START = getattr(tokenize, "FSTRING_START", -1)
_FSTRING_END = getattr(tokenize, "FSTRING_END", -1)


def _line_offsets(source: str) -> list[int]:
    offsets, total = [], 0
    for line in io.StringIO(source):
        offsets.append(total)
        total += len(line)
    offsets.append(total)
    return offsets


_INDENT, _DEDENT, _STRING = tokenize.INDENT, tokenize.DEDENT, tokenize.STRING
_LINE_ENDS = frozenset({tokenize.NEWLINE, tokenize.ENDMARKER})
_SKIPPED = frozenset({tokenize.COMMENT, tokenize.NL, tokenize.ENCODING})
_QUOTES = frozenset("\"'")


def _join_words(parts: list[str]) -> str:
    """The tokens of one logical line, with a space only where two would merge: a word (or a
    number) followed by a word or a string, or a string followed by a word. Each token's first
    and last character are classified once (this runs on every token of the script)."""
    out: list[str] = []
    prev_word = prev_quote = False
    for text in parts:
        if text:
            first = text[0]
            first_word = first.isalnum() or first == "_" or first > "\x7f"
            if (prev_word and (first_word or first in _QUOTES)) or (prev_quote and first_word):
                out.append(" ")
            last = text[-1]
            prev_word = last.isalnum() or last == "_" or last > "\x7f"
            prev_quote = last in _QUOTES
        else:  # an empty token separates nothing
            prev_word = prev_quote = False
        out.append(text)
    return "".join(out)


def _block_has_code(entries: list[tuple[int, str | None]], k: int) -> bool:
    """Whether the block holding dropped statement k keeps some other statement at its depth."""
    depth = entries[k][0]
    for step in (-1, 1):
        j = k + step
        while 0 <= j < len(entries) and entries[j][0] >= depth:
            if entries[j][0] == depth and entries[j][1] is not None:
                return True
            j += step
    return False


# The codecs of the estimate, tried in this order (a tie keeps the first). The challenge's wrappers
# use both: #2135 counted pyminify + lzma, #1855 pyminify + brotli-11.
CODECS = ("lzma", "brotli")


def compressed_wrapper_size(minified: str, codecs: tuple[str, ...] = CODECS) -> tuple[int, str]:
    """Length of `exec(decompress(b85decode("...")))` around the minified source; the smallest of
    `codecs` wins (brotli is skipped where the package is missing)."""
    data = minified.encode("utf-8", errors="surrogatepass")
    best: tuple[int, str] | None = None
    for codec in codecs:
        size = _wrapper_size(data, codec)
        if size is not None and (best is None or size < best[0]):
            best = (size, codec)
    if best is None:  # no codec available (brotli alone, not installed): lzma is in the stdlib
        return compressed_wrapper_size(minified, ("lzma",))
    return best


def _wrapper_size(data: bytes, codec: str) -> int | None:
    if codec == "lzma":
        payload = lzma.compress(data, format=lzma.FORMAT_RAW,
                                filters=[{"id": lzma.FILTER_LZMA2, "preset": LZMA_PRESET,
                                          "dict_size": LZMA_DICT_BYTES}])
        return len(WRAPPER_HEAD_LZMA) + len(base64.b85encode(payload)) + len(WRAPPER_TAIL_LZMA)
    if codec == "brotli":
        try:
            import brotli
        except ImportError:
            return None
        payload = brotli.compress(data, quality=11, lgwin=24)
        return len(WRAPPER_HEAD_BROTLI) + len(base64.b85encode(payload)) + len(WRAPPER_TAIL_BROTLI)
    raise ValueError(f"unknown codec {codec!r}")


def quick_wrapper_size(source: str) -> int:
    """Length of a zlib-9 `exec(...)` wrapper around the unminified source: the bounded-cost
    estimate for scripts too large for the full one (codesize.MAX_FULL_ESTIMATE_BYTES)."""
    payload = zlib.compress(source.encode("utf-8", errors="surrogatepass"), 9)
    return len(WRAPPER_HEAD_LZMA) + len(base64.b85encode(payload)) + len(WRAPPER_TAIL_LZMA)
