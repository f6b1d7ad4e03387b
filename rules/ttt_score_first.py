"""R-TTT-SCORE-FIRST (C3): test-time training only on validation tokens already scored."""

from __future__ import annotations

from collections.abc import Iterable

from audit.analysis.api import (
    chain_evidence,
    evidence_line,
    last_epoch_kept,
    primary,
    switched_off_message,
    valflow,
    where_note,
)
from audit.context import AuditContext
from audit.findings import Finding, Severity
from audit.rule import README_RULE_DATE, Invalid, Rule, RuleDoc, Valid
from rules._ttt_examples import (
    ACCUMULATION_SHAPES,
    MAIN_SCORE_FIRST,
    MULTI_EPOCH_ILLEGAL,
    MULTI_EPOCH_LEGAL,
    SCORE_FIRST,
    SLIDING,
    accumulating_ttt,
    line_of,
    multi_epoch_ttt,
    program,
)

# Passes with plain names (`for _ in range(3)`): what makes the outer loop a repeat is that the
# chunk loop inside reads nothing it changes except the reset score sum.
REPEATED_PASSES = '''
def eval_val_ttt(model, val_tokens, chunk=64):
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    spans = [(s, s + chunk) for s in range(0, val_tokens.numel() - 1 - chunk, chunk)]
    for _ in range(3):
        total = torch.zeros(())
        for lo, hi in spans:
            x = val_tokens[lo:hi][None]
            y = val_tokens[lo + 1:hi + 1][None]
            with torch.no_grad():
                total += F.cross_entropy(model(x)[0], y[0], reduction="sum")
            F.cross_entropy(model(x)[0], y[0]).backward()
            opt.step()
            opt.zero_grad()
    return (total / (len(spans) * chunk)).item()
'''

# Legal twin: the outer loop walks documents; the chunk loop reads the document's own offset, so
# every token is scored once, before any update on it, and each document's sum is kept.
PER_DOCUMENT_PASSES = '''
def eval_val_ttt(model, val_tokens, chunk=64):
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    half = (val_tokens.numel() - 1) // 2
    per_doc = []
    for d in range(2):
        base = d * half
        total = torch.zeros(())
        for lo in range(0, half - chunk, chunk):
            x = val_tokens[base + lo:base + lo + chunk][None]
            y = val_tokens[base + lo + 1:base + lo + chunk + 1][None]
            with torch.no_grad():
                total += F.cross_entropy(model(x)[0], y[0], reduction="sum")
            F.cross_entropy(model(x)[0], y[0]).backward()
            opt.step()
            opt.zero_grad()
        per_doc.append(total)
    return (sum(per_doc) / (2 * half)).item()
'''

LORA_PER_DOC = '''
def _accumulate(ptl, lo, hi, loss_sum, token_count):
    loss_sum += ptl[:, lo:hi].sum()
    token_count += hi - lo


def eval_val_lora(model, lora, val_tokens, docs, chunk=32):
    loss_sum = torch.zeros(())
    token_count = torch.zeros(())
    for start, end in docs:
        lora.reset()
        opt = torch.optim.Adam(lora.parameters(), lr=1e-3)
        num_chunks = (end - start) // chunk
        for ci in range(num_chunks):
            x = val_tokens[start:start + (ci + 1) * chunk][None]
            y = val_tokens[start + 1:start + (ci + 1) * chunk + 1][None]
            ptl = model(x, y, lora=lora)
            with torch.no_grad():
                _accumulate(ptl, ci * chunk, (ci + 1) * chunk, loss_sum, token_count)
            if ci < num_chunks - 1:
                ptl[:, ci * chunk:(ci + 1) * chunk].mean().backward()
                opt.step()
                opt.zero_grad()
    return (loss_sum / token_count).item()


def main():
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    model, lora = torch.nn.Linear(8, 8), torch.nn.Linear(8, 8)
    print("final", eval_val_lora(model, lora, val_tokens, [(0, 4096), (4096, 9000)]))
'''

PHASED_GLOBAL = '''
def global_sgd(model, tokens, epochs=2):
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    for _ in range(epochs):
        for i in range(0, tokens.numel() - 65, 64):
            loss = F.cross_entropy(model(tokens[i:i + 64]), tokens[i + 1:i + 65])
            loss.backward()
            opt.step()
            opt.zero_grad()


def eval_val_phased(model, val_tokens, phases):
    loss_sum = torch.zeros(())
    n = 0
    scored = []
    for docs in phases:
        for start, end in docs:
            with torch.no_grad():
                loss_sum += F.cross_entropy(model(val_tokens[start:end - 1]), val_tokens[start + 1:end],
                                            reduction="sum")
                n += end - start - 1
            scored.append(val_tokens[start:end])
        global_sgd(model, torch.cat(scored))
    return (loss_sum / n).item()


def main():
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    model = torch.nn.Linear(8, 8)
    print("final", eval_val_phased(model, val_tokens, [[(0, 100)], [(100, 300)]]))
'''

