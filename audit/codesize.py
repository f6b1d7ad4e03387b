"""Code-byte conventions of RULES.md R-ARTIFACT-CODE-COUNT, measured without executing anything.

(Over 450 lines on purpose: it is also the one decoder of packed code, and the sizes and the
decoder share the static mini-interpreter and the per-folder decode budget.)

Three numbers matter for a script:
- raw: its UTF-8 bytes (what the baseline's `Code size:` line counts);
- whether it is a self-extracting wrapper (`exec(lzma.decompress(base64.b85decode("...")))`,
  convention (a)) whose own file size is what gets counted;
- for a readable script, an estimate of convention (b) (minify.py): strip comments, docstrings,
  blank lines and the spaces around symbols, indent by one space, compress (the bytes of lzma
  preset 9 extreme, written as 6e / brotli 11, the smaller) and wrap in the same `exec(...)` shell.
  The rules try lzma first and brotli only when lzma's figure does not fit (audit/artifact.py):
  their answers are those of the smaller codec, and brotli-11 costs five times lzma.
  On the eleven 04-10..04-29 records this lands within -2.1%..+2.1% of the pyminify-based "Code
  size (compressed)" they logged: close, not byte-exact. It costs ~0.2 s on a 150 KB script, hence
  `estimate=False` where only the raw size is needed.

This module is also the one decoder of packed code, used by the submission reader, code size and
the analysis sources alike. A wrapper is decoded *statically*: the `exec` argument is evaluated by
a tiny interpreter that knows only string/bytes literals, names bound to them at module level and
the decode/decompress functions of the standard codecs. `decoded_blobs` applies the same
interpreter to every call that decompresses a constant (a blob unpacked into a variable, a bundle
written to files). Every decompression runs with a hard output cap, and all decompressions of one
folder share one `DecodeBudget`, so a few KB of bombs cannot cost gigabytes however many there are.
"""

from __future__ import annotations

import ast
import base64
import binascii
import bz2
import lzma
import re
import unicodedata
import warnings
import zlib
from dataclasses import dataclass, field, replace
from typing import Any

from audit.minify import (  # noqa: F401 - re-exported: convention (b) lives in minify.py
    CODECS,
    LZMA_PRESET,
    WRAPPER_HEAD_BROTLI,
    WRAPPER_HEAD_LZMA,
    WRAPPER_TAIL_BROTLI,
    WRAPPER_TAIL_LZMA,
    compressed_wrapper_size,
    minify_source,
    quick_wrapper_size,
)

# Decoded sources larger than this are refused (real inner scripts are < 200 KB).
MAX_DECODED_BYTES = 8 * 1024 * 1024
# Everything static decoding builds for one folder together: decoded literals, decompressed and
# concatenated bytes (real folders stay under 300 KB in all). Room for one blob at the cap.
MAX_FOLDER_DECODED_BYTES = 2 * MAX_DECODED_BYTES
# Decoded code is parsed (to look for a nested wrapper) only within the limit of shipped code
# (audit.analysis.parse.MAX_PARSE_CHARS).
MAX_PARSED_CHARS = 4 * 1024 * 1024
MAX_WRAPPER_DEPTH = 3  # a wrapper whose inner source is again a wrapper, and so on
MAX_BLOB_MODULE_STATEMENTS = 40  # decoded_blobs looks into small (launcher-like) modules only


class DecodeError(Exception):
    """The wrapper cannot be decoded statically (unknown call, bad data, output over the cap)."""


class DecodeBudget:
    """Bytes static decoding may still build for one folder; `used` counts every codec's output
    and every concatenation (refused bombs included, up to the cap they hit)."""

    def __init__(self, total: int | None = None):
        self.total = MAX_FOLDER_DECODED_BYTES if total is None else total
        self.used = 0

    def limit(self) -> int:
        """The cap for the next decompression: the per-blob cap or what is left, the smaller."""
        return max(0, min(MAX_DECODED_BYTES, self.total - self.used))

    def spend(self, n: int) -> None:
        self.used += n


