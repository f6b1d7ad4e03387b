"""Scores of validation data: accumulations that reach a return or a log, and calls of scorers.

A score is a `+=`/`.add_` of val-derived values into an accumulator that reaches a return value
or a log line (summing the training loss after a step, or a penalty added to the loss, is not
one), or a call of a function whose score reaches its return, or into an accumulator it is
handed, or a scoring function passed as a callback. Computed to a fixpoint over the call graph.
"""

from __future__ import annotations

import ast

from audit.analysis.facts import EMPTY, Labels, Site, assign_closure, is_accumulator_method, substitute
from audit.analysis.program import FunctionRef
from audit.analysis.syntax import dotted
from audit.analysis.valflow import Event, ValFlow


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
    out = assign_closure(ff, [n for s in ff.sites if s.kind == "backward" for n in s.mentions])
    ff._objective = out  # type: ignore[attr-defined]
    return out


def _root(name: str) -> str:
    return name.split(".", 1)[0]


def _is_reported(ref: FunctionRef, name: str) -> bool:
    root = _root(name)
    return root in ref.facts.reported_names or root in ref.facts.params


def score_events(vf: ValFlow) -> None:
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
    out = assign_closure(ff, ff.return_names)
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


