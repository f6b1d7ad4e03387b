"""Which code the evaluation-legality rules read: the shared analysis sources (each tagged
`is_main`), without those too large to analyse in time (the code-parses rule reports them) and
without a wrapper whose decoded text is analysed in its place. Python 3.12 f-strings and a
byte-order mark are handled by the shared parser (`audit.analysis.parse`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from audit.analysis.parse import MAX_PARSE_CHARS
from audit.analysis.sources import Source, analysis_sources

if TYPE_CHECKING:
    from audit.context import AuditContext

# Real scripts are < 250 KB. The analysis is linear but heavy (a 4 MB script of 70,000 small
# functions costs ~30 s of CPU), so code over 1 MiB is parsed (code-parses) but not analysed, and
# the code-parses rule reports it: an unanalysable main script is an error, never a silent pass.
MAX_ANALYSED_CHARS = min(MAX_PARSE_CHARS, 1 << 20)

# The one source type; the old name stays for the modules that still use it.
CodeUnit = Source


def code_units(ctx: AuditContext) -> list[Source]:
    """All analysable Python modules of the submission, parsed once per audit."""
    return ctx.memo("static_eval.code_units", lambda: _build_units(ctx))


def main_units(ctx: AuditContext) -> list[Source]:
    return [u for u in code_units(ctx) if u.is_main]


def _build_units(ctx: AuditContext) -> list[Source]:
    units = [s for s in analysis_sources(ctx) if len(s.parsed.source) <= MAX_ANALYSED_CHARS]
    # A wrapper and its decoded text are both sources; analyse the decoded one only.
    decoded_origins = {u.decoded_from for u in units if u.decoded_from and u.parsed.tree is not None}
    return [u for u in units if u.decoded_from is not None or u.path not in decoded_origins]
