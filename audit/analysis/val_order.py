"""Order of updates and scores: is each training update on val data protected by a score first?

An update is protected when a score precedes it in a loop enclosing both (score-first TTT), or
when it trains only on values carried over from the previous iteration; a score after it in a
shared loop is score-after-update; a score after it outside any shared loop is adapt-then-score.
Unscored updates are lifted to the call sites that pass val data, bottom-up. Warm-ups, updates
mixed with training data and throw-away probes are classified apart.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict

from audit.analysis import names as N
from audit.analysis.facts import Site, substitute
from audit.analysis.program import FunctionRef
from audit.analysis.syntax import root_name, walk
from audit.analysis.valflow import EPOCH_LOOP, Classified, Event, ValFlow, direct_updates, discarded_module

# How far (in statements) a warm-up log line may sit from the update it announces.
WARMUP_LOG_WINDOW = 12
# "warming up", "warm-up", "compile warmup" — not a logged `warmup_steps:20` setting
WARMUP_TEXT = re.compile(r"warming|warm[- ]up|warmup(?![_\w])", re.IGNORECASE)


def _common_loops(a: Site, b: Site) -> list:
    ids = {lp.node_id for lp in b.loops}
    return [lp for lp in a.loops if lp.node_id in ids]


def _epoch_guarded(score: Site, update: Site, common: list) -> bool:
    """The score only runs on some epochs of a loop that also repeats the update, or only the
    last epoch's scores are kept (epochs.py); a first-epoch-only score is score-first."""
    from audit.analysis.epochs import accumulators_of, first_epoch_only, last_epoch_only
    if first_epoch_only(score):
        return False
    if last_epoch_only(score, update, accumulators_of(score)) is not None:
        return True
    for lp in common:
        if EPOCH_LOOP.search(lp.text) and any(lp.target_names & g for g in score.guards):
            return True
    return False


def _depth(site: Site, loop) -> int:
    """1-based depth of `loop` among the site's enclosing loops."""
    for i, lp in enumerate(site.loops):
        if lp.node_id == loop.node_id:
            return i + 1
    return len(site.loops)


