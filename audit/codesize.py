"""Code-byte conventions of RULES.md R-ARTIFACT-CODE-COUNT, measured without executing anything.

Three numbers matter for a script:
- raw: its UTF-8 bytes (what the baseline's `Code size:` line counts);
- whether it is a self-extracting wrapper (`exec(lzma.decompress(base64.b85decode("...")))`,
  convention (a)) whose own file size is what gets counted;
- for a readable script, an estimate of convention (b): strip comments, docstrings, blank lines and
  the spaces around symbols, indent by one space, compress (lzma preset 9 extreme / brotli 11, the
  smaller) and wrap in the same `exec(...)` shell. On the eleven 04-10..04-29 records this lands
  within -2.1%..+2.1% of the pyminify-based "Code size (compressed)" they logged (e.g. 26,290 vs
  26,845; 32,664 vs 31,999): close, not byte-exact. It costs ~0.4 s on a 150 KB script, hence
  `estimate=False` where only the raw size is needed.

A wrapper is decoded *statically*: the `exec` argument is evaluated by a tiny interpreter that
knows only string/bytes literals and the decode/decompress functions of the standard codecs, and
every decompression runs with a hard output cap, so a decompression bomb is reported, not expanded.
"""

from __future__ import annotations

import ast
import base64
import binascii
import bz2
import io
import lzma
import tokenize
import warnings
import zlib
from dataclasses import dataclass
from typing import Any

# Decoded sources larger than this are refused (real inner scripts are < 200 KB).
MAX_DECODED_BYTES = 8 * 1024 * 1024
MAX_WRAPPER_DEPTH = 3  # a wrapper whose inner source is again a wrapper, and so on

# The shell of the challenge's self-extracting scripts; its length is the fixed overhead added to
# the base85 payload when estimating convention (b).
WRAPPER_HEAD_LZMA = 'import lzma as L,base64 as B\nexec(L.decompress(B.b85decode("'
WRAPPER_TAIL_LZMA = '"),format=L.FORMAT_RAW,filters=[{"id":L.FILTER_LZMA2}]))\n'
WRAPPER_HEAD_BROTLI = 'import brotli as R,base64 as B\nexec(R.decompress(B.b85decode("'
WRAPPER_TAIL_BROTLI = '")))\n'


class DecodeError(Exception):
    """The wrapper cannot be decoded statically (unknown call, bad data, output over the cap)."""


@dataclass(frozen=True)
class CodeSizes:
    """The sizes of one script under the conventions of R-ARTIFACT-CODE-COUNT."""

    raw: int  # UTF-8 bytes of the file as shipped
    wrapper: bool  # the file is a self-extracting exec(decompress(decode("..."))) script
    inner_source: str | None  # the decoded source of a wrapper (None if not a wrapper / undecodable)
    compressed_estimate: int | None  # convention (b) for readable code; == raw for a wrapper
    wrapper_codec: str | None = None  # e.g. "b85decode+lzma.decompress"
    decode_error: str | None = None  # why a wrapper could not be decoded
    estimate_codec: str | None = None  # "lzma" or "brotli": the smaller of the two
    minified_bytes: int | None = None  # bytes after stripping comments/docstrings

    @property
    def inner_raw(self) -> int | None:
        return len(self.inner_source.encode("utf-8")) if self.inner_source is not None else None


@dataclass(frozen=True)
class WrapperInfo:
    codec: str
    inner_source: str | None
    error: str | None
    line: int  # line of the exec call


def code_sizes(source: str, *, estimate: bool = True) -> CodeSizes:
    """Measure one script. Never raises; `estimate=False` skips the (slower) minify+compress."""
    raw = len(source.encode("utf-8", errors="surrogatepass"))
    info = find_wrapper(source)
    if info is not None:
        return CodeSizes(raw=raw, wrapper=True, inner_source=info.inner_source, compressed_estimate=raw,
                         wrapper_codec=info.codec, decode_error=info.error)
    if not estimate:
        return CodeSizes(raw=raw, wrapper=False, inner_source=None, compressed_estimate=None)
    minified = minify_source(source)
    size, codec = compressed_wrapper_size(minified)
    return CodeSizes(raw=raw, wrapper=False, inner_source=None, compressed_estimate=size,
                     estimate_codec=codec, minified_bytes=len(minified.encode("utf-8", errors="surrogatepass")))


# -- wrapper detection and static decoding ------------------------------------------------------

