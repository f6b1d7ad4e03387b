"""Per-function facts from one walk of the stdlib `ast`: taint labels, grad context, loops, sites.

Each function (and the module body, as `<module>`) is walked once in statement order with an
environment name -> labels. Labels say where a value comes from: `VAL` (validation split),
`TRAIN` (training split) or `P:<param>` (a parameter of this function, resolved later at call
sites by `audit.analysis.flow`). Assignments replace a name's labels (so `loss` reused by the
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

Callee return labels come from `summaries` (filled by `flow.py`, which re-runs this walk until
the summaries stop changing); with no summary a call's result carries the labels of its
receiver and arguments.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
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


def dotted(node: ast.AST) -> str:
    """`torch.optim.AdamW` for an attribute chain, `a.b[..].c` -> `a.b.c`, else ''."""
    parts: list[str] = []
    while True:
        if isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        elif isinstance(node, ast.Name):
            parts.append(node.id)
            break
        elif isinstance(node, ast.Subscript):
            node = node.value
        elif isinstance(node, ast.Call):
            node = node.func
            parts.append("()")
        else:
            break
    return ".".join(reversed([p for p in parts if p != "()"]))


def root_name(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call, ast.Starred)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


_NAMES_CACHE: dict[int, tuple[ast.AST, frozenset[str]]] = {}


def names_in(node: ast.AST | None) -> frozenset[str]:
    """Identifiers (names and attribute names) in an expression; cached per node (the node is
    kept alive by the cache, so its id cannot be reused while the entry exists)."""
    if node is None:
        return frozenset()
    hit = _NAMES_CACHE.get(id(node))
    if hit is not None and hit[0] is node:
        return hit[1]
    if len(_NAMES_CACHE) > 500_000:
        _NAMES_CACHE.clear()
    res = _names_in(node)
    _NAMES_CACHE[id(node)] = (node, res)
    return res


def _names_in(node: ast.AST) -> frozenset[str]:
    out = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            out.add(n.id)
        elif isinstance(n, ast.Attribute):
            out.add(n.attr)
    return frozenset(out)


def is_grad_off_ctx(expr: ast.AST) -> bool:
    d = dotted(expr.func if isinstance(expr, ast.Call) else expr)
    return d.endswith(("no_grad", "inference_mode"))


def _is_grad_on_ctx(expr: ast.AST) -> bool:
    d = dotted(expr.func if isinstance(expr, ast.Call) else expr)
    return d.endswith("enable_grad")


class _Walker:
    """Walks one function body; see the module docstring."""

    def __init__(self, ff: FunctionFacts, env: dict[str, Labels], resolve: ReturnSummary,
                 fields: Mapping[str, Labels], nested_env: dict[str, dict[str, Labels]]):
        self.ff = ff
        self.env = env
        self.resolve = resolve
        self.fields = fields
        self.path_fields: Mapping[str, Labels] = {}
        self.nested_env = nested_env
        self.loops: list[Loop] = []
        self.guards: list[frozenset[str]] = []
        self.guard_tests: list[tuple[ast.expr, bool]] = []
        self.grad_off = ff.decorated_grad_off
        self.order_of: dict[int, int] = {}
        self.counter = 0
        self.cur_order = 0
        self.cur_stmt: ast.stmt | None = None
        self.sites: dict[tuple[int, str], Site] = {}
        self.returns: set[str] = set()
        self.factory_names: set[str] = set()  # names bound to new tensors (zeros, clone, ...)
        self.classes: frozenset[str] = frozenset()
        self.free: frozenset[str] = frozenset()  # enclosing-scope names a nested function writes into
        self.nested_defs: list[str] = []
        self.detached: set[str] = set()  # names holding values that carry no autograd graph
        self.zero_inits: set[str] = set()  # names last set to 0 / torch.zeros(...): accumulators
        # names last bound to a slice / reshape of another variable (`x_train = chunk[:-1]`): what
        # they hold is what that variable holds, whatever the new name says
        self.views: set[str] = set()
        self.ret_elts: list[Labels] | None = []  # per-position return labels; None: not all tuples
        self.call_elts: dict[int, tuple[Labels, ...]] = {}  # call node id -> per-position labels
        self.ret_classes: frozenset[str] | None = frozenset()  # None: some return is not a construction

    # -- labels of expressions ----------------------------------------------------------
    def labels(self, e: ast.AST | None) -> Labels:
        if e is None:
            return EMPTY
        m = getattr(self, "_l_" + type(e).__name__, None)
        if m is not None:
            return m(e)
        out: set[str] = set()
        for child in ast.iter_child_nodes(e):
            if isinstance(child, ast.expr):
                out |= self.labels(child)
        return frozenset(out)

    def _l_Constant(self, e: ast.Constant) -> Labels:
        if isinstance(e.value, str):
            if N.VAL_STRING.search(e.value):
                return frozenset({N.VAL})
            if N.TRAIN_STRING.search(e.value):
                return frozenset({N.TRAIN})
        return EMPTY

    def _l_JoinedStr(self, e: ast.JoinedStr) -> Labels:
        out: set[str] = set()
        for v in e.values:
            if isinstance(v, ast.Constant):
                out |= self._l_Constant(v)
        return frozenset(out)

    def _l_Name(self, e: ast.Name) -> Labels:
        lab = self.env.get(e.id, EMPTY)
        # a name says which split it holds unless the data flow already says otherwise
        # (`x_train = val_chunk[...]` in a TTT loop is validation data under a training name)
        if N.is_val_name(e.id) and N.TRAIN not in lab:
            lab = lab | {N.VAL}
        elif N.is_train_name(e.id) and N.VAL not in lab and e.id not in self.views:
            lab = lab | {N.TRAIN}
        return lab

    def _l_Attribute(self, e: ast.Attribute) -> Labels:
        if e.attr in N.SIZE_ATTRS:
            return EMPTY
        if N.is_val_name(e.attr):
            return frozenset({N.VAL})
        if N.is_train_name(e.attr):
            return frozenset({N.TRAIN})
        if isinstance(e.value, ast.Name) and e.value.id in {"self", "cls"}:
            # `self.x` carries what any method stored there (class-wide, concrete labels only)
            # plus the instance itself (`P:self`), resolved per call site from the receiver,
            # so a loader built on train files and one built on val files stay apart.
            own = frozenset({N.PARAM + e.value.id}) if e.value.id in self.ff.params else EMPTY
            return self.fields.get(e.attr, EMPTY) | self.env.get("self." + e.attr, EMPTY) | own
        if PATH_ATTR.search(e.attr) and e.attr in self.path_fields:
            # `h.ttt_files` on a config object: the split(s) any constructor stored under that name
            return self.labels(e.value) | self.path_fields[e.attr]
        return self.labels(e.value)

    def _l_Subscript(self, e: ast.Subscript) -> Labels:
        return self.labels(e.value) | self.labels(e.slice)

    def _l_Lambda(self, e: ast.Lambda) -> Labels:
        return EMPTY

    def _l_NamedExpr(self, e: ast.NamedExpr) -> Labels:
        lab = self.labels(e.value)
        self.assign(e.target, lab, e.value)
        return lab

    def _comprehension(self, e: ast.AST, elts: list[ast.AST]) -> Labels:
        out: set[str] = set()
        for gen in e.generators:  # type: ignore[attr-defined]
            it = self.labels(gen.iter)
            out |= it
            self.assign(gen.target, it, None)
            for cond in gen.ifs:
                self.labels(cond)
        for el in elts:
            out |= self.labels(el)
        return frozenset(out)

    def _l_ListComp(self, e: ast.ListComp) -> Labels:
        return self._comprehension(e, [e.elt])

    _l_SetComp = _l_ListComp
    _l_GeneratorExp = _l_ListComp

    def _l_DictComp(self, e: ast.DictComp) -> Labels:
        return self._comprehension(e, [e.key, e.value])

    def _l_Compare(self, e: ast.Compare) -> Labels:
        self.labels(e.left)
        for c in e.comparators:
            self.labels(c)
        return EMPTY  # a boolean is a decision, not data

    def _l_Call(self, e: ast.Call) -> Labels:
        name = dotted(e.func)
        simple = name.rsplit(".", 1)[-1]
        recv = e.func.value if isinstance(e.func, ast.Attribute) else None
        recv_lab = self.labels(recv) if recv is not None else EMPTY
        arg_labels = tuple(self.labels(a) for a in e.args)
        kw_labels = {k.arg or "**": self.labels(k.value) for k in e.keywords}
        all_args = frozenset().union(*arg_labels, *kw_labels.values()) if (arg_labels or kw_labels) else EMPTY
        # Record the call site.
        self.add_site("call", e, name=name, labels=recv_lab | all_args, arg_labels=arg_labels, recv_labels=recv_lab,
                      kw_labels=kw_labels,
                      arg_names=tuple(a.id if isinstance(a, ast.Name) else None for a in e.args),
                      kw_names={k.arg or "**": (k.value.id if isinstance(k.value, ast.Name) else None)
                                for k in e.keywords})
        if simple == "backward" and recv is not None:
            self.add_site("backward", e, name=dotted(recv) or "loss", labels=recv_lab, mentions=names_in(recv))
        elif name.endswith("autograd.backward") or name.endswith("autograd.grad"):
            first = arg_labels[0] if arg_labels else EMPTY
            self.add_site("backward", e, name=name, labels=first, mentions=names_in(e.args[0] if e.args else None))
        elif simple == "step" and recv is not None and not N.SCHEDULER_NAME.search(dotted(recv)):
            self.add_site("step", e, name=dotted(recv), labels=EMPTY)
        if simple in N.MUTATING_METHODS and recv is not None:
            base = root_name(recv)
            if base is not None and all_args:
                self.weak(base, all_args, recv)
            # `loss_sum.add_(nll)`, and `nlls.append(nll)` under no_grad (summed later), collect a
            # score; appends with gradients on are batches being built, not scores
            if all_args and base is not None and (simple == "add_" or (
                    simple in {"append", "extend"} and (self.grad_off or (
                        e.args and all(self._detached(a) for a in e.args))))):
                self.add_site("accum", e, name=dotted(recv), labels=all_args,
                              mentions=frozenset().union(*(names_in(a) for a in e.args)))
                self._accumulated(base, all_args)
        if (simple == "requires_grad_" and isinstance(recv, ast.Name) and recv.id in self.factory_names
                and isinstance(self.cur_stmt, ast.Expr)):
            # `delta = torch.zeros(...)` then `delta.requires_grad_()`: a fresh trainable tensor
            self.add_site("fresh_param", e, name=recv.id)
        if N.SAVE_CALLS.search(name) and all_args:
            self.add_site("save", e, name=name, labels=all_args)
        # The value of the call.
        if simple in N.SIZE_CALLS:
            return EMPTY
        if N.VAL_LOADER.search(simple):
            return frozenset({N.VAL})
        callees = self.resolve(e, name, self.ff)
        if callees:
            out: set[str] = set()
            elts: list[Labels] | None = None
            positional = True
            for callee, ret in callees:
                binding = bind_args(callee, e, arg_labels, kw_labels, recv_lab)
                out |= substitute(ret, binding)
                self._apply_param_writes(callee, e, binding)
                ce = callee.return_elts if callee.name != "__init__" else None
                if ce is None or (elts is not None and len(ce) != len(elts)):
                    positional = False
                    continue
                sub = [substitute(x, binding) for x in ce]
                elts = sub if elts is None else [a | b for a, b in zip(elts, sub, strict=True)]
            if positional and elts is not None:
                self.call_elts[id(e)] = tuple(elts)
            return frozenset(out)
        return recv_lab | all_args

    def _detached(self, e: ast.AST) -> bool:
        """A value without an autograd graph: computed under no_grad, `.item()`/`float()`, or
        returned by a function whose returns are all computed with gradients off (a scorer).
        Collecting such values (`losses.append(s)`) is keeping scores, not building batches."""
        if self.grad_off:
            return True
        if isinstance(e, ast.Name):
            return e.id in self.detached
        if isinstance(e, (ast.Tuple, ast.List)):
            return bool(e.elts) and all(self._detached(x) for x in e.elts)
        if isinstance(e, ast.Constant):
            return True
        if isinstance(e, ast.Subscript):
            return self._detached(e.value)
        if isinstance(e, ast.Call):
            name = dotted(e.func)
            simple = name.rsplit(".", 1)[-1]
            if simple in {"item", "tolist", "detach", "float", "int"} and (
                    simple != "float" or isinstance(e.func, ast.Name)):
                return True
            callees = self.resolve(e, name, self.ff)
            return bool(callees) and all(c.returns_detached for c, _ in callees)
        return False

    def _note_instance(self, targets: Sequence[ast.AST], value: ast.AST) -> None:
        """`loader = Loader(h)` / `loader = make_loader(h)`: remember which user classes `loader`
        may be; any other binding of the name forgets it (flow-insensitively)."""
        if len(targets) != 1 or not isinstance(targets[0], ast.Name):
            return
        name = targets[0].id
        kinds = self._constructed(value)
        old = self.ff.instance_types.get(name)
        if kinds is None or old == frozenset():
            self.ff.instance_types[name] = frozenset()  # unknown: no narrowing
        else:
            self.ff.instance_types[name] = kinds | (old or frozenset())

    def _constructed(self, value: ast.AST) -> frozenset[str] | None:
        """Classes `value` builds: `Cls(...)`, `Cls(...).to(dev)`, a factory returning them."""
        while (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)
               and value.func.attr in {"to", "cuda", "cpu", "eval", "train"}):
            value = value.func.value
        if not (isinstance(value, ast.Call) and isinstance(value.func, ast.Name)):
            return None
        fn = value.func.id
        if fn in self.classes:
            return frozenset({fn})
        if fn[:1].isupper() or fn.lstrip("_")[:1].isupper():
            return frozenset()  # a class from a library: none of our methods
        callees = self.resolve(value, fn, self.ff)
        if callees and all(c.returns_classes for c, _ in callees):
            return frozenset().union(*(c.returns_classes for c, _ in callees))
        return None

    def _note_detached(self, targets: Sequence[ast.AST], value: ast.AST) -> None:
        det = self._detached(value)
        for t in targets:
            for n in ast.walk(t):
                if isinstance(n, ast.Name):
                    (self.detached.add if det else self.detached.discard)(n.id)

    def _accumulated(self, base: str, lab: Labels) -> None:
        """`base` was summed into: a parameter (the caller's accumulator) or, in a nested function,
        a name of the enclosing scope."""
        if not lab:
            return
        if base in self.ff.params:
            self.ff.acc_params[base] = self.ff.acc_params.get(base, EMPTY) | lab
        elif base in self.free:
            self.ff.free_accs[base] = self.ff.free_accs.get(base, EMPTY) | lab

    def _note_method_accs(self, callee: FunctionFacts, e: ast.Call, binding: Mapping[str, Labels]) -> None:
        """`totals.add(nll)` with `totals` one of our parameters, directly or through a helper
        that does it (`score_chunk(model, x, y, totals)`)."""
        got: dict[str, Labels] = {}
        if isinstance(e.func, ast.Attribute) and is_accumulator_method(callee):
            recv = root_name(e.func.value)
            if recv is not None:
                got[recv] = substitute(callee.acc_params[callee.params[0]], binding)
        if callee.method_accs:
            params = callee.params[1:] if (callee.is_method and isinstance(e.func, ast.Attribute)) else callee.params
            for i, a in enumerate(e.args):
                if i < len(params) and params[i] in callee.method_accs and isinstance(a, ast.Name):
                    got[a.id] = got.get(a.id, EMPTY) | substitute(callee.method_accs[params[i]], binding)
            for k in e.keywords:
                if k.arg in callee.method_accs and isinstance(k.value, ast.Name):
                    got[k.value.id] = got.get(k.value.id, EMPTY) | substitute(callee.method_accs[k.arg], binding)
        for name, lab in got.items():
            if lab and name in self.ff.params:
                self.ff.method_accs[name] = self.ff.method_accs.get(name, EMPTY) | lab

    def _apply_param_writes(self, callee: FunctionFacts, e: ast.Call, binding: Mapping[str, Labels]) -> None:
        """`fill(buf, val_tokens)` writes val data into the caller's `buf`; a closure into the
        enclosing function's names."""
        self._note_method_accs(callee, e, binding)
        for name, lab in callee.free_accs.items():
            got = substitute(lab, binding)
            if got:
                self.weak(name, got, e)
                self._accumulated(name, got)  # a nested closure passes the write on outwards
        writes = {**callee.param_writes}
        for p, lab in callee.acc_params.items():
            writes[p] = writes.get(p, EMPTY) | lab
        if not writes:
            return
        params = callee.params
        if callee.name == "__init__" and not isinstance(e.func, ast.Attribute):
            params = callee.params[1:]  # `Cls(h)`: `h` binds the parameter after `self`
        elif callee.is_method and isinstance(e.func, ast.Attribute):
            params = callee.params[1:]
        for i, a in enumerate(e.args):
            if i < len(params) and params[i] in writes and isinstance(a, ast.Name):
                lab = substitute(writes[params[i]], binding)
                if lab:
                    self.weak(a.id, lab, a)
        for k in e.keywords:
            if k.arg in writes and isinstance(k.value, ast.Name):
                lab = substitute(writes[k.arg], binding)
                if lab:
                    self.weak(k.value.id, lab, k.value)

    # -- sites ----------------------------------------------------------------------------
    def add_site(self, kind: str, node: ast.AST, **kw) -> None:
        key = (id(node), kind)
        old = self.sites.get(key)
        if old is not None:  # second walk of a loop body: widen the labels
            old.labels = old.labels | kw.get("labels", EMPTY)
            old.recv_labels = old.recv_labels | kw.get("recv_labels", EMPTY)
            if "arg_labels" in kw:
                old.arg_labels = tuple(a | b for a, b in zip(old.arg_labels, kw["arg_labels"], strict=False))
                old.kw_labels = {k: old.kw_labels.get(k, EMPTY) | v for k, v in kw["kw_labels"].items()}
            return
        stmt = self.cur_stmt
        line: int = getattr(node, "lineno", 0)
        end: int = getattr(node, "end_lineno", None) or line
        site = Site(kind=kind, line=line, end_line=end,
                    order=self.cur_order, loops=tuple(self.loops), guards=tuple(self.guards),
                    guard_tests=tuple(self.guard_tests),
                    grad_off=self.grad_off, node=node, **kw)
        if kind == "call" and isinstance(stmt, (ast.Assign, ast.AnnAssign)) and _value_of(stmt) is node:
            site.target = _first_target_name(stmt)
        self.sites[key] = site

    # -- assignment -------------------------------------------------------------------------
    def assign(self, target: ast.AST, lab: Labels, value: ast.AST | None) -> None:
        if isinstance(target, ast.Name):
            self.env[target.id] = lab
            if value is not None:
                self.ff.assign_sources.setdefault(target.id, set()).update(names_in(value))
        elif isinstance(target, (ast.Tuple, ast.List)):
            for el in target.elts:
                self.assign(el, lab, value)
        elif isinstance(target, ast.Starred):
            self.assign(target.value, lab, value)
        elif isinstance(target, ast.Attribute):
            if isinstance(target.value, ast.Name) and target.value.id in {"self", "cls"}:
                self.env["self." + target.attr] = lab
                if lab:
                    self.ff.field_writes[target.attr] = self.ff.field_writes.get(target.attr, EMPTY) | lab
            else:
                base = root_name(target)
                if base is not None and lab:
                    self.weak(base, lab, target)
        elif isinstance(target, ast.Subscript):
            base = root_name(target)
            if base is not None and lab:
                self.weak(base, lab, target)

    def weak(self, base: str, lab: Labels, where: ast.AST) -> None:
        self.env[base] = self.env.get(base, EMPTY) | lab
        if base in self.ff.params and lab:
            self.ff.param_writes[base] = self.ff.param_writes.get(base, EMPTY) | lab

    # -- statements ---------------------------------------------------------------------------
    def block(self, stmts: Iterable[ast.stmt]) -> None:
        for s in stmts:
            self.stmt(s)

    def stmt(self, s: ast.stmt) -> None:
        if id(s) not in self.order_of:
            self.counter += 1
            self.order_of[id(s)] = self.counter
        prev_stmt, prev_order = self.cur_stmt, self.cur_order
        self.cur_stmt, self.cur_order = s, self.order_of[id(s)]
        try:
            m = getattr(self, "_s_" + type(s).__name__, None)
            if m is not None:
                m(s)
            else:
                for child in ast.iter_child_nodes(s):
                    if isinstance(child, ast.expr):
                        self.labels(child)
        finally:
            self.cur_stmt, self.cur_order = prev_stmt, prev_order

    def _s_FunctionDef(self, s: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        # A nested function sees the enclosing names as they are where it is defined (widened by
        # `walk_function` with their values at the end: a closure reads them when it is called).
        q = f"{self.ff.qualname}.{s.name}"
        self.nested_env[q] = dict(self.env)
        self.nested_defs.append(q)

    _s_AsyncFunctionDef = _s_FunctionDef

    def _s_ClassDef(self, s: ast.ClassDef) -> None:
        return None

    def _s_Assign(self, s: ast.Assign) -> None:
        if (len(s.targets) == 1 and isinstance(s.targets[0], ast.Name) and isinstance(s.value, ast.Call)
                and s.value.args and isinstance(s.value.args[0], ast.Name)
                and dotted(s.value.func).rsplit(".", 1)[-1] in {"compile", "partial", "jit", "script"}):
            self.ff.call_aliases[s.targets[0].id] = s.value.args[0].id
        lab = self.labels(s.value)
        if len(s.targets) == 1 and isinstance(s.targets[0], ast.Name):
            flag = _flag_read(s.value)
            if flag:
                self.ff.flag_aliases[s.targets[0].id] = flag
        elts = self.call_elts.get(id(s.value))
        for t in s.targets:
            if (elts is not None and isinstance(t, (ast.Tuple, ast.List)) and len(t.elts) == len(elts)
                    and not any(isinstance(x, ast.Starred) for x in t.elts)):
                for x, xl in zip(t.elts, elts, strict=True):
                    self.assign(x, xl, s.value)
            else:
                self.assign(t, lab, s.value)
        self._note_detached(s.targets, s.value)
        self._note_instance(s.targets, s.value)
        self._note_optimizer(s, s.targets, s.value)
        t0 = s.targets[0]
        if len(s.targets) == 1 and isinstance(t0, ast.Subscript) and self.grad_off and lab and _is_loss_call(s.value):
            # `chunk_nll[ci] = F.cross_entropy(...)` under no_grad: a per-chunk score, stored
            self.add_site("accum", s, name=dotted(t0.value) or "", labels=lab, mentions=names_in(s.value))
        if len(s.targets) == 1 and isinstance(t0, ast.Name):
            (self.views.add if _view_of_variable(s.value) else self.views.discard)(t0.id)
        if len(s.targets) == 1 and isinstance(t0, ast.Name):
            if _zero_init(s.value):
                self.zero_inits.add(t0.id)
            elif (isinstance(s.value, ast.BinOp) and isinstance(s.value.op, ast.Add)
                    and isinstance(s.value.left, ast.Name) and s.value.left.id == t0.id
                    and t0.id in self.zero_inits):
                # `loss_sum = 0.0` ... `loss_sum = loss_sum + nll.sum()` is `loss_sum += ...`
                # (not `x = x + block(x)`: a residual stream does not start from zero)
                added = self.labels(s.value.right)
                if added:
                    self.add_site("accum", s, name=t0.id, labels=added, mentions=names_in(s.value.right))
            else:
                self.zero_inits.discard(t0.id)

    def _s_AnnAssign(self, s: ast.AnnAssign) -> None:
        if s.value is not None:
            lab = self.labels(s.value)
            self.assign(s.target, lab, s.value)
            self._note_detached([s.target], s.value)
            self._note_optimizer(s, [s.target], s.value)

    def _s_AugAssign(self, s: ast.AugAssign) -> None:
        lab = self.labels(s.value)
        base = root_name(s.target)
        if base is None:
            return
        if isinstance(s.target, ast.Name):
            self.env[base] = self.env.get(base, EMPTY) | lab
            self.ff.assign_sources.setdefault(base, set()).update(names_in(s.value))
        else:
            self.weak(base, lab, s.target)
        # `acc[0] += loss` into a caller's accumulator, `nonlocal total; total += loss` into the
        # enclosing function's
        self._accumulated(base, lab)
        if isinstance(s.op, (ast.Add, ast.Sub)) and lab:
            self.add_site("accum", s, name=dotted(s.target) or base, labels=lab, mentions=names_in(s.value))

    def _note_optimizer(self, s: ast.stmt, targets: Sequence[ast.AST], value: ast.AST) -> None:
        if not isinstance(value, ast.Call) or not targets:
            return
        name = dotted(value.func)
        tname = _name_of(targets[0])
        if tname is None:
            return
        if N.OPTIMIZER_CTOR.search(name) and not N.SCHEDULER_NAME.search(name):
            params = value.args[0] if value.args else next(
                (k.value for k in value.keywords if k.arg in {"params", "param_groups"}), None)
            self.add_site("optim", value, name=tname, mentions=names_in(params),
                          labels=EMPTY)
        if _creates_fresh_param(value):
            self.add_site("fresh_param", value, name=tname)
        elif TENSOR_FACTORY.search(name):
            self.factory_names.add(tname)
        inner = value
        while isinstance(inner.func, ast.Attribute) and isinstance(inner.func.value, ast.Call):
            inner = inner.func.value  # `Module(...).to(device)`
        ctor = dotted(inner.func)
        if ctor.startswith(("nn.", "torch.nn.")) or ctor in self.classes:
            self.ff.local_modules.add(tname)

    def _s_Return(self, s: ast.Return) -> None:
        if s.value is not None:
            kinds = self._constructed(s.value)
            self.ret_classes = None if (kinds is None or self.ret_classes is None) else self.ret_classes | kinds
        if self.ret_elts is not None:
            v = s.value
            if (isinstance(v, ast.Tuple) and len(v.elts) > 1 and not any(isinstance(x, ast.Starred) for x in v.elts)
                    and (not self.ret_elts or len(self.ret_elts) == len(v.elts))):
                got = [self.labels(x) for x in v.elts]
                self.ret_elts = got if not self.ret_elts else [a | b for a, b in zip(self.ret_elts, got, strict=True)]
            elif v is not None:  # a bare `return` (early exit) does not break the pattern
                self.ret_elts = None
        lab = self.labels(s.value)
        self.returns |= lab
        self.ff.return_names |= names_in(s.value)
        self.add_site("return", s, labels=lab, mentions=names_in(s.value))

    def _s_Delete(self, s: ast.Delete) -> None:
        for t in s.targets:
            for n in names_in(t):
                self.ff.deleted.add(n)

    def _s_For(self, s: ast.For | ast.AsyncFor) -> None:
        it = self.labels(s.iter)
        loop = Loop(id(s), s.lineno, names_in(s.iter) | names_in(s.target), names_in(s.target),
                    f"for {ast.unparse(s.target)} in {ast.unparse(s.iter)}"[:120], s)
        self.loops.append(loop)
        for _ in range(self._passes()):
            self.assign(s.target, it, s.iter)
            self.block(s.body)
        self.loops.pop()
        self.block(s.orelse)

    _s_AsyncFor = _s_For

    def _passes(self) -> int:
        """Walk a loop body twice so loop-carried values are seen; nested loops are already
        walked twice by their outermost loop (walking each level twice would be exponential)."""
        return 2 if len(self.loops) == 1 else 1

    def _s_While(self, s: ast.While) -> None:
        loop = Loop(id(s), s.lineno, names_in(s.test), frozenset(), f"while {ast.unparse(s.test)}"[:120], s)
        self.loops.append(loop)
        for _ in range(self._passes()):
            self.labels(s.test)
            self.block(s.body)
        self.loops.pop()
        self.block(s.orelse)

    def _s_If(self, s: ast.If) -> None:
        self.labels(s.test)
        before = dict(self.env)
        self.guards.append(names_in(s.test))
        self.guard_tests.append((s.test, False))
        self.block(s.body)
        after_body = self.env
        self.env = before
        self.guards[-1] = frozenset({"<else>"}) | names_in(s.test)
        self.guard_tests[-1] = (s.test, True)
        self.block(s.orelse)
        self.guards.pop()
        self.guard_tests.pop()
        for k, v in after_body.items():
            self.env[k] = self.env.get(k, EMPTY) | v

    def _s_With(self, s: ast.With | ast.AsyncWith) -> None:
        prev = self.grad_off
        for item in s.items:
            lab = self.labels(item.context_expr)
            if is_grad_off_ctx(item.context_expr):
                self.grad_off = True
            elif _is_grad_on_ctx(item.context_expr):
                self.grad_off = False
            if item.optional_vars is not None:
                self.assign(item.optional_vars, lab, item.context_expr)
        self.block(s.body)
        self.grad_off = prev

    _s_AsyncWith = _s_With

    def _s_Try(self, s: ast.Try) -> None:
        self.block(s.body)
        for h in s.handlers:
            self.block(h.body)
        self.block(s.orelse)
        self.block(s.finalbody)

    _s_TryStar = _s_Try

    def _s_Expr(self, s: ast.Expr) -> None:
        self.labels(s.value)

    def _s_Global(self, s: ast.stmt) -> None:
        return None

    _s_Nonlocal = _s_Global
    _s_Import = _s_Global
    _s_ImportFrom = _s_Global
    _s_Pass = _s_Global


def _flag_read(v: ast.AST) -> str | None:
    """`args.slot_enabled`, `getattr(args, "slot_enabled", False)`, `bool(h.ttt_enabled)`."""
    if isinstance(v, ast.Call) and isinstance(v.func, ast.Name) and v.func.id in {"bool", "int"} and v.args:
        v = v.args[0]
    if isinstance(v, ast.Attribute):
        return v.attr
    if (isinstance(v, ast.Call) and isinstance(v.func, ast.Name) and v.func.id == "getattr" and len(v.args) >= 2
            and isinstance(v.args[1], ast.Constant) and isinstance(v.args[1].value, str)):
        return v.args[1].value
    return None


def _value_of(stmt: ast.stmt) -> ast.AST | None:
    return getattr(stmt, "value", None)


def _name_of(t: ast.AST) -> str | None:
    if isinstance(t, ast.Name):
        return t.id
    if isinstance(t, ast.Attribute):
        return dotted(t)
    return None


def _first_target_name(stmt: ast.Assign | ast.AnnAssign) -> str | None:
    t = stmt.targets[0] if isinstance(stmt, ast.Assign) else stmt.target
    if isinstance(t, (ast.Tuple, ast.List)) and t.elts:
        t = t.elts[0]
    return _name_of(t)


# Attributes that hold a file name or pattern (`h.ttt_files = h.val_files if ... else ...`): a
# config object holding one is not itself validation data; reading the attribute is.
PATH_ATTR = re.compile(r"(?:^|_)(?:files?|paths?|pattern|glob|dir|prefix)$")

TENSOR_FACTORY = re.compile(r"(?:^|\.)(?:zeros|ones|empty|full|randn|rand|zeros_like|ones_like|empty_like|"
                            r"full_like|randn_like|clone|detach|tensor)$")


VIEW_METHODS = frozenset({"to", "reshape", "view", "contiguous", "long", "int", "cuda", "cpu", "flatten",
                          "unsqueeze", "squeeze", "clone", "detach", "narrow", "expand", "pin_memory"})


def _view_of_variable(v: ast.AST) -> bool:
    """`chunk[a:b]`, `local[:-1].reshape(-1, n)`, `toks.to(device)`: the same data under a new name."""
    sliced = False
    while True:
        if isinstance(v, ast.Subscript):
            sliced = True
            v = v.value
        elif (isinstance(v, ast.Call) and isinstance(v.func, ast.Attribute)
              and v.func.attr in VIEW_METHODS):
            v = v.func.value
        else:
            break
    return isinstance(v, ast.Name) and (sliced or v is not None)


def _zero_init(v: ast.AST) -> bool:
    """`0`, `0.0`, `torch.zeros(())`, `torch.tensor(0.0)`: how an accumulator starts."""
    if isinstance(v, ast.Constant):
        return isinstance(v.value, (int, float)) and not isinstance(v.value, bool) and v.value == 0
    if isinstance(v, ast.Call):
        name = dotted(v.func).rsplit(".", 1)[-1]
        if name in {"zeros", "zeros_like"}:
            return True
        if name == "tensor" and v.args and isinstance(v.args[0], ast.Constant):
            return v.args[0].value == 0
    return False


def _creates_fresh_param(call: ast.Call) -> bool:
    """`torch.zeros(..., requires_grad=True)` or `nn.Parameter(...)`: a new trainable tensor."""
    if dotted(call.func).endswith("Parameter"):
        return True
    for k in call.keywords:
        if k.arg == "requires_grad" and not (isinstance(k.value, ast.Constant) and not k.value.value):
            return True
    if isinstance(call.func, ast.Attribute) and call.func.attr == "requires_grad_":
        return True
    return False


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


def walk_function(ff: FunctionFacts, body: list[ast.stmt], resolve: ReturnSummary,
                  fields: Mapping[str, Labels], outer_env: Mapping[str, Labels],
                  nested_env: dict[str, dict[str, Labels]], classes: frozenset[str] = frozenset(),
                  path_fields: Mapping[str, Labels] | None = None) -> None:
    """(Re)compute `ff.sites`, `ff.returns` and friends."""
    ff.return_names = set()
    ff.acc_params = {}
    ff.free_accs = {}
    ff.method_accs = {}
    ff.instance_types = {}
    ff.param_writes = {}
    ff.field_writes = {}
    ff.assign_sources = {}
    ff.deleted = set()
    ff.local_modules = set()
    ff.flag_aliases = {}
    ff.call_aliases = {}
    env: dict[str, Labels] = dict(outer_env)
    for p in [*ff.params, ff.vararg, ff.kwarg]:
        if p:
            env[p] = frozenset({N.PARAM + p})
    w = _Walker(ff, env, resolve, fields, nested_env)
    w.classes = classes
    w.path_fields = path_fields or {}
    if ff.parent is not None and not ff.parent.endswith("<module>"):
        w.free = _enclosing_names(ff, body)
    w.block(body)
    for q in w.nested_defs:
        seen = nested_env[q]
        for k, v in w.env.items():
            seen[k] = seen.get(k, EMPTY) | v
    ff.sites = sorted(w.sites.values(), key=lambda s: (s.order, s.line, s.kind))
    ff.returns = frozenset(w.returns)
    ff.return_elts = tuple(w.ret_elts) if w.ret_elts else None
    ff.returns_classes = w.ret_classes or frozenset()
    valued = [s for s in ff.sites if s.kind == "return" and isinstance(s.node, ast.Return) and s.node.value is not None]
    ff.returns_detached = bool(valued) and all(s.grad_off for s in valued)
    ff.reported_names = _reported_names(ff)


def is_accumulator_method(ff: FunctionFacts) -> bool:
    """`def add(self, nll): self.sums[0] += nll.sum()`: a method that returns nothing and sums its
    arguments into its object. A model's `forward` that also tallies statistics on `self` returns
    its output, so calling it is not keeping a score."""
    return (ff.is_method and ff.params[0] in ff.acc_params and not ff.return_names
            and not any(s.kind == "return" and isinstance(s.node, ast.Return) and s.node.value is not None
                        for s in ff.sites))


def _enclosing_names(ff: FunctionFacts, body: list[ast.stmt]) -> frozenset[str]:
    """Names a nested function uses but does not bind (or declares `nonlocal`): they live in
    the enclosing function, so writes into them are the enclosing function's."""
    bound = {p for p in (*ff.params, ff.vararg, ff.kwarg) if p}
    used: set[str] = set()
    nonlocal_: set[str] = set()
    todo: list[ast.AST] = list(body)
    while todo:
        n = todo.pop()
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            if not isinstance(n, ast.Lambda):
                bound.add(n.name)
            continue  # their own scope
        if isinstance(n, ast.Nonlocal):
            nonlocal_.update(n.names)
        elif isinstance(n, ast.Global):
            bound.update(n.names)
        elif isinstance(n, ast.Name):
            (bound if isinstance(n.ctx, (ast.Store, ast.Del)) else used).add(n.id)
        elif isinstance(n, ast.alias):
            bound.add((n.asname or n.name).split(".", 1)[0])
        elif isinstance(n, ast.ExceptHandler) and n.name:
            bound.add(n.name)
        todo.extend(ast.iter_child_nodes(n))
    return frozenset((used - bound) | nonlocal_)


def _reported_names(ff: FunctionFacts) -> set[str]:
    """Names whose value reaches a `return` or a logging call (backward closure over assignments)."""
    seeds = set(ff.return_names)
    for s in ff.sites:
        if s.kind == "call" and N.LOG_CALLS.search(s.name.rsplit(".", 1)[-1]) and s.node is not None:
            seeds |= names_in(s.node)
    out = set()
    todo = list(seeds)
    while todo:
        n = todo.pop()
        if n in out:
            continue
        out.add(n)
        todo.extend(ff.assign_sources.get(n, ()))
    return out


def _is_loss_call(v: ast.AST) -> bool:
    """A loss computed directly (`F.cross_entropy(...)`, `.sum()` of one): what a stored score is."""
    for n in ast.walk(v):
        if isinstance(n, ast.Call) and re.search(r"cross_entropy|nll_loss", dotted(n.func)):
            return True
    return False
