"""R-TTT-NO-RESCORE and R-TTT-NO-CALIBRATION-ON-SCORED: only the first, pre-update score counts."""

from __future__ import annotations

from collections.abc import Iterable

from audit.analysis.api import calibration_on_scored, display, evidence_line, rescoring, valflow, where_note
from audit.context import AuditContext
from audit.findings import Finding, Severity
from audit.rule import Invalid, Rule, RuleDoc, Valid
from audit.seeds import seed_runs
from rules._ttt_examples import MAIN_SCORE_FIRST, SCORE_FIRST, program

CALIBRATION_ID = "R-TTT-NO-CALIBRATION-ON-SCORED"

EVAL_WITH_TEMPERATURE = '''
def eval_val_temp(model, val_tokens, temperature=1.0, seq_len=8):
    loss_sum = torch.zeros(())
    n = 0
    with torch.inference_mode():
        for i in range(0, val_tokens.numel() - 1 - seq_len, seq_len):
            logits = model(val_tokens[i:i + seq_len]) / temperature
            loss_sum += F.cross_entropy(logits, val_tokens[i + 1:i + 1 + seq_len], reduction="sum")
            n += seq_len
    return (loss_sum / n).item()
'''


def _norm(label: str) -> str:
    return label.removesuffix("_exact")


def _reported_labels(ctx: AuditContext) -> set[str]:
    """Labels of the score lines the logs report as final (empty when the logs do not say)."""
    return {_norm(r.score_label) for r in seed_runs(ctx) if r.score_label}


