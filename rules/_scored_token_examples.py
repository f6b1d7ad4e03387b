"""Evaluation programs (our own) in which the scored token is reached without the usual spellings.

Legal and illegal twins for the eval-legality rules: a bias row keyed on the next token, a dense
pair table bumped through an object's method before the row is read, a gate held in a name. The
target is found by provenance (`toks[t + 1]` in a tuple, the index that reads one entry of a
log_softmax), never by the variables' names, which are deliberately plain here.
"""

from __future__ import annotations

from rules._static_eval_examples import HEADER

# Illegal (C1): a learned bias row looked up at a slot that hashes the next token with the current
# one; the row is added to the logits before the softmax, so the token picks its own bias.
NEXT_KEYED_BIAS = HEADER + '''

def eval_val(model, val_tokens, seq_len, luts):
    base_bytes, leading_space, is_boundary = luts
    vocab = model.emb.weight.shape[0]
    shift = torch.zeros(512, vocab)
    loss_sum, n_tok, n_bytes = 0.0, 0, 0
    with torch.no_grad():
        for start in range(0, val_tokens.numel() - 1 - seq_len + 1, seq_len):
            piece = val_tokens[start:start + seq_len + 1]
            here = piece[:-1]
            after = piece[1:]
            slot = (here * 1009 + after * 31) % 512
            lp = F.log_softmax(model_logits(model, here[None])[0] + shift[slot], dim=-1)
            nll = -lp.gather(-1, after[:, None]).squeeze(-1)
            loss_sum += nll.sum().item()
            n_tok += after.numel()
            n_bytes += int((base_bytes[after] + (leading_space[after] & ~is_boundary[here]).long()).sum())
    val_loss = loss_sum / n_tok
    return val_loss, val_loss / math.log(2.0) * n_tok / n_bytes
'''

# Legal twin: the slot hashes the token before the current one with the current one (inputs only).
INPUT_KEYED_BIAS = NEXT_KEYED_BIAS.replace(
    "            slot = (here * 1009 + after * 31) % 512\n",
    "            before = torch.cat([here[:1], here[:-1]])\n"
    "            slot = (before * 1009 + here * 31) % 512\n",
)

PAIR_BOOK = '''

class PairBook:
    def __init__(self, vocab):
        self.grid = torch.zeros(vocab, vocab)

    def see(self, a, b):
        self.grid[a, b] += 1

    def row(self, a):
        return self.grid[a]
'''

# Illegal (C3): token by token, the pair (current, next) is added to a dense table through a
# method, and only then is the current token's row read to tilt the distribution that scores the
# next token: its own count is already in the row.
PAIR_BOOK_BEFORE_SCORE = HEADER + PAIR_BOOK + '''

def eval_val(model, val_tokens, seq_len, luts):
    base_bytes, leading_space, is_boundary = luts
    vocab = model.emb.weight.shape[0]
    book = PairBook(vocab)
    with torch.no_grad():
        lp_all = F.log_softmax(model_logits(model, val_tokens[:-1][None])[0], dim=-1)
    loss_sum, n_bytes = 0.0, 0
    for t in range(lp_all.size(0)):
        here, after = int(val_tokens[t]), int(val_tokens[t + 1])
        book.see(here, after)
        tilted = F.log_softmax(lp_all[t] + 0.5 * book.row(here), dim=-1)
        loss_sum -= float(tilted[after])
        n_bytes += int(base_bytes[after]) + int(leading_space[after] and not is_boundary[here])
    val_loss = loss_sum / lp_all.size(0)
    return val_loss, val_loss / math.log(2.0) * lp_all.size(0) / n_bytes
'''

# Legal twin: the row is read and the token scored first; the pair is added afterwards.
PAIR_BOOK_AFTER_SCORE = PAIR_BOOK_BEFORE_SCORE.replace(
    "        book.see(here, after)\n", "").replace(
    "        loss_sum -= float(tilted[after])\n",
    "        loss_sum -= float(tilted[after])\n        book.see(here, after)\n")

# Illegal (oracle gate): two temperatures score the realised token; a mask computed on one line
# keeps, per token, whichever gave it the lower loss.
NAMED_ORACLE_GATE = HEADER + '''

def eval_val(model, val_tokens, seq_len, luts):
    base_bytes, leading_space, is_boundary = luts
    loss_sum, n_tok, n_bytes = 0.0, 0, 0
    with torch.no_grad():
        for start in range(0, val_tokens.numel() - 1 - seq_len + 1, seq_len):
            piece = val_tokens[start:start + seq_len + 1]
            x = piece[:-1]
            y = piece[1:]
            logits = model_logits(model, x[None])[0]
            sharp_nll = F.cross_entropy(logits, y, reduction="none")
            soft_nll = F.cross_entropy(logits * 0.5, y, reduction="none")
            pick_soft = soft_nll.lt(sharp_nll)
            nll = torch.where(pick_soft, soft_nll, sharp_nll)
            loss_sum += nll.sum().item()
            n_tok += y.numel()
            n_bytes += int((base_bytes[y] + (leading_space[y] & ~is_boundary[x]).long()).sum())
    val_loss = loss_sum / n_tok
    return val_loss, val_loss / math.log(2.0) * n_tok / n_bytes
'''