@dataclass(frozen=True)
class CodeSizes:
    """The sizes of one script under the conventions of R-ARTIFACT-CODE-COUNT."""

    raw: int  # UTF-8 bytes of the file as shipped
    wrapper: bool  # the file is a self-extracting exec(decompress(decode("..."))) script
    inner_source: str | None  # the decoded source of a wrapper (None if not a wrapper / undecodable)
    compressed_estimate: int | None  # convention (b) for readable code; == raw for a wrapper
    wrapper_codec: str | None = None  # e.g. "b85decode+lzma.decompress"
    decode_error: str | None = None  # why a wrapper could not be decoded
    estimate_codec: str | None = None  # "lzma" or "brotli": the smallest of the codecs tried
    minified_bytes: int | None = None  # bytes after stripping comments/docstrings
    codecs_tried: tuple[str, ...] = ()  # the codecs the estimate is the smallest of
    # the minified text, kept so that more codecs can be tried without minifying again
    minified: str | None = field(default=None, repr=False, compare=False)

    @property
    def inner_raw(self) -> int | None:
        return len(self.inner_source.encode("utf-8")) if self.inner_source is not None else None


@dataclass(frozen=True)
class WrapperInfo:
    codec: str
    inner_source: str | None
    error: str | None
    line: int  # line of the exec call


_UNKNOWN: Any = object()
# The full estimate (tokenize-minify, lzma 9e bytes, brotli 11) costs ~0.2 s on a 150 KB script and
# minutes on a hostile 8 MB one; real scripts are at most ~220 KB. Above this size the estimate is
# the zlib-9 wrapper of the unminified text: seconds at most, and in practice larger than what a
# minifier plus lzma/brotli give (nothing stripped, a weaker codec), so it errs towards the cap.
MAX_FULL_ESTIMATE_BYTES = 1 << 20


def code_sizes(source: str, *, estimate: bool = True, wrapper: WrapperInfo | None = _UNKNOWN,
               parses: bool | None = None, codecs: tuple[str, ...] = CODECS) -> CodeSizes:
    """Measure one script. Never raises; `estimate=False` skips the (slower) minify+compress.

    `wrapper` is the file's `find_wrapper` result when the caller already has it (decoded once per
    folder); `parses` whether `ast.parse(source)` succeeds, when already known; `codecs` those the
    estimate is the smallest of (`with_codecs` adds others later).
    """
    raw = len(source.encode("utf-8", errors="surrogatepass"))
    info = find_wrapper(source) if wrapper is _UNKNOWN else wrapper
    if info is not None:
        return CodeSizes(raw=raw, wrapper=True, inner_source=info.inner_source, compressed_estimate=raw,
                         wrapper_codec=info.codec, decode_error=info.error)
    if not estimate:
        return CodeSizes(raw=raw, wrapper=False, inner_source=None, compressed_estimate=None)
    if raw > MAX_FULL_ESTIMATE_BYTES:
        size = quick_wrapper_size(source)
        return CodeSizes(raw=raw, wrapper=False, inner_source=None, compressed_estimate=size,
                         estimate_codec="zlib, not minified (script too large for the full estimate)")
    minified = minify_source(source, parses=parses)
    size, codec = compressed_wrapper_size(minified, codecs)
    return CodeSizes(raw=raw, wrapper=False, inner_source=None, compressed_estimate=size,
                     estimate_codec=codec, minified_bytes=len(minified.encode("utf-8", errors="surrogatepass")),
                     codecs_tried=codecs, minified=minified)