def find_wrapper(source: str) -> WrapperInfo | None:
    """The wrapper of `source` (decoded as far as possible), or None if it is not a wrapper.

    A wrapper is a module whose top level is imports/assignments plus one `exec(...)` whose
    argument involves a decode or decompress call. Nested wrappers are unwrapped up to
    MAX_WRAPPER_DEPTH levels.
    """
    codecs: list[str] = []
    current = source
    line = 0
    for _ in range(MAX_WRAPPER_DEPTH):
        found = _exec_payload(current)
        if found is None:
            break
        arg, aliases, exec_line = found
        if not line:
            line = exec_line
        ev = _StaticEval(aliases)
        try:
            value = ev.eval(arg)
            if isinstance(value, bytes):
                value = value.decode("utf-8")
            if not isinstance(value, str):
                raise DecodeError(f"exec argument evaluates to {type(value).__name__}")
        except DecodeError as exc:
            codecs.extend(ev.used)
            return WrapperInfo("+".join(codecs) or "unknown", None, str(exc), line)
        except (ValueError, TypeError, UnicodeDecodeError, RecursionError, MemoryError) as exc:
            codecs.extend(ev.used)
            return WrapperInfo("+".join(codecs) or "unknown", None, f"{type(exc).__name__}: {exc}", line)
        codecs.extend(ev.used)
        current = value
    if not codecs:
        return None
    return WrapperInfo("+".join(codecs), current, None, line)


_CODEC_FUNCS = {
    "base64.b85decode", "base64.b64decode", "base64.a85decode", "base64.b32decode", "base64.b16decode",
    "base64.urlsafe_b64decode", "base64.standard_b64decode", "base64.decodebytes",
    "binascii.a2b_base64", "binascii.unhexlify", "binascii.a2b_hex", "bytes.fromhex",
    "lzma.decompress", "zlib.decompress", "gzip.decompress", "bz2.decompress", "brotli.decompress",
    "codecs.decode",
}


def _exec_payload(source: str) -> tuple[ast.expr, dict[str, str], int] | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return None
    aliases: dict[str, str] = {}
    exec_call: ast.Call | None = None
    for stmt in tree.body:
        if isinstance(stmt, ast.Import):
            for a in stmt.names:
                aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(stmt, ast.ImportFrom) and stmt.module and not stmt.level:
            for a in stmt.names:
                aliases[a.asname or a.name] = f"{stmt.module}.{a.name}"
        elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call) and _is_name(stmt.value.func, "exec"):
            if exec_call is not None:
                return None  # two exec calls: not the single-payload shape
            exec_call = stmt.value
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.Pass)) or (
            isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
        ):
            continue
        else:
            return None  # real code at top level: not a wrapper
    if exec_call is None or not exec_call.args:
        return None
    arg = exec_call.args[0]
    if not any(_looks_like_codec_call(n, aliases) for n in ast.walk(arg)):
        return None
    return arg, aliases, exec_call.lineno


def _looks_like_codec_call(node: ast.AST, aliases: dict[str, str]) -> bool:
    if not isinstance(node, ast.Call):
        return False
    if _dotted(node.func, aliases) in _CODEC_FUNCS:
        return True
    return isinstance(node.func, ast.Attribute) and (
        node.func.attr.endswith("decompress") or node.func.attr.endswith("decode") and node.func.attr != "decode"
    )


def _is_name(node: ast.expr, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def _dotted(node: ast.expr, aliases: dict[str, str]) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(aliases.get(node.id, node.id))
    return ".".join(reversed(parts))


class _StaticEval:
    """Evaluate the exec argument of a wrapper: literals and the known codecs only, output capped."""

    def __init__(self, aliases: dict[str, str]):
        self.aliases = aliases
        self.used: list[str] = []

    def eval(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes, int, float, bool, type(None))):
            return node.value
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self.eval(node.left), self.eval(node.right)
            if type(left) is type(right) and isinstance(left, (str, bytes)):
                if len(left) + len(right) > MAX_DECODED_BYTES:
                    raise DecodeError("literal too large")
                return left + right
            raise DecodeError("unsupported '+' operands")
        if isinstance(node, ast.List):
            return [self.eval(e) for e in node.elts]
        if isinstance(node, ast.Tuple):
            return tuple(self.eval(e) for e in node.elts)
        if isinstance(node, ast.Dict):
            return {self.eval(k) if k is not None else None: self.eval(v) for k, v in zip(node.keys, node.values)}
        if isinstance(node, ast.Attribute):
            name = _dotted(node, self.aliases)
            if name and name.startswith("lzma.") and name[5:].isupper() and hasattr(lzma, name[5:]):
                return getattr(lzma, name[5:])
            if name and name.startswith("zlib.") and name[5:].isupper() and hasattr(zlib, name[5:]):
                return getattr(zlib, name[5:])
            raise DecodeError(f"unsupported name {name or ast.dump(node)[:40]}")
        if isinstance(node, ast.Call):
            return self._call(node)
        raise DecodeError(f"unsupported expression {type(node).__name__}")

    def _call(self, node: ast.Call) -> Any:
        func = node.func
        if isinstance(func, ast.Name) and func.id == "compile" and node.args:  # exec(compile(src, ...))
            return self.eval(node.args[0])
        if isinstance(func, ast.Attribute) and func.attr in {"decode", "encode"} and _dotted(func, self.aliases) not in _CODEC_FUNCS:
            target = self.eval(func.value)
            args = [self.eval(a) for a in node.args]
            encoding = args[0] if args else "utf-8"
            if not isinstance(encoding, str):
                raise DecodeError("bad encoding argument")
            if func.attr == "decode" and isinstance(target, bytes):
                return target.decode(encoding)
            if func.attr == "encode" and isinstance(target, str):
                return target.encode(encoding)
            raise DecodeError(f"unsupported .{func.attr}() target")
        name = _dotted(func, self.aliases)
        if name not in _CODEC_FUNCS:
            raise DecodeError(f"call of {name or 'an expression'} is not a known codec")
        args = [self.eval(a) for a in node.args]
        kwargs = {kw.arg: self.eval(kw.value) for kw in node.keywords if kw.arg}
        if not args:
            raise DecodeError(f"{name} without data")
        self.used.append(name)
        return _apply_codec(name, args, kwargs)


