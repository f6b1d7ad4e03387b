"""R-METRIC-BPB.byte-lut: the bytes-per-token tables must follow the reference rules, visibly.

val_bpb divides by the bytes of the scored tokens. The reference derives them from the
SentencePiece model: byte-fallback pieces count 1, control/unknown/unused pieces 0 (and are
boundaries), a leading `▁` is stripped and counts one byte only after a non-boundary token.
Several submissions were invalidated for byte accounting (Scylla #1143/#1184 loaded its tables
from a shipped metadata file). A table loaded from a file, or built without those rules, cannot
be checked statically, so it is flagged for review (a re-run recomputes the bytes).
Per-position byte sidecars of the CaseOps data pipeline are not vocabulary tables and are not flagged.
"""

from __future__ import annotations

from collections.abc import Iterable

from audit.analysis.api import LoadedTable, byte_table_issues
from audit.context import AuditContext
from audit.findings import Finding, Severity
from audit.rule import README_RULE_DATE, Invalid, Rule, RuleDoc, Valid

_REFERENCE_LUT = '''
import numpy as np


def build_sentencepiece_luts(sp, vocab_size):
    table = max(sp.vocab_size(), vocab_size)
    base_bytes = np.zeros(table, dtype=np.int16)
    has_leading_space = np.zeros(table, dtype=np.bool_)
    is_boundary = np.ones(table, dtype=np.bool_)
    for i in range(sp.vocab_size()):
        if sp.is_control(i) or sp.is_unknown(i) or sp.is_unused(i):
            continue
        is_boundary[i] = False
        if sp.is_byte(i):
            base_bytes[i] = 1
            continue
        piece = sp.id_to_piece(i)
        if piece.startswith("\\u2581"):
            has_leading_space[i] = True
            piece = piece[1:]
        base_bytes[i] = len(piece.encode("utf-8"))
    return base_bytes, has_leading_space, is_boundary
'''

_SIDECAR = '''
import numpy as np


def load_byte_sidecar(path):
    return np.fromfile(path, dtype="<u2", offset=1024)


def score(nll, sidecar, start, end):
    val_byte_count = sidecar[start + 1:end].sum()
    return nll.sum() / val_byte_count
'''

_LOADED = '''
import numpy as np


def load_luts(meta_path):
    with np.load(meta_path) as data:
        base_bytes = np.asarray(data["base_bytes"], dtype=np.int16)
        has_leading_space = np.asarray(data["has_leading_space"], dtype=np.bool_)
        is_boundary = np.asarray(data["is_boundary_token"], dtype=np.bool_)
    return base_bytes, has_leading_space, is_boundary
'''

_NO_BYTE_FALLBACK = '''
import numpy as np


def build_luts(sp):
    base_bytes = np.zeros(sp.vocab_size(), dtype=np.int16)
    for i in range(sp.vocab_size()):
        piece = sp.id_to_piece(i)
        base_bytes[i] = len(piece.encode("utf-8"))
    return base_bytes
'''


class MetricBpbByteLut(Rule):
    ID = "R-METRIC-BPB.byte-lut"
    TITLE = "Bytes-per-token tables not derived from the tokenizer by the reference rules"
    SEVERITY = Severity.WARNING
    KIND = "static"
    SOURCE = (
        "RULES.md D R-METRIC-BPB and R-METRIC-TOKENIZER: README (tokenizer changes need proof); "
        "https://github.com/openai/parameter-golf/pull/1806 ; https://github.com/openai/parameter-golf/pull/1314"
    )
    DOC = RuleDoc(
        why="val_bpb divides the summed NLL by the bytes of the scored tokens, counted from the "
            "SentencePiece pieces by fixed rules: a byte-fallback piece counts 1, a control, unknown "
            "or unused piece 0 (and is a boundary), a leading `▁` is stripped and counts one byte only "
            "after a non-boundary token. Evaluators that re-implement BPB must reproduce these exact "
            "rules; several submissions were invalidated for byte-accounting bugs.",
        ruling="README and the reference `train_gpt.py` at HEAD (`build_sentencepiece_luts`, `eval_val`). "
               "Precedents (RULES.md R-METRIC-TOKENIZER): the Scylla submissions (#1143, #1184) were "
               "withdrawn for byte-accounting errors and cocohearts removed the merged #1184 row "
               "(\"invalid Scylla record\", PR #1806).",
        date=README_RULE_DATE,
        sources=(
            "README",
            "https://github.com/openai/parameter-golf/pull/1806",
            "https://github.com/openai/parameter-golf/pull/1314",
            "https://github.com/openai/parameter-golf/pull/1184",
        ),
    )
    VALID = [
        Valid(_REFERENCE_LUT, "reference LUT construction"),
        Valid(_SIDECAR, "CaseOps per-position byte sidecar"),
    ]
    INVALID = [
        Invalid(_LOADED, "byte tables loaded from a metadata file", line=6),
        Invalid(_NO_BYTE_FALLBACK, "piece lengths without byte-fallback, control or '▁' handling", line=8),
    ]

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        for issue in byte_table_issues(ctx):
            fn = issue.fn
            if isinstance(issue, LoadedTable):
                yield self.finding(
                    f"R-METRIC-BPB: `{fn.qualname}` loads the per-token byte table `{issue.table}` from a file "
                    "instead of deriving it from the tokenizer. val_bpb is only as right as this table: the "
                    "reference computes it from the SentencePiece model (byte-fallback pieces = 1 byte, "
                    "control/unknown/unused = 0 and boundary, leading '▁' stripped and counted after "
                    "non-boundary tokens). Derive it in the script, or prove that the shipped table "
                    "reproduces the exact UTF-8 bytes of the validation text.",
                    path=fn.path, line=issue.line,
                    evidence=[fn.evidence(issue.origin_line, "table data read from a file"),
                              fn.evidence(issue.line, f"`{issue.table}` taken from it")],
                    key=f"lut-load:{fn.qualname}",
                )
                continue
            yield self.finding(
                f"R-METRIC-BPB: `{fn.qualname}` builds a bytes-per-token table from the tokenizer's pieces "
                f"without {', '.join(issue.missing)}. The reference byte accounting needs all of these; a table "
                "that differs changes the denominator of val_bpb. Use the reference construction "
                "(build_sentencepiece_luts) or prove the bytes match the validation text exactly.",
                path=fn.path, line=issue.line,
                evidence=[fn.evidence(issue.pieces_line, "pieces read from the tokenizer"),
                          fn.evidence(issue.line, "byte count written without the reference rules")],
                key=f"lut-rules:{fn.qualname}",
            )
