"""Per-function facts from one walk of the stdlib `ast`: taint labels, grad context, loops, sites.

This module holds the records (`FunctionFacts`, `Site`, `Loop`) and how labels cross a call
(`bind_args`, `substitute`). The walk that fills them is split by concern: `provenance.py`
(where values come from), `call_effects.py` (what a call does to its arguments, accumulators and
the caller's names), `grad_context.py` (statements: loops, branches, gradient and optimizer
contexts) and `walker.py` (one function, start to end).

Each function (and the module body, as `<module>`) is walked once in statement order with an
environment name -> labels. Labels say where a value comes from: `VAL` (validation split),
`TRAIN` (training split) or `P:<param>` (a parameter of this function, resolved later at call
sites by `audit.analysis.valflow`). Assignments replace a name's labels (so `loss` reused by the
training loop is not val-derived just because an earlier eval also called it `loss`); writes into
a container (`xb[i] = ct`, `buf.append(t)`) add to them. Loop bodies are walked twice so values
carried round a loop are seen. The walk records *sites* the rules need: calls, `.backward()`,
optimizer `.step()`, `+=` accumulations, returns, optimizer constructions, fresh trainable
tensors; each with its line, enclosing loops, `if` guards and whether it runs under
`no_grad`/`inference_mode`.

Split names (`val_tokens`, `x_train`) label a value only when the data flow does not already
say otherwise, and a slice/reshape of another variable keeps that variable's split whatever its
new name. Accumulations count in every form a score is kept in: `+=` on a name, subscript or
attribute, `s = s + x` on a zero-initialised `s`, `.add_`, appends of values without a graph,
an accumulator object's method (`totals.add(nll)`), a closure summing into enclosing names.

Callee return labels come from `summaries` (filled by `program.py`, which re-runs this walk until
the summaries stop changing); with no summary a call's result carries the labels of its
receiver and arguments.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from audit.analysis import names as N

Labels = frozenset[str]
EMPTY: Labels = frozenset()


@dataclass(frozen=True)
class Loop:
    """An enclosing `for`/`while` loop: where it is and the identifiers in its header."""

    node_id: int
    line: int
    header_names: frozenset[str]
    target_names: frozenset[str]
    text: str
    node: ast.AST | None = field(default=None, compare=False, hash=False)


@dataclass
class Site:
    """One place in a function the rules care about."""

    kind: str  # call | backward | step | accum | return | optim | fresh_param | save
    line: int
    end_line: int
    order: int  # pre-order index of the enclosing statement within the function
    loops: tuple[Loop, ...]  # outermost first
    guards: tuple[frozenset[str], ...]  # names in the tests of enclosing `if`s
    grad_off: bool  # under no_grad / inference_mode
    # enclosing `if` tests, with True when the site is on the else-arm (for flag evaluation)
    guard_tests: tuple[tuple[ast.expr, bool], ...] = ()
    labels: Labels = EMPTY
    name: str = ""  # dotted callee / receiver / accumulator name
    node: ast.AST | None = None
    arg_labels: tuple[Labels, ...] = ()
    kw_labels: Mapping[str, Labels] = field(default_factory=dict)
    arg_names: tuple[str | None, ...] = ()  # the plain Name passed at each position, if any
    kw_names: Mapping[str, str | None] = field(default_factory=dict)
    recv_labels: Labels = EMPTY  # for call sites: labels of the receiver (`obj` in `obj.m()`)
    target: str | None = None  # for call/optim sites: the name the result is assigned to
    mentions: frozenset[str] = frozenset()  # identifiers in the site's value expression


@dataclass
class FunctionFacts:
    """What one walk of a function found. `qualname` is `Class.method`, `outer.inner` or `<module>`."""

    qualname: str
    name: str
    class_name: str | None
    node: ast.AST
    params: list[str]
    vararg: str | None
    kwarg: str | None
    line: int
    decorated_grad_off: bool = False
    sites: list[Site] = field(default_factory=list)
    returns: Labels = EMPTY
    returns_detached: bool = False  # every `return <value>` runs with gradients off
    # every `return` is a tuple of this many elements: their labels, position by position, so
    # `model, summary = train_model(...)` does not give `model` what went into `summary`
    return_elts: tuple[Labels, ...] | None = None
    # user classes this function's return value is built from (`return Loader(h)`), when every
    # return constructs an object; and names bound here to such objects (`loader = Loader(h)`):
    # `loader.next_batch()` then reaches that class's method, not every `next_batch` there is
    returns_classes: frozenset[str] = frozenset()
    instance_types: dict[str, frozenset[str]] = field(default_factory=dict)
    return_names: set[str] = field(default_factory=set)
    reported_names: set[str] = field(default_factory=set)  # names that reach a return or a log
    acc_params: dict[str, Labels] = field(default_factory=dict)  # param -> labels `+=`-ed into it
    # nested functions: enclosing-scope name -> labels `+=`-ed into it (`totals[0] += nll.sum()` in
    # a closure accumulates into the enclosing function's `totals`)
    free_accs: dict[str, Labels] = field(default_factory=dict)
    # param -> labels summed into it through an accumulator method (`totals.add(nll)` on our
    # `totals`): makes this function a scoring helper, without making the object val data
    method_accs: dict[str, Labels] = field(default_factory=dict)
    param_writes: dict[str, Labels] = field(default_factory=dict)  # param -> labels written into it
    field_writes: dict[str, Labels] = field(default_factory=dict)  # self.<attr> -> labels
    assign_sources: dict[str, set[str]] = field(default_factory=dict)  # name -> names it came from
    deleted: set[str] = field(default_factory=set)
    local_modules: set[str] = field(default_factory=set)  # names bound to modules built here
    flag_aliases: dict[str, str] = field(default_factory=dict)  # `use_slot = args.slot_enabled`
    call_aliases: dict[str, str] = field(default_factory=dict)  # `step = torch.compile(train_step)`
    parent: str | None = None  # enclosing function's qualname for nested defs

    @property
    def is_method(self) -> bool:
        return self.class_name is not None and bool(self.params) and self.params[0] in {"self", "cls"}

    def of_kind(self, kind: str) -> list[Site]:
        return [s for s in self.sites if s.kind == kind]


# Summaries the walker consults for user-defined callees: qualname -> labels of the return value
# expressed over that callee's parameters, plus the parameter names.
ReturnSummary = Callable[[ast.Call, str, "FunctionFacts"], list[tuple[FunctionFacts, Labels]]]


def assign_closure(ff: FunctionFacts, seeds: Iterable[str], limit: int | None = None) -> set[str]:
    """`seeds` and every name they were assigned from, transitively (`ff.assign_sources`); at
    most about `limit` names when given (the walk stops once that many are collected)."""
    out: set[str] = set()
    todo = list(seeds)
    while todo and (limit is None or len(out) < limit):
        n = todo.pop()
        if n in out:
            continue
        out.add(n)
        todo.extend(ff.assign_sources.get(n, ()))
    return out


def bind_args(callee: FunctionFacts, call: ast.Call, arg_labels: tuple[Labels, ...],
              kw_labels: Mapping[str, Labels], recv_lab: Labels) -> dict[str, Labels]:
    """Map a call's argument labels onto the callee's parameter names."""
    params = list(callee.params)
    out: dict[str, Labels] = {}
    if callee.is_method and isinstance(call.func, ast.Attribute):
        out[params[0]] = recv_lab
        params = params[1:]
    elif callee.name == "__init__" and params:
        params = params[1:]
    starred = any(isinstance(a, ast.Starred) for a in call.args) or "**" in kw_labels
    if starred:
        every = frozenset().union(*arg_labels, *kw_labels.values()) if (arg_labels or kw_labels) else EMPTY
        return {p: every for p in callee.params}
    for i, lab in enumerate(arg_labels):
        if i < len(params):
            out[params[i]] = out.get(params[i], EMPTY) | lab
        elif callee.vararg:
            out[callee.vararg] = out.get(callee.vararg, EMPTY) | lab
    for k, lab in kw_labels.items():
        if k in callee.params:
            out[k] = out.get(k, EMPTY) | lab
        elif callee.kwarg:
            out[callee.kwarg] = out.get(callee.kwarg, EMPTY) | lab
    return out


def substitute(labels: Labels, binding: Mapping[str, Labels]) -> Labels:
    """Rewrite `P:x` labels of a callee into the caller's labels for the argument bound to x."""
    out: set[str] = set()
    for lab in labels:
        if lab.startswith(N.PARAM):
            out |= binding.get(lab[len(N.PARAM):], EMPTY)
        else:
            out.add(lab)
    return frozenset(out)


def is_accumulator_method(ff: FunctionFacts) -> bool:
    """`def add(self, nll): self.sums[0] += nll.sum()`: a method that returns nothing and sums its
    arguments into its object. A model's `forward` that also tallies statistics on `self` returns
    its output, so calling it is not keeping a score."""
    return (ff.is_method and ff.params[0] in ff.acc_params and not ff.return_names
            and not any(s.kind == "return" and isinstance(s.node, ast.Return) and s.node.value is not None
                        for s in ff.sites))
