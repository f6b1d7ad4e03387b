"""R-TTT-PREQUANT: fine-tuning on validation tokens before they are scored (pre-quant TTT)."""

from __future__ import annotations

from collections.abc import Iterable

from audit.analysis.api import (
    chain_evidence,
    display,
    primary,
    switched_off_message,
    unanalysed_sources,
    valflow,
    where_note,
)
from audit.context import AuditContext
from audit.findings import Finding, Severity
from audit.rule import Invalid, Rule, RuleDoc, Valid
from rules._ttt_examples import (
    ACCUMULATION_SHAPES,
    ADAPT,
    MAIN_PREQUANT,
    MAIN_SCORE_FIRST,
    SCORE_FIRST,
    SLIDING,
    TOTALS_OBJECT_PREQUANT,
    TRAINING_WITH_PERIODIC_VAL,
    WHOLE_STREAM_THEN_SCORE,
    accumulating_ttt,
    program,
)


class TTTPrequant(Rule):
    ID = "R-TTT-PREQUANT"
    TITLE = "No adaptation on validation tokens before they are scored (pre-quant TTT)"
    SEVERITY = Severity.ERROR
    KIND = "static"
    SOURCE = (
        "RULES.md R-TTT-PREQUANT: https://github.com/openai/parameter-golf/issues/677 ; "
        "https://github.com/openai/parameter-golf/pull/1972 ; https://github.com/openai/parameter-golf/pull/1902"
    )
    DOC = RuleDoc(
        why="\"pre-quant TTT\" (fine-tuning the full-precision model on `val_tokens` for N epochs, "
            "then quantizing and scoring) is score-after-adapt and illegal even though the final "
            "artifact is \"fixed\".",
        ruling="RULING (valerio-oai closed PR #1376 on 2026-04-10 — second-hand, per the #677 "
               "meta-comment that lists the 6-PR cluster; cocohearts on #1972: \"score-after-adapt"
               " on validation data … violates the score-first/C3 rule\"; #1902 excluded "
               "\"pre-quant/future-validation leakage\").",
        date="2026-04-10 (valerio-oai closed PR #1376; second-hand, per the #677 meta-comment)",
        sources=(
            "https://github.com/openai/parameter-golf/issues/677",
            "https://github.com/openai/parameter-golf/pull/1972",
            "https://github.com/openai/parameter-golf/pull/1902",
        ),
    )
    VALID = [
        Valid(program(SCORE_FIRST, MAIN_SCORE_FIRST), "score-first chunked TTT"),
        Valid(SLIDING, "sliding-window eval, no training at eval"),
        Valid(program(TRAINING_WITH_PERIODIC_VAL), "periodic validation during training is logging only"),
        Valid(program(ADAPT, '''
def main():
    train_tokens = torch.load("data/fineweb_train_000000.bin")
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    model = torch.nn.Linear(8, 8)
    ttt_adapt(model, train_tokens)
    print("final", eval_val(model, val_tokens))
'''), "the same adaptation routine fed with training tokens"),
        Valid(program(ADAPT, '''
def main():
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    model = torch.nn.Linear(8, 8)
    print("final", eval_val(model, val_tokens))
'''), "an adaptation routine that is never called"),
        # score-first TTT whose chunk score goes through a helper (object, dict, list, tuple, closure)
        *(Valid(accumulating_ttt(shape), f"score-first TTT, {shape}, then train on the chunk")
          for shape in ACCUMULATION_SHAPES),
    ]
    INVALID = [
        Invalid(program(ADAPT, MAIN_PREQUANT), "adapt on val for 3 epochs, then score", line=28),
        Invalid(program(ADAPT, '''
def main():
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    vt = val_tokens
    model = torch.nn.Linear(8, 8)
    ttt_adapt(model, vt)
    print("final", eval_val(model, val_tokens))
'''), "alias vt = val_tokens", line="loss.backward()"),
        Invalid(program(ADAPT, '''
class ValidationData:
    def __init__(self, pattern):
        self.val_tokens = load_validation_tokens(pattern)


def run_ttt(model, data):
    ttt_adapt(model.module, tokens=data.val_tokens)


def main():
    val_data = ValidationData("data/fineweb_val_*.bin")
    model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(8, 8))
    run_ttt(model, val_data)
    print("final", eval_val(model.module, val_data.val_tokens))
'''), "attribute val_data.val_tokens, keyword arg, model.module under DDP, through 2 calls", line="loss.backward()"),
        Invalid(program('''
class Adapter:
    def __init__(self, model, tokens):
        self.model = model
        self.tokens = tokens
        self.opt = torch.optim.SGD(model.parameters(), lr=1e-3)

    def step_on(self, i):
        x = self.tokens[i:i + 8][None]
        y = self.tokens[i + 1:i + 9][None]
        loss = F.cross_entropy(self.model(x)[0], y[0])
        loss.backward()
        self.opt.step()

    def run(self, n):
        for i in range(n):
            self.step_on(i * 8)


def main():
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    model = torch.nn.Linear(8, 8)
    Adapter(model, val_tokens).run(100)
    print("final", eval_val(model, val_tokens))
'''), "val tokens stored in self. by a constructor, trained on in a method", line="loss.backward()"),
        Invalid(program('''
def prequant_ttt(model, args):
    files = sorted(glob.glob(args.val_files))
    tokens = torch.cat([torch.load(f) for f in files])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    for epoch in range(args.epochs):
        loss = F.cross_entropy(model(tokens[:-1]), tokens[1:])
        loss.backward()
        opt.step()


def main():
    args = object()
    model = torch.nn.Linear(8, 8)
    prequant_ttt(model, args)
    print("final", eval_val(model, load_validation_tokens(args.val_files)))
'''), "val shards read by glob(args.val_files) inside the adaptation function", line="loss.backward()"),
        Invalid(program('''
def train_step(model, opt, x, y):
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    opt.zero_grad()


def main():
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    model = torch.nn.Linear(8, 8)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    step = torch.compile(train_step)
    for epoch in range(3):
        for i in range(0, val_tokens.numel() - 65, 64):
            step(model, opt, val_tokens[i:i + 64], val_tokens[i + 1:i + 65])
    print("final", eval_val(model, val_tokens))
'''), "a torch.compile'd step function run over the val stream, then scored", line="loss.backward()"),
        Invalid(program(WHOLE_STREAM_THEN_SCORE, MAIN_SCORE_FIRST),
                "adapt on the whole stream, then score it, inside one eval function", line="loss.backward()"),
        Invalid(TOTALS_OBJECT_PREQUANT, "train on the whole stream, then score it into a `_Totals` object "
                "through an inference-mode helper", line="loss.backward()"),
    ]

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        for src, why in unanalysed_sources(ctx):
            path, _ = display(ctx, src.path)
            yield self.finding(
                f"{path} was not analysed for use of validation data ({why}); the TTT and val-data "
                "checks could not run on it. Review it by hand.",
                path=path, severity=Severity.WARNING, key=f"unanalysed:{src.path}")
        vf = valflow(ctx)
        for c in vf.results:
            if c.slot or c.status not in {"adapt_then_score", "unscored"}:
                continue
            path, line, decoded = primary(ctx, c)
            top = c.event.chain()[0]
            if vf.switched_off(c):
                yield self.finding(switched_off_message("Pre-quant TTT on validation tokens"), path=path,
                                   line=line, severity=Severity.INFO, evidence=chain_evidence(ctx, c),
                                   key=f"off:{top.ref.facts.qualname}:{top.site.name}")
                continue
            if c.status == "adapt_then_score":
                via = f"through `{top.site.name}` at line" if top.site.kind == "call" else "at line"
                what = (f"`{top.ref.facts.name}` trains on validation tokens ({via} {top.site.line}) and only "
                        f"afterwards scores them (line {c.score.site.line})" if c.score is not None else "")
                label = "reported score taken after the adaptation"
            else:
                what = (f"the code trains on validation tokens (reached from `{top.ref.facts.name}`) with no "
                        "scoring of those tokens before the update")
                label = None
            msg = (f"Pre-quant / pre-eval TTT: {what}. The model is fine-tuned on val data before that val "
                   "data is graded, which is training on the validation set (score-after-adapt). Adapt only "
                   "on tokens already scored: per chunk, score under no_grad and accumulate, then train "
                   "(R-TTT-SCORE-FIRST), or drop the adaptation." + where_note(decoded))
            yield self.finding(msg, path=path, line=line, evidence=chain_evidence(ctx, c, label),
                               key=f"{top.ref.facts.qualname}:{top.site.name}")
