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
    tokens before p), so `A[p]` is the token that completes the n-gram.
Candidates (`arange`, `range`, `argmax`, `topk`, hint ids) never become targets, nor do names
that describe targets without holding their ids (`target_pos`, `target_mask`, `y_len`).
Propagation keeps tuple elements apart where the shape is known (`a, b = x, y`; `zip`;
`enumerate`; `for p, t in rows` when every `rows.append` stores a tuple of that width), and a
value read from another array at a target index (`counts = T[hash(ctx, y)]`) is not itself a
target: masks built from such counts must not turn later context-only keys into target keys.

API (memoised per submission):
    flow = target_flow(ctx)                 # TargetFlow over all parseable code units
    flow.functions                          # Function: .qualname, .assigns, .calls, .subscripts, ...
    flow.is_target(fn, "y_np")              # is this name in fn target-derived?
    flow.chain(fn, "y_np")                  # [Evidence(label, path, line, excerpt)], source first
    functions_of(flow, path), names_in(node, variables=True), walk_nodes(node), base_of(expr), strip_chain(expr)
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from audit.analysis.eval_code import CodeUnit
from audit.analysis.syntax import (
    CHAIN_METHODS as _CHAIN_METHODS,
)
from audit.analysis.syntax import (
    assigned_names,
    base_of,
    call_name,
    dotted,
    names_in,
    own_nodes,
    strip_chain,
    too_deep,
    walk_nodes,
)
from audit.findings import Evidence

# -- vocabulary ----------------------------------------------------------------------------

# Names that *describe* targets without holding their ids: positions, masks, lengths, losses.
_TARGET_META_SUFFIX = (
    r"(?!.*_(pos|poss|position|positions|idx|indices|index|len|lens|length|lengths|mask|masks|"
    r"start|end|offset|offsets|size|shape|dtype|device|count|counts|bytes|loss|nll|bpb|prob|probs|"
    r"logp|logits|p)$)"
)
TARGET_NAME = re.compile(
    _TARGET_META_SUFFIX +
    r"(^(y|ys|yb|y_?batch|y_np|y_flat|y_t|y_all|tgt|tgts|target|targets|target_ids|target_tokens|"
    r"tgt_ids|labels?|gold|gold_ids|next_tokens?|next_ids)(_[a-z0-9]+)*$"
    r"|^(?!(is|has|n|num|max|min|use|no)_)[a-z0-9]+_(tgt|tgts|targets|target_ids|labels|gold)(_[a-z0-9]+)*$)"
)
CANDIDATE_NAME = re.compile(r"(hint|cand|pred|guess|argmax|top)", re.I)
_CANDIDATE_CALLS = {"arange", "range", "argmax", "topk", "argsort", "multinomial", "sort", "max_indices"}
HASH_OPS = (ast.BitXor, ast.Mod, ast.BitAnd, ast.LShift, ast.RShift, ast.Mult, ast.Add, ast.BitOr)
LOG_CALLS = {"log", "log1p", "log2", "log10", "log_"}


def _is_neg_one(node: ast.expr | None) -> bool:
    return (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub)
            and isinstance(node.operand, ast.Constant) and node.operand.value == 1)


def _is_const(node: ast.expr | None, value: int) -> bool:
    return isinstance(node, ast.Constant) and node.value == value and not isinstance(node.value, bool)


