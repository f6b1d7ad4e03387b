"""Small evaluation programs (our own) shared by the eval-legality rules' examples and fixtures.

(Over 450 lines on purpose: it is data, legal and illegal twin programs, not logic.)

Each is a complete `eval_val(model, val_tokens, seq_len, luts)` in the shape of a record's scorer,
written to show one pattern. The model exposes `emb` and `mlp` (see the fixture template).
"""

from __future__ import annotations

HEADER = '''
import math
import numpy as np
import torch
import torch.nn.functional as F

BUCKETS = 1 << 20
MASK = BUCKETS - 1
PRIMES = [36313, 27191, 51647, 81929]


def model_logits(model, x):
    h = torch.relu(model.mlp(model.emb(x))).square()
    return (h @ model.emb.weight.T).float()
'''

# A legal bigram hash embedding over the *input* ids: (t[i-1], t[i]) -> bucket.
BIGRAM_EMBEDDING = HEADER + '''

class BigramHashEmbedding(torch.nn.Module):
    def __init__(self, buckets, dim):
        super().__init__()
        self.buckets = buckets
        self.embed = torch.nn.Embedding(buckets, dim)

    def bigram_hash(self, tokens):
        t = tokens.to(torch.int32)
        mod = self.buckets - 1
        out = torch.empty_like(t)
        out[..., 0] = mod
        out[..., 1:] = torch.bitwise_xor(36313 * t[..., 1:], 27191 * t[..., :-1]) % mod
        return out.long()

    def forward(self, input_ids):
        return self.embed(self.bigram_hash(input_ids))


class AliasedBigram(torch.nn.Module):
    """The same hash written with named shifted slices and a table read by subscript."""

    def __init__(self, buckets, dim):
        super().__init__()
        self.table = torch.nn.Parameter(torch.zeros(buckets, dim))

    def forward(self, ids):
        prev = ids[:, :-1]
        cur = ids[:, 1:]
        key = ((cur * 36313) ^ (prev * 27191)) % (self.table.shape[0] - 1)
        return self.table[key]


def eval_val(model, val_tokens, seq_len, luts):
    base_bytes, leading_space, is_boundary = luts
    loss_sum, n_tok, n_bytes = 0.0, 0, 0
    with torch.no_grad():
        for start in range(0, val_tokens.numel() - 1 - seq_len + 1, seq_len):
            chunk = val_tokens[start:start + seq_len + 1]
            x = chunk[:-1][None]
            y = chunk[1:][None]
            logits = model_logits(model, x)
            nll = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1), reduction="none")
            loss_sum += nll.sum().item()
            n_tok += y.numel()
            n_bytes += int((base_bytes[y] + (leading_space[y] & ~is_boundary[x]).long()).sum())
    val_loss = loss_sum / n_tok
    return val_loss, val_loss / math.log(2.0) * n_tok / n_bytes
'''

# Legal: sliding-window evaluation that scores only the last `stride` targets of each window,
# with a score-first TTT step on the already-scored chunk.
SLIDING_WINDOW_TTT = HEADER + '''

def eval_val(model, val_tokens, seq_len, luts, stride=64, lr=1e-3):
    base_bytes, leading_space, is_boundary = luts
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    loss_sum, n_tok, n_bytes = 0.0, 0, 0
    total = val_tokens.numel() - 1
    for ws in range(0, total - seq_len + 1, stride):
        chunk = val_tokens[ws:ws + seq_len + 1]
        x = chunk[:-1][None]
        y = chunk[1:][None]
        s = 0 if ws == 0 else seq_len - stride
        with torch.no_grad():
            logits = model_logits(model, x)
            nll = F.cross_entropy(logits[0], y[0], reduction="none")[s:]
        loss_sum += nll.sum().item()
        n_tok += nll.numel()
        n_bytes += int((base_bytes[y[0, s:]] + (leading_space[y[0, s:]] & ~is_boundary[x[0, s:]]).long()).sum())
        loss = F.cross_entropy(model_logits(model, x)[0, s:], y[0, s:])
        opt.zero_grad()
        loss.backward()
        opt.step()
    val_loss = loss_sum / n_tok
    return val_loss, val_loss / math.log(2.0) * n_tok / n_bytes
'''