def _lagged(ref: FunctionRef, upd: Site, score: Site, loop) -> bool:
    """The update trains only on values carried over from the previous iteration: names the body
    sets, after both the update and the score, to a copy of this iteration's data (`prev_x = x`
    at its end), so what they hold was scored one iteration earlier. Train on the previous
    chunk, then score this one, is score-first."""
    node = getattr(loop, "node", None)
    if node is None:
        return False
    last = max(upd.line, score.line)
    set_at: dict[str, list[ast.stmt]] = defaultdict(list)
    for n in walk(node):
        if isinstance(n, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            for t in (n.targets if isinstance(n, ast.Assign) else [n.target]):
                for x in walk(t):
                    if isinstance(x, ast.Name):
                        set_at[x.id].append(n)
    step_vars = set().union(*(lp.target_names for lp in upd.loops)) if upd.loops else set()

    def copies_current(st: ast.stmt) -> bool:
        if not isinstance(st, ast.Assign) or st.lineno <= last:
            return False
        if isinstance(st.value, ast.Constant):
            return True  # `prev_x = None`: a reset carries nothing
        src = root_name(st.value) if not isinstance(st.value, ast.Name) else st.value.id
        return src is not None and any(x.lineno < score.line for x in set_at.get(src, []))

    carried = {v for v, sts in set_at.items() if all(copies_current(st) for st in sts)}
    if not carried:
        return False
    sources = ref.facts.assign_sources
    seen: set[str] = set()
    todo = list(upd.mentions)
    while todo:
        v = todo.pop()
        if v in seen:
            continue
        seen.add(v)
        if v in step_vars:
            return False  # indexed by this iteration's loop variable
        if v in carried:
            continue
        if set_at.get(v) and not sources.get(v) and any(x.lineno < upd.line for x in set_at[v]):
            return False  # set this iteration from something we cannot see through
        todo.extend(sources.get(v, ()))
    return bool(seen & carried)


def _warmup(ref: FunctionRef, e: Event) -> bool:
    ff = ref.facts
    if N.is_warmup_name(ff.name):
        return True
    for lp in e.site.loops:
        if any(N.is_warmup_name(n) for n in lp.header_names):
            return True
    if e.site.kind == "call" and N.is_warmup_name(e.site.name.rsplit(".", 1)[-1]):
        return True
    # a log line announcing a warm-up right before the update (`log("ttt: warming up compile")`)
    for s in ff.sites:
        if (s.kind == "call" and e.site.order - WARMUP_LOG_WINDOW <= s.order <= e.site.order
                and N.LOG_CALLS.search(s.name.rsplit(".", 1)[-1]) and isinstance(s.node, ast.Call)):
            for c in walk(s.node):
                if isinstance(c, ast.Constant) and isinstance(c.value, str) and WARMUP_TEXT.search(c.value):
                    return True
    return False


def _mixes_train(ref: FunctionRef, e: Event) -> bool:
    if N.TRAIN in e.labels and e.inner is None:
        return True
    loops = {lp.node_id for lp in e.site.loops[-1:]}
    for s in ref.facts.sites:
        if s.kind == "backward" and s is not e.site and N.TRAIN in s.labels and N.VAL not in s.labels:
            if loops and loops & {lp.node_id for lp in s.loops}:
                return True
    return False


def _classify_one(vf: ValFlow, e: Event) -> Classified:
    ref = e.ref
    if _mixes_train(ref, e):
        return Classified("train_mix", e, slot=e.slot)
    if _warmup(ref, e):
        return Classified("warmup", e, slot=e.slot)
    scores = [s for s in vf.scores.get(ref.facts.qualname, []) if s.site.node is not e.site.node]
    before, after_common, after = [], [], []
    for s in scores:
        common = _common_loops(e.site, s.site)
        if common and s.site.order < e.site.order and not _epoch_guarded(s.site, e.site, common):
            before.append((s, common[-1]))
        elif common:  # after the update in the same chunk, or only on some epochs of it
            after_common.append((s, common[-1]))
        elif s.site.order > e.site.order:
            after.append(s)
    if before:
        s, lp = before[-1]
        return Classified("protected", e, s, lp.line, slot=e.slot)
    if after_common:
        s, lp = after_common[0]
        if _lagged(ref, e.site, s.site, lp):
            return Classified("protected", e, s, lp.line, slot=e.slot)
        if EPOCH_LOOP.search(lp.text) and len(e.site.loops) > _depth(e.site, lp):
            # a whole pass over the stream per epoch, then a score: adapt-then-score per epoch
            return Classified("adapt_then_score", e, s, lp.line, slot=e.slot)
        return Classified("score_after_update", e, s, lp.line, slot=e.slot)
    if after:
        return Classified("adapt_then_score", e, after[0], slot=e.slot)
    if e.inner is None and discarded_module(vf, ref, e.site):
        return Classified("discarded", e, slot=e.slot)
    return Classified("unscored", e, slot=e.slot)


def classify(vf: ValFlow) -> None:
    """Classify updates bottom-up; unscored ones are lifted to the call sites that reach them."""
    lifted: dict[str, list[Event]] = defaultdict(list)
    done: dict[str, list[Classified]] = {}
    for _ in range(len(vf.program.functions) + 2):
        changed = False
        for r in vf.program.functions:
            q = r.facts.qualname
            evs = direct_updates(vf, r)
            for site, callees in vf.calls_in(r):
                for c in callees:
                    inner = lifted.get(c.facts.qualname)
                    if not inner:
                        continue
                    b = vf.binding(c, site)
                    lab = frozenset().union(*(substitute(i.labels, b) for i in inner))
                    if vf.isval(r, lab):
                        evs.append(Event("update", r, site, lab, inner=inner[0], slot=inner[0].slot))
                        break
            results = [_classify_one(vf, e) for e in evs]
            new_lift = [c.event for c in results if c.status == "unscored"]
            old = lifted.get(q, [])
            if [(e.site.line, e.site.kind) for e in new_lift] != [(e.site.line, e.site.kind) for e in old]:
                lifted[q] = new_lift
                changed = True
            done[q] = results
            vf.updates[q] = evs
        if not changed:
            break
    callers = _callers(vf)
    for r in vf.program.functions:
        for res in done.get(r.facts.qualname, []):
            if res.status == "unscored":
                # reported where it stops: no caller passes val data on (module body, entry points)
                if r.facts.name == "<module>" or not callers.get(r.facts.qualname):
                    if r.facts.name == "<module>" or _is_entry(r):
                        vf.results.append(res)
                continue
            vf.results.append(res)


def _callers(vf: ValFlow) -> dict[str, list[tuple[FunctionRef, Site]]]:
    out: dict[str, list[tuple[FunctionRef, Site]]] = defaultdict(list)
    for r in vf.program.functions:
        for site, callees in vf.calls_in(r):
            for c in callees:
                out[c.facts.qualname].append((r, site))
    return out


def _is_entry(ref: FunctionRef) -> bool:
    """An uncalled function that is plainly an entry point (`main`, `run`, `train_and_eval`)."""
    return ref.facts.name in {"main", "run", "train", "train_and_eval", "train_main", "evaluate"}
