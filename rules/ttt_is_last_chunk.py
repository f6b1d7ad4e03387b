"""R-TTT-IS-LAST-CHUNK (info): does a score-first TTT loop skip training on its last chunk?"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable

from audit.analysis.api import evidence_line, valflow
from audit.analysis.chain import primary, where_note
from audit.analysis.valflow import Classified
from audit.context import AuditContext
from audit.findings import Finding, Severity
from audit.rule import Invalid, Rule, RuleDoc, Valid
from rules._ttt_examples import MAIN_SCORE_FIRST, SCORE_FIRST, SLIDING, program

LAST = re.compile(r"last", re.IGNORECASE)


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
            guarded = _last_chunk_guard(c)
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


def _last_chunk_guard(c: Classified) -> bool:
    """An `if` around the update, or an early `continue`/`break` before it in the loop, whose test
    names a last-chunk flag or compares the loop index with `n - 1`."""
    site = c.event.site
    loop = next((lp for lp in site.loops if lp.line == c.loop_line), None)
    targets = loop.target_names if loop is not None else frozenset()
    for test, _ in site.guard_tests:
        if _is_last_test(test, targets):
            return True
    if loop is None or not isinstance(loop.node, (ast.For, ast.While)):
        return False
    for stmt in loop.node.body:
        if stmt.lineno >= site.line:
            break
        if isinstance(stmt, ast.If) and _is_last_test(stmt.test, targets) and any(
                isinstance(s, (ast.Continue, ast.Break)) for s in stmt.body):
            return True
    return False


def _is_last_test(test: ast.AST, targets: frozenset[str]) -> bool:
    for n in ast.walk(test):
        if isinstance(n, ast.Name) and LAST.search(n.id):
            return True
        if isinstance(n, ast.Compare) and any(isinstance(x, ast.Name) and x.id in targets
                                              for x in ast.walk(n)):
            if any(isinstance(b, ast.BinOp) and isinstance(b.op, ast.Sub) for b in ast.walk(n)):
                return True
    return False