# Legal: backward-looking cache. The lookup reads a full row over the vocabulary keyed by the
# context only; the target enters the *update*, after the position was scored; entropy gate.
CAUSAL_CACHE = HEADER + '''

def eval_val(model, val_tokens, seq_len, luts):
    base_bytes, leading_space, is_boundary = luts
    vocab = model.emb.weight.shape[0]
    counts = np.zeros((4096, vocab), dtype=np.float32)
    loss_sum, n_tok, n_bytes = 0.0, 0, 0
    with torch.no_grad():
        for start in range(0, val_tokens.numel() - 1 - seq_len + 1, seq_len):
            chunk = val_tokens[start:start + seq_len + 1]
            x = chunk[:-1]
            y = chunk[1:]
            logp = F.log_softmax(model_logits(model, x[None])[0], dim=-1)
            x_np = x.numpy()
            ctx_key = ((x_np.astype(np.int64) * PRIMES[0]) ^ 7) % 4096
            rows = counts[ctx_key] + 0.1
            p_cache = torch.from_numpy(rows / rows.sum(axis=1, keepdims=True))
            entropy = -(logp.exp() * logp).sum(-1, keepdim=True)
            alpha = 0.2 * torch.sigmoid(entropy - 3.0)
            mixed = (1 - alpha) * logp.exp() + alpha * p_cache
            nll = -torch.log(mixed.gather(-1, y[:, None]).squeeze(-1))
            loss_sum += nll.sum().item()
            n_tok += y.numel()
            n_bytes += int((base_bytes[y] + (leading_space[y] & ~is_boundary[x]).long()).sum())
            np.add.at(counts, (ctx_key, y.numpy()), 1.0)
    val_loss = loss_sum / n_tok
    return val_loss, val_loss / math.log(2.0) * n_tok / n_bytes
'''

# Legal: token-only n-gram tilt. A hint proposed from the prefix boosts one logit, then the
# whole vocabulary is renormalised; the target is only compared with the hint when scored.
NGRAM_TILT = HEADER + '''

def eval_val(model, val_tokens, seq_len, luts):
    base_bytes, leading_space, is_boundary = luts
    vocab = model.emb.weight.shape[0]
    follow = np.zeros((vocab, vocab), dtype=np.int32)
    loss_sum, n_tok, n_bytes = 0.0, 0, 0
    with torch.no_grad():
        for start in range(0, val_tokens.numel() - 1 - seq_len + 1, seq_len):
            chunk = val_tokens[start:start + seq_len + 1]
            x = chunk[:-1]
            y = chunk[1:]
            logits = model_logits(model, x[None])[0]
            hint_ids = torch.from_numpy(follow[x.numpy()].argmax(axis=1))
            boost = torch.zeros_like(logits)
            boost.scatter_(1, hint_ids[:, None], 1.5)
            logp = F.log_softmax(logits + boost, dim=-1)
            nll = -logp.gather(-1, y[:, None]).squeeze(-1)
            loss_sum += nll.sum().item()
            n_tok += y.numel()
            n_bytes += int((base_bytes[y] + (leading_space[y] & ~is_boundary[x]).long()).sum())
            np.add.at(follow, (x.numpy(), y.numpy()), 1)
    val_loss = loss_sum / n_tok
    return val_loss, val_loss / math.log(2.0) * n_tok / n_bytes
'''

# Illegal: hashed full key (context ^ target) looked up to score the gold token only.
TARGET_KEY_CACHE = HEADER + '''

def eval_val(model, val_tokens, seq_len, luts):
    base_bytes, leading_space, is_boundary = luts
    ctx_table = np.zeros(BUCKETS, dtype=np.uint32)
    full_table = np.zeros(BUCKETS, dtype=np.uint32)
    loss_sum, n_tok, n_bytes = 0.0, 0, 0
    with torch.no_grad():
        for start in range(0, val_tokens.numel() - 1 - seq_len + 1, seq_len):
            chunk = val_tokens[start:start + seq_len + 1]
            x = chunk[:-1]
            y = chunk[1:]
            logp = F.log_softmax(model_logits(model, x[None])[0], dim=-1)
            p_model = logp.gather(-1, y[:, None]).squeeze(-1).exp().numpy()
            ctx_hash = x.numpy().astype(np.uint64) * np.uint64(PRIMES[0])
            ctx_key = (ctx_hash & np.uint64(MASK)).astype(np.int64)
            full_key = ((ctx_hash ^ (y.numpy().astype(np.uint64) * np.uint64(PRIMES[1]))) & np.uint64(MASK)).astype(np.int64)
            ctx_c = ctx_table[ctx_key].astype(np.float64)
            full_c = full_table[full_key].astype(np.float64)
            p_ng = np.minimum(full_c, ctx_c) / np.maximum(ctx_c, 1.0)
            mixed = 0.7 * p_model + 0.3 * p_ng
            nll = -np.log(np.clip(mixed, 1e-12, 1.0))
            loss_sum += float(nll.sum())
            n_tok += y.numel()
            n_bytes += int((base_bytes[y] + (leading_space[y] & ~is_boundary[x]).long()).sum())
            np.add.at(ctx_table, ctx_key, 1)
            np.add.at(full_table, full_key, 1)
    val_loss = loss_sum / n_tok
    return val_loss, val_loss / math.log(2.0) * n_tok / n_bytes
'''