def _plus_one(node: ast.expr | None) -> str | None:
    """dump of `a` when node is `a + 1`."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add) and _is_const(node.right, 1):
        return ast.dump(node.left)
    return None


def _last_slice(sub: ast.Subscript) -> ast.expr:
    s = sub.slice
    if isinstance(s, ast.Tuple) and s.elts:
        return s.elts[-1]
    return s


# -- facts ---------------------------------------------------------------------------------

@dataclass
class Assignment:
    names: list[str]
    value: ast.expr
    line: int
    node: ast.stmt

    @property
    def unpacks(self) -> bool:
        """A tuple target (`a, b = ...`), not counting `for` loops over a sequence."""
        return len(self.names) > 1 and not isinstance(self.node, (ast.For, ast.AsyncFor))


@dataclass
class Function:
    """One function (or the module body) with the facts the taint needs."""

    unit: CodeUnit
    qualname: str
    name: str
    node: ast.AST
    params: list[str]
    assigns: list[Assignment] = field(default_factory=list)
    calls: list[ast.Call] = field(default_factory=list)
    subscripts: list[ast.Subscript] = field(default_factory=list)
    returns: list[ast.Return] = field(default_factory=list)
    augassigns: list[ast.AugAssign] = field(default_factory=list)
    imports: list[ast.Import | ast.ImportFrom] = field(default_factory=list)
    parent_of: dict[int, ast.AST] = field(default_factory=dict)
    too_deep: bool = False  # nested deeper than `syntax.MAX_NESTING`: left without facts

    @property
    def path(self) -> str:
        return self.unit.path

    def text(self, line: int | None) -> str:
        return self.unit.parsed.line_text(line)

    def evidence(self, line: int, label: str) -> Evidence:
        """The evidence record for a line of this function, as findings show it (lines of a
        decoded wrapper are marked, the excerpt is cut to 200 characters)."""
        if self.unit.decoded_from is not None:
            label = f"{label} [decoded wrapper text]"
        return Evidence(label, self.path, line, self.text(line)[:200] or None)


def collect_functions(unit: CodeUnit) -> list[Function]:
    tree = unit.parsed.tree
    if tree is None:
        return []
    out: list[Function] = []

    def visit(body: list[ast.stmt], prefix: str) -> None:
        for child in body:
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = child.args
                params = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
                out.append(_fill(Function(unit, prefix + child.name, child.name, child, params)))
                visit(child.body, prefix + child.name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child.body, prefix + child.name + ".")
            else:
                for field in ("body", "orelse", "finalbody", "handlers", "cases"):
                    inner = getattr(child, field, None)
                    if isinstance(inner, list):
                        visit([x for x in inner if isinstance(x, ast.stmt)]
                              + [s for h in inner if isinstance(h, (ast.ExceptHandler, ast.match_case))
                                 for s in h.body], prefix)

    out.append(_fill(Function(unit, "<module>", "<module>", tree, [])))
    visit(tree.body, "")
    return out


def _fill(fn: Function) -> Function:
    if too_deep(fn.node):
        fn.too_deep = True  # no facts: recorded by `unanalysed_sources`, never walked
        return fn
    for node, parent in own_nodes(fn.node):
        fn.parent_of[id(node)] = parent
        if isinstance(node, ast.Assign):
            names = [n for t in node.targets for n in assigned_names(t)]
            fn.assigns.append(Assignment(names, node.value, node.lineno, node))
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            fn.assigns.append(Assignment(assigned_names(node.target), node.value, node.lineno, node))
        elif isinstance(node, ast.AugAssign):
            fn.augassigns.append(node)
            fn.assigns.append(Assignment(assigned_names(node.target), node.value, node.lineno, node))
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            fn.assigns.append(Assignment(assigned_names(node.target), node.iter, node.lineno, node))
        elif isinstance(node, ast.NamedExpr):
            fn.assigns.append(Assignment(assigned_names(node.target), node.value, node.lineno, node))  # type: ignore[arg-type]
        elif isinstance(node, ast.withitem) and node.optional_vars is not None:
            fn.assigns.append(Assignment(assigned_names(node.optional_vars), node.context_expr,
                                         node.context_expr.lineno, node))  # type: ignore[arg-type]
        elif isinstance(node, ast.Call):
            fn.calls.append(node)
            # `rows.append((k, v))` stores into `rows` as far as the taint is concerned
            if isinstance(node.func, ast.Attribute) and node.func.attr in ("append", "extend", "add") and node.args:
                base = base_of(node.func.value)
                # `self.history.append(y)` is state that later serves as *context*: not a target copy
                if base and not base.startswith(("self.", "cls.")):
                    fn.assigns.append(Assignment([base], node.args[0], node.lineno, ast.Expr(node)))
        elif isinstance(node, ast.Subscript):
            fn.subscripts.append(node)
        elif isinstance(node, ast.Return):
            fn.returns.append(node)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            fn.imports.append(node)
    fn.assigns.sort(key=lambda a: a.line)
    fn.calls.sort(key=lambda c: c.lineno)
    fn.subscripts.sort(key=lambda c: c.lineno)
    return fn


def is_candidate_expr(node: ast.expr) -> bool:
    """Vocabulary enumerations and model-proposed tokens: never the realized target."""
    for n in walk_nodes(node):
        if isinstance(n, ast.Call) and call_name(n) in _CANDIDATE_CALLS:
            return True
        if isinstance(n, ast.Name) and CANDIDATE_NAME.search(n.id):
            return True
    return False


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
            self._candidates(f)
            self._structural_sources(f)
        self._propagate()
        for f in self.functions:  # conventional names only where dataflow found nothing
            self._named_sources(f)
        self._propagate()

    # -- sources ------------------------------------------------------------------------
    def key(self, fn: Function, name: str) -> tuple[str, str]:
        return (f"{fn.path}::{fn.qualname}", name)

    def is_target(self, fn: Function, name: str) -> bool:
        return self.key(fn, name) in self.tainted

    def _mark(self, fn: Function, name: str, line: int, label: str, parent: tuple[str, str] | None = None) -> bool:
        k = self.key(fn, name)
        if k in self.tainted or k in self.candidates:
            return False
        self.tainted[k] = fn.evidence(line, label)
        self.came_from[k] = parent
        self._tainted_fns.add(k[0])
        self._tainted_fns_changed.add(k[0])
        return True

    def _candidates(self, fn: Function) -> None:
        for a in fn.assigns:
            if is_candidate_expr(a.value):
                for n in a.names:
                    self.candidates.add(self.key(fn, n))
        for n in fn.params:
            if CANDIDATE_NAME.search(n):
                self.candidates.add(self.key(fn, n))

    def _named_sources(self, fn: Function) -> None:
        for p in fn.params:
            if TARGET_NAME.match(p):
                line = getattr(fn.node, "lineno", 1)
                self._mark(fn, p, line, f"parameter `{p}` is named as the target tokens")
        for a in fn.assigns:
            for n in a.names:
                if TARGET_NAME.match(n.split(".")[-1]) and not isinstance(a.node, (ast.For, ast.AsyncFor)):
                    self._mark(fn, n, a.line, f"`{n}` is named as the target tokens")

    def _structural_sources(self, fn: Function) -> None:
        self._shift_pairs(fn)
        for call in fn.calls:
            cname = call_name(call)
            target_arg: ast.expr | None = None
            if cname in ("cross_entropy", "nll_loss"):
                target_arg = call.args[1] if len(call.args) > 1 else None
                for kw in call.keywords:
                    if kw.arg == "target":
                        target_arg = kw.value
            if target_arg is not None:
                b = base_of(target_arg)
                if b:
                    self._mark(fn, b, call.lineno, f"`{b}` is the target argument of `{cname}`")
        for sub in fn.subscripts:
            table = base_of(sub.value) or ""
            if re.search(r"bytes?_lut|leading_space", table) and isinstance(sub.ctx, ast.Load):
                b = base_of(sub.slice) if not isinstance(sub.slice, ast.Tuple) else None
                if b:
                    self._mark(fn, b, sub.lineno, f"`{b}` indexes the byte table `{table}` (bytes of the scored token)")
        self._ngram_positions(fn)
        self._next_position_reads(fn)

    def _shift_pairs(self, fn: Function) -> None:
        heads: dict[str, list[tuple[list[str], int]]] = {}
        tails: dict[str, list[tuple[list[str], int]]] = {}
        for a in fn.assigns:
            v = strip_chain(a.value)
            if not isinstance(v, ast.Subscript) or isinstance(a.node, (ast.For, ast.AsyncFor)):
                continue
            s = _last_slice(v)
            if not isinstance(s, ast.Slice) or s.step is not None:
                continue
            base = ast.dump(v.value)
            if s.lower is None and _is_neg_one(s.upper):
                heads.setdefault(base, []).append((a.names, a.line))
            elif _is_const(s.lower, 1) and s.upper is None:
                tails.setdefault(base, []).append((a.names, a.line))
            else:
                lo, up = _plus_one(s.lower), _plus_one(s.upper)
                if lo is not None and up is not None:
                    tails.setdefault(f"{base}|{lo}|{up}", []).append((a.names, a.line))
                elif s.lower is not None and s.upper is not None:
                    heads.setdefault(f"{base}|{ast.dump(s.lower)}|{ast.dump(s.upper)}", []).append((a.names, a.line))
        mixed = _arithmetic_pairs(fn)
        for base, tail_list in tails.items():
            for head_names, head_line in heads.get(base, []):
                for names, line in tail_list:
                    if set(names) & set(head_names):
                        continue
                    if any((h, t) in mixed or (t, h) in mixed for h in head_names for t in names):
                        continue  # prev/cur combined arithmetically: an n-gram over inputs, not x/y
                    for n in names:
                        self._mark(fn, n, line, f"`{n}` is the input stream shifted by one "
                                               f"(paired with the input slice at line {head_line})")

    def _next_position_reads(self, fn: Function) -> None:
        """`tgt = tokens[p + 1]`: the token one position after p is p's target."""
        for a in fn.assigns:
            v = strip_chain(a.value)
            if isinstance(v, ast.Subscript) and isinstance(v.slice, ast.BinOp) \
                    and isinstance(v.slice.op, ast.Add) and _is_const(v.slice.right, 1) \
                    and isinstance(v.slice.left, (ast.Name, ast.Attribute, ast.Subscript)) \
                    and not isinstance(a.node, (ast.For, ast.AsyncFor)) and not a.unpacks:
                text = ast.unparse(v)
                for n in a.names:
                    self._mark(fn, n, a.line, f"`{n}` = `{text}` is the token one position after the "
                                              "scored position (its target)")

    def _ngram_positions(self, fn: Function) -> None:
        """The n-gram's completing token: `A[p]` (or `A[s:e]`) when the same function reads the
        context before it, `A[p - k]` (or `A[o:o + n]` with `o = s - k`)."""
        roots = _alias_roots(fn)
        before = _offset_starts(fn)  # o -> s for `o = s - ...`
        offsets: dict[str, set[str]] = {}
        for sub in fn.subscripts:
            idx = sub.slice
            base = base_of(sub.value)
            if not base:
                continue
            if isinstance(idx, ast.BinOp) and isinstance(idx.op, (ast.Sub, ast.Add)):
                offsets.setdefault(base, set()).update(roots.get(n, n) for n in names_in(idx, variables=True))
            elif isinstance(idx, ast.Slice) and isinstance(idx.lower, ast.Name) and idx.lower.id in before:
                offsets.setdefault(base, set()).add(roots.get(before[idx.lower.id], before[idx.lower.id]))
            elif isinstance(idx, ast.Slice) and isinstance(idx.lower, ast.BinOp) and isinstance(idx.lower.op, ast.Sub):
                offsets.setdefault(base, set()).update(roots.get(n, n) for n in names_in(idx.lower.left, variables=True))
        if not offsets:
            return
        for sub in fn.subscripts:
            idx = sub.slice
            base = base_of(sub.value)
            if base not in offsets or not isinstance(sub.ctx, ast.Load):
                continue
            p = idx.id if isinstance(idx, ast.Name) else (
                idx.lower.id if isinstance(idx, ast.Slice) and isinstance(idx.lower, ast.Name) else None)
            if p is None or roots.get(p, p) not in offsets[base] or p in before:
                continue
            text = ast.unparse(sub)
            label = (f"`{text}` is the token after the context `{base}[{p} - k]` "
                     "(the n-gram's predicted token)")
            self.target_nodes[id(sub)] = text
            self._mark(fn, text, sub.lineno, label)
            parent = fn.parent_of.get(id(sub))
            while (isinstance(parent, ast.Attribute) and parent.attr in _CHAIN_METHODS) or (
                    isinstance(parent, ast.Call) and isinstance(parent.func, ast.Attribute)
                    and parent.func.attr in _CHAIN_METHODS):
                parent = fn.parent_of.get(id(parent))
            if isinstance(parent, (ast.Assign, ast.AnnAssign)):
                names = assigned_names_of_stmt(parent)
                for n in names:
                    self._mark(fn, n, sub.lineno, f"`{n}` = `{text}` is the token after the context "
                                                  f"`{base}[{p} - k]` (the n-gram's predicted token)")

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
                    src = next((n for v in values for n in self._carried(fn, v) if self.is_target(fn, n)), None)
                    if src is None:
                        continue
                    for n in names:
                        if n != src and self._mark(fn, n, a.line, f"`{n}` derives from `{src}`", self.key(fn, src)):
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
                stack.extend(ast.iter_child_nodes(n))
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
                    src = next((n for n in names_in(arg, variables=True) if self.is_target(fn, n)), None)
                    if src is not None and self._mark(
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


def _arithmetic_pairs(fn: Function) -> set[tuple[str, str]]:
    """Name pairs that meet as the two operands of one hash-style operation (`a * P ^ b * Q`).

    Names used only as indices (`lut[y]`) are not operands: `bytes_lut[y] + space_lut[x]`
    combines table values, not the token ids themselves."""
    pairs: set[tuple[str, str]] = set()
    for a in fn.assigns:
        for n in walk_nodes(a.value):
            operands: list[ast.AST] = []
            if isinstance(n, ast.BinOp) and isinstance(n.op, (ast.BitXor, ast.Add, ast.BitOr, ast.LShift)):
                operands = [n.left, n.right]
            elif isinstance(n, ast.Call) and call_name(n) in ("bitwise_xor", "hash") and len(n.args) >= 2:
                operands = [n.args[0], n.args[1]]
            if operands:
                left, right = _operand_names(operands[0]), _operand_names(operands[1])
                if len(left) * len(right) <= 64:
                    pairs.update((x, y) for x in left for y in right)
    return pairs


def _operand_names(node: ast.AST) -> set[str]:
    """Names whose *values* enter an expression (not those used only as subscript indices)."""
    out: set[str] = set()
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, ast.Subscript):
            stack.append(n.value)
            # a slice of the same tensor (`t[..., 1:]`) keeps `t` as the operand
        elif isinstance(n, ast.Call):
            stack.extend(n.args)
            if isinstance(n.func, ast.Attribute):
                stack.append(n.func.value)
        elif isinstance(n, ast.Name):
            out.add(n.id)
        elif isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in ("self", "cls"):
            out.add(f"{n.value.id}.{n.attr}")
        else:
            stack.extend(ast.iter_child_nodes(n))
    return out


