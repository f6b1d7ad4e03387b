"""Validation-data flow between functions: where val tokens are trained on, where they are
scored, and in which order (DESIGN.md "The static analyses that matter most", points 1-3).

Vocabulary:
- an *update* is a `.backward()` on a val-derived loss (direct), or a call to a function whose
  unprotected updates are lifted to its caller (below);
- a *score* is a `+=`/`.add_` of val-derived values into an accumulator that reaches a return
  value or a log line, or a call to a function that returns such a score;
- an update is *protected* when a score precedes it in a loop enclosing both (score-first TTT:
  per chunk, score then train; phased global SGD over docs scored earlier in the same loop);
- an unprotected update with a score after it in a shared loop is *score-after-update*;
  one followed by a score outside any shared loop is *adapt-then-score* (pre-quant TTT);
  one followed by no score in its function is *lifted* to every call site that passes val data,
  where the same questions are asked again.
Updates on fresh tensors (`delta = zeros(..., requires_grad=True)`) are SLOT; updates in
warm-up code (names with warm-up/compile) are warm-ups. Both are reported apart.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from dataclasses import dataclass, field

from audit.analysis import names as N
from audit.analysis.facts import (
    EMPTY,
    Labels,
    Site,
    bind_args,
    dotted,
    is_accumulator_method,
    root_name,
    substitute,
)
from audit.analysis.program import FunctionRef, Program

EPOCH_LOOP = re.compile(r"epoch|(?:^|_)ep(?:_|$)|pass|round", re.IGNORECASE)
SLOT_NAME = re.compile(r"slot|(?:^|_)delta(?:_|$)|logit_bias", re.IGNORECASE)
# How far (in statements) a warm-up log line may sit from the update it announces.
WARMUP_LOG_WINDOW = 12
# "warming up", "warm-up", "compile warmup" — not a logged `warmup_steps:20` setting
WARMUP_TEXT = re.compile(r"warming|warm[- ]up|warmup(?![_\w])", re.IGNORECASE)


@dataclass
class Event:
    """An update or a score in one function; `inner` is the event inside the callee for calls."""

    kind: str  # update | score
    ref: FunctionRef
    site: Site
    labels: Labels
    inner: Event | None = None
    slot: bool = False
    reaches_return: bool = False  # for call scores: the score flows into the caller's return

    @property
    def path(self) -> str:
        return self.ref.path

    def chain(self) -> list[Event]:
        out: list[Event] = [self]
        while out[-1].inner is not None:
            out.append(out[-1].inner)  # type: ignore[arg-type]
        return out

    @property
    def leaf(self) -> Event:
        return self.chain()[-1]


@dataclass
class Classified:
    """An update event and what the ordering analysis concluded about it."""

    status: str  # protected | score_after_update | adapt_then_score | unscored | warmup | train_mix
    event: Event
    score: Event | None = None  # the score that protects it / follows it
    loop_line: int | None = None
    slot: bool = False


@dataclass
class ValFlow:
    """The answers every TTT / data rule asks, computed once per submission."""

    program: Program
    val_params: dict[str, set[str]] = field(default_factory=dict)
    results: list[Classified] = field(default_factory=list)
    scores: dict[str, list[Event]] = field(default_factory=dict)
    updates: dict[str, list[Event]] = field(default_factory=dict)
    adapts: dict[str, Labels] = field(default_factory=dict)
    score_summary: dict[str, Labels] = field(default_factory=dict)

    def isval(self, ref: FunctionRef, labels: Labels) -> bool:
        if N.VAL in labels:
            return True
        vp = self.val_params.get(ref.facts.qualname, set())
        return any(lab.startswith(N.PARAM) and lab[len(N.PARAM):] in vp for lab in labels)

    def calls_in(self, ref: FunctionRef) -> list[tuple[Site, list[FunctionRef]]]:
        return self._calls.get(ref.facts.qualname, [])

    def binding(self, callee: FunctionRef, site: Site) -> dict[str, Labels]:
        assert isinstance(site.node, ast.Call)
        return bind_args(callee.facts, site.node, site.arg_labels, site.kw_labels, site.recv_labels)

    _calls: dict[str, list[tuple[Site, list[FunctionRef]]]] = field(default_factory=dict)
    # Filled by `switch_off`: flags the logs show, and functions only reachable through code they
    # switch off.
    flags: dict = field(default_factory=dict)
    dead: set[str] = field(default_factory=set)
    # Weaker: flags off by default and never set anywhere in the folder (softens warnings only).
    soft_flags: dict = field(default_factory=dict)
    soft_dead: set[str] = field(default_factory=set)

    def site_off(self, ref: FunctionRef, site: Site) -> bool:
        """The site cannot have run in the logged runs (its function or an enclosing `if` is off)."""
        from audit.analysis.flags import site_dead

        return ref.facts.qualname in self.dead or site_dead(site, ref.facts, self.flags)

    def switched_off(self, c: Classified, soft: bool = False) -> bool:
        """Cannot have run: by the logged flags, or (`soft`) also by off-by-default flags."""
        if any(self.site_off(e.ref, e.site) for e in c.event.chain()):
            return True
        if not soft or not self.soft_flags:
            return False
        from audit.analysis.flags import site_dead

        return any(e.ref.facts.qualname in self.soft_dead or site_dead(e.site, e.ref.facts, self.soft_flags)
                   for e in c.event.chain())

    def switch_off(self, flags: dict, soft_flags: dict | None = None) -> None:
        from audit.analysis.flags import dead_functions

        self.flags = flags
        self.dead = dead_functions(self.program, self.calls_in, flags)
        if soft_flags:
            self.soft_flags = {**soft_flags, **flags}
            self.soft_dead = dead_functions(self.program, self.calls_in, self.soft_flags)


def analyse(prog: Program) -> ValFlow:
    vf = ValFlow(prog)
    for r in prog.functions:
        calls = []
        for s in r.facts.sites:
            if s.kind == "call" and isinstance(s.node, ast.Call):
                cs = prog.callees(s.node, r.facts.class_name, r.facts.call_aliases, r.facts)
                if cs:
                    calls.append((s, cs))
        vf._calls[r.facts.qualname] = calls
    _val_params(vf)
    _adapt_summary(vf)
    _score_events(vf)
    _classify(vf)
    return vf


# -- 1. which parameters receive validation data --------------------------------------------
def _val_params(vf: ValFlow) -> None:
    for r in vf.program.functions:
        vf.val_params[r.facts.qualname] = {p for p in r.facts.params if N.is_val_name(p)}
    for _ in range(len(vf.program.functions) + 1):
        changed = False
        for r in vf.program.functions:
            for site, callees in vf.calls_in(r):
                for c in callees:
                    for p, lab in vf.binding(c, site).items():
                        vp = vf.val_params[c.facts.qualname]
                        if p not in vp and vf.isval(r, lab):
                            vp.add(p)
                            changed = True
        if not changed:
            break


# -- 2. updates: direct backward sites, SLOT-ness -------------------------------------------
def _is_slot(ref: FunctionRef, b: Site) -> bool:
    """The optimizer stepped after this backward only holds freshly created tensors."""
    ff = ref.facts
    fresh = {s.name for s in ff.sites if s.kind == "fresh_param"}
    # a per-window module or tensor named for what SLOT optimises (`slot`, `delta`, `logit_bias`)
    fresh |= {s.name for s in ff.sites if s.kind == "optim" and any(SLOT_NAME.search(n) for n in s.mentions)}
    if not fresh:
        return False
    inner = b.loops[-1].node_id if b.loops else None
    steps = [s for s in ff.sites if s.kind == "step" and s.order >= b.order
             and (inner is None or any(lp.node_id == inner for lp in s.loops)) and not _exclusive(s, b)]
    optims = {s.name: s for s in ff.sites if s.kind == "optim"}
    kinds = []
    for st in steps:
        o = optims.get(st.name)
        if o is not None:
            # `opt = LBFGS(params)` with `params = [delta]`: look through the list's name
            held = set(o.mentions).union(*(ff.assign_sources.get(m, set()) for m in o.mentions))
            kinds.append(bool(held & fresh) or o.name in fresh)
    if not steps:
        # no optimizer: a hand-written step reads the fresh tensor's gradient
        # (`g = delta.grad; delta = delta - lr * g`), so only that tensor moves
        return _reads_grad_of(ref, b, fresh)
    return bool(kinds) and all(kinds)


def _exclusive(a: Site, b: Site) -> bool:
    """`a` and `b` sit on different arms of the same `if` (`if newton: ... elif lbfgs: ...`)."""
    arms = {id(t): e for t, e in b.guard_tests}
    return any(id(t) in arms and arms[id(t)] != e for t, e in a.guard_tests)


def _reads_grad_of(ref: FunctionRef, b: Site, names: set[str]) -> bool:
    """After backward `b`, the code reads `<name>.grad` of one of `names` and of nothing else."""
    read: set[str] = set()
    for n in ast.walk(ref.facts.node):
        if (isinstance(n, ast.Attribute) and n.attr == "grad" and isinstance(n.ctx, ast.Load)
                and getattr(n, "lineno", 0) >= b.line):
            read.add(dotted(n.value))
    return bool(read) and read <= names


def _direct_updates(vf: ValFlow, ref: FunctionRef) -> list[Event]:
    out = []
    for s in ref.facts.sites:
        if s.kind == "backward" and vf.isval(ref, s.labels):
            out.append(Event("update", ref, s, s.labels, slot=_is_slot(ref, s)))
    return out


def _adapt_summary(vf: ValFlow) -> None:
    """Labels (over params) of everything a function trains on, transitively (SLOT excluded)."""
    for r in vf.program.functions:
        lab: set[str] = set()
        for s in r.facts.sites:
            if s.kind == "backward" and not _is_slot(r, s) and not _discarded_module(vf, r, s):
                lab |= s.labels
        vf.adapts[r.facts.qualname] = frozenset(lab)
    for _ in range(len(vf.program.functions) + 1):
        changed = False
        for r in vf.program.functions:
            cur = set(vf.adapts[r.facts.qualname])
            for site, callees in vf.calls_in(r):
                for c in callees:
                    cur |= substitute(vf.adapts[c.facts.qualname], vf.binding(c, site))
            if frozenset(cur) != vf.adapts[r.facts.qualname]:
                vf.adapts[r.facts.qualname] = frozenset(cur)
                changed = True
        if not changed:
            break


# -- 3. scores ------------------------------------------------------------------------------
def _training_names(ref: FunctionRef, acc: Site) -> frozenset[str]:
    """Names fed to an earlier backward that shares a loop with this accumulation: summing the
    training loss after the step is logging, not scoring."""
    loops = {lp.node_id for lp in acc.loops}
    out: set[str] = set()
    for s in ref.facts.sites:
        if s.kind == "backward" and s.order <= acc.order and (
                not loops or loops & {lp.node_id for lp in s.loops}):
            out |= s.mentions
    return frozenset(out)


def _objective_names(ref: FunctionRef) -> set[str]:
    """Names whose value flows into a back-propagated loss: a penalty summed up and added to
    the loss (`pen = pen + w.pow(2).sum(); loss = loss + lam * pen`) is training, not a score."""
    ff = ref.facts
    cached = getattr(ff, "_objective", None)
    if cached is not None:
        return cached
    out: set[str] = set()
    todo = [n for s in ff.sites if s.kind == "backward" for n in s.mentions]
    while todo:
        n = todo.pop()
        if n not in out:
            out.add(n)
            todo.extend(ff.assign_sources.get(n, ()))
    ff._objective = out  # type: ignore[attr-defined]
    return out


def _root(name: str) -> str:
    return name.split(".", 1)[0]


def _is_reported(ref: FunctionRef, name: str) -> bool:
    root = _root(name)
    return root in ref.facts.reported_names or root in ref.facts.params


def _score_events(vf: ValFlow) -> None:
    summary: dict[str, Labels] = {r.facts.qualname: EMPTY for r in vf.program.functions}
    events: dict[str, list[Event]] = {}
    direct: dict[str, list[Event]] = {}
    callbacks: dict[str, list[Site]] = {}
    for r in vf.program.functions:
        direct[r.facts.qualname] = [
            Event("score", r, s, s.labels) for s in r.facts.sites
            if s.kind == "accum" and _is_reported(r, s.name) and not (s.mentions & _training_names(r, s))
            and _root(s.name) not in _objective_names(r)]
        callbacks[r.facts.qualname] = [
            s for s in r.facts.sites if s.kind == "call" and isinstance(s.node, ast.Call)
            and any(isinstance(a, ast.Name) and a.id in vf.program.by_name for a in s.node.args)]
    for _ in range(len(vf.program.functions) + 1):
        changed = False
        for r in vf.program.functions:
            evs: list[Event] = list(direct[r.facts.qualname])
            returned = _returned_closure(r)
            for site, callees in vf.calls_in(r):
                lab: set[str] = set()
                inner: Event | None = None
                reaches = False
                for c in callees:
                    b = vf.binding(c, site)
                    got = substitute(summary[c.facts.qualname], b)
                    if got:
                        inner = inner or next(iter(events.get(c.facts.qualname, [])), None)
                        reaches = reaches or (site.target or "") in returned
                    lab |= got
                    accs = {p: a for p, a in c.facts.acc_params.items()
                            if p != c.facts.params[0] or is_accumulator_method(c.facts)} if c.facts.params else {}
                    for p, a in c.facts.method_accs.items():
                        accs[p] = accs.get(p, EMPTY) | a
                    for p, acc in accs.items():
                        arg = _arg_name(c, site, p)
                        if arg is not None and _is_reported(r, arg):
                            lab |= substitute(acc, b)
                            reaches = reaches or _root(arg) in returned or _root(arg) in r.facts.params
                    for name, acc in c.facts.free_accs.items():  # a closure summing into our `name`
                        if _is_reported(r, name):
                            lab |= substitute(acc, b)
                            reaches = reaches or name in returned or name in r.facts.params
                if lab:
                    evs.append(Event("score", r, site, frozenset(lab), inner=inner, reaches_return=reaches))
            for site in callbacks[r.facts.qualname]:
                lab2 = _callback_score(vf, site, summary)
                if lab2:
                    evs.append(Event("score", r, site, lab2))
            evs.sort(key=lambda e: (e.site.order, e.site.line))
            events[r.facts.qualname] = evs
            # a function is a scorer if its score reaches its return value
            new = frozenset().union(*(e.labels for e in evs if _reaches_return(r, e))) if evs else EMPTY
            if new != summary[r.facts.qualname]:
                summary[r.facts.qualname] = new
                changed = True
        if not changed:
            break
    vf.score_summary = summary
    vf.scores = {q: [e for e in evs if vf.isval(vf.program.by_qualname[q], e.labels)] for q, evs in events.items()}


def _callback_score(vf: ValFlow, site: Site, summary: dict[str, Labels]) -> Labels:
    """`timed_eval("label", eval_val, h, device, val_data, model)`: a scoring function passed as
    an argument is called with the arguments after it."""
    call = site.node
    if not isinstance(call, ast.Call):
        return EMPTY
    out: set[str] = set()
    for i, a in enumerate(call.args):
        if not isinstance(a, ast.Name):
            continue
        for g in vf.program.by_name.get(a.id, []):
            ret = summary.get(g.facts.qualname, EMPTY)
            if not ret or g.facts.is_method or g.facts.of_kind("backward"):
                continue  # a closure that back-propagates (`opt.step(closure)`) is a loss, not a score
            rest = site.arg_labels[i + 1:]
            binding = {p: rest[j] for j, p in enumerate(g.facts.params) if j < len(rest)}
            for k, lab in site.kw_labels.items():
                if k in g.facts.params:
                    binding[k] = lab
            out |= substitute(ret, binding)
    return frozenset(out)


def _reaches_return(ref: FunctionRef, e: Event) -> bool:
    s = e.site
    if s.kind == "accum":
        root = s.name.split(".", 1)[0]
        return root in _returned_closure(ref) or root in ref.facts.params
    return e.reaches_return or (s.target or "") in _returned_closure(ref)


def _returned_closure(ref: FunctionRef) -> set[str]:
    ff = ref.facts
    cached = getattr(ff, "_ret_closure", None)
    if cached is not None:
        return cached
    out: set[str] = set()
    todo = list(ff.return_names)
    while todo:
        n = todo.pop()
        if n not in out:
            out.add(n)
            todo.extend(ff.assign_sources.get(n, ()))
    ff._ret_closure = out  # type: ignore[attr-defined]
    return out


def _arg_name(callee: FunctionRef, site: Site, param: str) -> str | None:
    call = site.node
    assert isinstance(call, ast.Call)
    params = list(callee.facts.params)
    if callee.facts.is_method and isinstance(call.func, ast.Attribute):
        if param == params[0]:  # `totals.add(nll)`: the method accumulates into its receiver
            return dotted(call.func.value) or None
        params = params[1:]
    for i, a in enumerate(call.args):
        if i < len(params) and params[i] == param:
            return a.id if isinstance(a, ast.Name) else (getattr(a, "attr", None))
    for k in call.keywords:
        if k.arg == param:
            return k.value.id if isinstance(k.value, ast.Name) else None
    return None


# -- 4. ordering ----------------------------------------------------------------------------
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
    for n in ast.walk(node):
        if isinstance(n, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            for t in (n.targets if isinstance(n, ast.Assign) else [n.target]):
                for x in ast.walk(t):
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
            for c in ast.walk(s.node):
                if isinstance(c, ast.Constant) and isinstance(c.value, str) and WARMUP_TEXT.search(c.value):
                    return True
    return False


def _discarded_module(vf: ValFlow, ref: FunctionRef, b: Site) -> bool:
    """The optimizer stepped after this backward trains only a module built in this function
    that never leaves it (not returned, not passed to any call): e.g. a diagnostic linear probe
    on frozen val features. Nothing it learns can reach a scored forward pass."""
    ff = ref.facts
    if not ff.local_modules:
        return False
    inner = b.loops[-1].node_id if b.loops else None
    steps = [s for s in ff.sites if s.kind == "step" and s.order >= b.order
             and (inner is None or any(lp.node_id == inner for lp in s.loops))]
    optims = {s.name: s for s in ff.sites if s.kind == "optim"}
    trained: set[str] = set()
    for st in steps:
        o = optims.get(st.name)
        if o is None:
            return False
        mods = o.mentions & ff.local_modules
        if not mods:
            return False
        trained |= mods
    if not trained or trained & ff.return_names:
        return False
    for s in ff.sites:
        if s.kind == "call" and isinstance(s.node, ast.Call) and not N.OPTIMIZER_CTOR.search(s.name):
            args = [*s.node.args, *(k.value for k in s.node.keywords)]
            if trained & {_object_root(a) for a in args}:
                return False
    return True


def _object_root(a: ast.AST) -> str | None:
    """The object an argument hands over: `m`, `m.module`, `m.state_dict()`; not `m(x)` (a call
    of the module returns activations, it does not pass the module on)."""
    while True:
        if isinstance(a, ast.Name):
            return a.id
        if isinstance(a, (ast.Attribute, ast.Subscript, ast.Starred)):
            a = a.value
        elif isinstance(a, ast.Call) and isinstance(a.func, ast.Attribute):
            a = a.func.value
        else:
            return None


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
    if e.inner is None and _discarded_module(vf, ref, e.site):
        return Classified("discarded", e, slot=e.slot)
    return Classified("unscored", e, slot=e.slot)


def _classify(vf: ValFlow) -> None:
    """Classify updates bottom-up; unscored ones are lifted to the call sites that reach them."""
    lifted: dict[str, list[Event]] = defaultdict(list)
    done: dict[str, list[Classified]] = {}
    for _ in range(len(vf.program.functions) + 2):
        changed = False
        for r in vf.program.functions:
            q = r.facts.qualname
            evs = _direct_updates(vf, r)
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
