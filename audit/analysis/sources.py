"""Which code to analyse: every Python file of the submission, with self-extracting wrappers
(`exec(lzma.decompress(base64.b85decode("...")))`, common from April on) decoded so the rules
see the real program.

Uses `Submission.analysis_sources()` when the submission reader provides it; otherwise decodes
here. Decoding is bounded (compressed and decompressed sizes) and never executes anything.
"""

from __future__ import annotations

import ast
import base64
import binascii
import lzma
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from audit.analysis.parse import ParsedModule, parse_source

MAX_DECODED = 8 * 1024 * 1024
# Real scripts reach ~230 KB; far larger sources are not parsed or walked for the val-flow
# analysis (parsing alone takes many seconds) and are reported as not analysed instead.
MAX_ANALYSED_BYTES = 4 * 1024 * 1024  # the same limit as eval_code.MAX_ANALYSED_CHARS
MAX_BLOB = 4 * 1024 * 1024
BLOB_DECODERS: dict[str, Callable[[str | bytes], bytes]] = {"b85decode": base64.b85decode, "b64decode": base64.b64decode,
                 "a85decode": base64.a85decode, "b32decode": base64.b32decode}


@dataclass
class Source:
    """One analysable program text. `path` is the file a reviewer opens; `decoded_from` is set
    when the text was unpacked from a wrapper (line numbers then refer to the decoded text)."""

    path: str
    parsed: ParsedModule
    decoded_from: str | None = None
    too_large: bool = False  # not parsed: over MAX_ANALYSED_BYTES (parsing alone would take many seconds)

    def where(self, line: int | None) -> str:
        if self.decoded_from is None:
            return f"{self.path}:{line}" if line else self.path
        return f"{self.decoded_from} (decoded wrapper) line {line}"


def analysis_sources(ctx) -> list[Source]:
    """All sources, memoised per submission."""
    return ctx.memo("analysis.sources", lambda: _sources(ctx))


def _sources(ctx) -> list[Source]:
    sub = ctx.submission
    provided = getattr(sub, "analysis_sources", None)
    out: list[Source] = []
    if callable(provided):
        try:
            items = provided()
        except Exception:  # noqa: BLE001 - a reader bug must not stop the static rules
            items = None
        if items is not None:
            for it in items:
                src = _from_provided(ctx, it)
                if src is not None:
                    out.append(src)
                    if src.decoded_from is None:  # a bundle the reader left packed
                        out.extend(_decoded_parts(src))
            return out
    for tf in sub.python_files():
        if len(tf.text or "") > MAX_ANALYSED_BYTES:
            out.append(_too_large(tf.path, tf.text or "", None))
            continue
        src = Source(tf.path, ctx.parsed(tf.path))
        out.append(src)
        out.extend(_decoded_parts(src))
    return out


def _decoded_parts(src: Source) -> list[Source]:
    tree = src.parsed.tree
    if tree is None:
        return []
    out = []
    texts = decode_wrapped(tree)
    for i, text in enumerate(texts):
        vpath = f"{src.path}#decoded{'' if i == 0 else i + 1}"
        parsed = parse_source(vpath, text)
        # A bundle may also carry C++/CUDA sources: keep only its Python parts.
        if parsed.tree is not None or len(texts) == 1:
            out.append(Source(vpath, parsed, decoded_from=src.path))
    return out


def _from_provided(ctx, it) -> Source | None:
    """Accept the reader's items: TextFile-like objects (path, text, maybe decoded_from)."""
    path = getattr(it, "path", None)
    text = getattr(it, "text", None)
    if path is None or text is None:
        return None
    origin = getattr(it, "decoded_from", None) or getattr(it, "origin", None)
    if len(text) > MAX_ANALYSED_BYTES:
        return _too_large(path, text, origin)
    if origin is None and path in ctx.submission.code:
        return Source(path, ctx.parsed(path))
    return Source(path, parse_source(path, text), decoded_from=origin)


def _too_large(path: str, text: str, origin: str | None) -> Source:
    note = f"not parsed: {len(text):,} characters, over the {MAX_ANALYSED_BYTES:,} analysed"
    return Source(path, ParsedModule(path, text, None, note, None, []), decoded_from=origin, too_large=True)


def decode_wrapped(tree: ast.Module) -> list[str]:
    """Texts hidden in `lzma/zlib.decompress(base64.*decode("..."))` calls of a small module."""
    if len(tree.body) > 40:
        return []
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        fname = _last(node.func)
        if fname not in BLOB_DECODERS:
            continue
        arg = node.args[0]
        if not isinstance(arg, ast.Constant) or not isinstance(arg.value, (str, bytes)):
            continue
        if len(arg.value) > MAX_BLOB:
            continue
        text = _decode_blob(fname, arg.value)
        if text is not None:
            out.extend(_split_bundle(text))
    return out


def _split_bundle(text: str) -> list[str]:
    """A blob may bundle several files separated by marker comment lines (`# === FB ===`)."""
    if len(text) > 2_000 and not _parses(text):
        parts = re.split(r"\n#\s*={3,}[^\n]*={3,}\s*\n", text)
        if len(parts) > 1:
            return [p for p in parts if p.strip()]
    return [text]


def _parses(text: str) -> bool:
    try:
        ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def _decode_blob(fname: str, blob: str | bytes) -> str | None:
    try:
        raw = BLOB_DECODERS[fname](blob)
    except (ValueError, binascii.Error):
        return None
    data = _decompress(raw)
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _decompress(raw: bytes) -> bytes | None:
    makers = (
        lambda: lzma.LZMADecompressor(),
        lambda: lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2}]),
        lambda: zlib.decompressobj(),
        lambda: zlib.decompressobj(-15),
    )
    for make in makers:
        try:
            d = make()
            data = d.decompress(raw, MAX_DECODED)
            return data
        except (lzma.LZMAError, zlib.error, EOFError):
            continue
    return raw if raw[:200].isascii() else None


def _last(func: ast.AST) -> str:
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return ""
