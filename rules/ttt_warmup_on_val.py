"""R-TTT-WARMUP-ON-VAL: compile warm-up that runs backward/step on validation tokens (disputed)."""

from __future__ import annotations

from collections.abc import Iterable

from audit.analysis.api import chain_evidence, primary, valflow, where_note
from audit.context import AuditContext
from audit.findings import Finding, Severity
from audit.rule import Invalid, Rule, RuleDoc, Valid
from rules._ttt_examples import MAIN_SCORE_FIRST, SCORE_FIRST, program

WARMUP = '''
def warm_up_ttt(model, tokens, warmup_steps=3):
    lora = torch.nn.Linear(8, 8)
    opt = torch.optim.AdamW(lora.parameters(), lr=1e-3)
    for _ in range(warmup_steps):
        loss = F.cross_entropy(model(tokens[:64]) + lora(tokens[:64]), tokens[1:65])
        loss.backward()
        opt.step()
        opt.zero_grad()
    del lora, opt


def main():
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    model = torch.nn.Linear(8, 8)
    warm_up_ttt(model, WARMUP_TOKENS)
    print("final", eval_val_ttt(model, val_tokens))
'''


class TTTWarmupOnVal(Rule):
    ID = "R-TTT-WARMUP-ON-VAL"
    TITLE = "Compile warm-up runs backward/step on validation tokens (disputed)"
    SEVERITY = Severity.WARNING
    KIND = "static"
    SOURCE = (
        "RULES.md R-TTT-WARMUP-ON-VAL (de-facto accepted, disputed): https://github.com/openai/parameter-golf/pull/1530 ; "
        "https://github.com/openai/parameter-golf/pull/1900 ; https://github.com/openai/parameter-golf/pull/1902"
    )
    DOC = RuleDoc(
        why="PR #1530's TTT compile warm-up ran backward/step on real validation tokens before "
            "the scored loop (state reset afterwards). dexhunter and msisovic flagged it as "
            "matching the #677 pattern; the author showed the effect is within noise and offered "
            "synthetic-token warm-up. Maintainers merged #1530 and kept it on the leaderboard "
            "(#1902).",
        ruling="DE-FACTO acceptance; dispute documented.",
        date="no ruling: de-facto acceptance (#1530 merged and kept on the #1902 board); RULES.md"
             " gives no date for this ruling",
        sources=(
            "https://github.com/openai/parameter-golf/pull/1530",
            "https://github.com/openai/parameter-golf/pull/1900",
            "https://github.com/openai/parameter-golf/pull/1902",
        ),
    )
    VALID = [
        Valid(program(SCORE_FIRST, WARMUP.replace("WARMUP_TOKENS", "torch.randint(0, 8, (4096,))")),
              "warm-up on synthetic tokens"),
        Valid(program(SCORE_FIRST, MAIN_SCORE_FIRST), "no warm-up"),
    ]
    INVALID = [
        Invalid(program(SCORE_FIRST, WARMUP.replace("WARMUP_TOKENS", "val_tokens")),
                "warm-up steps on the first validation tokens", severity=Severity.WARNING, line=46),
    ]

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        vf = valflow(ctx)
        for c in vf.results:
            if c.status != "warmup" or vf.switched_off(c, soft=True):
                continue
            path, line, decoded = primary(ctx, c)
            leaf = c.event.leaf
            msg = (f"Warm-up on validation tokens: `{leaf.ref.facts.name}` runs backward/optimizer steps on "
                   f"val-derived tokens (line {leaf.site.line}) before the scored evaluation, to warm up "
                   "compilation. Maintainers kept such a submission (#1530) but reviewers flagged it as "
                   "training on unscored val data; check that weights and optimizer state are discarded "
                   "afterwards, and prefer synthetic or training tokens for warm-up." + where_note(decoded))
            yield self.finding(msg, path=path, line=line, evidence=chain_evidence(ctx, c),
                               key=f"warmup:{leaf.ref.facts.qualname}")