def with_codecs(sizes: CodeSizes, codecs: tuple[str, ...] = CODECS) -> CodeSizes:
    """The same estimate, the smallest over `codecs` too: only the codecs not tried yet run, on
    the minified text already made. Sizes without a minified estimate (a wrapper, a script over
    MAX_FULL_ESTIMATE_BYTES, no estimate asked) are returned as they are."""
    new = tuple(c for c in codecs if c not in sizes.codecs_tried)
    if sizes.minified is None or sizes.compressed_estimate is None or not new:
        return sizes
    size, codec = compressed_wrapper_size(sizes.minified, new)
    tried = sizes.codecs_tried + new
    if size < sizes.compressed_estimate:  # a tie keeps the codec tried first
        return replace(sizes, compressed_estimate=size, estimate_codec=codec, codecs_tried=tried)
    return replace(sizes, codecs_tried=tried)


# -- wrapper detection and static decoding ------------------------------------------------------

def find_wrapper(source: str, *, budget: DecodeBudget | None = None,
                 tree: ast.Module | None = None) -> WrapperInfo | None:
    """The wrapper of `source` (decoded as far as possible), or None if it is not a wrapper.

    A wrapper is a module whose top level is imports/assignments plus one `exec(...)` whose
    argument involves a decode or decompress call (directly or through a name bound at module
    level). Nested wrappers are unwrapped up to MAX_WRAPPER_DEPTH levels. `tree` is the parse of
    `source` when the caller has it; `budget` the folder's decoded-bytes budget.
    """
    budget = budget if budget is not None else DecodeBudget()
    codecs: list[str] = []
    current = source
    line = 0
    for depth in range(MAX_WRAPPER_DEPTH):
        found = _exec_payload(current, tree if depth == 0 else None)
        if found is None:
            break
        arg, aliases, bound, exec_line = found
        if not line:
            line = exec_line
        ev = _StaticEval(aliases, budget, bound)
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


def decoded_blobs(tree: ast.Module, *, budget: DecodeBudget | None = None) -> list[str]:
    """Texts of the calls of a small module that decompress a constant (or a name bound to one):
    `_b = lzma.decompress(base64.b85decode("..."))`, `exec(zlib.decompress(...))`. Undecodable
    calls are skipped; a call inside another decompressing call is decoded with it."""
    if len(tree.body) > MAX_BLOB_MODULE_STATEMENTS:
        return []
    budget = budget if budget is not None else DecodeBudget()
    aliases = _aliases(tree.body)
    bound = _bound_names(tree.body)
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and _decompresses(n, aliases)]
    inner = {id(m) for c in calls for m in ast.walk(c) if m is not c}
    out = []
    for call in calls:
        if id(call) in inner:
            continue
        try:
            value = _StaticEval(aliases, budget, bound).eval(call)
            text = value.decode("utf-8") if isinstance(value, bytes) else value
        except (DecodeError, ValueError, TypeError, UnicodeDecodeError, RecursionError, MemoryError):
            continue
        if isinstance(text, str):
            out.append(text)
    return out


_CODEC_FUNCS = {
    "base64.b85decode", "base64.b64decode", "base64.a85decode", "base64.b32decode", "base64.b16decode",
    "base64.urlsafe_b64decode", "base64.standard_b64decode", "base64.decodebytes",
    "binascii.a2b_base64", "binascii.unhexlify", "binascii.a2b_hex", "bytes.fromhex",
    "lzma.decompress", "zlib.decompress", "gzip.decompress", "bz2.decompress", "brotli.decompress",
    "codecs.decode",
}
_DECOMPRESS_FUNCS = {"lzma.decompress", "zlib.decompress", "gzip.decompress", "bz2.decompress", "brotli.decompress"}

# A top-level `exec(...)` statement starts a line or follows a `;`. Checking the text first spares
# the parse of every ordinary script (identifiers are NFKC-normalised, so non-ASCII text is checked
# in that form).
_TOP_EXEC = re.compile(r"(?:^|;)[\s(\ufeff]*exec\b", re.M)