# Legal twin: the mask reads only the model's own entropy; the chosen distribution is then scored.
NAMED_ENTROPY_GATE = HEADER + '''

def eval_val(model, val_tokens, seq_len, luts):
    base_bytes, leading_space, is_boundary = luts
    loss_sum, n_tok, n_bytes = 0.0, 0, 0
    with torch.no_grad():
        for start in range(0, val_tokens.numel() - 1 - seq_len + 1, seq_len):
            piece = val_tokens[start:start + seq_len + 1]
            x = piece[:-1]
            y = piece[1:]
            logits = model_logits(model, x[None])[0]
            sharp_lp = F.log_softmax(logits, dim=-1)
            soft_lp = F.log_softmax(logits * 0.5, dim=-1)
            spread = -(sharp_lp.exp() * sharp_lp).sum(-1, keepdim=True)
            calm = spread.lt(2.0)
            lp = torch.where(calm, sharp_lp, soft_lp)
            nll = -lp.gather(-1, y[:, None]).squeeze(-1)
            loss_sum += nll.sum().item()
            n_tok += y.numel()
            n_bytes += int((base_bytes[y] + (leading_space[y] & ~is_boundary[x]).long()).sum())
    val_loss = loss_sum / n_tok
    return val_loss, val_loss / math.log(2.0) * n_tok / n_bytes
'''

# Illegal (C3): the same per-token tilt, the pair added by a closure over the enclosing table.
CLOSURE_BUMP_BEFORE_SCORE = HEADER + '''

def eval_val(model, val_tokens, seq_len, luts):
    base_bytes, leading_space, is_boundary = luts
    vocab = model.emb.weight.shape[0]
    grid = torch.zeros(vocab, vocab)

    def note(a, b):
        grid[a, b] += 1

    with torch.no_grad():
        lp_all = F.log_softmax(model_logits(model, val_tokens[:-1][None])[0], dim=-1)
    loss_sum, n_bytes = 0.0, 0
    for t in range(lp_all.size(0)):
        here, after = int(val_tokens[t]), int(val_tokens[t + 1])
        note(here, after)
        tilted = F.log_softmax(lp_all[t] + 0.5 * grid[here], dim=-1)
        loss_sum -= float(tilted[after])
        n_bytes += int(base_bytes[after]) + int(leading_space[after] and not is_boundary[here])
    val_loss = loss_sum / lp_all.size(0)
    return val_loss, val_loss / math.log(2.0) * lp_all.size(0) / n_bytes
'''

# Legal twin: the closure adds the pair after the token is scored.
CLOSURE_BUMP_AFTER_SCORE = CLOSURE_BUMP_BEFORE_SCORE.replace(
    "        note(here, after)\n", "").replace(
    "        loss_sum -= float(tilted[after])\n",
    "        loss_sum -= float(tilted[after])\n        note(here, after)\n")

# Illegal (oracle gate): per-token losses from a helper, blended by a 0/1 weight that says which
# of the two was lower for the realised token.
BLENDED_ORACLE_GATE = HEADER + '''

def token_cost(logits, y):
    return -F.log_softmax(logits, dim=-1).gather(-1, y[:, None]).squeeze(-1)


def eval_val(model, val_tokens, seq_len, luts):
    base_bytes, leading_space, is_boundary = luts
    loss_sum, n_tok, n_bytes = 0.0, 0, 0
    with torch.no_grad():
        for start in range(0, val_tokens.numel() - 1 - seq_len + 1, seq_len):
            piece = val_tokens[start:start + seq_len + 1]
            x = piece[:-1]
            y = piece[1:]
            logits = model_logits(model, x[None])[0]
            first = token_cost(logits, y)
            second = token_cost(logits * 0.5, y)
            w = (second < first).float()
            nll = w * second + (1 - w) * first
            loss_sum += nll.sum().item()
            n_tok += y.numel()
            n_bytes += int((base_bytes[y] + (leading_space[y] & ~is_boundary[x]).long()).sum())
    val_loss = loss_sum / n_tok
    return val_loss, val_loss / math.log(2.0) * n_tok / n_bytes
'''

# Legal twin: the same helper losses compared only to log how often the softer one would win.
LOGGED_LOSS_COMPARISON = BLENDED_ORACLE_GATE.replace(
    "            w = (second < first).float()\n            nll = w * second + (1 - w) * first\n",
    "            print(f\"soft wins {(second < first).float().mean().item():.3f}\")\n            nll = first\n")

# Legal: a context window of the last ORDER input tokens, shifted left in place
# (`window[j] = window[j + 1]`) before the current input token is pushed; the count row is keyed on
# that window alone, and the realised token updates it only after its position was scored.
SHIFTED_WINDOW_CACHE = HEADER + '''

ORDER = 3


def eval_val(model, val_tokens, seq_len, luts):
    base_bytes, leading_space, is_boundary = luts
    toks = val_tokens[:seq_len + 1]
    probs = F.softmax(model_logits(model, toks[None, :-1])[0], dim=-1)
    vocab = probs.shape[-1]
    seen = {}
    window = np.zeros(ORDER, dtype=np.int64)
    loss_sum = 0.0
    for i in range(seq_len):
        for j in range(ORDER - 1):
            window[j] = window[j + 1]
        window[ORDER - 1] = int(toks[i])
        h = 0
        for j in range(ORDER):
            h |= int(window[j]) << (12 * j)
        if h not in seen:
            seen[h] = np.zeros(vocab + 1)
        cs = seen[h]
        tok = int(toks[i + 1])
        p = float(probs[i, tok])
        if cs[vocab] > 0:
            p = 0.5 * p + 0.5 * cs[tok] / cs[vocab]
        loss_sum -= math.log(p)
        cs[tok] += 1
        cs[vocab] += 1
    n_bytes = int((base_bytes[toks[1:]] + (leading_space[toks[1:]] & ~is_boundary[toks[:-1]]).long()).sum())
    return loss_sum / seq_len, loss_sum / math.log(2.0) / n_bytes
'''
