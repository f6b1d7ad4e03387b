"""R-DATA-NO-VAL-IN-TRAINING: validation data may not reach training or the artifact."""

from __future__ import annotations

from collections.abc import Iterable

from audit.analysis.api import chain_evidence, display, evidence_line, primary, val_sinks, valflow, where_note
from audit.context import AuditContext
from audit.findings import Finding, Severity
from audit.rule import README_RULE_DATE, Invalid, Rule, RuleDoc, Valid
from rules._ttt_examples import TRAINING_WITH_PERIODIC_VAL, program


class DataNoValInTraining(Rule):
    ID = "R-DATA-NO-VAL-IN-TRAINING"
    TITLE = "Validation data may not influence training or be stored in the artifact"
    SEVERITY = Severity.ERROR
    KIND = "static"
    SOURCE = (
        "RULES.md R-DATA-NO-VAL-IN-TRAINING: README FAQ; https://github.com/openai/parameter-golf/pull/168 ; "
        "https://github.com/openai/parameter-golf/pull/275"
    )
    DOC = RuleDoc(
        why="No access to validation data during training, including storing val text in the "
            "artifact (\"paid prefix\"). You cannot train on the validation set before evaluating "
            "on it.",
        ruling="README (FAQ evaluation restrictions). Paid-prefix PRs #168/#262/#275 were ruled "
               "out of scope (0hq, quoted by participants).",
        date=README_RULE_DATE,
        sources=(
            "README",
            "https://github.com/openai/parameter-golf/pull/168",
            "https://github.com/openai/parameter-golf/pull/275",
        ),
    )
    VALID = [
        Valid(program(TRAINING_WITH_PERIODIC_VAL), "periodic validation in the training loop (logging only)"),
        Valid(program('''
def main():
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    model = torch.nn.Linear(8, 8)
    torch.save(model.state_dict(), "final_model.pt")
    print("final", eval_val(model, val_tokens))
'''), "the artifact holds the weights only"),
    ]
    INVALID = [
        Invalid(program('''
def main():
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    train_tokens = torch.load("data/fineweb_train_000000.bin")
    model = torch.nn.Linear(8, 8)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for step in range(100):
        x = torch.cat([train_tokens[step * 64:(step + 1) * 64], val_tokens[step * 8:(step + 1) * 8]])
        loss = F.cross_entropy(model(x[:-1]), x[1:])
        loss.backward()
        opt.step()
    print("final", eval_val(model, val_tokens))
'''), "val tokens mixed into training batches", line="loss.backward()"),
        Invalid(program('''
def main():
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    model = torch.nn.Linear(8, 8)
    prefix = val_tokens[:100_000].to(torch.int16)
    torch.save({"model": model.state_dict(), "prefix": prefix}, "final_model.pt")
    print("final", eval_val(model, val_tokens))
'''), "paid prefix: val tokens stored in the artifact", line=25),
    ]

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        vf = valflow(ctx)
        for c in vf.results:
            if c.status != "train_mix" or vf.switched_off(c):
                continue
            path, line, decoded = primary(ctx, c)
            msg = (f"Validation data in the training loop: the update at line {c.event.leaf.site.line} "
                   f"(in `{c.event.leaf.ref.facts.name}`) trains on val-derived tokens alongside the "
                   "training data. The validation split may only be scored, never trained on before it "
                   "is scored. Feed the training loop from the training shards only." + where_note(decoded))
            yield self.finding(msg, path=path, line=line, evidence=chain_evidence(ctx, c),
                               key=f"mix:{c.event.ref.facts.qualname}")
        for sink in val_sinks(vf):
            if sink.what != "artifact" or vf.site_off(sink.ref, sink.site):
                continue
            path, decoded = display(ctx, sink.ref.path)
            msg = (f"Validation data written out: `{sink.site.name}` (line {sink.site.line}, in "
                   f"`{sink.ref.facts.name}`) saves val-derived data. Storing validation text in the "
                   "artifact ('paid prefix') was ruled out of scope; the artifact may hold only what was "
                   "learned from training data." + where_note(decoded))
            yield self.finding(msg, path=path, line=sink.site.line, evidence=[
                evidence_line(ctx, sink.ref.path, sink.site.line, "val-derived data saved"),
            ], key=f"save:{sink.ref.facts.qualname}:{sink.site.name}")
