"""Which code is analysed: wrappers decoded (several codecs), bundles split, oversize files skipped."""

from __future__ import annotations

import ast
import base64
import lzma
import zlib

from audit.analysis.sources import MAX_ANALYSED_BYTES, analysis_sources, decode_wrapped
from audit.context import AuditContext
from audit.submission import Submission

INNER = "def main():\n    return 1\n"


def test_decodes_xz_raw_lzma2_and_zlib_blobs():
    xz = base64.b85encode(lzma.compress(INNER.encode())).decode()
    raw = base64.b85encode(lzma.compress(INNER.encode(), format=lzma.FORMAT_RAW,
                                         filters=[{"id": lzma.FILTER_LZMA2}])).decode()
    zl = base64.b64encode(zlib.compress(INNER.encode())).decode()
    for call in (f'L.decompress(B.b85decode("{xz}"))',
                 f'L.decompress(B.b85decode("{raw}"),format=L.FORMAT_RAW,filters=[{{"id":L.FILTER_LZMA2}}])',
                 f'zlib.decompress(base64.b64decode("{zl}"))'):
        tree = ast.parse(f"import lzma as L, base64 as B, zlib, base64\nexec({call})\n")
        assert decode_wrapped(tree) == [INNER], call


def test_bundle_keeps_python_parts_only():
    bundle = ("import os\n" * 300 + "\n# === FB ===\n" + INNER + "\n# === FB ===\n"
              + "#include <torch/extension.h>\nint f() { return 1; }\n")
    blob = base64.b85encode(lzma.compress(bundle.encode())).decode()
    wrapper = f'import lzma,base64\n_b=lzma.decompress(base64.b85decode("{blob}"))\nexec(_b)\n'
    ctx = AuditContext(Submission.from_files({"train_gpt.py": wrapper}))
    srcs = analysis_sources(ctx)
    decoded = [s for s in srcs if s.decoded_from == "train_gpt.py"]
    assert decoded and all(s.parsed.tree is not None for s in decoded)
    assert any("def main" in s.parsed.source for s in decoded)


def test_oversize_source_is_marked_not_parsed():
    big = "x = 1\n" * (MAX_ANALYSED_BYTES // 6 + 10)
    ctx = AuditContext(Submission.from_files({"train_gpt.py": big}))
    (src,) = analysis_sources(ctx)
    assert src.too_large and src.parsed.tree is None and "not parsed" in (src.parsed.error or "")