def _as_bytes(data: Any) -> bytes:
    if isinstance(data, str):
        return data.encode("ascii", errors="strict")
    if isinstance(data, bytes):
        return data
    raise DecodeError("codec input is not str/bytes")


def _apply_codec(name: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
    data = args[0]
    try:
        if name == "base64.b85decode":
            return base64.b85decode(_as_bytes(data))
        if name in {"base64.b64decode", "base64.standard_b64decode", "base64.decodebytes", "binascii.a2b_base64"}:
            return base64.b64decode(_as_bytes(data))
        if name == "base64.urlsafe_b64decode":
            return base64.urlsafe_b64decode(_as_bytes(data))
        if name == "base64.a85decode":
            return base64.a85decode(_as_bytes(data))
        if name == "base64.b32decode":
            return base64.b32decode(_as_bytes(data))
        if name in {"base64.b16decode", "binascii.unhexlify", "binascii.a2b_hex", "bytes.fromhex"}:
            return binascii.unhexlify(_as_bytes(data).strip())
        if name == "codecs.decode":
            encoding = args[1] if len(args) > 1 else kwargs.get("encoding", "utf-8")
            if isinstance(data, bytes) and encoding in {"utf-8", "utf8", "ascii", "latin-1"}:
                return data.decode(encoding)
            raise DecodeError(f"codecs.decode with {encoding!r} is not supported")
    except (ValueError, binascii.Error) as exc:
        raise DecodeError(f"{name}: {exc}") from None
    payload = _as_bytes(data)
    if name == "lzma.decompress":
        fmt = kwargs.get("format", args[1] if len(args) > 1 else lzma.FORMAT_AUTO)
        filters = kwargs.get("filters", args[3] if len(args) > 3 else None)
        return bounded_lzma(payload, fmt, filters)
    if name == "zlib.decompress":
        wbits = kwargs.get("wbits", args[1] if len(args) > 1 else zlib.MAX_WBITS)
        return bounded_zlib(payload, wbits if isinstance(wbits, int) else zlib.MAX_WBITS)
    if name == "gzip.decompress":
        return bounded_zlib(payload, 31)
    if name == "bz2.decompress":
        return _bounded_stream(bz2.BZ2Decompressor(), payload, "bz2")
    if name == "brotli.decompress":
        return bounded_brotli(payload)
    raise DecodeError(f"{name} is not supported")


def bounded_lzma(data: bytes, fmt: Any = lzma.FORMAT_AUTO, filters: Any = None, limit: int | None = None) -> bytes:
    """lzma.decompress with a hard cap on the output (a bomb raises DecodeError)."""
    try:
        dec = lzma.LZMADecompressor(format=fmt, filters=filters) if fmt == lzma.FORMAT_RAW else lzma.LZMADecompressor(format=fmt)
    except (ValueError, TypeError, lzma.LZMAError) as exc:
        raise DecodeError(f"lzma: bad parameters: {exc}") from None
    return _bounded_stream(dec, data, "lzma", limit)


def bounded_zlib(data: bytes, wbits: int = zlib.MAX_WBITS, limit: int | None = None) -> bytes:
    limit = MAX_DECODED_BYTES if limit is None else limit
    try:
        dec = zlib.decompressobj(wbits)
        out = dec.decompress(data, limit + 1)
    except (ValueError, zlib.error) as exc:
        raise DecodeError(f"zlib: {exc}") from None
    if len(out) > limit:
        raise DecodeError(f"zlib output exceeds {limit:,} bytes (decompression bomb?)")
    if not dec.eof:
        raise DecodeError("zlib: truncated stream")
    return out


def _bounded_stream(dec: Any, data: bytes, label: str, limit: int | None = None) -> bytes:
    limit = MAX_DECODED_BYTES if limit is None else limit
    try:
        out = dec.decompress(data, max_length=limit + 1)
    except (EOFError, OSError, ValueError, lzma.LZMAError) as exc:
        raise DecodeError(f"{label}: {exc}") from None
    if len(out) > limit:
        raise DecodeError(f"{label} output exceeds {limit:,} bytes (decompression bomb?)")
    if not getattr(dec, "eof", True):
        raise DecodeError(f"{label}: truncated stream")
    return bytes(out)


def bounded_brotli(data: bytes, limit: int | None = None) -> bytes:
    limit = MAX_DECODED_BYTES if limit is None else limit
    try:
        import brotli  # optional dependency
    except ImportError:
        raise DecodeError("brotli is not installed") from None
    dec = brotli.Decompressor()
    chunks: list[bytes] = []
    total = 0
    try:
        piece = dec.process(data, output_buffer_limit=1 << 20)
        while True:
            chunks.append(piece)
            total += len(piece)
            if total > limit:
                raise DecodeError(f"brotli output exceeds {limit:,} bytes (decompression bomb?)")
            if dec.is_finished() or dec.can_accept_more_data():
                break
            piece = dec.process(b"", output_buffer_limit=1 << 20)
    except brotli.error as exc:
        raise DecodeError(f"brotli: {exc}") from None
    if not dec.is_finished():
        raise DecodeError("brotli: truncated stream")
    return b"".join(chunks)


# -- convention (b): minify + compress + wrap ---------------------------------------------------

def minify_source(source: str) -> str:
    """Strip comments, docstrings, other bare string statements and blank lines; 1-space indent;
    a space between tokens only where two words would otherwise merge.

    Token-level (stdlib `tokenize`): on a 150 KB script it takes ~0.15 s where a libcst
    transform took 2.5-3.5 s, and its estimate lands within ~2% of the libcst one. The result
    is valid Python with the same meaning (a block left empty gets `pass`). Unparseable source
    is returned unchanged.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(source)
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (SyntaxError, ValueError, RecursionError, MemoryError, tokenize.TokenError):
        return source
    offsets = _line_offsets(source)
    entries: list[tuple[int, str | None]] = []  # (depth, text); None = a dropped string statement
    depth = 0
    logical: list[str] = []
    only_strings = True
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        kind = tok.type
        if kind == tokenize.INDENT:
            depth += 1
        elif kind == tokenize.DEDENT:
            depth -= 1
        elif kind in (tokenize.NEWLINE, tokenize.ENDMARKER):
            if logical:
                entries.append((depth, None if only_strings else _join_words(logical)))
            logical, only_strings = [], True
        elif kind not in (tokenize.COMMENT, tokenize.NL, tokenize.ENCODING):
            if kind == _FSTRING_START:  # Python 3.12+: keep the whole f-string as written
                j, nest = i, 0
                while j < len(tokens):
                    nest += {_FSTRING_START: 1, _FSTRING_END: -1}.get(tokens[j].type, 0)
                    if nest == 0:
                        break
                    j += 1
                end = tokens[min(j, len(tokens) - 1)].end
                logical.append(source[offsets[tok.start[0] - 1] + tok.start[1]:offsets[end[0] - 1] + end[1]])
                only_strings, i = False, j + 1
                continue
            logical.append(tok.string)
            only_strings = only_strings and kind == tokenize.STRING
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


def _wordish(ch: str) -> bool:
    return ch.isalnum() or ch == "_" or ord(ch) > 127


def _join_words(parts: list[str]) -> str:
    out: list[str] = []
    prev = ""
    for text in parts:
        if prev and text and (
            (_wordish(prev[-1]) and (_wordish(text[0]) or text[0] in "\"'"))
            or (prev[-1] in "\"'" and _wordish(text[0]))
        ):
            out.append(" ")
        out.append(text)
        prev = text
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


def compressed_wrapper_size(minified: str) -> tuple[int, str]:
    """Length of `exec(decompress(b85decode("...")))` around the minified source; best codec wins."""
    data = minified.encode("utf-8", errors="surrogatepass")
    lzma_payload = lzma.compress(data, format=lzma.FORMAT_RAW,
                                 filters=[{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}])
    best = (len(WRAPPER_HEAD_LZMA) + len(base64.b85encode(lzma_payload)) + len(WRAPPER_TAIL_LZMA), "lzma")
    try:
        import brotli

        br_payload = brotli.compress(data, quality=11, lgwin=24)
        size = len(WRAPPER_HEAD_BROTLI) + len(base64.b85encode(br_payload)) + len(WRAPPER_TAIL_BROTLI)
        if size < best[0]:
            best = (size, "brotli")
    except ImportError:
        pass
    return best
