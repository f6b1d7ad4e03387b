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
