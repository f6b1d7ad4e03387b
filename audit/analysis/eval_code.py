"""Which code the evaluation-legality rules read: the shared analysis sources, tagged main/helper.

Many records ship `train_gpt.py` as a self-extracting wrapper; `audit.analysis.sources` decodes
it (or takes `Submission.analysis_sources()`), so the rules see the real program. Here each
source is tagged with whether it is the main script, and sources too large to analyse in time
are kept out of the dataflow (the code-parses rule reports them). Python 3.12 f-strings are
handled by the shared parser (`audit.analysis.parse`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from audit.analysis.parse import ParsedModule, parse_source
from audit.analysis.sources import analysis_sources

if TYPE_CHECKING:
    from audit.context import AuditContext

MAX_ANALYSED_CHARS = 4 * 1024 * 1024  # real scripts are < 250 KB; a 20 MB "script" is not analysed


@dataclass(frozen=True)
class CodeUnit:
    """One analysable module: the path a reviewer opens, whether it is the main script, its parse."""

    path: str
    is_main: bool
    parsed: ParsedModule
    decoded_from: str | None = None


def code_units(ctx: AuditContext) -> list[CodeUnit]:
    """All analysable Python modules of the submission, parsed once per audit."""
    return ctx.memo("static_eval.code_units", lambda: _build_units(ctx))


def main_units(ctx: AuditContext) -> list[CodeUnit]:
    return [u for u in code_units(ctx) if u.is_main]


def _build_units(ctx: AuditContext) -> list[CodeUnit]:
    main = ctx.submission.main_script
    main_path = main.path if main is not None else None
    units: list[CodeUnit] = []
    for src in analysis_sources(ctx):
        if len(src.parsed.source) > MAX_ANALYSED_CHARS:
            continue
        origin = src.decoded_from or src.path
        units.append(CodeUnit(src.path, origin == main_path, _without_bom(src.parsed), src.decoded_from))
    # A wrapper and its decoded text are both sources; analyse the decoded one only.
    decoded_origins = {u.decoded_from for u in units if u.decoded_from and u.parsed.tree is not None}
    return [u for u in units if u.decoded_from is not None or u.path not in decoded_origins]


def _without_bom(parsed: ParsedModule) -> ParsedModule:
    """A UTF-8 byte-order mark before the first line is valid for Python (it runs the file);
    `ast.parse` on the decoded text rejects it, so parse again without it (lines unchanged)."""
    if parsed.tree is not None or not parsed.source.startswith("\ufeff"):
        return parsed
    again = parse_source(parsed.path, parsed.source[1:])
    return again if again.tree is not None else parsed
