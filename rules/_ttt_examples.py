"""Small programs shared by the TTT / val-data rules' VALID and INVALID examples.

Written for these tests (never taken from submissions): each shows one shape of test-time
training or calibration, legal or not, in a few lines. `program(*parts)` joins a common
preamble (a val loader and a plain scoring function) with the parts and a `main` entry point.
"""

from __future__ import annotations

PREAMBLE = '''
import torch
import torch.nn.functional as F


def load_validation_tokens(pattern):
    return torch.load(pattern)


def eval_val(model, val_tokens, seq_len=8):
    loss_sum = torch.zeros(())
    count = 0
    with torch.inference_mode():
        for i in range(0, val_tokens.numel() - 1 - seq_len, seq_len):
            x = val_tokens[i:i + seq_len][None]
            y = val_tokens[i + 1:i + 1 + seq_len][None]
            loss_sum += F.cross_entropy(model(x)[0], y[0], reduction="sum")
            count += seq_len
    return (loss_sum / count).item()
'''

ENTRY = '''

if __name__ == "__main__":
    main()
'''


def program(*parts: str) -> str:
    return PREAMBLE + "\n\n" + "\n\n".join(p.strip("\n") for p in parts) + "\n" + ENTRY


ADAPT = '''
def ttt_adapt(model, tokens, epochs=3):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    for epoch in range(epochs):
        for i in range(0, tokens.numel() - 9, 8):
            x = tokens[i:i + 8][None]
            y = tokens[i + 1:i + 9][None]
            loss = F.cross_entropy(model(x)[0], y[0])
            loss.backward()
            opt.step()
            opt.zero_grad()
'''

SCORE_FIRST = '''
def eval_val_ttt(model, val_tokens, chunk=64, epochs=3):
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    loss_sum = torch.zeros(())
    n = 0
    num_chunks = (val_tokens.numel() - 1) // chunk
    for ci in range(num_chunks):
        x = val_tokens[ci * chunk:(ci + 1) * chunk][None]
        y = val_tokens[ci * chunk + 1:(ci + 1) * chunk + 1][None]
        with torch.no_grad():
            loss_sum += F.cross_entropy(model(x)[0], y[0], reduction="sum")
            n += chunk
        if ci == num_chunks - 1:
            continue
        for _ in range(epochs):
            loss = F.cross_entropy(model(x)[0], y[0])
            loss.backward()
            opt.step()
            opt.zero_grad()
    return (loss_sum / n).item()
'''

MAIN_SCORE_FIRST = '''
def main():
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    model = torch.nn.Linear(8, 8)
    print("pre-ttt", eval_val(model, val_tokens))
    print("final", eval_val_ttt(model, val_tokens))
'''

MAIN_PREQUANT = '''
def main():
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    model = torch.nn.Linear(8, 8)
    ttt_adapt(model, val_tokens)
    print("final", eval_val(model, val_tokens))
'''

SLIDING = '''
def eval_val_sliding(model, val_tokens, seq_len=64, stride=16):
    loss_sum = torch.zeros(())
    n = 0
    with torch.inference_mode():
        for ws in range(0, val_tokens.numel() - seq_len - 1, stride):
            x = val_tokens[ws:ws + seq_len][None]
            y = val_tokens[ws + 1:ws + seq_len + 1][None]
            nll = F.cross_entropy(model(x)[0], y[0], reduction="none")
            s = 0 if ws == 0 else seq_len - stride
            loss_sum += nll[s:].sum()
            n += seq_len - s
    return (loss_sum / n).item()


def main():
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    model = torch.nn.Linear(8, 8)
    print("final", eval_val_sliding(model, val_tokens))
'''

TRAINING_WITH_PERIODIC_VAL = '''
def main():
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    train_loader = iter(torch.load("data/fineweb_train_000000.bin"))
    model = torch.nn.Linear(8, 8)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for step in range(100):
        if step % 25 == 0:
            val_loss = eval_val(model, val_tokens)
            print(f"step:{step} val_loss:{val_loss}")
        x, y = next(train_loader)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad()
    print("final", eval_val(model, val_tokens))
'''

WHOLE_STREAM_THEN_SCORE = '''
def eval_val_ttt(model, val_tokens, chunk=64, epochs=2):
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    for _ in range(epochs):
        loss = F.cross_entropy(model(val_tokens[:-1]), val_tokens[1:])
        loss.backward()
        opt.step()
    loss_sum = torch.zeros(())
    with torch.no_grad():
        loss_sum += F.cross_entropy(model(val_tokens[:-1]), val_tokens[1:], reduction="sum")
    return (loss_sum / (val_tokens.numel() - 1)).item()
'''

