"""Statements in order: loops, branches, gradient and optimizer contexts, returns.

Each statement is walked in source order with the enclosing loops, `if` guards and whether
gradients are off (`no_grad`/`inference_mode`, a decorator, `enable_grad` turning them back on).
Loop bodies are walked twice (outermost loop only) so values carried round a loop are seen.
Assignments note optimizer constructions, fresh trainable tensors (`requires_grad=True`,
`nn.Parameter`), modules built here, `+=` accumulations and `s = s + x` on a zero-initialised `s`.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Sequence

from audit.analysis import names as N
from audit.analysis.call_effects import CallEffects, _name_of
from audit.analysis.facts import EMPTY, Loop
from audit.analysis.syntax import child_nodes, dotted, names_in, root_name, unparsed, walk


def is_grad_off_ctx(expr: ast.AST) -> bool:
    d = dotted(expr.func if isinstance(expr, ast.Call) else expr)
    return d.endswith(("no_grad", "inference_mode"))


def _is_grad_on_ctx(expr: ast.AST) -> bool:
    d = dotted(expr.func if isinstance(expr, ast.Call) else expr)
    return d.endswith("enable_grad")


class Walker(CallEffects):
    """Walks one function body, statement by statement; see the module docstring."""

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
                for child in child_nodes(s):
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
                    f"for {unparsed(s.target)} in {unparsed(s.iter)}"[:120], s)
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
        loop = Loop(id(s), s.lineno, names_in(s.test), frozenset(), f"while {unparsed(s.test)}"[:120], s)
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


def _is_loss_call(v: ast.AST) -> bool:
    """A loss computed directly (`F.cross_entropy(...)`, `.sum()` of one): what a stored score is."""
    for n in walk(v):
        if isinstance(n, ast.Call) and re.search(r"cross_entropy|nll_loss", dotted(n.func)):
            return True
    return False
