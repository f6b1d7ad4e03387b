"""R-EVAL-C3 for caches: a chunk must be scored before its own tokens are added to the cache.

A count cache updated with a chunk's n-grams and then used to score that same chunk holds each
token's own count when the token is scored, so the score depends on the token (C3, and C1). The
legal shapes score the chunk first and add its n-grams afterwards, or add the *previous* chunk's
n-grams at the top of the next iteration. We compare statement order inside the loop that
processes a chunk (see audit.analysis.cache_order).
"""

from __future__ import annotations

from collections.abc import Iterable

from audit.analysis.api import cache_order_facts
from audit.context import AuditContext
from audit.findings import Evidence, Finding, Severity
from audit.rule import Invalid, Rule, RuleDoc, Valid
from rules import _scored_token_examples as st
from rules import _static_eval_examples as ex


class EvalC3CacheOrder(Rule):
    ID = "R-EVAL-C3-SCORE-BEFORE-UPDATE.cache"
    TITLE = "Eval-time cache updated with a chunk before that chunk is scored"
    SEVERITY = Severity.ERROR
    KIND = "static"
    SOURCE = (
        "RULES.md E R-EVAL-C3-SCORE-BEFORE-UPDATE and R-NGRAM-CACHE items 1 and 4 (cache update before "
        "scoring): https://github.com/openai/parameter-golf/issues/1017 ; "
        "https://github.com/openai/parameter-golf/issues/677 ; https://github.com/openai/parameter-golf/pull/779"
    )
    DOC = RuleDoc(
        why="The score for a position is taken from the pre-update distribution; any state change"
            " that uses that token (TTT step, cache/count increment, mixer weight update) happens"
            " only after the score is committed.",
        ruling="Issue #1017 condition C3; notapplica's ruling log in #140 records valerio-oai "
               "recommending the #1017 conditions, and cocohearts' audits cite score-first/C3 by "
               "name (#1902, #1972). A cache of already-scored tokens updated after scoring is "
               "allowed (R-NGRAM-CACHE item 1).",
        date="2026-03-27 (valerio-oai recommending the #1017 conditions, per the #140 log; "
             "second-hand)",
        sources=(
            "https://github.com/openai/parameter-golf/issues/1017",
            "https://github.com/openai/parameter-golf/issues/140",
            "https://github.com/openai/parameter-golf/pull/1902",
            "https://github.com/openai/parameter-golf/pull/1972",
            "https://github.com/openai/parameter-golf/issues/677",
        ),
    )
    VALID = [
        Valid(ex.SCORE_THEN_UPDATE_CACHE, "score the chunk from the cache, then add its n-grams"),
        Valid(ex.DEFERRED_CACHE_UPDATE, "add the previous chunk's n-grams at the top of the loop"),
        Valid(ex.CAUSAL_CACHE, "inline lookup, then np.add.at of the same keys after scoring"),
        Valid(ex.CAPTURED_SEGMENTS_CACHE, "score all segments of a chunk, then update with each"),
        Valid(ex.TARGET_KEY_RETURNED, "(a C2 violation, but its update follows the score)"),
        Valid(st.PAIR_BOOK_AFTER_SCORE, "dense pair table: row read and token scored, then the pair added by a method"),
        Valid(st.CLOSURE_BUMP_AFTER_SCORE, "a closure adds the pair to the enclosing table after scoring"),
    ]
    INVALID = [
        Invalid(ex.UPDATE_THEN_SCORE_CACHE, "cache.update(toks, start, end) then cache.dist(toks, start, end)",
                line=ex.line_of(ex.UPDATE_THEN_SCORE_CACHE, "0.2 * cache.dist(toks, start, end)"),
                severity=Severity.ERROR),
        Invalid(ex.INLINE_UPDATE_THEN_SCORE, "np.add.at(counts, (ctx_key, y), 1) before counts[ctx_key]",
                line=ex.line_of(ex.INLINE_UPDATE_THEN_SCORE, "rows = counts[ctx_key] + 0.1"),
                severity=Severity.ERROR),
        Invalid(st.PAIR_BOOK_BEFORE_SCORE, "token by token: (current, next) added through a method, then the "
                "current token's row read", line="tilted = F.log_softmax(", severity=Severity.ERROR),
        Invalid(st.CLOSURE_BUMP_BEFORE_SCORE, "a closure adds (current, next) to the enclosing table before the row "
                "is read", line="tilted = F.log_softmax(", severity=Severity.ERROR),
    ]

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        for hit in cache_order_facts(ctx):
            fn, up, sc = hit.fn, hit.update, hit.score
            args = ", ".join(f"`{n}`" for n in sorted(hit.shared))
            steps = [
                fn.evidence(hit.scope_line, "loop that processes one chunk per iteration"),
                fn.evidence(up.line, f"{up.label} with keys from {args} (this iteration's chunk)"),
                fn.evidence(sc.line, f"{sc.label} for the same {args}, after the update"),
                hit.score_step,
            ]
            evidence: list[Evidence] = list(steps)
            if hit.same_chunk:
                severity, lead = Severity.ERROR, "adds a chunk's tokens to the cache and then scores the same chunk"
            else:
                severity, lead = Severity.WARNING, (
                    "adds tokens to the cache before scoring, with arguments that include those of the scored "
                    "chunk (it may be the same chunk)")
            yield self.finding(
                f"R-EVAL-C3-SCORE-BEFORE-UPDATE: `{fn.qualname}` {lead}: the update at line {up.line} uses {args} "
                f"and the cache is read for the score at line {sc.line}. Each token's own count is then in the "
                "table when that token is scored, so its score depends on the token. Score the chunk first and add "
                "its n-grams afterwards (or add the previous chunk's n-grams at the top of the next iteration).",
                path=fn.path, line=sc.line, evidence=evidence, severity=severity,
                key=f"{fn.qualname}:{up.cache}:{sc.line}",
            )