# Illegal, aliased: the target reaches the key through a helper's parameter and a copy, and the
# n-gram position arithmetic (`toks[j]` after context `toks[j - k]`) names no variable `y`.
TARGET_KEY_HELPER = HEADER + '''

class HashedCache:
    def __init__(self):
        self.ctx_counts = np.zeros(BUCKETS, dtype=np.uint32)
        self.full_counts = np.zeros(BUCKETS, dtype=np.uint32)

    def prob_of(self, ctx_hash, nxt):
        realized = nxt.astype(np.uint64)
        fk = ((ctx_hash ^ (realized * np.uint64(PRIMES[2]))) & np.uint64(MASK)).astype(np.int64)
        ck = (ctx_hash & np.uint64(MASK)).astype(np.int64)
        c = self.ctx_counts[ck].astype(np.float64)
        return self.full_counts[fk] / np.maximum(c, 1.0)

    def add(self, ctx_hash, nxt):
        fk = ((ctx_hash ^ (nxt.astype(np.uint64) * np.uint64(PRIMES[2]))) & np.uint64(MASK)).astype(np.int64)
        np.add.at(self.full_counts, fk, 1)
        np.add.at(self.ctx_counts, (ctx_hash & np.uint64(MASK)).astype(np.int64), 1)


def eval_val(model, val_tokens, seq_len, luts):
    base_bytes, leading_space, is_boundary = luts
    cache = HashedCache()
    toks = val_tokens.numpy()
    loss_sum, n_tok, n_bytes = 0.0, 0, 0
    with torch.no_grad():
        for start in range(0, val_tokens.numel() - 1 - seq_len + 1, seq_len):
            pos = np.arange(start + 1, start + seq_len + 1)
            ctx_hash = toks[pos - 1].astype(np.uint64) * np.uint64(PRIMES[0])
            nxt = toks[pos]
            x = val_tokens[start:start + seq_len]
            logp = F.log_softmax(model_logits(model, x[None])[0], dim=-1)
            p_model = logp.gather(-1, torch.from_numpy(nxt)[:, None]).squeeze(-1).exp().numpy()
            p = 0.8 * p_model + 0.2 * cache.prob_of(ctx_hash, nxt)
            loss_sum += float(-np.log(p).sum())
            n_tok += seq_len
            yb = torch.from_numpy(nxt)
            n_bytes += int((base_bytes[yb] + (leading_space[yb] & ~is_boundary[x]).long()).sum())
            cache.add(ctx_hash, nxt)
    val_loss = loss_sum / n_tok
    return val_loss, val_loss / math.log(2.0) * n_tok / n_bytes
'''

# Illegal, aliased through returns: the keys come back from a helper as a tuple, the tables are
# filled by a helper that adds bincounts into its parameter, and the target is a slice placed
# after its context slices (`toks[s:e]` vs `toks[s - k:...]`).
TARGET_KEY_RETURNED = HEADER + '''

class TwoTableCache:
    def __init__(self, order=3):
        self.order = order
        self.ctx_tables = [np.zeros(BUCKETS, dtype=np.int64) for _ in range(order)]
        self.full_tables = [np.zeros(BUCKETS, dtype=np.int64) for _ in range(order)]

    def _hashes(self, toks, start, end, n):
        h = np.zeros(end - start, dtype=np.int64)
        for k in range(n - 1):
            offset = start - (n - 1) + k
            h ^= toks[offset:offset + end - start].astype(np.int64) * PRIMES[k]
        full = (h ^ (toks[start:end].astype(np.int64) * PRIMES[3])) & MASK
        return h & MASK, full

    def _add(self, table, idx):
        table += np.bincount(idx, minlength=BUCKETS)

    def update(self, toks, start, end):
        for n in range(2, self.order + 1):
            ctx_h, full_h = self._hashes(toks, start, end, n)
            self._add(self.ctx_tables[n - 1], ctx_h)
            self._add(self.full_tables[n - 1], full_h)

    def prob(self, toks, start, end, n):
        ctx_h, full_h = self._hashes(toks, start, end, n)
        ctx_c = self.ctx_tables[n - 1][ctx_h]
        full_c = self.full_tables[n - 1][full_h]
        return full_c / np.maximum(ctx_c, 1)


def eval_val(model, val_tokens, seq_len, luts):
    base_bytes, leading_space, is_boundary = luts
    cache = TwoTableCache()
    toks = val_tokens.numpy()
    loss_sum, n_tok, n_bytes = 0.0, 0, 0
    with torch.no_grad():
        for start in range(2, val_tokens.numel() - 1 - seq_len + 1, seq_len):
            x = val_tokens[start - 1:start + seq_len - 1]
            y = val_tokens[start:start + seq_len]
            logp = F.log_softmax(model_logits(model, x[None])[0], dim=-1)
            p_model = logp.gather(-1, y[:, None]).squeeze(-1).exp().numpy()
            p = 0.8 * p_model + 0.2 * cache.prob(toks, start, start + seq_len, 3)
            loss_sum += float(-np.log(p).sum())
            n_tok += seq_len
            n_bytes += int((base_bytes[y] + (leading_space[y] & ~is_boundary[x]).long()).sum())
            cache.update(toks, start, start + seq_len)
    val_loss = loss_sum / n_tok
    return val_loss, val_loss / math.log(2.0) * n_tok / n_bytes
'''