# -- Score-first TTT whose scoring lives in a helper (the totals kept somewhere other than a local
# `loss_sum += ...`). Each helper below scores one chunk with gradients off; `accumulating_ttt`
# puts it in a chunk loop before (legal) or after (illegal) `train_chunk` on the same chunk.
TRAIN_CHUNK = '''
def train_chunk(model, opt, x, y):
    loss = F.cross_entropy(model(x)[0], y[0])
    loss.backward()
    opt.step()
    opt.zero_grad()
'''

TOTALS_OBJECT = '''
class _Totals:
    def __init__(self):
        self.sums = torch.zeros(2, dtype=torch.float64)

    def add(self, nll):
        self.sums[0] += nll.double().sum()
        self.sums[1] += nll.numel()

    def result(self):
        return (self.sums[0] / self.sums[1]).item()


@torch.inference_mode()
def score_chunk(model, x, y, totals):
    totals.add(F.cross_entropy(model(x)[0], y[0], reduction="none"))
'''

STATS_DICT = '''
def score_chunk(model, x, y, stats):
    with torch.no_grad():
        nll = F.cross_entropy(model(x)[0], y[0], reduction="none")
    stats["loss"] += nll.sum().item()
    stats["tokens"] += nll.numel()
'''

TOTALS_LIST = '''
def score_chunk(model, x, y, acc):
    with torch.no_grad():
        nll = F.cross_entropy(model(x)[0], y[0], reduction="none")
    acc[0] += nll.sum().item()
    acc[1] += nll.numel()
'''

RETURNS_TUPLE = '''
@torch.no_grad()
def score_chunk(model, x, y):
    nll = F.cross_entropy(model(x)[0], y[0], reduction="none")
    return nll.sum().item(), nll.numel()
'''

# (helpers, setup lines, the scoring statements, the returned expression) per shape
ACCUMULATION_SHAPES: dict[str, tuple[str, list[str], list[str], str]] = {
    "accumulator object filled by `totals.add(...)` in an inference-mode helper": (
        TOTALS_OBJECT, ["totals = _Totals()"], ["score_chunk(model, x, y, totals)"], "totals.result()"),
    "running totals in a dict": (
        STATS_DICT, ['stats = {"loss": 0.0, "tokens": 0}'], ["score_chunk(model, x, y, stats)"],
        'stats["loss"] / stats["tokens"]'),
    "running totals in a list": (
        TOTALS_LIST, ["acc = [0.0, 0]"], ["score_chunk(model, x, y, acc)"], "acc[0] / acc[1]"),
    "a @torch.no_grad() helper returns (loss, count), summed by the caller": (
        RETURNS_TUPLE, ["loss_sum, count = 0.0, 0"],
        ["s, n = score_chunk(model, x, y)", "loss_sum += s", "count += n"], "loss_sum / count"),
    "per-chunk scores appended to lists, summed at the end": (
        RETURNS_TUPLE, ["losses, counts = [], []"],
        ["s, n = score_chunk(model, x, y)", "losses.append(s)", "counts.append(n)"], "sum(losses) / sum(counts)"),
    "a nested @torch.inference_mode() closure summing into the enclosing function's list": (
        "", ["totals = [0.0, 0]", "", "@torch.inference_mode()", "def score_chunk():",
             '    nll = F.cross_entropy(model(x)[0], y[0], reduction="none")',
             "    totals[0] += nll.sum().item()", "    totals[1] += nll.numel()", ""],
        ["score_chunk()"], "totals[0] / totals[1]"),
    "a nested closure with `nonlocal` running sums": (
        "", ["loss_sum, count = 0.0, 0", "", "def score_chunk():", "    nonlocal loss_sum, count",
             "    with torch.no_grad():",
             '        nll = F.cross_entropy(model(x)[0], y[0], reduction="none")',
             "    loss_sum += nll.sum().item()", "    count += nll.numel()", ""],
        ["score_chunk()"], "loss_sum / count"),
}


def accumulating_ttt(shape: str, score_first: bool = True) -> str:
    """A whole program: chunked TTT whose per-chunk score goes through `shape`'s helper, taken
    before (`score_first`) or after training on the same chunk."""
    helpers, setup, score, result = ACCUMULATION_SHAPES[shape]
    steps = [*score, "train_chunk(model, opt, x, y)"] if score_first else ["train_chunk(model, opt, x, y)", *score]
    body = "\n".join([
        "def eval_val_ttt(model, val_tokens, chunk=64):",
        "    opt = torch.optim.SGD(model.parameters(), lr=1e-3)",
        *(f"    {line}" if line else "" for line in setup),
        "    for ci in range((val_tokens.numel() - 1) // chunk):",
        "        x = val_tokens[ci * chunk:(ci + 1) * chunk][None]",
        "        y = val_tokens[ci * chunk + 1:(ci + 1) * chunk + 1][None]",
        *(f"        {line}" for line in steps),
        f"    return {result}",
    ])
    parts = [TRAIN_CHUNK, body, MAIN_ACCUMULATING]
    if helpers:
        parts.insert(1, helpers)
    return program(*parts)


