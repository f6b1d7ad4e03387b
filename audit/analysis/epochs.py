"""Multi-epoch TTT whose reported loss comes from the last epoch only (RULES.md R-TTT-SCORE-FIRST).

Inside one epoch the loop looks score-first: each chunk is scored, then trained on. But when an
epoch loop repeats the chunk loop over the same chunks and only the last epoch's scores survive,
every token from the second epoch on was scored after the model trained on it in the epochs
before. Three ways to keep only the last epoch:

- **reset**: the accumulator is re-initialised in the epoch loop, before the chunk loop
  (`loss_sum = torch.zeros(())`, `nlls = []`, `acc.zero_()`);
- **guard**: the score is accumulated only under a test on the epoch variable that is not a
  first-epoch test (`if epoch == epochs - 1:`); `if epoch == 0:` keeps the first epoch, whose
  scores all precede any update on their chunk, and is legal;
- **overwrite**: the score is stored at a per-chunk index (`chunk_nll[ci] = ...`), so each epoch
  replaces the previous one's value.

An outer loop is an epoch loop when its header says so (`epoch`, `pass`, `round`) or, whatever
its names, when it repeats the chunk loop over the same chunks (`_repeats_same_chunks`). Training
for several epochs per chunk after scoring it (chunk loop outside, epoch loop inside) never
matches: the epoch loop then does not enclose the score.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from audit.analysis.facts import Loop, Site
from audit.analysis.syntax import unparsed

EPOCH_HEADER = re.compile(r"epoch|(?:^|_)ep(?:_|$)|pass|round", re.IGNORECASE)


@dataclass(frozen=True)
class LastEpochOnly:
    """Why only the last epoch's scores count: the loops and the line that keeps the last one."""

    epoch_loop: Loop
    chunk_loop: Loop
    how: str  # reset | guard | overwrite
    line: int  # the reset, the guard, or the indexed store
    what: str  # the accumulator or the guard text


def last_epoch_only(score: Site, update: Site, accumulators: set[str]) -> LastEpochOnly | None:
    """The score and the update share a chunk loop inside an epoch loop over the same chunks, and
    the score kept is the last epoch's. `accumulators` are the names the score adds into."""
    common = _common(score, update)
    if len(common) < 2:
        return None
    chunk = common[-1]
    for ep in common[:-1]:
        if chunk.header_names & ep.target_names:
            continue  # chunks that move with the outer variable
        if not _is_epoch_loop(ep) and not _repeats_same_chunks(ep, chunk, accumulators):
            continue  # a document or phase loop
        guard = _last_epoch_guard(score, ep)
        if guard is not None:
            return LastEpochOnly(ep, chunk, "guard", guard[0], guard[1])
        if _first_epoch_guard(score, ep):
            return None
        reset = _reset_in(ep, chunk, accumulators)
        if reset is not None:
            return LastEpochOnly(ep, chunk, "reset", reset[0], reset[1])
        store = _indexed_store(score, chunk)
        if store is not None:
            return LastEpochOnly(ep, chunk, "overwrite", score.line, store)
    return None


def first_epoch_only(score: Site) -> bool:
    """The score runs only on the first pass of an epoch loop (`if epoch == 0:`)."""
    return any(_is_epoch_loop(lp) and _first_epoch_guard(score, lp) for lp in score.loops)


