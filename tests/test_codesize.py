"""Code-byte conventions: raw size, self-extracting wrappers (decoded statically), minified estimate."""

from __future__ import annotations

import base64
import lzma
import zlib

import pytest

import audit.codesize as codesize
from audit.codesize import code_sizes, compressed_wrapper_size, find_wrapper, minify_source

INNER = '''"""A tiny training script (docstring)."""
import os

# a comment that the minifier drops
def train(steps):
    """Docstring of train."""
    total = 0
    for step in range(steps):  # trailing comment
        total += step
    return total


if __name__ == "__main__":
    print(train(int(os.environ.get("STEPS", "3"))))
'''


def _lzma_raw_wrapper(source: str) -> str:
    payload = lzma.compress(source.encode(), format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2}])
    blob = base64.b85encode(payload).decode()
    return ('import lzma as L,base64 as B\n__wrapper_size__=123\n'
            f'exec(L.decompress(B.b85decode("{blob[:40]}"\n"{blob[40:]}"),format=L.FORMAT_RAW,'
            'filters=[{"id":L.FILTER_LZMA2}]))\n')


def test_raw_bytes_are_utf8_bytes():
    sizes = code_sizes("x = 'é'\n", estimate=False)
    assert sizes.raw == len("x = 'é'\n".encode())
    assert not sizes.wrapper and sizes.inner_source is None and sizes.compressed_estimate is None


def test_lzma_raw_b85_wrapper_is_decoded_without_exec():
    wrapper = _lzma_raw_wrapper(INNER)
    sizes = code_sizes(wrapper)
    assert sizes.wrapper
    assert sizes.inner_source == INNER
    assert sizes.raw == len(wrapper.encode())
    assert sizes.compressed_estimate == sizes.raw  # the shipped file already is the compressed form
    assert sizes.wrapper_codec == "base64.b85decode+lzma.decompress"
    assert sizes.inner_raw == len(INNER.encode())


@pytest.mark.parametrize(
    "make",
    [
        lambda s: f"import lzma, base64\nexec(lzma.decompress(base64.b85decode({base64.b85encode(lzma.compress(s.encode())).decode()!r})))\n",
        lambda s: f"import zlib, base64\nexec(zlib.decompress(base64.b64decode({base64.b64encode(zlib.compress(s.encode())).decode()!r})).decode())\n",
        lambda s: f"from base64 import b85decode as d\nimport lzma\nexec(lzma.decompress(d({base64.b85encode(lzma.compress(s.encode())).decode()!r})).decode('utf-8'))\n",
        lambda s: f"import gzip as g, base64 as b\nexec(compile(g.decompress(b.b64decode({base64.b64encode(__import__('gzip').compress(s.encode())).decode()!r})), 'x', 'exec'))\n",
    ],
    ids=["lzma-xz", "zlib-b64-decode", "from-import-alias", "gzip-compile"],
)
def test_wrapper_shapes(make):
    info = find_wrapper(make(INNER))
    assert info is not None and info.error is None
    assert info.inner_source == INNER


def test_brotli_wrapper():
    brotli = pytest.importorskip("brotli")
    blob = base64.b85encode(brotli.compress(INNER.encode())).decode()
    info = find_wrapper(f"import brotli as R,base64 as B\nexec(R.decompress(B.b85decode({blob!r})))\n")
    assert info is not None and info.inner_source == INNER


def test_nested_wrapper_is_unwrapped():
    info = find_wrapper(_lzma_raw_wrapper(_lzma_raw_wrapper(INNER)))
    assert info is not None and info.inner_source == INNER
    assert info.codec.count("lzma.decompress") == 2


def test_decompression_bomb_is_refused(monkeypatch):
    monkeypatch.setattr(codesize, "MAX_DECODED_BYTES", 1 << 20)
    bomb = base64.b85encode(zlib.compress(b"#" * (3 << 20), 9)).decode()
    sizes = code_sizes(f"import zlib,base64\nexec(zlib.decompress(base64.b85decode({bomb!r})))\n")
    assert sizes.wrapper and sizes.inner_source is None
    assert "exceeds" in (sizes.decode_error or "")