MAIN_ACCUMULATING = '''
def main():
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    model = torch.nn.Linear(8, 8)
    print("final", eval_val_ttt(model, val_tokens))
'''

# Pre-quant twin of the accumulator-object shape: the same helpers, but the whole val stream is
# trained on before the scoring loop runs.
TOTALS_OBJECT_PREQUANT = program(TRAIN_CHUNK, TOTALS_OBJECT, '''
def eval_val_ttt(model, val_tokens, chunk=64):
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    for _ in range(2):
        train_chunk(model, opt, val_tokens[:-1][None], val_tokens[1:][None])
    totals = _Totals()
    for ci in range((val_tokens.numel() - 1) // chunk):
        x = val_tokens[ci * chunk:(ci + 1) * chunk][None]
        y = val_tokens[ci * chunk + 1:(ci + 1) * chunk + 1][None]
        score_chunk(model, x, y, totals)
    return totals.result()
''', MAIN_ACCUMULATING)


# -- multi-epoch TTT over the whole stream: which epoch's scores are reported ------------------
# Each chunk is scored before the update on it, inside an epoch loop over all chunks. Only the
# first epoch's scores precede every update that used their tokens; keeping the last epoch's
# (reset, guard or overwrite) reports tokens scored after the model trained on them.
def multi_epoch_ttt(keep: str) -> str:
    """An epoch loop over the chunk loop, scoring each chunk before training on it; `keep` says
    which epoch's scores are reported: reset | last_guard | overwrite (illegal), first_guard |
    scored_once (legal: the first epoch's scores, taken before any update on their chunk)."""
    reset = keep == "reset"
    init = "" if reset else ("    nll = torch.zeros(num_chunks)\n" if keep == "overwrite"
                             else "    loss_sum = torch.zeros(())\n    n = 0\n")
    epoch_head = "    for epoch in range(epochs):\n"
    if reset:
        epoch_head += "        loss_sum = torch.zeros(())\n        n = 0\n"
    score = {
        "reset": ["with torch.no_grad():",
                  "    loss_sum += F.cross_entropy(model(x)[0], y[0], reduction=\"sum\")",
                  "    n += chunk"],
        "last_guard": ["if epoch == epochs - 1:",
                       "    with torch.no_grad():",
                       "        loss_sum += F.cross_entropy(model(x)[0], y[0], reduction=\"sum\")",
                       "        n += chunk"],
        "first_guard": ["if epoch == 0:",
                        "    with torch.no_grad():",
                        "        loss_sum += F.cross_entropy(model(x)[0], y[0], reduction=\"sum\")",
                        "        n += chunk"],
        "overwrite": ["with torch.no_grad():",
                      "    nll[ci] = F.cross_entropy(model(x)[0], y[0], reduction=\"sum\")"],
        "scored_once": ["if not scored[ci]:",
                        "    with torch.no_grad():",
                        "        loss_sum += F.cross_entropy(model(x)[0], y[0], reduction=\"sum\")",
                        "        n += chunk",
                        "    scored[ci] = True"],
    }[keep]
    if keep == "scored_once":
        init += "    scored = [False] * num_chunks\n"
    result = "nll.sum() / (num_chunks * chunk)" if keep == "overwrite" else "loss_sum / n"
    lines = [
        "def eval_val_ttt(model, val_tokens, chunk=64, epochs=3):",
        "    opt = torch.optim.SGD(model.parameters(), lr=1e-3)",
        "    num_chunks = (val_tokens.numel() - 1) // chunk",
    ]
    text = "\n".join(lines) + "\n" + init + epoch_head
    text += "        for ci in range(num_chunks):\n"
    text += "            x = val_tokens[ci * chunk:(ci + 1) * chunk][None]\n"
    text += "            y = val_tokens[ci * chunk + 1:(ci + 1) * chunk + 1][None]\n"
    text += "".join(f"            {s}\n" for s in score)
    text += ("            loss = F.cross_entropy(model(x)[0], y[0])\n"
             "            loss.backward()\n"
             "            opt.step()\n"
             "            opt.zero_grad()\n")
    text += f"    return ({result}).item()\n"
    return program(text, MAIN_SCORE_FIRST)


MULTI_EPOCH_ILLEGAL = ("reset", "last_guard", "overwrite")
MULTI_EPOCH_LEGAL = ("first_guard", "scored_once")


def line_of(code: str, needle: str) -> int:
    """1-based line of `needle` in the train_gpt.py an example writes (for INVALID line checks)."""
    written = code.lstrip("\n")  # example_files() strips the leading newline
    return next(i for i, text in enumerate(written.splitlines(), start=1) if needle in text)