# Legal: a hashed cache keyed by the tokens *before* each scored position. The positions are
# called `target_pos`, and (positions, targets) pairs travel together in a list of tuples; only
# the targets are the scored tokens, the positions and the context hash hold no target.
CAPTURED_SEGMENTS_CACHE = HEADER + '''

class ContextRows:
    def __init__(self, vocab):
        self.rows = np.zeros((4096, vocab), dtype=np.float32)

    def key(self, toks, target_pos):
        h = np.zeros(len(target_pos), dtype=np.int64)
        for k in range(1, 3):
            h ^= toks[np.maximum(target_pos - k, 0)].astype(np.int64) * PRIMES[k]
        return h % 4096

    def dist(self, toks, target_pos):
        ctx_key = self.key(toks, target_pos)
        rows = self.rows[ctx_key] + 0.1
        return rows / rows.sum(axis=1, keepdims=True)

    def update(self, toks, target_pos, targets):
        np.add.at(self.rows, (self.key(toks, target_pos), targets), 1.0)


def eval_val(model, val_tokens, seq_len, luts):
    base_bytes, leading_space, is_boundary = luts
    cache = ContextRows(model.emb.weight.shape[0])
    toks = val_tokens.numpy()
    loss_sum, n_tok, n_bytes = 0.0, 0, 0
    with torch.no_grad():
        for start in range(0, val_tokens.numel() - 1 - seq_len + 1, seq_len):
            x = val_tokens[start:start + seq_len]
            probs = F.softmax(model_logits(model, x[None])[0], dim=-1)
            all_pos = np.arange(start + 1, start + seq_len + 1)
            y_np = toks[start + 1:start + seq_len + 1]
            segments = []
            for off in range(0, seq_len, 16):
                positions = all_pos[off:off + 16]
                segments.append((positions, y_np[off:off + 16], off))
            for positions, targets, off in segments:
                p_cache = torch.from_numpy(cache.dist(toks, positions))
                mixed = 0.8 * probs[off:off + len(positions)] + 0.2 * p_cache
                tgt = torch.from_numpy(targets)
                loss_sum += float(-torch.log(mixed.gather(-1, tgt[:, None])).sum())
                prev = x[off:off + len(positions)]
                n_bytes += int((base_bytes[tgt] + (leading_space[tgt] & ~is_boundary[prev]).long()).sum())
                n_tok += len(positions)
            for positions, targets, _ in segments:
                cache.update(toks, positions, targets)
    val_loss = loss_sum / n_tok
    return val_loss, val_loss / math.log(2.0) * n_tok / n_bytes
'''

