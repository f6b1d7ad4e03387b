"""Targets versus inputs: which tensors are the tokens being predicted, and where they flow.

Why: the evaluation-legality rules (C1/C2, R-NGRAM-CACHE) turn on one question: does the
realized next token `y` reach something that produces the score for its own position (a hash
key looked up in a count table, a gate) — or only the inputs `x`? A bigram hash over input ids
`(x[t-1], x[t])` is legal; the same arithmetic with `y` in the key of a cache lookup is not.

The analysis is a flow-insensitive, name-level taint over each function, bound across calls by
parameter position/keyword. Target sources:
  * shift pairs: `x = B[..., :-1]` and `y = B[..., 1:]` (or `B[a:b]` / `B[a+1:b+1]`) assigned to
    two different variables: the tail slice is the target;
  * uses as a target: the second argument of `cross_entropy`/`nll_loss`, the index of a byte
    lookup table (`base_bytes_lut[y]`);
  * conventional names (`y`, `tgt`, `targets`, `target_ids`, `labels`, ...);
  * n-gram position arithmetic: `A[p]` where the same function also reads `A[p - k]` (context
    tokens before p), so `A[p]` is the token that completes the n-gram; `A[p + 1]`, also as one
    element of a tuple assignment;
  * the index that reads the scored entry out of a softmax/log_softmax (`logp.gather(-1, t)`,
    `lp[rows, t]`, `-row[t]`), where the sources above found nothing.
Candidates (`arange`, `range`, `argmax`, `topk`, hint ids) never become targets, nor do names
that describe targets without holding their ids (`target_pos`, `target_mask`, `y_len`).
Propagation keeps tuple elements apart where the shape is known (`a, b = x, y`; `zip`;
`enumerate`; `for p, t in rows` when every `rows.append` stores a tuple of that width), and a
value read from another array at a target index (`counts = T[hash(ctx, y)]`) is not itself a
target: masks built from such counts must not turn later context-only keys into target keys.

Modules: code_functions.py (the functions and their facts), target_sources.py (where targets
come from), this one (propagation across assignments and calls, evidence chains).

API (memoised per submission):
    flow = target_flow(ctx)                 # TargetFlow over all parseable code units
    flow.functions                          # Function: .qualname, .assigns, .calls, .subscripts, ...
    flow.is_target(fn, "y_np")              # is this name in fn target-derived?
    flow.chain(fn, "y_np")                  # [Evidence(label, path, line, excerpt)], source first
    functions_of(flow, path)                # the functions of one code unit
AST helpers (`names_in`, `walk_nodes`, `base_of`, ...) live in syntax.py.
"""

from __future__ import annotations

import ast

from audit.analysis.code_functions import Assignment, Function, collect_functions
from audit.analysis.eval_code import CodeUnit
from audit.analysis.syntax import assigned_names, base_of, call_name, child_nodes, dotted, names_in
from audit.analysis.target_sources import candidates, distribution_reads, named_sources, structural_sources
from audit.findings import Evidence


