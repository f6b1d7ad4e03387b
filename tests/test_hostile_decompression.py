"""Hostile folders: decompression bombs below the size limits (issue 10 item 8).

A few KB of compressed blobs must not cost gigabytes: every decompression of a folder draws on one
decoded-bytes budget, decoded code is parsed only within the limit of shipped code, and a wrapper
is decoded once per folder. Memory is bounded through the decoded-bytes counter (and what gets
parsed), never through wall-clock times.
"""

from __future__ import annotations

import ast
import base64
import bz2
import lzma
import zlib

import pytest

from audit.analysis.parse import MAX_PARSE_CHARS
from audit.analysis.sources import analysis_sources
from audit.codesize import MAX_DECODED_BYTES, MAX_FOLDER_DECODED_BYTES, code_sizes, find_wrapper
from audit.context import AuditContext
from audit.engine import audit_submission
from audit.registry import all_rules
from audit.submission import Submission

ORDINARY = "import os\n\n\ndef main():\n    return os.getcwd()\n\n\n"

# (how to pack, the expression that unpacks `B` (the text blob) in the script)
LAYERS = {
    "zlib+b85": (lambda d: base64.b85encode(zlib.compress(d, 9)), "zlib.decompress(base64.b85decode(B))"),
    "lzma+b64": (lambda d: base64.b64encode(lzma.compress(d)), "lzma.decompress(base64.b64decode(B))"),
    "bz2+b85": (lambda d: base64.b85encode(bz2.compress(d, 9)), "bz2.decompress(base64.b85decode(B))"),
    "zlib-in-lzma+b85": (lambda d: base64.b85encode(lzma.compress(zlib.compress(d, 9))),
                         "zlib.decompress(lzma.decompress(base64.b85decode(B)))"),
    "zlib-in-zlib+b64": (lambda d: base64.b64encode(zlib.compress(zlib.compress(d, 9), 9)),
                         "zlib.decompress(zlib.decompress(base64.b64decode(B)))"),
}
IMPORTS = "import base64, bz2, lzma, zlib\n"


def _script(expr: str, blob: bytes, *, exec_it: bool) -> str:
    body = f"B = {blob.decode()!r}\n"
    if exec_it:
        return IMPORTS + body + f"exec({expr})\n"
    return IMPORTS + ORDINARY + body + f"_data = {expr}\n"


def _static(sub: Submission):
    """The check as `pgolf-audit check` runs it: every static and meta rule."""
    return audit_submission(sub, rules=[r for r in all_rules() if r.KIND in ("static", "meta")])


@pytest.fixture
def parses(monkeypatch):
    """Every text handed to ast.parse during the test, by length."""
    seen: list[int] = []
    real = ast.parse

    def counting(source, *args, **kwargs):
        seen.append(len(source))
        return real(source, *args, **kwargs)

    monkeypatch.setattr(ast, "parse", counting)
    return seen


@pytest.mark.parametrize("mib", [7.5, 12], ids=["under-the-cap", "over-the-cap"])
@pytest.mark.parametrize("layers", sorted(LAYERS))
def test_hostile_decompression_blob_in_ordinary_script_is_bounded(layers, mib, parses):
    pack, expr = LAYERS[layers]
    blob = pack(b"x = 1+1\n" * int(mib * (1 << 20) / 8))  # megabytes of code behind a few KB
    assert len(blob) < 200_000
    sub = Submission.from_files({"train_gpt.py": _script(expr, blob, exec_it=False)})
    report = _static(sub)
    assert not report.errors
    assert 0 < sub.decode_budget.used <= MAX_FOLDER_DECODED_BYTES + 1
    assert max(parses) <= MAX_PARSE_CHARS


@pytest.mark.parametrize("layers", sorted(LAYERS))
def test_hostile_decompression_exec_bomb_is_refused_with_a_finding(layers):
    pack, expr = LAYERS[layers]
    blob = pack(b"#" * (12 << 20))
    sub = Submission.from_files({"train_gpt.py": _script(expr, blob, exec_it=True)})
    report = _static(sub)
    assert sub.decode_budget.used <= MAX_FOLDER_DECODED_BYTES + 1
    assert any("exceeds" in f.message and f.path == "train_gpt.py" for f in report.findings)