# Illegal: the same segment bookkeeping, but the cache probability is read at a key that hashes
# the segment's next tokens (carried through the tuples) into the context.
CAPTURED_SEGMENTS_TARGET_KEY = HEADER + '''

class PairCounts:
    def __init__(self):
        self.ctx_counts = np.zeros(BUCKETS, dtype=np.float64)
        self.pair_counts = np.zeros(BUCKETS, dtype=np.float64)

    def keys(self, toks, pos, nxt):
        h = toks[np.maximum(pos - 1, 0)].astype(np.int64) * PRIMES[0]
        return h & MASK, (h ^ (nxt.astype(np.int64) * PRIMES[1])) & MASK

    def prob(self, toks, pos, nxt):
        ck, pk = self.keys(toks, pos, nxt)
        return self.pair_counts[pk] / np.maximum(self.ctx_counts[ck], 1.0)

    def update(self, toks, pos, nxt):
        ck, pk = self.keys(toks, pos, nxt)
        np.add.at(self.ctx_counts, ck, 1.0)
        np.add.at(self.pair_counts, pk, 1.0)


def eval_val(model, val_tokens, seq_len, luts):
    base_bytes, leading_space, is_boundary = luts
    cache = PairCounts()
    toks = val_tokens.numpy()
    loss_sum, n_tok, n_bytes = 0.0, 0, 0
    with torch.no_grad():
        for start in range(0, val_tokens.numel() - 1 - seq_len + 1, seq_len):
            x = val_tokens[start:start + seq_len]
            probs = F.softmax(model_logits(model, x[None])[0], dim=-1).numpy()
            all_pos = np.arange(start + 1, start + seq_len + 1)
            y_np = toks[start + 1:start + seq_len + 1]
            segments = []
            for off in range(0, seq_len, 16):
                segments.append((all_pos[off:off + 16], y_np[off:off + 16], off))
            for pos, nxt, off in segments:
                p_model = probs[np.arange(off, off + len(pos)), nxt]
                p = 0.8 * p_model + 0.2 * cache.prob(toks, pos, nxt)
                loss_sum += float(-np.log(p).sum())
                tgt = torch.from_numpy(nxt)
                prev = x[off:off + len(pos)]
                n_bytes += int((base_bytes[tgt] + (leading_space[tgt] & ~is_boundary[prev]).long()).sum())
                n_tok += len(pos)
            for pos, nxt, _ in segments:
                cache.update(toks, pos, nxt)
    val_loss = loss_sum / n_tok
    return val_loss, val_loss / math.log(2.0) * n_tok / n_bytes
'''

# A hashed-context cache with a full next-token distribution per row, shared by the C3 examples.
CONTEXT_ROWS = '''

class ContextRows:
    def __init__(self, vocab):
        self.rows = np.zeros((4096, vocab), dtype=np.float32)

    def key(self, toks, start, end):
        prev = toks[start - 1:end - 1].astype(np.int64)
        prev2 = toks[start - 2:end - 2].astype(np.int64)
        return ((prev * PRIMES[0]) ^ (prev2 * PRIMES[1])) % 4096

    def dist(self, toks, start, end):
        rows = self.rows[self.key(toks, start, end)] + 0.1
        return torch.from_numpy(rows / rows.sum(axis=1, keepdims=True))

    def update(self, toks, start, end):
        np.add.at(self.rows, (self.key(toks, start, end), toks[start:end]), 1.0)
'''

# Legal (C3): a cache method adds the previous chunk's n-grams at the top of the loop, then the
# current chunk is scored; its own n-grams are added only on the next iteration.
DEFERRED_CACHE_UPDATE = HEADER + CONTEXT_ROWS + '''

def eval_val(model, val_tokens, seq_len, luts):
    base_bytes, leading_space, is_boundary = luts
    cache = ContextRows(model.emb.weight.shape[0])
    toks = val_tokens.numpy()
    loss_sum, n_tok, n_bytes = 0.0, 0, 0
    with torch.no_grad():
        prev = None
        for start in range(2, val_tokens.numel() - seq_len + 1, seq_len):
            end = start + seq_len
            if prev is not None:
                cache.update(toks, prev[0], prev[1])
            x = val_tokens[start - 1:end - 1]
            y = val_tokens[start:end]
            probs = F.softmax(model_logits(model, x[None])[0], dim=-1)
            mixed = 0.8 * probs + 0.2 * cache.dist(toks, start, end)
            loss_sum += float(-torch.log(mixed.gather(-1, y[:, None])).sum())
            n_tok += y.numel()
            n_bytes += int((base_bytes[y] + (leading_space[y] & ~is_boundary[x]).long()).sum())
            prev = (start, end)
    val_loss = loss_sum / n_tok
    return val_loss, val_loss / math.log(2.0) * n_tok / n_bytes
'''

# Legal (C3): score the chunk from the cache, then add the chunk's n-grams.
SCORE_THEN_UPDATE_CACHE = HEADER + CONTEXT_ROWS + '''

def eval_val(model, val_tokens, seq_len, luts):
    base_bytes, leading_space, is_boundary = luts
    cache = ContextRows(model.emb.weight.shape[0])
    toks = val_tokens.numpy()
    loss_sum, n_tok, n_bytes = 0.0, 0, 0
    with torch.no_grad():
        for start in range(2, val_tokens.numel() - seq_len + 1, seq_len):
            end = start + seq_len
            x = val_tokens[start - 1:end - 1]
            y = val_tokens[start:end]
            probs = F.softmax(model_logits(model, x[None])[0], dim=-1)
            mixed = 0.8 * probs + 0.2 * cache.dist(toks, start, end)
            loss_sum += float(-torch.log(mixed.gather(-1, y[:, None])).sum())
            n_tok += y.numel()
            n_bytes += int((base_bytes[y] + (leading_space[y] & ~is_boundary[x]).long()).sum())
            cache.update(toks, start, end)
    val_loss = loss_sum / n_tok
    return val_loss, val_loss / math.log(2.0) * n_tok / n_bytes
'''