class TargetFlow:
    """Target taint over all code units of a submission, bound across calls."""

    def __init__(self, units: list[CodeUnit]):
        self.functions: list[Function] = [f for u in units for f in collect_functions(u)]
        self.by_name: dict[str, list[Function]] = {}
        for f in self.functions:
            self.by_name.setdefault(f.name, []).append(f)
        # why each (function, name) is target-derived, and the (function, name) it came from
        self.tainted: dict[tuple[str, str], Evidence] = {}
        self.came_from: dict[tuple[str, str], tuple[str, str] | None] = {}
        self.candidates: set[tuple[str, str]] = set()
        self._tainted_fns: set[str] = set()
        self._tainted_fns_changed: set[str] = set()
        self._by_key: dict[str, list[Function]] = {}
        self.target_nodes: dict[int, str] = {}  # id(subscript) -> its text, for inline targets
        for f in self.functions:
            self._by_key.setdefault(self.key(f, "")[0], []).append(f)
        for f in self.functions:
            candidates(self, f)
            structural_sources(self, f)
        self._propagate()
        for f in self.functions:  # the scored entry of a distribution, where the above found nothing
            distribution_reads(self, f)
        self._propagate()
        for f in self.functions:  # conventional names only where dataflow found nothing
            named_sources(self, f)
        self._propagate()

    # -- sources ------------------------------------------------------------------------
    def key(self, fn: Function, name: str) -> tuple[str, str]:
        return (f"{fn.path}::{fn.qualname}", name)

    def is_target(self, fn: Function, name: str) -> bool:
        return self.key(fn, name) in self.tainted

    def mark(self, fn: Function, name: str, line: int, label: str, parent: tuple[str, str] | None = None) -> bool:
        k = self.key(fn, name)
        if k in self.tainted or k in self.candidates:
            return False
        self.tainted[k] = fn.evidence(line, label)
        self.came_from[k] = parent
        self._tainted_fns.add(k[0])
        self._tainted_fns_changed.add(k[0])
        return True

    # -- propagation --------------------------------------------------------------------
    def _propagate(self) -> None:
        """Worklist: a function is revisited only when one of its names became target-derived."""
        queue = [f for f in self.functions if self.key(f, "")[0] in self._tainted_fns]
        queued = {id(f) for f in queue}
        rounds = 0
        while queue and rounds < 20 * max(len(self.functions), 1):
            rounds += 1
            fn = queue.pop()
            queued.discard(id(fn))
            before = set(self._tainted_fns_changed)
            self._local(fn)
            self._calls(fn)
            for fkey in self._tainted_fns_changed - before:
                for g in self._by_key.get(fkey, []):
                    if id(g) not in queued:
                        queue.append(g)
                        queued.add(id(g))
            self._tainted_fns_changed.clear()

    def _local(self, fn: Function) -> bool:
        changed = False
        for _ in range(8):
            step = False
            for a in fn.assigns:
                if a.unpacks and not isinstance(a.value, (ast.Tuple, ast.List)):
                    continue  # `a, b = rows[i]`: which element is which is unknown; do not smear
                for names, values in self._element_flows(fn, a):
                    src = next((n for v in values for n in sorted(self._carried(fn, v)) if self.is_target(fn, n)), None)
                    if src is None:
                        continue
                    for n in names:
                        if n != src and self.mark(fn, n, a.line, f"`{n}` derives from `{src}`", self.key(fn, src)):
                            step = True
            changed |= step
            if not step:
                break
        return changed

    def _carried(self, fn: Function, value: ast.expr) -> set[str]:
        """Names whose values an expression passes on. An index into another array is not one:
        `counts = table[hash(ctx, y)]` holds counts, not token ids (a mask built from them says
        which positions matched, and must not turn later context-only keys into target keys)."""
        out: set[str] = set()
        stack: list[ast.AST] = [value]
        while stack:
            n = stack.pop()
            if isinstance(n, ast.Subscript):
                stack.append(n.value)
                b = base_of(n.value)
                if b is None or self.is_target(fn, b):
                    stack.append(n.slice)
            elif isinstance(n, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp, ast.Lambda)):
                out.update(names_in(n, variables=True))
            elif isinstance(n, ast.Name):
                out.add(n.id)
            elif isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in ("self", "cls"):
                out.add(f"{n.value.id}.{n.attr}")
            else:
                stack.extend(child_nodes(n))
        return out

    def _element_flows(self, fn: Function, a: Assignment) -> list[tuple[list[str], list[ast.expr]]]:
        """Which assigned names read which value expressions, element by element where the
        shapes are known: `a, b = x, y`; `for i, r in enumerate(rows)`; `for p, t in zip(P, T)`;
        `for (p, t) in segs` where every `segs.append(...)` stores a tuple of that length.
        Otherwise every name reads the whole value (the flow-insensitive default)."""
        node = a.node
        target: ast.expr | None = None
        if isinstance(node, (ast.For, ast.AsyncFor)):
            target = node.target
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
        if target is None or not isinstance(target, (ast.Tuple, ast.List)):
            return [(a.names, [a.value])]
        per = self._split(fn, target, a.value, isinstance(node, (ast.For, ast.AsyncFor)))
        return per if per is not None else [(a.names, [a.value])]

    def _split(self, fn: Function, target: ast.expr, value: ast.expr,
               iterates: bool) -> list[tuple[list[str], list[ast.expr]]] | None:
        if not isinstance(target, (ast.Tuple, ast.List)):
            return [(assigned_names(target), [value])]
        elts = target.elts
        if any(isinstance(e, ast.Starred) for e in elts):
            return None
        columns: list[list[ast.expr]] | None = None
        if not iterates and isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == len(elts):
            columns = [[v] for v in value.elts]
        elif iterates and isinstance(value, ast.Call) and call_name(value) == "enumerate" \
                and isinstance(value.func, ast.Name) and len(elts) == 2 and value.args:
            rest = self._split(fn, elts[1], value.args[0], True)
            return None if rest is None else rest  # the index is a counter, never a token
        elif iterates and isinstance(value, ast.Call) and call_name(value) == "zip" \
                and isinstance(value.func, ast.Name) and len(value.args) == len(elts) \
                and not any(isinstance(x, ast.Starred) for x in value.args):
            out: list[tuple[list[str], list[ast.expr]]] = []
            for e, arg in zip(elts, value.args):
                sub = self._split(fn, e, arg, True)
                if sub is None:
                    return None
                out += sub
            return out
        elif iterates:
            columns = _appended_columns(fn, value, len(elts))
        if columns is None:
            return None
        return [(assigned_names(e), col) for e, col in zip(elts, columns)]

    def _calls(self, fn: Function) -> bool:
        changed = False
        for call in fn.calls:
            callees = self.by_name.get(call_name(call), [])
            if not callees:
                continue
            for callee in callees:
                params = list(callee.params)
                if params and params[0] in ("self", "cls") and isinstance(call.func, ast.Attribute):
                    params = params[1:]
                pairs = list(zip(params, call.args))
                pairs += [(kw.arg, kw.value) for kw in call.keywords if kw.arg in callee.params]
                for pname, arg in pairs:
                    if isinstance(arg, ast.Starred):
                        break
                    src = next((n for n in sorted(names_in(arg, variables=True)) if self.is_target(fn, n)), None)
                    if src is not None and self.mark(
                        callee, pname, call.lineno,
                        f"`{src}` is passed as `{pname}` to `{callee.qualname}`", self.key(fn, src),
                    ):
                        changed = True
        return changed

    # -- evidence -----------------------------------------------------------------------
    def chain(self, fn: Function, name: str, limit: int = 6) -> list[Evidence]:
        """Why the variable is target-derived: each copy back to its source, source first."""
        out: list[Evidence] = []
        k: tuple[str, str] | None = self.key(fn, name)
        seen = set()
        while k is not None and k in self.tainted and k not in seen and len(out) < 32:
            seen.add(k)
            out.append(self.tainted[k])
            k = self.came_from[k]
        out.reverse()
        if len(out) > limit:
            out = out[:2] + out[-(limit - 2):]
        return out