TRAIN_THEN_SCORE_CHUNK = '''
def eval_val_ttt(model, val_tokens, chunk=64):
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    loss_sum = torch.zeros(())
    n = 0
    for ci in range((val_tokens.numel() - 1) // chunk):
        x = val_tokens[ci * chunk:(ci + 1) * chunk][None]
        y = val_tokens[ci * chunk + 1:(ci + 1) * chunk + 1][None]
        loss = F.cross_entropy(model(x)[0], y[0])
        loss.backward()
        opt.step()
        opt.zero_grad()
        with torch.no_grad():
            loss_sum += F.cross_entropy(model(x)[0], y[0], reduction="sum")
            n += chunk
    return (loss_sum / n).item()
'''

LAST_EPOCH_SCORE = '''
def eval_val_ttt(model, val_tokens, chunk=64, epochs=3):
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    loss_sum = torch.zeros(())
    n = 0
    for epoch in range(epochs):
        for ci in range((val_tokens.numel() - 1) // chunk):
            x = val_tokens[ci * chunk:(ci + 1) * chunk][None]
            y = val_tokens[ci * chunk + 1:(ci + 1) * chunk + 1][None]
            if epoch == epochs - 1:
                with torch.no_grad():
                    loss_sum += F.cross_entropy(model(x)[0], y[0], reduction="sum")
                    n += chunk
            loss = F.cross_entropy(model(x)[0], y[0])
            loss.backward()
            opt.step()
    return (loss_sum / n).item()
'''