# Illegal (C3): the chunk's n-grams are added first, then the same chunk is scored from the cache,
# so every token's own count is in the table when it is scored.
UPDATE_THEN_SCORE_CACHE = HEADER + CONTEXT_ROWS + '''

def eval_val(model, val_tokens, seq_len, luts):
    base_bytes, leading_space, is_boundary = luts
    cache = ContextRows(model.emb.weight.shape[0])
    toks = val_tokens.numpy()
    loss_sum, n_tok, n_bytes = 0.0, 0, 0
    with torch.no_grad():
        for start in range(2, val_tokens.numel() - seq_len + 1, seq_len):
            end = start + seq_len
            cache.update(toks, start, end)
            x = val_tokens[start - 1:end - 1]
            y = val_tokens[start:end]
            probs = F.softmax(model_logits(model, x[None])[0], dim=-1)
            mixed = 0.8 * probs + 0.2 * cache.dist(toks, start, end)
            loss_sum += float(-torch.log(mixed.gather(-1, y[:, None])).sum())
            n_tok += y.numel()
            n_bytes += int((base_bytes[y] + (leading_space[y] & ~is_boundary[x]).long()).sum())
    val_loss = loss_sum / n_tok
    return val_loss, val_loss / math.log(2.0) * n_tok / n_bytes
'''

# Illegal (C3): CAUSAL_CACHE with the count increment moved before the lookup of the same keys.
INLINE_UPDATE_THEN_SCORE = HEADER + '''

def eval_val(model, val_tokens, seq_len, luts):
    base_bytes, leading_space, is_boundary = luts
    vocab = model.emb.weight.shape[0]
    counts = np.zeros((4096, vocab), dtype=np.float32)
    loss_sum, n_tok, n_bytes = 0.0, 0, 0
    with torch.no_grad():
        for start in range(0, val_tokens.numel() - 1 - seq_len + 1, seq_len):
            chunk = val_tokens[start:start + seq_len + 1]
            x = chunk[:-1]
            y = chunk[1:]
            logp = F.log_softmax(model_logits(model, x[None])[0], dim=-1)
            x_np = x.numpy()
            ctx_key = ((x_np.astype(np.int64) * PRIMES[0]) ^ 7) % 4096
            np.add.at(counts, (ctx_key, y.numpy()), 1.0)
            rows = counts[ctx_key] + 0.1
            p_cache = torch.from_numpy(rows / rows.sum(axis=1, keepdims=True))
            entropy = -(logp.exp() * logp).sum(-1, keepdim=True)
            alpha = 0.2 * torch.sigmoid(entropy - 3.0)
            mixed = (1 - alpha) * logp.exp() + alpha * p_cache
            nll = -torch.log(mixed.gather(-1, y[:, None]).squeeze(-1))
            loss_sum += nll.sum().item()
            n_tok += y.numel()
            n_bytes += int((base_bytes[y] + (leading_space[y] & ~is_boundary[x]).long()).sum())
    val_loss = loss_sum / n_tok
    return val_loss, val_loss / math.log(2.0) * n_tok / n_bytes
'''

# Illegal: oracle gate, the better of two per-token NLLs chosen by looking at the target.
ORACLE_GATE = HEADER + '''

def eval_val(model, val_tokens, seq_len, luts):
    base_bytes, leading_space, is_boundary = luts
    vocab = model.emb.weight.shape[0]
    unigram = torch.ones(vocab)
    loss_sum, n_tok, n_bytes = 0.0, 0, 0
    with torch.no_grad():
        for start in range(0, val_tokens.numel() - 1 - seq_len + 1, seq_len):
            chunk = val_tokens[start:start + seq_len + 1]
            x = chunk[:-1]
            y = chunk[1:]
            logits = model_logits(model, x[None])[0]
            nll_model = F.cross_entropy(logits, y, reduction="none")
            log_uni = torch.log(unigram / unigram.sum())
            nll_uni = -log_uni.gather(0, y)
            nll = torch.minimum(nll_model, nll_uni)
            loss_sum += nll.sum().item()
            n_tok += y.numel()
            n_bytes += int((base_bytes[y] + (leading_space[y] & ~is_boundary[x]).long()).sum())
            unigram += torch.bincount(y, minlength=vocab)
    val_loss = loss_sum / n_tok
    return val_loss, val_loss / math.log(2.0) * n_tok / n_bytes
'''

