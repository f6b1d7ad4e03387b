"""What a call does, seen from the caller: its value, and its effects on the caller's names.

A user function's return labels come from its summary, bound to this call's arguments; a
callee that writes into a parameter (`fill(buf, val_tokens)`), sums into it (`acc[0] += nll`),
or, as a closure, into the enclosing function's names, writes into the caller's argument.
`add_site` records every place the rules ask about, once per node (a second walk of a loop body
widens the labels).
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence

from audit.analysis import names as N
from audit.analysis.facts import (
    EMPTY,
    FunctionFacts,
    Labels,
    Site,
    bind_args,
    is_accumulator_method,
    substitute,
)
from audit.analysis.provenance import Provenance
from audit.analysis.syntax import dotted, names_in, root_name, walk


class CallEffects(Provenance):
    """Calls and the sites they make; see the module docstring."""

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
            for n in walk(t):
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
