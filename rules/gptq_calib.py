"""R-GPTQ-CALIB: quantisation calibration (Hessians, clip search) must not see validation data."""

from __future__ import annotations

from collections.abc import Iterable

from audit.analysis.api import display, evidence_line, val_sinks, valflow, where_note
from audit.context import AuditContext
from audit.findings import Finding, Severity
from audit.rule import Invalid, Rule, RuleDoc, Valid
from rules._ttt_examples import program

HESSIANS = '''
def collect_hessians(model, batches):
    hessians = {}
    for x in batches:
        with torch.no_grad():
            h = model(x)
            hessians["w"] = hessians.get("w", 0) + h.T @ h
    return hessians


def gptq_quantize(model, hessians):
    return {k: torch.round(v) for k, v in hessians.items()}
'''

# The same two steps with plain names: what makes them calibration is what they do (forward hooks
# that record layer inputs; weights overwritten with rounded values scaled by those records).
PLAIN_STEPS = '''
def record_inputs(model, batch):
    seen = {}
    handles = []
    for name, layer in model.named_modules():
        if isinstance(layer, torch.nn.Linear):
            def keep(mod, args, out, name=name):
                seen[name] = seen.get(name, 0) + args[0].pow(2).sum(0)
            handles.append(layer.register_forward_hook(keep))
    with torch.no_grad():
        model(batch)
    for h in handles:
        h.remove()
    return seen


def shrink(model, seen, levels=7):
    with torch.no_grad():
        for name, layer in model.named_modules():
            if name in seen:
                scale = layer.weight.abs().amax() / levels * seen[name].rsqrt()
                layer.weight.copy_(torch.round(layer.weight / scale) * scale)
'''


class GPTQCalib(Rule):
    ID = "R-GPTQ-CALIB"
    TITLE = "Quantisation calibration data must not come from the validation split"
    SEVERITY = Severity.ERROR
    KIND = "static"
    SOURCE = (
        "RULES.md R-GPTQ-CALIB: https://github.com/openai/parameter-golf/pull/728 ; "
        "https://github.com/openai/parameter-golf/pull/1019 ; https://github.com/openai/parameter-golf/issues/140 ; "
        "https://github.com/openai/parameter-golf/issues/677"
    )
    DOC = RuleDoc(
        why="GPTQ/Hessian calibration on validation data is illegal (\"breaks autoregressivity\", "
            "valerio-oai on #728 per #140 log). Calibration on training data is legal only inside"
            " the training budget (see R-TRAIN-TIME-SCOPE); reusing training data after training "
            "counts as training-data access at eval (PRs #593/#609, second-hand quote). "
            "Self-generated calibration (model samples its own sequences, #1019, merged) is legal"
            " (\"probably legal\" per the log).",
        ruling="RULING: valerio-oai on #728 (per the #140 log: calibration on validation data "
               "\"breaks autoregressivity\"); valerio-oai on #593/#609 (second-hand: training data "
               "reused after training is training-data access at eval); self-generated "
               "calibration (#1019) merged.",
        date="RULES.md gives no date for this ruling",
        sources=(
            "https://github.com/openai/parameter-golf/pull/728",
            "https://github.com/openai/parameter-golf/pull/1019",
            "https://github.com/openai/parameter-golf/issues/140",
            "https://github.com/openai/parameter-golf/issues/677",
        ),
    )
    VALID = [
        Valid(program(HESSIANS, '''
def main():
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    train_tokens = torch.load("data/fineweb_train_000000.bin")
    model = torch.nn.Linear(8, 8)
    calib = [train_tokens[i:i + 64] for i in range(0, 640, 64)]
    q = gptq_quantize(model, collect_hessians(model, calib))
    print("final", eval_val(model, val_tokens))
'''), "calibration on training batches"),
        Valid(program(HESSIANS, '''
def generate_calib(model, n=8, seq_len=64):
    seqs = []
    x = torch.zeros(1, 1, dtype=torch.long)
    with torch.no_grad():
        for _ in range(seq_len):
            x = torch.cat([x, model(x)[:, -1:].argmax(-1)], dim=1)
    seqs.append(x)
    return seqs


def main():
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    model = torch.nn.Linear(8, 8)
    q = gptq_quantize(model, collect_hessians(model, generate_calib(model)))
    print("final", eval_val(model, val_tokens))
'''), "self-generated calibration sequences"),
        Valid(program(PLAIN_STEPS, '''
def main():
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    train_tokens = torch.load("data/fineweb_train_000000.bin")
    model = torch.nn.Linear(8, 8)
    seen = record_inputs(model, train_tokens[:512].float().view(-1, 8))
    shrink(model, seen)
    print("final", eval_val(model, val_tokens))
'''), "hook statistics and rounding with plain names, fed training tokens"),
        Valid(program(PLAIN_STEPS, '''
def roundtrip(model, val_tokens):
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.round(p * 127) / 127)
    return eval_val(model, val_tokens)


def main():
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    model = torch.nn.Linear(8, 8)
    print("final", roundtrip(model, val_tokens))
'''), "weights rounded with fixed scales in a function that is also handed val data to score"),
    ]
    INVALID = [
        Invalid(program(PLAIN_STEPS, '''
def main():
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    model = torch.nn.Linear(8, 8)
    seen = record_inputs(model, val_tokens[:512].float().view(-1, 8))
    shrink(model, seen)
    print("final", eval_val(model, val_tokens))
'''), "plain names: hook statistics on val tokens handed to a rounding step",
                line="seen = record_inputs(model, val_tokens[:512].float().view(-1, 8))"),
        Invalid(program(HESSIANS, '''
def main():
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    model = torch.nn.Linear(8, 8)
    calib = [val_tokens[i:i + 64] for i in range(0, 640, 64)]
    q = gptq_quantize(model, collect_hessians(model, calib))
    print("final", eval_val(model, val_tokens))
'''), "Hessians collected on validation batches", line="q = gptq_quantize(model, collect_hessians(model, calib))"),
        Invalid(program(HESSIANS, '''
def calibrate_clip(model, args):
    tokens = load_validation_tokens(args.val_files)
    best = None
    for pct in (0.999, 0.9999, 1.0):
        err = (model(tokens[:64]) - torch.quantile(tokens.float(), pct)).pow(2).mean()
        best = err if best is None else min(best, err)
    return best


def main():
    model = torch.nn.Linear(8, 8)
    clip = calibrate_clip(model, object())
'''), "a calibration function that loads val shards itself", line="tokens = load_validation_tokens(args.val_files)"),
    ]

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        vf = valflow(ctx)
        for sink in val_sinks(vf):
            if sink.what != "calibration" or vf.site_off(sink.ref, sink.site):
                continue
            path, decoded = display(ctx, sink.ref.path)
            msg = (f"Quantisation calibration on validation data: `{sink.site.name}` (line {sink.site.line}, "
                   f"in `{sink.ref.facts.name}`) is fed val-derived tokens. Hessians or clip ranges fitted on "
                   "the validation set make the artifact depend on the data it is scored on. Calibrate on "
                   "training batches inside the training budget, or on sequences the model generates itself."
                   + where_note(decoded))
            yield self.finding(msg, path=path, line=sink.site.line, evidence=[
                evidence_line(ctx, sink.ref.path, sink.site.line, "calibration fed with val-derived data"),
            ], key=f"{sink.ref.facts.qualname}:{sink.site.name}")