# Legal: entropy-gated choice between two predictors (gate reads only the model's own outputs).
ENTROPY_GATE = HEADER + '''

def eval_val(model, val_tokens, seq_len, luts):
    base_bytes, leading_space, is_boundary = luts
    vocab = model.emb.weight.shape[0]
    unigram = torch.ones(vocab)
    loss_sum, n_tok, n_bytes = 0.0, 0, 0
    with torch.no_grad():
        for start in range(0, val_tokens.numel() - 1 - seq_len + 1, seq_len):
            chunk = val_tokens[start:start + seq_len + 1]
            x = chunk[:-1]
            y = chunk[1:]
            logp = F.log_softmax(model_logits(model, x[None])[0], dim=-1)
            log_uni = torch.log(unigram / unigram.sum()).expand_as(logp)
            entropy = -(logp.exp() * logp).sum(-1, keepdim=True)
            mixed = torch.where(entropy > 6.0, log_uni, logp)
            nll = -mixed.gather(-1, y[:, None]).squeeze(-1)
            loss_sum += nll.sum().item()
            n_tok += y.numel()
            n_bytes += int((base_bytes[y] + (leading_space[y] & ~is_boundary[x]).long()).sum())
            unigram += torch.bincount(y, minlength=vocab)
    val_loss = loss_sum / n_tok
    return val_loss, val_loss / math.log(2.0) * n_tok / n_bytes
'''


# -- normalisation, proven (R-EVAL-C2-NORMALIZED) ----------------------------------------------
# Illegal: counts gathered for EVERY vocabulary token (no target in any key), but the ratio's
# numerator and denominator come from two separately hashed tables: collisions make
# sum_v full[hash(ctx, v)] != ctx[hash(ctx)], so the rows are not distributions, and mixing
# them with the model's softmax does not repair that.
SEPARATE_TABLES_RATIO = HEADER + """

def eval_val(model, val_tokens, seq_len, luts):
    base_bytes, leading_space, is_boundary = luts
    vocab = model.emb.weight.shape[0]
    ctx_table = np.zeros(BUCKETS, dtype=np.float64)
    full_table = np.zeros(BUCKETS, dtype=np.float64)
    every_token = np.arange(vocab, dtype=np.uint64) * np.uint64(PRIMES[1])
    loss_sum, n_tok, n_bytes = 0.0, 0, 0
    with torch.no_grad():
        for start in range(0, val_tokens.numel() - 1 - seq_len + 1, seq_len):
            chunk = val_tokens[start:start + seq_len + 1]
            x = chunk[:-1]
            y = chunk[1:]
            p_model = F.softmax(model_logits(model, x[None])[0], dim=-1)
            ctx_hash = x.numpy().astype(np.uint64) * np.uint64(PRIMES[0])
            ctx_key = (ctx_hash & np.uint64(MASK)).astype(np.int64)
            row_keys = ((ctx_hash[:, None] ^ every_token[None, :]) & np.uint64(MASK)).astype(np.int64)
            ctx_c = ctx_table[ctx_key][:, None]
            full_c = full_table[row_keys]
            p_ng = torch.from_numpy(full_c / np.maximum(ctx_c, 1.0))
            mixed = 0.8 * p_model + 0.2 * p_ng
            nll = -torch.log(mixed.gather(-1, y[:, None]).squeeze(-1))
            loss_sum += nll.sum().item()
            n_tok += y.numel()
            n_bytes += int((base_bytes[y] + (leading_space[y] & ~is_boundary[x]).long()).sum())
            np.add.at(ctx_table, ctx_key, 1.0)
            np.add.at(full_table, ((ctx_hash ^ (y.numpy().astype(np.uint64) * np.uint64(PRIMES[1])))
                                   & np.uint64(MASK)).astype(np.int64), 1.0)
    val_loss = loss_sum / n_tok
    return val_loss, val_loss / math.log(2.0) * n_tok / n_bytes
"""

# Legal twin: the same hashed rows, but divided by their own sum over the vocabulary axis, so
# each row is a distribution whatever the collisions; the mixture with the softmax is convex.
ROW_NORMALISED_RATIO = SEPARATE_TABLES_RATIO.replace(
    "p_ng = torch.from_numpy(full_c / np.maximum(ctx_c, 1.0))",
    "p_ng = torch.from_numpy((full_c + 0.1) / (full_c + 0.1).sum(axis=1, keepdims=True))")

# Illegal: additive smoothing with the model's probability does not repair a ratio of two
# separately hashed tables: (full + beta * p_model) / (ctx + beta) still does not sum to 1.
SMOOTHED_SEPARATE_RATIO = SEPARATE_TABLES_RATIO.replace(
    """            p_ng = torch.from_numpy(full_c / np.maximum(ctx_c, 1.0))
            mixed = 0.8 * p_model + 0.2 * p_ng
""",
    """            mixed = (torch.from_numpy(full_c) + 2.0 * p_model) / (torch.from_numpy(ctx_c) + 2.0)
""")

