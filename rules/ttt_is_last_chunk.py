"""R-TTT-IS-LAST-CHUNK (info): does a score-first TTT loop skip training on its last chunk?"""

from __future__ import annotations

from collections.abc import Iterable

from audit.analysis.api import evidence_line, primary, skips_last_chunk, valflow, where_note
from audit.context import AuditContext
from audit.findings import Finding, Severity
from audit.rule import Invalid, Rule, RuleDoc, Valid
from rules._ttt_examples import MAIN_SCORE_FIRST, SCORE_FIRST, SLIDING, program


class TTTIsLastChunk(Rule):
    ID = "R-TTT-IS-LAST-CHUNK"
    TITLE = "Score-first TTT skips the training step on the last chunk (idiom, not a rule)"
    SEVERITY = Severity.INFO
    KIND = "static"
    SOURCE = "RULES.md R-TTT-IS-LAST-CHUNK (COMMUNITY, PR #461 -> #549 framework)"
    DOC = RuleDoc(
        why="Legal TTT loops usually skip the training step on the final chunk (`if not "
            "is_last_chunk`), because nothing remains to score; it neither helps nor hurts "
            "legality.",
        ruling="COMMUNITY (PR #461 → #549 framework; cited in many reviews).",
        date="no ruling: a community idiom; RULES.md gives no date for this ruling",
        sources=(
            "https://github.com/openai/parameter-golf/pull/461",
            "https://github.com/openai/parameter-golf/pull/549",
        ),
    )
    VALID = [Valid(SLIDING, "no TTT at all")]
    INVALID = [
        Invalid(program(SCORE_FIRST, MAIN_SCORE_FIRST), "score-first loop with `if ci == num_chunks - 1: continue`",
                severity=Severity.INFO, line="for ci in range(num_chunks):"),
    ]

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        seen: set[int] = set()
        for c in valflow(ctx).results:
            if c.status != "protected" or c.slot or c.loop_line is None or c.loop_line in seen:
                continue
            seen.add(c.loop_line)
            guarded = skips_last_chunk(c)
            path, _, decoded = primary(ctx, c)
            state = "skips" if guarded else "does not visibly skip"
            yield self.finding(
                f"Score-first TTT in `{c.event.ref.facts.name}` (chunk loop at line {c.loop_line}) {state} the "
                "training step on the final chunk. This is an idiom, not a rule: training after the last "
                "score cannot change any reported number either way." + where_note(decoded),
                path=path, line=c.loop_line,
                evidence=[evidence_line(ctx, c.event.path, c.loop_line, "score-first chunk loop"),
                          evidence_line(ctx, c.event.path, c.event.site.line, "update after the chunk's score")],
                key=f"last:{c.event.ref.facts.qualname}:{c.loop_line}")
