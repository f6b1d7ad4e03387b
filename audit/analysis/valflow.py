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

This module holds the records and steps 1-2 (which parameters receive val data, where it is
trained on); `val_scores.py` finds the scores, `val_order.py` classifies each update by the
order of updates and scores.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from audit.analysis import names as N
from audit.analysis.facts import (
    Labels,
    Site,
    bind_args,
    substitute,
)
from audit.analysis.program import FunctionRef, Program
from audit.analysis.syntax import dotted, walk

EPOCH_LOOP = re.compile(r"epoch|(?:^|_)ep(?:_|$)|pass|round", re.IGNORECASE)
SLOT_NAME = re.compile(r"slot|(?:^|_)delta(?:_|$)|logit_bias", re.IGNORECASE)


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
    from audit.analysis.val_order import classify
    from audit.analysis.val_scores import score_events

    _val_params(vf)
    _adapt_summary(vf)
    score_events(vf)
    classify(vf)
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
    for n in walk(ref.facts.node):
        if (isinstance(n, ast.Attribute) and n.attr == "grad" and isinstance(n.ctx, ast.Load)
                and getattr(n, "lineno", 0) >= b.line):
            read.add(dotted(n.value))
    return bool(read) and read <= names


def direct_updates(vf: ValFlow, ref: FunctionRef) -> list[Event]:
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
            if s.kind == "backward" and not _is_slot(r, s) and not discarded_module(vf, r, s):
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


def discarded_module(vf: ValFlow, ref: FunctionRef, b: Site) -> bool:
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