def _repeats_same_chunks(ep: Loop, chunk: Loop, accumulators: set[str]) -> bool:
    """Whatever its variable is called, an outer loop repeats the chunk loop over the same chunks
    when the chunk loop reads nothing the outer loop changes apart from the score accumulators:
    not its variable, nor a name assigned in its body outside the chunk loop (`for _ in range(k):`
    around `for lo, hi in spans:`; a document loop that sets `base = d * n` or recomputes `spans`
    per document, and reads it in the chunk loop, does not repeat the same chunks)."""
    node, inner = ep.node, chunk.node
    if not isinstance(node, (ast.For, ast.AsyncFor, ast.While)) or inner is None:
        return False
    inside = {id(n) for n in ast.walk(inner)}
    varying = set(ep.target_names)
    for st in node.body:
        for n in ast.walk(st):
            if id(n) not in inside and isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
                varying.add(n.id)
    varying -= accumulators
    read = {n.id for n in ast.walk(inner) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return not (read & varying)


def _common(a: Site, b: Site) -> list[Loop]:
    ids = {lp.node_id for lp in b.loops}
    return [lp for lp in a.loops if lp.node_id in ids]


def _is_epoch_loop(lp: Loop) -> bool:
    node = lp.node
    if isinstance(node, ast.For):
        return bool(EPOCH_HEADER.search(unparsed(node.target)) or EPOCH_HEADER.search(unparsed(node.iter)))
    return bool(EPOCH_HEADER.search(lp.text))


def _epoch_tests(score: Site, ep: Loop) -> list[ast.expr]:
    out = []
    for test, on_else in score.guard_tests:
        names = {n.id for n in ast.walk(test) if isinstance(n, ast.Name)}
        if names & ep.target_names and not on_else:
            out.append(test)
    return out


def _first_epoch_guard(score: Site, ep: Loop) -> bool:
    return any(_selects_first(t, ep.target_names) for t in _epoch_tests(score, ep))


def _last_epoch_guard(score: Site, ep: Loop) -> tuple[int, str] | None:
    for t in _epoch_tests(score, ep):
        if not _selects_first(t, ep.target_names):
            return getattr(t, "lineno", score.line), ast.unparse(t)[:80]
    return None


def _selects_first(test: ast.expr, names: frozenset[str]) -> bool:
    """`epoch == 0`, `epoch < 1`, `epoch <= 0`, `not epoch`, `0 == epoch`."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return isinstance(test.operand, ast.Name) and test.operand.id in names
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
        return any(_selects_first(v, names) for v in test.values)
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        left, right, op = test.left, test.comparators[0], test.ops[0]
        if isinstance(right, ast.Name) and right.id in names:
            left, right = right, left
            op = {ast.Lt: ast.Gt(), ast.Gt: ast.Lt(), ast.LtE: ast.GtE(), ast.GtE: ast.LtE()}.get(type(op), op)
        if isinstance(left, ast.Name) and left.id in names and isinstance(right, ast.Constant):
            v = right.value
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                return False
            return ((isinstance(op, ast.Eq) and v == 0) or (isinstance(op, ast.Lt) and v <= 1)
                    or (isinstance(op, ast.LtE) and v < 1))
    return False


_RESET_METHODS = {"zero_", "fill_", "clear"}


def _reset_in(ep: Loop, chunk: Loop, accumulators: set[str]) -> tuple[int, str] | None:
    """An assignment (or `.zero_()`) of an accumulator in the epoch loop's body before the chunk loop."""
    node = ep.node
    if not isinstance(node, (ast.For, ast.While)) or not accumulators:
        return None
    for st in node.body:
        if st.lineno >= chunk.line:
            break
        for n in ast.walk(st):
            if isinstance(n, (ast.Assign, ast.AnnAssign)):
                targets = n.targets if isinstance(n, ast.Assign) else [n.target]
                for t in targets:
                    for x in ast.walk(t):
                        if isinstance(x, ast.Name) and x.id in accumulators and isinstance(x.ctx, ast.Store):
                            return n.lineno, x.id
            elif (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in _RESET_METHODS
                  and isinstance(n.func.value, ast.Name) and n.func.value.id in accumulators):
                return n.lineno, n.func.value.id
    return None


def _indexed_store(score: Site, chunk: Loop) -> str | None:
    """`acc[ci] = nll` with `ci` the chunk loop's variable: each epoch overwrites the chunk's score."""
    node = chunk.node
    if node is None:
        return None
    for n in ast.walk(node):
        if isinstance(n, ast.Assign) and n.lineno <= score.line <= (n.end_lineno or n.lineno):
            for t in n.targets:
                if isinstance(t, ast.Subscript):
                    idx = {x.id for x in ast.walk(t.slice) if isinstance(x, ast.Name)}
                    if idx & chunk.target_names:
                        return ast.unparse(t)[:60]
    return None


def accumulators_of(score: Site) -> set[str]:
    """The names a score site adds into: its accumulator, the plain names passed to a scoring
    helper (`score_chunk(..., acc)`), or the list it appends to."""
    out: set[str] = set()
    if score.name:
        out.add(score.name.split(".")[0].split("[")[0])
    out.update(n for n in score.arg_names if n)
    out.update(n for n in score.kw_names.values() if n)
    node = score.node
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name):
        out.add(node.func.value.id)
    return out
