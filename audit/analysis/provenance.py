"""Val-data provenance: the labels of an expression (where its value comes from), and assignment.

A value carries `VAL`, `TRAIN` or `P:<param>` labels (see facts.py). Names and attributes say
which split they hold unless the data flow already says otherwise; a comparison yields a
decision, not data; an assignment replaces a name's labels, a write into a container adds to
them. `Provenance` also holds the walker's state, so the layers above it (`call_effects`,
`grad_context`) share one set of fields.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping

from audit.analysis import names as N
from audit.analysis.facts import EMPTY, FunctionFacts, Labels, Loop, ReturnSummary, Site
from audit.analysis.names import PATH_ATTR
from audit.analysis.syntax import child_nodes, names_in, root_name


class Provenance:
    """The walker's state and the labels of expressions; see the module docstring."""

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
        for child in child_nodes(e):
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