def test_hostile_decompression_budget_is_per_folder_not_per_blob():
    # Twelve blobs of 3 MiB each: every one is under the per-blob cap, together far over the folder's.
    each = 3 << 20
    assert each < MAX_DECODED_BYTES and 12 * each > 2 * MAX_FOLDER_DECODED_BYTES
    blobs = [base64.b85encode(zlib.compress(f"# {i}\n".encode() + b"#" * each, 9)).decode() for i in range(12)]
    script = "import base64, zlib\n" + "".join(
        f"P{i} = zlib.decompress(base64.b85decode({b!r}))\n" for i, b in enumerate(blobs))
    files = {"train_gpt.py": ORDINARY + "\n" + script}
    files.update({f"helper_{i}.py": f"import zlib, base64\nexec(zlib.decompress(base64.b85decode({b!r})))\n"
                  for i, b in enumerate(blobs)})
    sub = Submission.from_files(files)
    ctx = AuditContext(sub)
    analysis_sources(ctx)
    for path in sub.code:
        code_sizes(sub.code[path].text or "", estimate=False, wrapper=sub.wrappers.get(path))
    assert sub.decode_budget.used <= MAX_FOLDER_DECODED_BYTES + 1
    decoded = [s for s in analysis_sources(ctx) if s.decoded_from is not None]
    assert 0 < len(decoded) < 24  # some blobs decoded, the rest refused once the budget was spent
    refused = [p for p, info in sub.wrappers.items() if info is not None and info.inner_source is None]
    assert refused and all("budget" in (sub.wrappers[p].error or "") for p in refused)


def test_hostile_decompression_large_inner_code_is_decoded_once_and_not_parsed(parses):
    inner = "x = 1\n" * ((MAX_PARSE_CHARS + (1 << 20)) // 6)  # over the parse limit, under the decode cap
    assert MAX_PARSE_CHARS < len(inner) < MAX_DECODED_BYTES
    blob = base64.b85encode(lzma.compress(inner.encode())).decode()
    wrapper = f"import lzma, base64\nexec(lzma.decompress(base64.b85decode({blob!r})))\n"
    sub = Submission.from_files({"train_gpt.py": wrapper})
    used_by_reader = sub.decode_budget.used
    assert len(inner) <= used_by_reader < len(inner) + len(blob)  # the decoded base85, then the code
    report = _static(sub)
    assert not report.errors
    assert sub.decode_budget.used == used_by_reader  # code size and analysis reuse the reader's decode
    assert max(parses) <= MAX_PARSE_CHARS
    assert any(f.path == "train_gpt.py" and "not parsed" in f.message for f in report.findings)


def test_hostile_decompression_blob_bound_to_a_variable_is_followed():
    inner = "def main():\n    return 1\n"
    blob = base64.b85encode(lzma.compress(inner.encode())).decode()
    wrapper = f"import lzma as L, base64 as B\nblob = {blob!r}\nexec(L.decompress(B.b85decode(blob)))\n"
    info = find_wrapper(wrapper)
    assert info is not None and info.error is None and info.inner_source == inner
    sizes = code_sizes(wrapper)
    assert sizes.wrapper and sizes.inner_source == inner


def test_hostile_decompression_doubling_names_are_evaluated_once(monkeypatch):
    import audit.codesize as codesize

    calls = []
    real = codesize._StaticEval.eval

    def counting(self, node):
        calls.append(1)
        return real(self, node)

    monkeypatch.setattr(codesize._StaticEval, "eval", counting)
    chain = "".join(f"b{i + 1} = b{i} + b{i}\n" for i in range(40))
    source = f"import zlib\nb0 = b'x'\n{chain}exec(zlib.decompress(b40))\n"
    sub = Submission.from_files({"train_gpt.py": source})
    info = sub.wrappers["train_gpt.py"]
    assert info is not None and info.inner_source is None and "too large" in (info.error or "")
    assert len(calls) < 1_000  # each name once: 2**40 evaluations otherwise
    assert sub.decode_budget.used <= MAX_FOLDER_DECODED_BYTES + 1