class TTTScoreFirst(Rule):
    ID = "R-TTT-SCORE-FIRST"
    TITLE = "Test-time training only on validation tokens already scored (C3)"
    SEVERITY = Severity.ERROR
    KIND = "static"
    SOURCE = (
        "RULES.md R-TTT-SCORE-FIRST / R-EVAL-C3-SCORE-BEFORE-UPDATE: README FAQ; "
        "https://github.com/openai/parameter-golf/issues/402 ; https://github.com/openai/parameter-golf/issues/1082 ; "
        "https://github.com/openai/parameter-golf/issues/677"
    )
    DOC = RuleDoc(
        why="TTT may only use validation tokens the model has already been scored on. Adapting on"
            " a chunk before scoring it, or training on the whole val set and then scoring, is "
            "equivalent to training on validation data. Multi-epoch TTT over the whole stream that "
            "reports only the last epoch's scores (accumulator reset per epoch, `if epoch == epochs - 1`, "
            "or per-chunk scores overwritten) scores every token, from the second epoch on, after "
            "training on it; several epochs on each chunk after scoring it, or the first epoch's "
            "scores, are legal.",
        ruling="README (FAQ evaluation, \"already evaluated your model on\"); issue #402 "
               "(participant report) with 0hq's ruling, quoted by participants as allowing use of"
               " any preceding eval tokens already tested on; issue #1082 (participant legality "
               "check of PR #672's 30-epoch train-then- score TTT) restates it.",
        date=README_RULE_DATE,
        sources=(
            "README FAQ: evaluation restrictions",
            "https://github.com/openai/parameter-golf/issues/402",
            "https://github.com/openai/parameter-golf/issues/1082",
            "https://github.com/openai/parameter-golf/issues/677",
        ),
    )
    VALID = [
        Valid(program(SCORE_FIRST, MAIN_SCORE_FIRST), "per chunk: score under no_grad, then train (3 epochs)"),
        Valid(program(LORA_PER_DOC), "per-document LoRA: score the chunk through a helper, then one step"),
        Valid(program(PHASED_GLOBAL), "phased global SGD over documents already scored in this phase"),
        Valid(SLIDING, "sliding-window eval scoring the last stride of each window"),
        Valid(program('''
def eval_val_ttt(model, val_tokens, chunk=64):
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    nlls = []
    for ci in range((val_tokens.numel() - 1) // chunk):
        x = val_tokens[ci * chunk:(ci + 1) * chunk][None]
        y = val_tokens[ci * chunk + 1:(ci + 1) * chunk + 1][None]
        with torch.no_grad():
            nlls.append(F.cross_entropy(model(x)[0], y[0], reduction="none"))
        loss = F.cross_entropy(model(x)[0], y[0])
        loss.backward()
        opt.step()
        opt.zero_grad()
    return torch.cat(nlls).mean().item()
''', MAIN_SCORE_FIRST), "per-chunk scores collected in a list under no_grad, then trained on"),
        *(Valid(accumulating_ttt(shape), f"{shape}: score the chunk, then train on it")
          for shape in ACCUMULATION_SHAPES),
        *(Valid(multi_epoch_ttt(keep), f"epochs over the stream, {keep}: the first epoch's scores, "
                "each taken before any update on its chunk") for keep in MULTI_EPOCH_LEGAL),
        Valid(program(PER_DOCUMENT_PASSES, MAIN_SCORE_FIRST), "an outer loop over documents whose chunk loop "
              "reads the document's offset: each token scored once, before its update"),
    ]
    INVALID = [
        Invalid(program(TRAIN_THEN_SCORE_CHUNK, MAIN_SCORE_FIRST), "train on the chunk, then score it",
                line=29),
        Invalid(program(LAST_EPOCH_SCORE, MAIN_SCORE_FIRST),
                "multi-epoch over the stream, score taken on the last epoch", line="loss.backward()"),
        # the twins of the VALID helper shapes: the same helper, called after training on the chunk
        *(Invalid(accumulating_ttt(shape, score_first=False), f"{shape}: train on the chunk, then score it",
                  line="loss.backward()")
          for shape in ACCUMULATION_SHAPES),
        # multi-epoch over the stream, each chunk scored before its update, only the last epoch kept
        *(Invalid(multi_epoch_ttt(keep), f"epochs over the stream, {keep}: the last epoch's scores are reported",
                  line=line_of(multi_epoch_ttt(keep), "loss.backward()"))
          for keep in MULTI_EPOCH_ILLEGAL),
        Invalid(program(REPEATED_PASSES, MAIN_SCORE_FIRST), "`for _ in range(3)` repeats the chunk loop over "
                "the same spans, the score sum reset each pass (multi-epoch without the word)",
                line=line_of(program(REPEATED_PASSES, MAIN_SCORE_FIRST), ").backward()")),
    ]

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        vf = valflow(ctx)
        for c in vf.results:
            if c.slot or c.status != "score_after_update" or c.score is None:
                continue
            path, line, decoded = primary(ctx, c)
            fn = c.event.ref.facts.name
            if vf.switched_off(c):
                yield self.finding(switched_off_message(f"Score-after-update TTT in `{fn}`"), path=path, line=line,
                                   severity=Severity.INFO, evidence=chain_evidence(ctx, c),
                                   key=f"off:{c.event.ref.facts.qualname}")
                continue
            last = last_epoch_kept(c)
            if last is not None:
                yield self._last_epoch(ctx, c, last, path, line, decoded)
                continue
            msg = (f"Score-after-update TTT in `{fn}`: inside the loop at line {c.loop_line}, the model is "
                   f"updated on validation tokens (line {c.event.site.line}) before the score that counts "
                   f"them (line {c.score.site.line}) is taken, or the score is taken only on a later epoch. "
                   "Every token must be scored by the model as it was before any update that used it. "
                   "Reorder each chunk as: score under no_grad/inference_mode and accumulate into the "
                   "reported loss, then train on that chunk (skip training on the last chunk)."
                   + where_note(decoded))
            yield self.finding(msg, path=path, line=line,
                               evidence=chain_evidence(ctx, c, "score of the same chunk, after the update"),
                               key=f"{c.event.ref.facts.qualname}:{c.event.site.name}")

    def _last_epoch(self, ctx, c, last, path, line, decoded) -> Finding:
        """Multi-epoch TTT over the stream, reported from the last epoch only."""
        ref = c.event.ref
        fn = ref.facts.name
        how = {"reset": f"`{last.what}` is reset at the start of every epoch (line {last.line})",
               "guard": f"the score is accumulated only under `{last.what}` (line {last.line})",
               "overwrite": f"each epoch overwrites the chunk's score `{last.what}` (line {last.line})"}[last.how]
        msg = (f"Multi-epoch TTT scored on the last epoch in `{fn}`: the epoch loop (line {last.epoch_loop.line}) "
               f"repeats the chunk loop (line {last.chunk_loop.line}); each chunk is scored before the update on "
               f"it (line {c.event.site.line}), but {how}, so the reported loss comes from the last epoch only, "
               "and from the second epoch on every token is scored after the model trained on it "
               "(R-TTT-SCORE-FIRST, multi-epoch). Report the first epoch's scores (each taken before any update "
               "on its chunk), or train several epochs on each chunk after scoring it." + where_note(decoded))
        keep_label = {"reset": "reset of the accumulator: earlier epochs' scores are dropped",
                      "guard": "guard keeping only the last epoch's scores",
                      "overwrite": "per-chunk store: each epoch overwrites the previous score"}[last.how]
        ev = [evidence_line(ctx, ref.path, last.epoch_loop.line, "epoch loop over the whole stream"),
              evidence_line(ctx, ref.path, last.chunk_loop.line, "chunk loop, repeated every epoch"),
              evidence_line(ctx, ref.path, c.event.site.line, "update on the chunk"),
              evidence_line(ctx, ref.path, c.score.site.line,
                            "the next epoch's score of the same chunk, after that update"),
              evidence_line(ctx, ref.path, last.line, keep_label)]
        return self.finding(msg, path=path, line=line, evidence=ev, key=f"{ref.facts.qualname}:last-epoch")