@pytest.mark.parametrize(
    "source",
    [
        "import lzma\nexec(lzma.decompress(open('payload.bin','rb').read()))\n",  # reads a file: not static
        "import lzma,base64\nexec(lzma.decompress(base64.b85decode('not base85 at all ~~~')))\n",
        "import lzma,base64\nexec(lzma.decompress(base64.b85decode(" + repr(base64.b85encode(b"\x00garbage").decode()) + ")))\n",
        "import lzma,base64\nexec(lzma.decompress(base64.b85decode(" + repr(base64.b85encode(lzma.compress(b"x=1")[:-8]).decode()) + ")))\n",
    ],
    ids=["file-read", "bad-base85", "not-lzma", "truncated"],
)
def test_undecodable_wrapper_is_reported_not_raised(source):
    sizes = code_sizes(source)
    assert sizes.wrapper and sizes.inner_source is None and sizes.decode_error


@pytest.mark.parametrize(
    "source",
    [
        INNER,
        "exec(open(__file__.replace('train_gpt.py', 'other.py')).read())\n",  # exec of a file, no codec
        "import lzma\ndef f(x):\n    return lzma.decompress(x)\nexec('print(1)')\n",  # real code at top level
        "def (:\n",  # syntax error
        "",
    ],
    ids=["readable", "exec-file", "code-plus-exec", "syntax-error", "empty"],
)
def test_not_a_wrapper(source):
    assert find_wrapper(source) is None


def test_minify_strips_comments_docstrings_and_keeps_code():
    mini = minify_source(INNER)
    assert "#" not in mini and "Docstring" not in mini and "docstring" not in mini
    namespace: dict = {}
    exec(compile(mini.replace('if __name__ == "__main__"', "if False"), "mini", "exec"), namespace)  # our own code
    assert namespace["train"](4) == 6
    assert len(mini) < len(INNER)


def test_minify_keeps_function_with_only_a_docstring_valid():
    mini = minify_source('def f():\n    """only a docstring"""\n\nclass C:\n    "doc"\n')
    compile(mini, "mini", "exec")
    assert "pass" in mini


def test_minify_falls_back_on_unparseable_source():
    assert minify_source("def (:\n") == "def (:\n"


def test_estimate_is_wrapper_overhead_plus_base85_payload():
    big = INNER * 12
    sizes = code_sizes(big)
    assert not sizes.wrapper
    assert sizes.compressed_estimate is not None and sizes.compressed_estimate < sizes.raw // 5
    size, codec = compressed_wrapper_size(minify_source(big))
    assert (size, codec) == (sizes.compressed_estimate, sizes.estimate_codec)
    head = codesize.WRAPPER_HEAD_LZMA if codec == "lzma" else codesize.WRAPPER_HEAD_BROTLI
    assert size > len(head)


def test_lzma_preset_6e_writes_the_bytes_of_9e():
    """minify.LZMA_PRESET is 6e with a 1 MiB dictionary, not the authors' 9e, for speed: presets
    6-9 differ only in the dictionary, which covers any input the full estimate takes (at most
    1 MiB)."""
    from pathlib import Path

    import audit.minify as minify

    scripts = sorted(Path(__file__).resolve().parents[1].glob("fixtures/submissions/*/train_gpt.py"))[:6]
    texts = [minify_source(p.read_text(encoding="utf-8")) for p in scripts] + [INNER * 40]
    assert len(texts) >= 4
    for text in texts:
        data = text.encode()
        ours = codesize.compressed_wrapper_size(text, ("lzma",))[0]
        authors = lzma.compress(data, format=lzma.FORMAT_RAW,
                                filters=[{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}])
        assert ours == len(codesize.WRAPPER_HEAD_LZMA) + len(base64.b85encode(authors)) + len(codesize.WRAPPER_TAIL_LZMA)
    # the dictionary of the estimate still covers the largest input it is given
    assert minify.LZMA_DICT_BYTES >= codesize.MAX_FULL_ESTIMATE_BYTES


def _both_tokenizers(source: str) -> tuple[str, str]:
    """minify's text with the fast tokens (3.11's C tokenizer) and with `tokenize`'s."""
    import audit.minify as minify
    from audit.tokens import python_tokens

    fast = minify.minify_source(source, parses=True)
    minify.python_tokens = lambda src, fast=True: python_tokens(src, fast=False)  # type: ignore[assignment]
    try:
        return fast, minify.minify_source(source, parses=True)
    finally:
        minify.python_tokens = python_tokens  # type: ignore[assignment]


@pytest.mark.parametrize("module", ["ast", "argparse", "dataclasses", "tokenize", "typing", "inspect"])
def test_fast_tokenizer_minifies_like_tokenize(module):
    """On 3.11 minify reads the C tokenizer; the text must be what `tokenize` gives."""
    import importlib
    from pathlib import Path

    source = Path(importlib.import_module(module).__file__).read_text(encoding="utf-8")
    fast, slow = _both_tokenizers(source)
    assert fast == slow