def _exec_payload(source: str, tree: ast.Module | None = None,
                  ) -> tuple[ast.expr, dict[str, str], dict[str, ast.expr], int] | None:
    if tree is None:
        if len(source) > MAX_PARSED_CHARS:
            return None
        if not _TOP_EXEC.search(source if source.isascii() else unicodedata.normalize("NFKC", source)):
            return None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tree = ast.parse(source)
        except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
            return None
    exec_call: ast.Call | None = None
    for stmt in tree.body:
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call) and _is_name(stmt.value.func, "exec"):
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
    aliases = _aliases(tree.body)
    bound = _bound_names(tree.body)
    arg = exec_call.args[0]
    if not any(_looks_like_codec_call(n, aliases) for n in _walk_bound(arg, bound)):
        return None
    return arg, aliases, bound, exec_call.lineno


def _aliases(body: list[ast.stmt]) -> dict[str, str]:
    """Module-level import aliases: local name -> module or object path."""
    aliases: dict[str, str] = {}
    for stmt in body:
        if isinstance(stmt, ast.Import):
            for a in stmt.names:
                aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(stmt, ast.ImportFrom) and stmt.module and not stmt.level:
            for a in stmt.names:
                aliases[a.asname or a.name] = f"{stmt.module}.{a.name}"
    return aliases


def _bound_names(body: list[ast.stmt]) -> dict[str, ast.expr]:
    """Names assigned exactly once at module level (`blob = "..."`), with their value."""
    seen: dict[str, int] = {}
    values: dict[str, ast.expr] = {}
    for stmt in body:
        targets = stmt.targets if isinstance(stmt, ast.Assign) else []
        for t in targets:
            for n in ast.walk(t):
                if isinstance(n, ast.Name):
                    seen[n.id] = seen.get(n.id, 0) + 1
                    values[n.id] = stmt.value  # type: ignore[attr-defined]
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            seen[stmt.target.id] = seen.get(stmt.target.id, 0) + 1
            if stmt.value is not None:
                values[stmt.target.id] = stmt.value
    return {k: v for k, v in values.items()
            if seen[k] == 1 and any(isinstance(s, ast.Assign) and len(s.targets) == 1
                                    and isinstance(s.targets[0], ast.Name) and s.targets[0].id == k for s in body)}


def _walk_bound(node: ast.expr, bound: dict[str, ast.expr]) -> list[ast.AST]:
    """The nodes of `node`, and of the module-level values of the names it uses (once each)."""
    out: list[ast.AST] = []
    todo: list[ast.AST] = [node]
    followed: set[str] = set()
    while todo:
        for n in ast.walk(todo.pop()):
            out.append(n)
            if isinstance(n, ast.Name) and n.id in bound and n.id not in followed:
                followed.add(n.id)
                todo.append(bound[n.id])
    return out


def _looks_like_codec_call(node: ast.AST, aliases: dict[str, str]) -> bool:
    if not isinstance(node, ast.Call):
        return False
    if _dotted(node.func, aliases) in _CODEC_FUNCS:
        return True
    return isinstance(node.func, ast.Attribute) and (
        node.func.attr.endswith("decompress") or node.func.attr.endswith("decode") and node.func.attr != "decode"
    )


def _decompresses(node: ast.Call, aliases: dict[str, str]) -> bool:
    name = _dotted(node.func, aliases)
    return name in _DECOMPRESS_FUNCS or (isinstance(node.func, ast.Attribute) and node.func.attr == "decompress")


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
    """Evaluate the exec argument of a wrapper: literals, names bound to them at module level and
    the known codecs only; every decompression is capped by the folder's budget."""

    def __init__(self, aliases: dict[str, str], budget: DecodeBudget | None = None,
                 bound: dict[str, ast.expr] | None = None):
        self.aliases = aliases
        self.budget = budget if budget is not None else DecodeBudget()
        self.bound = bound or {}
        self.resolving: set[str] = set()
        self.values: dict[str, Any] = {}  # each bound name evaluated once (`b2 = b1 + b1` stays linear)
        self.used: list[str] = []

    def eval(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes, int, float, bool, type(None))):
            return node.value
        if isinstance(node, ast.Name) and node.id in self.values:
            return self.values[node.id]
        if isinstance(node, ast.Name) and node.id in self.bound and node.id not in self.resolving:
            self.resolving.add(node.id)
            try:
                value = self.values[node.id] = self.eval(self.bound[node.id])
                return value
            finally:
                self.resolving.discard(node.id)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self.eval(node.left), self.eval(node.right)
            if type(left) is type(right) and isinstance(left, (str, bytes)):
                if len(left) + len(right) > min(MAX_DECODED_BYTES, self.budget.total - self.budget.used):
                    raise DecodeError("literal too large")
                self.budget.spend(len(left) + len(right))  # built bytes count like decoded ones
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
        return _apply_codec(name, args, kwargs, self.budget)


