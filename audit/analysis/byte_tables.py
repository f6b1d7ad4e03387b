"""Bytes-per-token tables that do not visibly follow the reference rules (asked by R-METRIC-BPB):
a table loaded from a file, or one built from the tokenizer's pieces without the byte-fallback,
control/unknown/unused and leading-'▁' rules. Per-position byte sidecars are not vocabulary tables."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from audit.analysis.code_functions import Function
from audit.analysis.imports import runtime_functions
from audit.analysis.syntax import call_name, calls_below, names_in, walk_nodes

LUT_NAME = re.compile(r"(base_bytes|bytes_lut|token_bytes|bytes_per_token|has_leading_space|is_boundary)", re.I)
LOAD_CALLS = {"load", "fromfile", "loadtxt", "read_bytes", "memmap", "genfromtxt"}


@dataclass(frozen=True)
class LoadedTable:
    fn: Function
    table: str  # the table's name
    origin_line: int  # where the data is read from a file
    line: int  # where the table takes it


@dataclass(frozen=True)
class HandBuiltTable:
    fn: Function
    pieces_line: int  # where the tokenizer's pieces are read
    line: int  # where the byte count is written
    missing: tuple[str, ...]  # the reference rules not seen


def byte_table_issues(ctx) -> list[LoadedTable | HandBuiltTable]:  # type: ignore[no-untyped-def]
    """Per function of the run-time code: a loaded table, then a hand-built one (at most one each)."""
    def build() -> list[LoadedTable | HandBuiltTable]:
        out: list[LoadedTable | HandBuiltTable] = []
        for _unit, fns in runtime_functions(ctx):
            for fn in fns:
                loaded = _loaded(fn)
                if loaded is not None:
                    out.append(loaded)
                built = _hand_built(fn)
                if built is not None:
                    out.append(built)
        return out
    return ctx.memo("patterns.byte_table_issues", build)


def _loaded(fn: Function) -> LoadedTable | None:
    loaded: dict[str, int] = {}
    for a in fn.assigns:
        if not calls_below(a.value).isdisjoint(LOAD_CALLS) or names_in(a.value, variables=True) & loaded.keys():
            for n in a.names:
                loaded.setdefault(n, a.line)
    for a in fn.assigns:
        lut = [n for n in a.names if LUT_NAME.search(n)]
        src = names_in(a.value, variables=True) & loaded.keys()
        direct = not calls_below(a.value).isdisjoint(LOAD_CALLS)
        if lut and (src or direct) and "sidecar" not in " ".join(lut).lower():
            origin = loaded[min(src)] if src else a.line
            return LoadedTable(fn, lut[0], origin, a.line)
    return None


def _hand_built(fn: Function) -> HandBuiltTable | None:
    pieces = [c for c in fn.calls if call_name(c) in ("id_to_piece", "IdToPiece")]
    writes = [a for a in fn.assigns if any(LUT_NAME.search(n) and "space" not in n.lower()
                                           and "boundary" not in n.lower() for n in a.names)
              and isinstance(a.node, ast.Assign) and isinstance(a.node.targets[0], ast.Subscript)]
    if not pieces or not writes:
        return None
    called = {call_name(c) for c in fn.calls}
    consts = {n.value for n in walk_nodes(fn.node) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    missing = []
    if not called & {"is_byte", "IsByte"} and not any(re.search(r"<0x", c) for c in consts):
        missing.append("byte-fallback pieces counted as 1 byte")
    if not called & {"is_control", "IsControl", "is_unknown", "IsUnknown", "is_unused", "IsUnused"}:
        missing.append("control/unknown/unused pieces counted as 0 bytes")
    if not any("\u2581" in c for c in consts):
        missing.append("the leading '▁' stripped and handled as a conditional space")
    if not missing:
        return None
    return HandBuiltTable(fn, pieces[0].lineno, writes[0].line, tuple(missing))
