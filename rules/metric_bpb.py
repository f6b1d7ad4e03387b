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

import ast
import re
from collections.abc import Iterable

from audit.analysis.imports import runtime_units
from audit.analysis.targets import Function, call_name, functions_of, names_in, target_flow, walk_nodes
from audit.context import AuditContext
from audit.findings import Evidence, Finding, Severity
from audit.rule import Invalid, Rule, RuleDoc, Valid

LUT_NAME = re.compile(r"(base_bytes|bytes_lut|token_bytes|bytes_per_token|has_leading_space|is_boundary)", re.I)
LOAD_CALLS = {"load", "fromfile", "loadtxt", "read_bytes", "memmap", "genfromtxt"}

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
        date="README rule, in force for the whole challenge (2026-03-18 to 2026-04-30, RULES.md "
             "§0); RULES.md gives no date for the rulings that enforce it",
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
        flow = target_flow(ctx)
        for unit in runtime_units(ctx):
            if unit.parsed.tree is None:
                continue
            for fn in functions_of(flow, unit.path):
                yield from self._loaded(fn)
                yield from self._hand_built(fn)

    def _ev(self, fn: Function, line: int, label: str) -> Evidence:
        tag = " [decoded wrapper text]" if fn.unit.decoded_from else ""
        return Evidence(label + tag, fn.path, line, fn.text(line)[:200] or None)

    def _loaded(self, fn: Function) -> Iterable[Finding]:
        loaded: dict[str, int] = {}
        for a in fn.assigns:
            if any(isinstance(c, ast.Call) and call_name(c) in LOAD_CALLS for c in walk_nodes(a.value)) \
                    or names_in(a.value) & loaded.keys():
                for n in a.names:
                    loaded.setdefault(n, a.line)
        for a in fn.assigns:
            lut = [n for n in a.names if LUT_NAME.search(n)]
            src = names_in(a.value) & loaded.keys()
            direct = any(isinstance(c, ast.Call) and call_name(c) in LOAD_CALLS for c in walk_nodes(a.value))
            if lut and (src or direct) and "sidecar" not in " ".join(lut).lower():
                origin = loaded[min(src)] if src else a.line
                yield self.finding(
                    f"R-METRIC-BPB: `{fn.qualname}` loads the per-token byte table `{lut[0]}` from a file "
                    "instead of deriving it from the tokenizer. val_bpb is only as right as this table: the "
                    "reference computes it from the SentencePiece model (byte-fallback pieces = 1 byte, "
                    "control/unknown/unused = 0 and boundary, leading '▁' stripped and counted after "
                    "non-boundary tokens). Derive it in the script, or prove that the shipped table "
                    "reproduces the exact UTF-8 bytes of the validation text.",
                    path=fn.path, line=a.line,
                    evidence=[self._ev(fn, origin, "table data read from a file"),
                              self._ev(fn, a.line, f"`{lut[0]}` taken from it")],
                    key=f"lut-load:{fn.qualname}",
                )
                return

    def _hand_built(self, fn: Function) -> Iterable[Finding]:
        pieces = [c for c in fn.calls if call_name(c) in ("id_to_piece", "IdToPiece")]
        writes = [a for a in fn.assigns if any(LUT_NAME.search(n) and "space" not in n.lower()
                                               and "boundary" not in n.lower() for n in a.names)
                  and isinstance(a.node, ast.Assign) and isinstance(a.node.targets[0], ast.Subscript)]
        if not pieces or not writes:
            return
        called = {call_name(c) for c in fn.calls}
        consts = {n.value for n in walk_nodes(fn.node) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
        missing = []
        if not called & {"is_byte", "IsByte"} and not any(re.search(r"<0x", c) for c in consts):
            missing.append("byte-fallback pieces counted as 1 byte")
        if not called & {"is_control", "IsControl", "is_unknown", "IsUnknown", "is_unused", "IsUnused"}:
            missing.append("control/unknown/unused pieces counted as 0 bytes")
        if not any("\u2581" in c for c in consts):
            missing.append("the leading '▁' stripped and handled as a conditional space")
        if missing:
            line = writes[0].line
            yield self.finding(
                f"R-METRIC-BPB: `{fn.qualname}` builds a bytes-per-token table from the tokenizer's pieces "
                f"without {', '.join(missing)}. The reference byte accounting needs all of these; a table "
                "that differs changes the denominator of val_bpb. Use the reference construction "
                "(build_sentencepiece_luts) or prove the bytes match the validation text exactly.",
                path=fn.path, line=line,
                evidence=[self._ev(fn, pieces[0].lineno, "pieces read from the tokenizer"),
                          self._ev(fn, line, "byte count written without the reference rules")],
                key=f"lut-rules:{fn.qualname}",
            )