# Legal: the ratio's log tilts the logits and a log_softmax over the vocabulary renormalises.
SOFTMAX_OF_RATIO = SEPARATE_TABLES_RATIO.replace(
    """            p_ng = torch.from_numpy(full_c / np.maximum(ctx_c, 1.0))
            mixed = 0.8 * p_model + 0.2 * p_ng
            nll = -torch.log(mixed.gather(-1, y[:, None]).squeeze(-1))
""",
    """            tilt = torch.from_numpy(np.log1p(full_c / np.maximum(ctx_c, 1.0)))
            logp = F.log_softmax(model_logits(model, x[None])[0] + 0.5 * tilt, dim=-1)
            nll = -logp.gather(-1, y[:, None]).squeeze(-1)
""")

# -- gates and experts that read the realised token (R-EVAL-C1-CAUSAL, #1017) ------------------
# Illegal: the mixing weight of a context-keyed n-gram expert is chosen by whether the TARGET
# token starts a word (its leading-space flag): the key has no target, the gate does.
WORD_START_GATE = HEADER + """

def eval_val(model, val_tokens, seq_len, luts):
    base_bytes, leading_space, is_boundary = luts
    vocab = model.emb.weight.shape[0]
    follow = np.zeros((vocab, vocab), dtype=np.float32)
    loss_sum, n_tok, n_bytes = 0.0, 0, 0
    with torch.no_grad():
        for start in range(0, val_tokens.numel() - 1 - seq_len + 1, seq_len):
            chunk = val_tokens[start:start + seq_len + 1]
            x = chunk[:-1]
            y = chunk[1:]
            logp = F.log_softmax(model_logits(model, x[None])[0], dim=-1)
            rows = torch.from_numpy(follow[x.numpy()] + 0.1)
            logp_ng = torch.log(rows / rows.sum(-1, keepdim=True))
            starts_word = leading_space[y].bool()
            lam = torch.where(starts_word, 0.05, 0.4)[:, None]
            mixed = torch.logaddexp(torch.log1p(-lam) + logp, torch.log(lam) + logp_ng)
            nll = -mixed.gather(-1, y[:, None]).squeeze(-1)
            loss_sum += nll.sum().item()
            n_tok += y.numel()
            n_bytes += int((base_bytes[y] + (leading_space[y] & ~is_boundary[x]).long()).sum())
            np.add.at(follow, (x.numpy(), y.numpy()), 1.0)
    val_loss = loss_sum / n_tok
    return val_loss, val_loss / math.log(2.0) * n_tok / n_bytes
"""

# Legal twin: the gate reads the CONTEXT (does the previous token end a word?), never the target.
CONTEXT_BOUNDARY_GATE = WORD_START_GATE.replace(
    "starts_word = leading_space[y].bool()", "starts_word = is_boundary[x].bool()")

# Illegal: a within-word expert tilt applied only where the realised token continues a word.
WITHIN_WORD_TILT = HEADER + """

def eval_val(model, val_tokens, seq_len, luts):
    base_bytes, leading_space, is_boundary = luts
    vocab = model.emb.weight.shape[0]
    follow = np.zeros((vocab, vocab), dtype=np.int32)
    loss_sum, n_tok, n_bytes = 0.0, 0, 0
    with torch.no_grad():
        for start in range(0, val_tokens.numel() - 1 - seq_len + 1, seq_len):
            chunk = val_tokens[start:start + seq_len + 1]
            x = chunk[:-1]
            y = chunk[1:]
            logits = model_logits(model, x[None])[0]
            hint_ids = torch.from_numpy(follow[x.numpy()].argmax(axis=1))
            mid_word = (~leading_space[y].bool()).float()[:, None]
            boost = torch.zeros_like(logits)
            boost.scatter_(1, hint_ids[:, None], 1.5)
            logp = F.log_softmax(logits + boost * mid_word, dim=-1)
            nll = -logp.gather(-1, y[:, None]).squeeze(-1)
            loss_sum += nll.sum().item()
            n_tok += y.numel()
            n_bytes += int((base_bytes[y] + (leading_space[y] & ~is_boundary[x]).long()).sum())
            np.add.at(follow, (x.numpy(), y.numpy()), 1)
    val_loss = loss_sum / n_tok
    return val_loss, val_loss / math.log(2.0) * n_tok / n_bytes
"""

def line_of(code: str, needle: str) -> int:
    """1-based line of `needle` in the example as the test harness writes it (dedented, lstrip)."""
    text = code.lstrip("\n")
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    raise ValueError(needle)