def _as_bytes(data: Any) -> bytes:
    if isinstance(data, str):
        return data.encode("ascii", errors="strict")
    if isinstance(data, bytes):
        return data
    raise DecodeError("codec input is not str/bytes")


def _apply_codec(name: str, args: list[Any], kwargs: dict[str, Any], budget: DecodeBudget) -> Any:
    """Apply one codec; its output counts against the folder's budget (decodes as well as
    decompressions, so a thousand decodes of one large literal cannot run either)."""
    if budget.limit() <= 0:
        raise DecodeError(f"{name}: this folder's decoded-bytes budget ({budget.total:,}) is spent "
                          "(decompression bomb?)")
    out = _apply_capped(name, args, kwargs, budget)
    if isinstance(out, (bytes, str)) and not name.endswith("decompress"):
        budget.spend(len(out))
    return out


def _apply_capped(name: str, args: list[Any], kwargs: dict[str, Any], budget: DecodeBudget) -> Any:
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
    limit = budget.limit()
    try:
        out = _decompress(name, payload, args, kwargs, limit)
    except _OverCap as over:
        budget.spend(over.size)
        spent = "" if limit == MAX_DECODED_BYTES else ", what is left of this folder's decoded-bytes budget"
        raise DecodeError(f"{over.label} output exceeds {limit:,} bytes{spent} (decompression bomb?)") from None
    budget.spend(len(out))
    return out


class _OverCap(DecodeError):
    """A decompression produced more than its cap (the output was dropped)."""

    def __init__(self, label: str, limit: int, size: int):
        super().__init__(f"{label} output exceeds {limit:,} bytes (decompression bomb?)")
        self.label = label
        self.size = size


def _decompress(name: str, payload: bytes, args: list[Any], kwargs: dict[str, Any], limit: int) -> bytes:
    if name == "lzma.decompress":
        fmt = kwargs.get("format", args[1] if len(args) > 1 else lzma.FORMAT_AUTO)
        filters = kwargs.get("filters", args[3] if len(args) > 3 else None)
        return bounded_lzma(payload, fmt, filters, limit)
    if name == "zlib.decompress":
        wbits = kwargs.get("wbits", args[1] if len(args) > 1 else zlib.MAX_WBITS)
        return bounded_zlib(payload, wbits if isinstance(wbits, int) else zlib.MAX_WBITS, limit)
    if name == "gzip.decompress":
        return bounded_zlib(payload, 31, limit)
    if name == "bz2.decompress":
        return _bounded_stream(bz2.BZ2Decompressor(), payload, "bz2", limit)
    if name == "brotli.decompress":
        return bounded_brotli(payload, limit)
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
        raise _OverCap("zlib", limit, len(out))
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
        raise _OverCap(label, limit, len(out))
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
                raise _OverCap("brotli", limit, total)
            if dec.is_finished() or dec.can_accept_more_data():
                break
            piece = dec.process(b"", output_buffer_limit=1 << 20)
    except brotli.error as exc:
        raise DecodeError(f"brotli: {exc}") from None
    if not dec.is_finished():
        raise DecodeError("brotli: truncated stream")
    return b"".join(chunks)


