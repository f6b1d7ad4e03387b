"""R-EVAL-C1-CAUSAL: gates and experts must not read the realised token (#1017 condition 1).

The distribution that scores position t may depend only on the artifact and the tokens before
t. An n-gram tilt or expert whose hash key has no target can still leak it through its gate:
choosing the mixing weight, or switching a within-word expert on, by whether the TARGET token
starts a word (its leading-space / boundary flag) reads the answer (#1967/#2018 lineage). The
same flags of the *context* (`is_boundary[x]`: the previous token ends a word) are legal, and so
are the target's flags used for byte accounting, which never meet the model's distribution.
"""

from __future__ import annotations

from collections.abc import Iterable

from audit.analysis.api import target_metadata_gates
from audit.context import AuditContext
from audit.findings import Finding, Severity
from audit.rule import Invalid, Rule, RuleDoc, Valid
from rules import _static_eval_examples as ex


class EvalC1TargetGate(Rule):
    ID = "R-EVAL-C1-CAUSAL"
    TITLE = "Gate or expert reads metadata of the token being scored"
    SEVERITY = Severity.ERROR
    KIND = "static"
    SOURCE = (
        "RULES.md E R-EVAL-C1-CAUSAL: https://github.com/openai/parameter-golf/issues/1017 ; "
        "https://github.com/openai/parameter-golf/issues/140 ; https://github.com/openai/parameter-golf/pull/1902"
    )
    DOC = RuleDoc(
        why="The distribution used to score position t may depend only on the artifact and the tokens "
            "strictly before t (#1017 condition 1, whose vocabulary the maintainers adopted). A gate, mixing "
            "weight or expert switch that reads a property of the token at t (its word-start, leading-space "
            "or boundary flag) makes the score depend on that token, even when no hash key contains it: "
            "within-word/word-start experts keyed on the realised token are listed as C1 violations "
            "(#1967/#2018 lineage), while token-only tilts computed from the context were verified legal "
            "(#2135/#2146). The same flags of the context, and the target's flags used only to count bytes, "
            "are legal.",
        ruling="Maintainers adopted #1017's conditions (valerio-oai recommending them, #140 log, Mar 27; "
               "cocohearts citing C1/C2/C3 by name in #1902 and #1972); cocohearts verified \"token-only "
               "n-gram gates\" as legal in #2146, and #1514 disabled its word-start experts for this reason.",
        date="2026-03-27 (#1017 criteria recommended); token-only gates verified in #2146",
        sources=(
            "https://github.com/openai/parameter-golf/issues/1017",
            "https://github.com/openai/parameter-golf/issues/140",
            "https://github.com/openai/parameter-golf/pull/1902",
            "https://github.com/openai/parameter-golf/pull/1514",
            "https://github.com/openai/parameter-golf/pull/2146",
        ),
    )
    VALID = [
        Valid(ex.CONTEXT_BOUNDARY_GATE, "mixing weight chosen by the previous token's boundary flag (context)"),
        Valid(ex.NGRAM_TILT, "token-only tilt from the prefix; the target's flags only count bytes"),
        Valid(ex.ENTROPY_GATE, "gate on the model's own entropy"),
        Valid(ex.CAUSAL_CACHE, "context-keyed cache; byte accounting reads the target's leading-space flag"),
    ]
    INVALID = [
        Invalid(ex.WORD_START_GATE, "mixing weight chosen by whether the target starts a word",
                line=ex.line_of(ex.WORD_START_GATE, "mixed = torch.logaddexp(")),
        Invalid(ex.WITHIN_WORD_TILT, "within-word expert boost applied only where the target continues a word",
                line=ex.line_of(ex.WITHIN_WORD_TILT, "logp = F.log_softmax(logits + boost * mid_word")),
    ]

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        for g in target_metadata_gates(ctx):
            decoded = g.fn.unit.decoded_from is not None
            yield self.finding(
                f"R-EVAL-C1-CAUSAL: in `{g.fn.qualname}` the distribution that is scored depends on "
                f"`{g.table}` of the target token, the token being scored: a gate or expert weight chosen "
                "by whether the realised token starts or continues a word reads the answer, even though no "
                "hash key contains it. Compute gates from the context only (e.g. whether the previous "
                "token ends a word), and use the target only to look up its probability after the "
                "distribution is fixed." + (" Line numbers refer to the decoded wrapper text." if decoded else ""),
                path=g.fn.path, line=g.line, evidence=[s.evidence() for s in g.steps],
                key=f"{g.fn.qualname}:target-gate:{g.table}",
            )
