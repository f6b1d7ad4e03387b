"""R-SLOT: eval-time optimisation of a fresh delta / logit bias on the positions being scored."""

from __future__ import annotations

from collections.abc import Iterable

from audit.analysis.api import chain_evidence, primary, switched_off_message, valflow, where_note
from audit.context import AuditContext
from audit.findings import Finding, Severity
from audit.rule import Invalid, Rule, RuleDoc, Valid
from rules._ttt_examples import SLIDING, program

SLOT_EVAL = '''
def eval_val_slot(model, val_tokens, seq_len=64, stride=16, steps=8):
    loss_sum = torch.zeros(())
    n = 0
    for ws in range(0, val_tokens.numel() - seq_len - 1, stride):
        x = val_tokens[ws:ws + seq_len][None]
        y = val_tokens[ws + 1:ws + seq_len + 1][None]
        with torch.no_grad():
            h = model.hidden(x)
        delta = torch.zeros(1, 1, h.shape[-1], requires_grad=True)
        opt = torch.optim.AdamW([delta], lr=1e-2)
        s = 0 if ws == 0 else seq_len - stride
        for _ in range(steps):
            nll = F.cross_entropy(model.head(h + delta)[0], y[0], reduction="none")
            nll[SCORED_SLICE].mean().backward()
            opt.step()
            opt.zero_grad()
        with torch.no_grad():
            nll = F.cross_entropy(model.head(h + delta)[0], y[0], reduction="none")
        loss_sum += nll[s:].sum()
        n += seq_len - s
    return (loss_sum / n).item()


def main():
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    model = torch.nn.Linear(8, 8)
    print("final", eval_val_slot(model, val_tokens))
'''


class Slot(Rule):
    ID = "R-SLOT"
    TITLE = "Eval-time optimisation of a delta / logit bias on the scored positions (SLOT)"
    SEVERITY = Severity.WARNING
    KIND = "static"
    SOURCE = (
        "RULES.md R-SLOT (no maintainer ruling; de-facto excluded): https://github.com/openai/parameter-golf/pull/1240 ; "
        "https://github.com/openai/parameter-golf/issues/1336 ; https://github.com/openai/parameter-golf/pull/1229"
    )
    DOC = RuleDoc(
        why="SLOT (optimizing a per-batch/per-sample hidden delta and/or logit bias against the "
            "NLL of the very positions that are then scored) lets the score of position t depend "
            "on later targets and adapts on unscored tokens → violates C1/C3. PR #1240's flip "
            "test found 100% cross- position dependence for shared-delta and per-sample variants."
            " No SLOT submission appears on the leaderboard; several were closed.",
        ruling="DE-FACTO + COMMUNITY (no explicit maintainer text retrieved; issue #1336 asked "
               "for a ruling on \"context-only/causal SLOT\").",
        date="no maintainer ruling (de-facto exclusion); RULES.md gives no date for this ruling",
        sources=(
            "https://github.com/openai/parameter-golf/pull/1240",
            "https://github.com/openai/parameter-golf/issues/1336",
            "https://github.com/openai/parameter-golf/pull/1229",
        ),
    )
    VALID = [
        Valid(SLIDING, "plain sliding-window eval"),
        Valid(program('''
def eval_val_bias(model, val_tokens, seq_len=64):
    bias = torch.zeros(8, requires_grad=True)
    opt = torch.optim.SGD([bias], lr=1e-2)
    loss_sum = torch.zeros(())
    n = 0
    for ws in range(0, val_tokens.numel() - seq_len - 1, seq_len):
        x = val_tokens[ws:ws + seq_len]
        y = val_tokens[ws + 1:ws + seq_len + 1]
        with torch.no_grad():
            loss_sum += F.cross_entropy(model(x) + bias, y, reduction="sum")
            n += seq_len
        F.cross_entropy(model(x) + bias, y).backward()
        opt.step()
        opt.zero_grad()
    return (loss_sum / n).item()


def main():
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    print("final", eval_val_bias(torch.nn.Linear(8, 8), val_tokens))
'''), "a logit bias updated only after each window is scored (score-first)"),
    ]
    INVALID = [
        Invalid(program(SLOT_EVAL.replace("SCORED_SLICE", "s:")), "delta optimised on the scored slice",
                severity=Severity.WARNING, line="nll[s:].mean().backward()"),
        Invalid(program(SLOT_EVAL.replace("SCORED_SLICE", ":s")), "context-only (causal) SLOT",
                severity=Severity.WARNING, line="nll[:s].mean().backward()"),
    ]

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        vf = valflow(ctx)
        for c in vf.results:
            if not c.slot or c.status in {"protected", "discarded"}:
                continue
            path, line, decoded = primary(ctx, c)
            leaf = c.event.leaf
            if vf.switched_off(c, soft=True):
                yield self.finding(switched_off_message(f"SLOT-style optimisation in `{leaf.ref.facts.name}`"),
                                   path=path, line=line, severity=Severity.INFO,
                                   evidence=chain_evidence(ctx, c), key=f"off:slot:{leaf.ref.facts.qualname}")
                continue
            msg = (f"SLOT-style eval-time optimisation in `{leaf.ref.facts.name}`: a freshly created tensor "
                   f"(hidden-state delta or logit bias) is optimised on a loss over validation tokens (line "
                   f"{leaf.site.line}) before those windows are scored. The optimised positions' scores can "
                   "then depend on later targets, and context-only variants still adapt on the window being "
                   "graded. No maintainer ruling exists (issue #1336); no SLOT submission is on the "
                   "leaderboard. Expect review; prefer score-first adaptation." + where_note(decoded))
            yield self.finding(msg, path=path, line=line,
                               evidence=chain_evidence(ctx, c, "score of the window after the optimisation"),
                               key=f"slot:{leaf.ref.facts.qualname}")