def test_fast_tokenizer_minifies_our_fixture_scripts_like_tokenize():
    from pathlib import Path

    for p in sorted(Path(__file__).resolve().parents[1].glob("fixtures/submissions/*/train_gpt.py"))[:8]:
        fast, slow = _both_tokenizers(p.read_text(encoding="utf-8"))
        assert fast == slow, p


def test_identifier_with_combining_mark_stays_whole():
    """3.11's `tokenize` splits `x\u0947y` at the mark (a CPython bug); the C tokenizer does not,
    so the minified text stays valid Python."""
    import ast as ast_module
    import sys

    import audit.tokens as tokens

    source = "x\u0947y = 1\nprint(x\u0947y)\n"
    out = minify_source(source)
    if tokens._C_TOKENIZER is not None:
        assert out == "x\u0947y=1\nprint(x\u0947y)\n"
    if tokens._C_TOKENIZER is not None or sys.version_info >= (3, 12):
        ast_module.parse(out)
    if sys.version_info[:2] == (3, 11):
        assert tokens._C_TOKENIZER is not None


def test_more_codecs_reuse_the_minified_text_and_match_the_full_estimate(monkeypatch):
    """`with_codecs` on an lzma-only estimate gives what one estimate over every codec gives,
    without minifying again."""
    big = INNER * 12
    quick = code_sizes(big, codecs=("lzma",))
    assert quick.codecs_tried == ("lzma",) and quick.estimate_codec == "lzma"
    monkeypatch.setattr(codesize, "minify_source", lambda *a, **k: pytest.fail("minified twice"))
    full = codesize.with_codecs(quick)
    monkeypatch.undo()
    once = code_sizes(big)
    assert (full.compressed_estimate, full.estimate_codec) == (once.compressed_estimate, once.estimate_codec)
    assert full.compressed_estimate <= quick.compressed_estimate
    assert codesize.with_codecs(full) is full  # nothing left to try


def test_brotli_runs_only_when_the_lzma_figure_does_not_fit(monkeypatch):
    """The rules ask whether the counted code fits in the room the model leaves: lzma's figure
    answers when it fits (the smaller codec fits too); otherwise every codec is tried, so the
    answer is always the one the smallest codec gives."""
    import audit.minify as minify
    from audit.artifact import counted_code
    from audit.context import AuditContext
    from audit.submission import Submission

    big = INNER * 40
    once = code_sizes(big)
    lz = code_sizes(big, codecs=("lzma",)).compressed_estimate
    assert once.compressed_estimate is not None and lz is not None
    ran: list[str] = []
    real = minify._wrapper_size
    monkeypatch.setattr(minify, "_wrapper_size", lambda data, codec: ran.append(codec) or real(data, codec))
    for room in (lz + 10, lz, lz - 1, once.compressed_estimate, once.compressed_estimate - 1, 200):
        ran.clear()
        code = counted_code(AuditContext(Submission.from_files({"train_gpt.py": big})))
        assert code is not None
        got = code.compressed_for(room)
        assert (got <= room) == (once.compressed_estimate <= room)
        if lz <= room:
            assert (got, ran) == (lz, ["lzma"])
        else:
            assert got == once.compressed_estimate and "brotli" in ran
            assert ran.count("lzma") == 1  # the lzma figure is not computed twice
        assert code.smallest_for(room) == min(code.raw, got)


def test_no_codec_is_tried_when_nothing_could_fit(monkeypatch):
    """A model over the cap on its own leaves less room than an empty wrapper: lzma's figure is
    reported and brotli-11 (five times its cost) is not run, since no codec could fit."""
    import audit.minify as minify
    from audit.artifact import EMPTY_WRAPPER_BYTES, counted_code
    from audit.context import AuditContext
    from audit.submission import Submission

    ran: list[str] = []
    real = minify._wrapper_size
    monkeypatch.setattr(minify, "_wrapper_size", lambda data, codec: ran.append(codec) or real(data, codec))
    code = counted_code(AuditContext(Submission.from_files({"train_gpt.py": INNER * 40})))
    assert code is not None
    for room in (-900_000, 0, EMPTY_WRAPPER_BYTES - 1):
        assert code.compressed_for(room) > room
    assert ran == ["lzma"]