def assigned_names_of_stmt(stmt: ast.AST) -> list[str]:
    if isinstance(stmt, ast.Assign):
        return [n for t in stmt.targets for n in assigned_names(t)]
    if isinstance(stmt, (ast.AnnAssign, ast.AugAssign)):
        return assigned_names(stmt.target)
    return []


def _offset_starts(fn: Function) -> dict[str, str]:
    """`o = s - (n - 1) + k` -> {o: s}: a start index placed before position `s`."""
    out: dict[str, str] = {}
    for a in fn.assigns:
        v = a.value
        while isinstance(v, ast.BinOp) and isinstance(v.op, ast.Add):
            v = v.left
        if isinstance(v, ast.BinOp) and isinstance(v.op, ast.Sub) and isinstance(v.left, ast.Name) \
                and len(a.names) == 1 and a.names[0] != v.left.id:
            out[a.names[0]] = v.left.id
    return out


def _alias_roots(fn: Function) -> dict[str, str]:
    """`pos = positions[idx]` -> pos's root is `positions` (position arrays selected by masks)."""
    roots: dict[str, str] = {}
    for a in fn.assigns:
        v = strip_chain(a.value)
        src = None
        if isinstance(v, ast.Name):
            src = v.id
        elif isinstance(v, ast.Subscript):
            src = base_of(v.value)
        if src and len(a.names) == 1 and a.names[0] != src:
            roots[a.names[0]] = src
    for _ in range(4):
        for k, root in list(roots.items()):
            if root in roots and roots[root] != k:
                roots[k] = roots[root]
    return roots


def target_flow(ctx, units: list[CodeUnit] | None = None) -> TargetFlow:  # type: ignore[no-untyped-def]
    """The submission's target flow over all parseable code units, computed once."""
    from audit.analysis.eval_code import code_units

    def build() -> TargetFlow:
        chosen = units if units is not None else [u for u in code_units(ctx) if u.parsed.tree is not None]
        return TargetFlow(chosen)
    return ctx.memo("static_eval.target_flow", build)


def functions_of(flow: TargetFlow, path: str) -> list[Function]:
    return [f for f in flow.functions if f.path == path]
