"""Which code to analyse: every Python file of the submission, with packed code decoded so the
rules see the real program: self-extracting wrappers (`exec(lzma.decompress(base64.b85decode(
"...")))`, common from April on) and blobs a small launcher decompresses (`_b = lzma.decompress(
...)`, possibly a bundle of several files).

There is one source type (`Source`) and one decoder (`audit.codesize`: the reader's
`find_wrapper` for wrappers, `decoded_blobs` for the rest). Decoding is bounded by the folder's
decoded-bytes budget and never executes anything; decoded code is parsed only within the limit
of shipped code, and every source is parsed once per folder (memoised in `ctx.memo`).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from audit.analysis.parse import MAX_PARSE_CHARS, ParsedModule, parse_source
from audit.codesize import DecodeBudget, WrapperInfo, decoded_blobs, find_wrapper

# Real scripts reach ~230 KB; far larger sources are not parsed or walked for the val-flow
# analysis (parsing alone takes many seconds) and are reported as not analysed instead.
MAX_ANALYSED_BYTES = min(MAX_PARSE_CHARS, 1 << 20)  # the same bound as eval_code.MAX_ANALYSED_CHARS


@dataclass(frozen=True)
class Source:
    """One analysable program text. `path` is the file a reviewer opens; `decoded_from` is set
    when the text was unpacked from a wrapper (line numbers then refer to the decoded text);
    `is_main` when it is (or was unpacked from) the main script."""

    path: str
    parsed: ParsedModule
    decoded_from: str | None = None
    too_large: bool = False  # not parsed: over MAX_ANALYSED_BYTES (parsing alone would take many seconds)
    is_main: bool = False

    def where(self, line: int | None) -> str:
        if self.decoded_from is None:
            return f"{self.path}:{line}" if line else self.path
        return f"{self.decoded_from} (decoded wrapper) line {line}"


def analysis_sources(ctx) -> list[Source]:
    """All sources, memoised per submission."""
    return ctx.memo("analysis.sources", lambda: _sources(ctx))


def folder_budget(ctx) -> DecodeBudget:
    """The folder's decoded-bytes budget: the reader's (shared with its wrapper decoding)."""
    budget = getattr(ctx.submission, "decode_budget", None)
    return budget if budget is not None else ctx.memo("analysis.decode_budget", DecodeBudget)


def wrapper_info(ctx, path: str) -> WrapperInfo | None:
    """The self-extracting wrapper of one shipped code file (None: not one), decoded once per
    folder: the reader's result, else decoded here with the folder's budget."""
    known = getattr(ctx.submission, "wrappers", {})
    if path in known:
        return known[path]
    text = ctx.submission.code[path].text or ""
    return ctx.memo(f"analysis.wrapper:{path}", lambda: find_wrapper(text, budget=folder_budget(ctx)))


def wrapped_source(ctx, path: str) -> str | None:
    """The decoded program of a shipped wrapper (None: not a wrapper, or undecodable)."""
    info = wrapper_info(ctx, path)
    return info.inner_source if info is not None and info.inner_source else None


def _sources(ctx) -> list[Source]:
    sub = ctx.submission
    main = sub.main_script
    main_path = main.path if main is not None else None
    provided = getattr(sub, "analysis_sources", None)
    items = None
    if callable(provided):
        try:
            items = provided()
        except Exception:  # noqa: BLE001 - a reader bug must not stop the static rules
            items = None
    if items is None:
        items = sub.python_files()
    out: list[Source] = []
    for it in items:
        for src in _from_item(ctx, it):
            out.append(src)
            if src.decoded_from is None:  # a launcher that unpacks a blob the reader left packed
                out.extend(_decoded_parts(ctx, src))
    if main_path is None:
        return out
    return [_main(s) if (s.decoded_from or s.path) == main_path else s for s in out]


def _main(src: Source) -> Source:
    return Source(src.path, src.parsed, src.decoded_from, src.too_large, is_main=True)


def _from_item(ctx, it) -> list[Source]:
    """The reader's items: TextFile-like objects (path, text, maybe decoded_from)."""
    path = getattr(it, "path", None)
    text = getattr(it, "text", None)
    if path is None or text is None:
        return []
    origin = getattr(it, "decoded_from", None) or getattr(it, "origin", None)
    if len(text) > MAX_ANALYSED_BYTES:
        return [_too_large(path, text, origin)]
    if origin is None and path in ctx.submission.code:
        return [Source(path, ctx.parsed(path))]
    if origin is None:
        return [Source(path, parse_source(path, text))]
    return _texts_as_sources(path, [text], origin, first_path=path)


def _decoded_parts(ctx, src: Source) -> list[Source]:
    tree = src.parsed.tree
    if tree is None:
        return []
    return _texts_as_sources(src.path, decoded_blobs(tree, budget=folder_budget(ctx)), src.path)


def _texts_as_sources(path: str, texts: list[str], origin: str, first_path: str | None = None) -> list[Source]:
    """Decoded texts (each possibly a bundle of several files) as sources, each parsed once."""
    parts: list[ParsedModule | str] = []
    for text in texts:
        parts.extend(_split_bundle(path, text))
    several = len(parts) > 1
    out = []
    for i, part in enumerate(parts):
        vpath = first_path if (first_path is not None and not several) else f"{path}#decoded{'' if i == 0 else i + 1}"
        if isinstance(part, str):
            part = parse_source(vpath, part)
        elif part.path != vpath:
            part = ParsedModule(vpath, part.source, part.tree, part.error, part.error_line, part.lines,
                                part.downgraded_fstrings)
        if len(part.source) > MAX_ANALYSED_BYTES:
            out.append(_too_large(vpath, part.source, origin))
        # A bundle may also carry C++/CUDA sources: keep only its Python parts.
        elif part.tree is not None or not several:
            out.append(Source(vpath, part, decoded_from=origin))
    return out


def _split_bundle(path: str, text: str) -> list[ParsedModule | str]:
    """A blob may bundle several files separated by marker comment lines (`# === FB ===`). The
    whole text's parse is kept when it parses (or is too large to try)."""
    whole = parse_source(path, text)
    if len(text) > 2_000 and whole.tree is None and len(text) <= MAX_PARSE_CHARS:
        parts = re.split(r"\n#\s*={3,}[^\n]*={3,}\s*\n", text)
        if len(parts) > 1:
            return [p for p in parts if p.strip()]
    return [whole]


def _too_large(path: str, text: str, origin: str | None) -> Source:
    note = f"not parsed: {len(text):,} characters, over the {MAX_ANALYSED_BYTES:,} analysed"
    return Source(path, ParsedModule(path, text, None, note, None, []), decoded_from=origin, too_large=True)


def decode_wrapped(tree: ast.Module) -> list[str]:
    """Texts hidden in the decompressing calls of a small module, bundles split into their parts."""
    out: list[str] = []
    for text in decoded_blobs(tree):
        out.extend(p if isinstance(p, str) else p.source for p in _split_bundle("<decoded>", text))
    return out