class TTTNoRescore(Rule):
    ID = "R-TTT-NO-RESCORE"
    TITLE = "No re-evaluation of validation tokens after training on them (report s_0, not s_1)"
    SEVERITY = Severity.ERROR
    KIND = "static"
    SOURCE = (
        "RULES.md R-TTT-NO-RESCORE, R-TTT-NO-CALIBRATION-ON-SCORED: "
        "https://github.com/openai/parameter-golf/pull/991 ; https://github.com/openai/parameter-golf/pull/1004 ; "
        "https://github.com/openai/parameter-golf/issues/140"
    )
    DOC = RuleDoc(
        why="Reporting a second score of tokens after training on them (\"s_1\") is illegal; only "
            "the first, pre-update score counts. Likewise, choosing an eval-time parameter (e.g. "
            "a softmax temperature) by fitting it on validation tokens and then re-scoring them "
            "is illegal (R-TTT-NO-CALIBRATION-ON-SCORED).",
        ruling="RULING (valerio-oai closed PR #991 for score-train-rescore of the same tokens, "
               "per notapplica's log in #140; two-pass rescoring called training on the eval set "
               "in the Mar 27 sweep).",
        date="2026-03-27 (the sweep in which two-pass rescoring was called training on the eval "
             "set, per notapplica's log in #140); the #991 closure is not dated in RULES.md",
        sources=(
            "https://github.com/openai/parameter-golf/pull/991",
            "https://github.com/openai/parameter-golf/pull/1004",
            "https://github.com/openai/parameter-golf/issues/140",
        ),
    )
    ALSO_REPORTS = (CALIBRATION_ID,)
    VALID = [
        Valid(program(SCORE_FIRST, MAIN_SCORE_FIRST), "plain eval before TTT, score-first TTT last (s_0)"),
        Valid(program(SCORE_FIRST, EVAL_WITH_TEMPERATURE, '''
def main():
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    model = torch.nn.Linear(8, 8)
    print("fixed-temperature eval", eval_val_temp(model, val_tokens, temperature=0.9))
    print("final", eval_val_ttt(model, val_tokens))
'''), "a fixed temperature hard-coded as a hyperparameter"),
        Valid(program(SCORE_FIRST, '''
def main():
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    model = torch.nn.Linear(8, 8)
    if USE_TTT:
        print("final", eval_val_ttt(model, val_tokens))
    else:
        print("final", eval_val(model, val_tokens))
'''), "TTT eval or plain eval, on two arms of one if"),
    ]
    INVALID = [
        Invalid(program(SCORE_FIRST, '''
def main():
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    eval_model = torch.nn.Linear(8, 8)
    s0 = eval_val_ttt(eval_model, val_tokens)
    s1 = eval_val(eval_model, val_tokens)
    print("final", s1)
'''), "score-first TTT, then the adapted model re-scores the same tokens", line=45),
        Invalid(program(EVAL_WITH_TEMPERATURE, '''
def main():
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    model = torch.nn.Linear(8, 8)
    best_t, best = 1.0, float("inf")
    for t in [0.9, 0.95, 1.0, 1.05]:
        loss = eval_val_temp(model, val_tokens, temperature=t)
        if loss < best:
            best, best_t = loss, t
    print("final", best)
'''), "temperature chosen by minimum val loss over candidates", rule_id=CALIBRATION_ID, line="for t in [0.9, 0.95, 1.0, 1.05]:"),
    ]

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        vf = valflow(ctx)
        reported = _reported_labels(ctx)
        for r in rescoring(vf):
            if vf.site_off(r.ttt.ref, r.ttt.site) or vf.site_off(r.rescore.ref, r.rescore.site):
                continue
            path, decoded = display(ctx, r.rescore.path)
            if r.label and reported and _norm(r.label) not in reported:
                yield self.finding(
                    f"After the score-first TTT pass `{r.ttt.site.name}` (line {r.ttt.site.line}), "
                    f"`{r.rescore.site.name}` (line {r.rescore.site.line}) scores the adapted model again "
                    f"(logged as `{r.label}`), but the logs report {', '.join(sorted(reported))} as the final "
                    "score, so the re-score is not the reported number (noted, not counted)." + where_note(decoded),
                    path=path, line=r.rescore.site.line, severity=Severity.INFO,
                    key=f"unreported:{r.ttt.site.name}->{r.rescore.site.name}")
                continue
            msg = (f"Re-scoring after TTT: `{r.ttt.site.name}` (line {r.ttt.site.line}) already scores the "
                   f"validation tokens while adapting `{r.model}` on them; `{r.rescore.site.name}` (line "
                   f"{r.rescore.site.line}) then scores the same tokens again with the adapted model. A second "
                   "pass over tokens the model has trained on is training on the eval set; only the first, "
                   "pre-update score (s_0) may be reported. Report the TTT pass's own score and drop the "
                   "re-evaluation (or keep it out of the reported metric)." + where_note(decoded))
            yield self.finding(msg, path=path, line=r.rescore.site.line, evidence=[
                evidence_line(ctx, r.ttt.path, r.ttt.site.line, "score-first TTT pass (adapts the model)"),
                evidence_line(ctx, r.rescore.path, r.rescore.site.line, "second scoring of the adapted model"),
            ], key=f"{r.ttt.site.name}->{r.rescore.site.name}")
        for c in calibration_on_scored(vf):
            if vf.site_off(c.ref, c.score.site):
                continue
            path, decoded = display(ctx, c.ref.path)
            msg = (f"Eval-time knob fitted on scored tokens: the loop at line {c.loop_line} scores the "
                   f"validation set for each candidate setting (`{c.score.site.name}`, line {c.score.site.line}) "
                   f"and keeps the best (line {c.compare_line}). Choosing a temperature or similar on the very "
                   "tokens being reported re-scores them; fix the setting in advance or adapt it only from "
                   "tokens already scored." + where_note(decoded))
            yield self.finding(msg, path=path, line=c.loop_line, rule_id=CALIBRATION_ID, evidence=[
                evidence_line(ctx, c.ref.path, c.loop_line, "loop over candidate settings"),
                evidence_line(ctx, c.ref.path, c.score.site.line, "val score per candidate"),
                evidence_line(ctx, c.ref.path, c.compare_line, "best candidate kept"),
            ], key=f"calib:{c.ref.facts.qualname}")
