"""R-NGRAM-CACHE: an eval-time cache must not read the token it is about to score.

A hashed n-gram cache that looks up `full_counts[hash(context, y)]` to score position t uses the
realized token y in the lookup: the score of t depends on the token at t (C1), and the value is a
count ratio for the gold token only. Building the same counts with y *after* scoring is legal.
Also reported here: oracle gates that pick, per position, whichever of two predictors gave the
realized token the better score.
"""

from __future__ import annotations

from collections.abc import Iterable

from audit.analysis.api import ngram_facts
from audit.context import AuditContext
from audit.findings import Finding, Severity
from audit.rule import Invalid, Rule, RuleDoc, Valid
from rules import _scored_token_examples as st
from rules import _static_eval_examples as ex

ORACLE_ID = "R-NGRAM-CACHE.oracle-gate"


class NgramCacheTargetLeak(Rule):
    ID = "R-NGRAM-CACHE"
    TITLE = "Eval-time n-gram cache looked up with the target token"
    SEVERITY = Severity.ERROR
    KIND = "static"
    ALSO_REPORTS = (ORACLE_ID,)
    SOURCE = (
        "RULES.md E R-NGRAM-CACHE (items 2-3) and R-EVAL-C1-CAUSAL: "
        "https://github.com/openai/parameter-golf/pull/779 ; https://github.com/openai/parameter-golf/issues/677 ; "
        "https://github.com/openai/parameter-golf/pull/659 ; https://github.com/openai/parameter-golf/issues/1017 ; "
        "https://github.com/openai/parameter-golf/issues/140"
    )
    DOC = RuleDoc(
        why="1. A cache built only from already-scored tokens and updated after scoring is "
            "allowed in principle (\"directionally legal\", valerio-oai in #677, second-hand; "
            "backward-looking cache \"confirmed legal\" Mar 25 per participants). 2. Gates/weights "
            "may depend on the model's own outputs (e.g. entropy) but never on the target token: "
            "PR #659's oracle/min-NLL gate was ruled illegal; valerio-oai suggested entropy "
            "gating instead (second-hand via #702). 3. Hashed caches that put the target token "
            "into the lookup key and score only the gold token were disallowed (valerio-oai on PR"
            " #779, comments 4145781641 / 4146407380 as cited by reviewers); on Mar 27 ~30+ such "
            "PRs were closed (#677; #140 log) because they do not form a normalized distribution "
            "over the vocabulary (C2). 4. Two-pass / \"full-rescore\" n-gram schemes (#846, #853, "
            "#868, #870, #881, #888) are illegal (C4/C3). 5. Token-only n-gram \"tilt\" "
            "(prefix-conditioned, properly renormalized boost of a hinted token) is accepted: "
            "#1514 (within-word/word-start experts disabled) and #2135 (cocohearts verified "
            "\"token-only n-gram gates\", #2146). Word-level experts whose gates read properties of"
            " the realized token violate C1 (#1967/#2018 thread). 6. N-gram tables built from "
            "training data are legal only if stored inside the 16 MB artifact.",
        ruling="RULING (second-hand, as cited by reviewers): valerio-oai on PR #779 (comments "
               "4145781641 / 4146407380) disallowed target-in-key hashed caches; ~30 such PRs "
               "were closed in the Mar 27 sweep (#677, #140 log); PR #659's oracle/min-NLL gate "
               "was ruled illegal (entropy gating suggested instead, via #702). A "
               "backward-looking cache was \"confirmed legal\" on Mar 25 per participants.",
        date="2026-03-25 (backward-looking cache legal, per participants) and 2026-03-27 (hashed "
             "target-in-key caches closed); both second-hand",
        sources=(
            "https://github.com/openai/parameter-golf/issues/677",
            "https://github.com/openai/parameter-golf/pull/779",
            "https://github.com/openai/parameter-golf/pull/886",
            "https://github.com/openai/parameter-golf/pull/978",
            "https://github.com/openai/parameter-golf/pull/659",
            "https://github.com/openai/parameter-golf/issues/140",
            "https://github.com/openai/parameter-golf/pull/1514",
            "https://github.com/openai/parameter-golf/pull/1967",
            "https://github.com/openai/parameter-golf/pull/2146",
        ),
    )
    VALID = [
        Valid(ex.BIGRAM_EMBEDDING, "bigram hash embeddings over input ids (t[i-1], t[i]), also aliased"),
        Valid(ex.CAUSAL_CACHE, "context-keyed full-vocab cache; target used only in the update after scoring"),
        Valid(ex.SLIDING_WINDOW_TTT, "sliding window scoring the last stride, then a score-first TTT step"),
        Valid(ex.NGRAM_TILT, "token-only n-gram tilt: hint from the prefix, full-vocab renormalisation"),
        Valid(ex.ENTROPY_GATE, "gate on the model's own entropy"),
        Valid(ex.CAPTURED_SEGMENTS_CACHE, "context-only key over positions named `target_pos`; "
              "(positions, targets) carried together in tuples"),
        Valid(st.INPUT_KEYED_BIAS, "bias row keyed on the previous and current input tokens"),
        Valid(st.NAMED_ENTROPY_GATE, "mask held in a name, computed from the model's entropy only"),
        Valid(st.LOGGED_LOSS_COMPARISON, "two per-token losses compared only for a log line"),
        Valid(st.SHIFTED_WINDOW_CACHE, "count rows keyed on a context window shifted in place "
                                       "(`window[j] = window[j + 1]`); updated after scoring"),
    ]
    INVALID = [
        Invalid(ex.TARGET_KEY_CACHE, "full key = ctx_hash ^ (y * prime) looked up to score y",
                line=ex.line_of(ex.TARGET_KEY_CACHE, "full_c = full_table[full_key]")),
        Invalid(ex.TARGET_KEY_HELPER, "target reaches the key through a helper parameter and position arithmetic",
                line=ex.line_of(ex.TARGET_KEY_HELPER, "return self.full_counts[fk]")),
        Invalid(ex.TARGET_KEY_RETURNED, "keys returned from a hashing helper; tables filled through a parameter",
                line=ex.line_of(ex.TARGET_KEY_RETURNED, "full_c = self.full_tables[n - 1][full_h]")),
        Invalid(ex.CAPTURED_SEGMENTS_TARGET_KEY, "next tokens carried through segment tuples into the key",
                line=ex.line_of(ex.CAPTURED_SEGMENTS_TARGET_KEY, "return self.pair_counts[pk]")),
        Invalid(ex.ORACLE_GATE, "min of two gold-token NLLs", rule_id=ORACLE_ID,
                line=ex.line_of(ex.ORACLE_GATE, "torch.minimum(nll_model, nll_uni)")),
        Invalid(st.NEXT_KEYED_BIAS, "bias row (not a count) keyed on the current and the next token, "
                "the next one found as the index of the scored entry", line="lp = F.log_softmax("),
        Invalid(st.NAMED_ORACLE_GATE, "comparison of two gold-token losses held in a name, then `where`",
                rule_id=ORACLE_ID, line="nll = torch.where(pick_soft, soft_nll, sharp_nll)"),
        Invalid(st.BLENDED_ORACLE_GATE, "losses from a helper, blended by a 0/1 weight from their comparison",
                rule_id=ORACLE_ID, line="nll = w * second + (1 - w) * first"),
    ]

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        facts = ngram_facts(ctx)
        for lk in facts.lookups:
            steps = list(lk.chain) + [lk.key_step, lk.lookup_step, lk.score_step]
            if lk.counted:
                what = (f"the eval-time cache `{lk.table}` is looked up with a key that contains the target "
                        f"token (the token being scored), in `{lk.fn.qualname}`. The score of a position may "
                        "depend only on tokens before it; hashing the realized next token into the lookup key "
                        "reads the answer and returns a count for the gold token only (the implied "
                        "'distribution' is not normalised over the vocabulary).")
            else:
                what = (f"the table `{lk.table}` is read, in `{lk.fn.qualname}`, at a key that hashes the target "
                        "token (the token being scored) together with its context, and the value read enters "
                        "what is scored for that token. The score of a position may depend only on tokens before "
                        "it: a count, bias or embedding row keyed on the realized token reads the answer, even "
                        "when the result is renormalised over the vocabulary.")
            yield self.finding(
                f"R-NGRAM-CACHE / C1: {what} Look up by the context alone, score a full "
                "distribution over the vocabulary, and use the target only to update the counts after the "
                "position has been scored.",
                path=lk.fn.path, line=lk.line, evidence=list(steps),
                key=f"{lk.fn.qualname}:{lk.table}",
            )
        for gate in facts.oracle_gates:
            yield self.finding(
                f"R-NGRAM-CACHE / C1: an oracle gate in `{gate.fn.qualname}` chooses, per position, between "
                "two predictors by comparing their scores of the realized token. A gate may depend on the "
                "model's own outputs (e.g. its entropy) but never on the target; blend the predictors with "
                "weights computed before the token is revealed.",
                path=gate.fn.path, line=gate.line, evidence=list(gate.steps),
                rule_id=ORACLE_ID, key=f"{gate.fn.qualname}:oracle",
            )