def _appended_columns(fn: Function, container: ast.expr, width: int) -> list[list[ast.expr]] | None:
    """For `for (a, b) in rows`: the k-th element of every tuple appended to `rows` in this
    function, when all appends are tuples of `width` (else None: the shape is unknown)."""
    name = (dotted(container, variable=True) or None) if isinstance(container, (ast.Name, ast.Attribute)) else None
    if name is None:
        return None
    columns: list[list[ast.expr]] = [[] for _ in range(width)]
    seen = False
    for a in fn.assigns:
        if a.names != [name] or isinstance(a.node, (ast.For, ast.AsyncFor)):
            continue
        call = a.node.value if isinstance(a.node, ast.Expr) else None
        if not (isinstance(call, ast.Call) and call_name(call) == "append"):
            if _is_empty_init(a.value):
                continue  # `rows = []`, `rows = [] if keep else None`
            return None
        item = call.args[0]
        if not isinstance(item, ast.Tuple) or len(item.elts) != width \
                or any(isinstance(e, ast.Starred) for e in item.elts):
            return None
        for k, e in enumerate(item.elts):
            columns[k].append(e)
        seen = True
    return columns if seen else None


def _is_empty_init(v: ast.expr) -> bool:
    if isinstance(v, ast.IfExp):
        return _is_empty_init(v.body) and _is_empty_init(v.orelse)
    if isinstance(v, ast.Constant):
        return v.value is None
    if isinstance(v, (ast.List, ast.Tuple)):
        return not v.elts
    return isinstance(v, ast.Call) and call_name(v) in ("list", "deque") and not v.args


def target_flow(ctx, units: list[CodeUnit] | None = None) -> TargetFlow:  # type: ignore[no-untyped-def]
    """The submission's target flow over all parseable code units, computed once."""
    from audit.analysis.eval_code import code_units

    def build() -> TargetFlow:
        chosen = units if units is not None else [u for u in code_units(ctx) if u.parsed.tree is not None]
        return TargetFlow(chosen)
    return ctx.memo("analysis.target_flow", build)


def functions_of(flow: TargetFlow, path: str) -> list[Function]:
    return [f for f in flow.functions if f.path == path]
