"""R-EVAL-C2-NORMALIZED: the score must come from a distribution over the whole vocabulary.

Hashed n-gram mixtures of the #779 family compute `p = full_count[hash(ctx, y)] / ctx_count` for
the realized token only and blend it with the model's probability of that token. No distribution
over the vocabulary is ever formed (PR #886 measured the implied mass summing to ~277), so the
reported loss is not a log-likelihood. Mixing full-vocabulary distributions and then reading the
realized token, or a renormalised tilt, is fine.
"""

from __future__ import annotations

from collections.abc import Iterable

from audit.analysis.api import ngram_facts, unproven_normalisation
from audit.context import AuditContext
from audit.findings import Finding, Severity
from audit.rule import Invalid, Rule, RuleDoc, Valid
from rules import _static_eval_examples as ex


class EvalC2Normalized(Rule):
    ID = "R-EVAL-C2-NORMALIZED"
    TITLE = "Blended probability computed for the gold token only (not normalised over the vocabulary)"
    SEVERITY = Severity.ERROR
    KIND = "static"
    SOURCE = (
        "RULES.md E R-EVAL-C2-NORMALIZED and R-NGRAM-CACHE item 3: "
        "https://github.com/openai/parameter-golf/issues/1017 ; https://github.com/openai/parameter-golf/pull/779 ; "
        "https://github.com/openai/parameter-golf/pull/886 ; https://github.com/openai/parameter-golf/pull/978 ; "
        "https://github.com/openai/parameter-golf/issues/677"
    )
    DOC = RuleDoc(
        why="Before the token is revealed, the model must commit to a proper probability "
            "distribution over the whole official token alphabet (non-negative, summing to 1), "
            "and the score is −log of the realized token's probability under it. Shortcuts that "
            "only compute a value for the gold token, or renormalize over a set chosen using the "
            "gold token, are invalid. Normalisation must be proven, not assumed: a ratio of two "
            "separately hashed count tables is not a distribution even when gathered for every "
            "vocabulary token (collisions; #886 measured ~277), and additive smoothing with the model's "
            "probability does not repair it. Proven: a denominator that is the numerator's own sum over "
            "the vocabulary axis, a softmax/log_softmax over the vocabulary, or a convex combination of "
            "such distributions.",
        ruling="Issue #1017 (a participant's field guide, 2026-03-28) states conditions C1-C4; "
               "notapplica's ruling log in #140 records valerio-oai recommending them on Mar 27, "
               "and cocohearts' audits cite C2 by name (#1902 excluded the PPM-D/byte-mixture C2 "
               "rows). The hashed n-gram caches of the #779 family were closed for not forming a "
               "normalised distribution (R-NGRAM-CACHE item 3).",
        date="2026-03-27 (valerio-oai recommending the #1017 conditions, per the #140 log; "
             "second-hand)",
        sources=(
            "https://github.com/openai/parameter-golf/issues/1017",
            "https://github.com/openai/parameter-golf/issues/140",
            "https://github.com/openai/parameter-golf/pull/1902",
            "https://github.com/openai/parameter-golf/pull/779",
            "https://github.com/openai/parameter-golf/pull/886",
            "https://github.com/openai/parameter-golf/pull/978",
        ),
    )
    VALID = [
        Valid(ex.CAUSAL_CACHE, "full-vocab cache distribution mixed with the softmax, then the target read"),
        Valid(ex.SLIDING_WINDOW_TTT, "sliding window scoring the last stride, then a score-first TTT step"),
        Valid(ex.NGRAM_TILT, "boost of a hinted token followed by log_softmax over the vocabulary"),
        Valid(ex.BIGRAM_EMBEDDING, "bigram hash embedding: no cache probability at all"),
        Valid(ex.CAPTURED_SEGMENTS_CACHE, "context-only key over positions named `target_pos`; "
              "(positions, targets) carried together in tuples"),
        Valid(ex.ROW_NORMALISED_RATIO, "hashed rows for every vocab token divided by their own row sum"),
        Valid(ex.SOFTMAX_OF_RATIO, "a ratio of two hashed tables used only as a logit tilt, then log_softmax"),
    ]
    INVALID = [
        Invalid(ex.TARGET_KEY_CACHE, "count ratio for the gold token mixed with p_model(y)",
                line=ex.line_of(ex.TARGET_KEY_CACHE, "full_c = full_table[full_key]")),
        Invalid(ex.TARGET_KEY_HELPER, "the same ratio computed in a helper and mixed by the caller", line="return self.full_counts[fk] / np.maximum(c, 1.0)"),
        Invalid(ex.TARGET_KEY_RETURNED, "count ratio of keys returned by a hashing helper", line="full_c = self.full_tables[n - 1][full_h]"),
        Invalid(ex.CAPTURED_SEGMENTS_TARGET_KEY, "next tokens carried through segment tuples into the key",
                line=ex.line_of(ex.CAPTURED_SEGMENTS_TARGET_KEY, "return self.pair_counts[pk]")),
        Invalid(ex.SEPARATE_TABLES_RATIO, "counts for every vocab token over a separately hashed context count",
                line=ex.line_of(ex.SEPARATE_TABLES_RATIO, "p_ng = torch.from_numpy(full_c / np.maximum(ctx_c, 1.0))")),
        Invalid(ex.SMOOTHED_SEPARATE_RATIO, "additive smoothing with p_model does not repair the ratio",
                line=ex.line_of(ex.SMOOTHED_SEPARATE_RATIO, "mixed = (torch.from_numpy(full_c) + 2.0 * p_model)")),
    ]

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        for lk in ngram_facts(ctx).lookups:
            if not lk.counted:
                continue  # a bias row read at a target key: a C1 leak (R-NGRAM-CACHE), still normalised
            steps = lk.chain[:1]
            steps += [lk.key_step, lk.lookup_step]
            if lk.ratio_step is not None:
                steps.append(lk.ratio_step)
            steps.append(lk.score_step)
            yield self.finding(
                f"R-EVAL-C2-NORMALIZED: `{lk.fn.qualname}` scores a probability computed for the realized "
                f"token only, read from the count table `{lk.table}` at a key that contains that token. "
                "Before a token is revealed the evaluator must commit to a distribution over the whole "
                "vocabulary that sums to 1; a per-token count ratio (with hash collisions) blended with the "
                "model's probability of the same token is not one, so the reported loss is not a "
                "log-likelihood. Build the cache's distribution over every vocabulary entry (or a "
                "renormalised tilt of the softmax), mix full distributions, then read the target.",
                path=lk.fn.path, line=lk.line, evidence=list(steps),
                key=f"{lk.fn.qualname}:{lk.table}",
            )
        for r in unproven_normalisation(ctx):
            decoded = r.fn.unit.decoded_from is not None
            yield self.finding(
                f"R-EVAL-C2-NORMALIZED: the cache probability scored in `{r.fn.qualname}` is not proven "
                f"normalised. It divides counts from {', '.join(sorted(r.numerator))} by counts from "
                f"{', '.join(sorted(r.denominator))}, each read at its own hashed key: with collisions the "
                "sum over the vocabulary of the numerator is not the denominator, so the rows are not "
                "distributions even when gathered for every token, and additive smoothing or mixing with "
                "the model's probability does not make them one. Normalise each row by its own sum over "
                "the vocabulary (or apply a softmax over the vocabulary) before mixing and scoring."
                + (" Line numbers refer to the decoded wrapper text." if decoded else ""),
                path=r.fn.path, line=r.line, evidence=list(r.steps),
                key=f"{r.fn.qualname}:unproven-ratio",
            )
