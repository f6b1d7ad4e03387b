"""Where target tokens come from, before any propagation: shift pairs, loss targets, byte-table
indices, n-gram completing tokens, conventional names; and what can never be a target.

See targets.py for the vocabulary of sources; each function here marks names in one function
(`TargetFlow.mark`) with the evidence of why.
"""

from __future__ import annotations

import ast
import re
from typing import TYPE_CHECKING

from audit.analysis.syntax import (
    CHAIN_METHODS,
    any_below,
    assigned_names,
    base_of,
    call_name,
    names_in,
    stmt_targets,
    strip_chain,
    walk_nodes,
)

if TYPE_CHECKING:
    from audit.analysis.code_functions import Function
    from audit.analysis.targets import TargetFlow

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



def is_candidate_expr(node: ast.expr) -> bool:
    """Vocabulary enumerations and model-proposed tokens: never the realized target (asked of
    every assignment, memoised on the nodes)."""
    return any_below(node, "_pga_cand", _candidate_here)


def _candidate_here(n: ast.AST) -> bool:
    if isinstance(n, ast.Call):
        return call_name(n) in _CANDIDATE_CALLS
    return isinstance(n, ast.Name) and CANDIDATE_NAME.search(n.id) is not None


def candidates(flow: TargetFlow, fn: Function) -> None:
    for a in fn.assigns:
        if is_candidate_expr(a.value):
            for n in a.names:
                flow.candidates.add(flow.key(fn, n))
    for n in fn.params:
        if CANDIDATE_NAME.search(n):
            flow.candidates.add(flow.key(fn, n))

def named_sources(flow: TargetFlow, fn: Function) -> None:
    for p in fn.params:
        if TARGET_NAME.match(p):
            line = getattr(fn.node, "lineno", 1)
            flow.mark(fn, p, line, f"parameter `{p}` is named as the target tokens")
    for a in fn.assigns:
        for n in a.names:
            if TARGET_NAME.match(n.split(".")[-1]) and not isinstance(a.node, (ast.For, ast.AsyncFor)):
                flow.mark(fn, n, a.line, f"`{n}` is named as the target tokens")

def structural_sources(flow: TargetFlow, fn: Function) -> None:
    _shift_pairs(flow, fn)
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
                flow.mark(fn, b, call.lineno, f"`{b}` is the target argument of `{cname}`")
    for sub in fn.subscripts:
        table = base_of(sub.value) or ""
        if re.search(r"bytes?_lut|leading_space", table) and isinstance(sub.ctx, ast.Load):
            b = base_of(sub.slice) if not isinstance(sub.slice, ast.Tuple) else None
            if b:
                flow.mark(fn, b, sub.lineno, f"`{b}` indexes the byte table `{table}` (bytes of the scored token)")
    _ngram_positions(flow, fn)
    _next_position_reads(flow, fn)


_DIST_CALLS = frozenset({"log_softmax", "softmax"})


def distribution_reads(flow: TargetFlow, fn: Function) -> None:
    """The index that reads one entry of a normalised distribution over the vocabulary is the
    token being scored: `logp.gather(-1, t)`, `torch.gather(p, -1, t)`, `take_along_dim`,
    `-row[t]`, `lp[i, t]`,
    where the read array is (or was assigned from) a softmax/log_softmax."""
    dists = {n for a in fn.assigns for n in a.names
             if not isinstance(a.node, (ast.For, ast.AsyncFor)) and _is_dist(a.value, set())}

    def is_dist(node: ast.expr) -> bool:
        return _is_dist(node, dists)

    for call in fn.calls:
        cname = call_name(call)
        idx: ast.expr | None = None
        if cname == "gather" and isinstance(call.func, ast.Attribute) and call.args and is_dist(call.func.value):
            idx = call.args[-1]
        elif cname == "gather" and len(call.args) >= 3 and is_dist(call.args[0]):
            idx = call.args[-1]
        elif cname == "take_along_dim" and len(call.args) >= 2 and is_dist(call.args[0]):
            idx = call.args[1]  # `torch.take_along_dim(lp, t[:, None], dim=-1)`
        b = base_of(idx) if idx is not None else None
        if b and not is_candidate_expr(idx):  # type: ignore[arg-type]
            flow.mark(fn, b, call.lineno, f"`{b}` picks the scored entry out of a distribution over the vocabulary")
    for sub in fn.subscripts:
        if not isinstance(sub.ctx, ast.Load) or not is_dist(sub.value):
            continue
        if isinstance(sub.slice, ast.Tuple) and len(sub.slice.elts) >= 2:
            idx = sub.slice.elts[-1]  # `lp[rows, t]`: the last axis is the vocabulary
        elif _negated(fn, sub):
            idx = sub.slice  # `-row[t]`: one entry of a distribution taken as the loss
        else:
            continue  # `logp[i]` may select a position's row, not a token's entry
        if isinstance(idx, (ast.Slice, ast.Constant)) or is_candidate_expr(idx):
            continue
        b = base_of(idx)
        if b:
            flow.mark(fn, b, sub.lineno, f"`{b}` picks the scored entry out of a distribution over the vocabulary")


def _negated(fn: Function, node: ast.AST) -> bool:
    """`-x`, `a - x`, `loss -= x`: the value is subtracted (a log-probability turned into a loss)."""
    parent = fn.parent_of.get(id(node))
    if isinstance(parent, ast.UnaryOp) and isinstance(parent.op, ast.USub):
        return True
    if isinstance(parent, ast.BinOp) and isinstance(parent.op, ast.Sub) and parent.right is node:
        return True
    return isinstance(parent, ast.AugAssign) and isinstance(parent.op, ast.Sub) and parent.value is node


def _is_dist(node: ast.expr, dists: set[str]) -> bool:
    """A softmax/log_softmax result (`x.log_softmax(-1)`, `F.softmax(x, dim=-1)`) or a name
    assigned from one, possibly sliced by position (`logp[i]`)."""
    v = strip_chain(node)
    while isinstance(v, ast.Subscript):
        v = strip_chain(v.value)
    if isinstance(v, ast.Call) and call_name(v) in _DIST_CALLS:
        return True
    return isinstance(v, ast.Name) and v.id in dists

def _shift_pairs(flow: TargetFlow, fn: Function) -> None:
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
                    flow.mark(fn, n, line, f"`{n}` is the input stream shifted by one "
                                           f"(paired with the input slice at line {head_line})")

def _next_position_reads(flow: TargetFlow, fn: Function) -> None:
    """`tgt = tokens[p + 1]`: the token one position after p is p's target. Element by element
    in a tuple assignment (`ctx, nxt = int(tokens[p]), int(tokens[p + 1])`)."""
    for a in fn.assigns:
        if isinstance(a.node, (ast.For, ast.AsyncFor)):
            continue
        pairs: list[tuple[list[str], ast.expr]] = []
        if not a.unpacks:
            pairs.append((a.names, a.value))
        elif isinstance(a.node, ast.Assign) and len(a.node.targets) == 1 \
                and isinstance(a.node.targets[0], (ast.Tuple, ast.List)) \
                and isinstance(a.value, (ast.Tuple, ast.List)) \
                and len(a.node.targets[0].elts) == len(a.value.elts):
            pairs += [(assigned_names(t), v) for t, v in zip(a.node.targets[0].elts, a.value.elts)]
        for names, value in pairs:
            v = strip_chain(value)  # `int(t[p + 1])`, `t[p + 1].item()`: the same token
            if isinstance(v, ast.Subscript) and isinstance(v.slice, ast.BinOp) \
                    and isinstance(v.slice.op, ast.Add) and _is_const(v.slice.right, 1) \
                    and isinstance(v.slice.left, (ast.Name, ast.Attribute, ast.Subscript)):
                # `buf[j] = buf[j + 1]` moves an element within one buffer (a sliding context
                # window shifted left): the buffer gains no token it did not hold already.
                read = base_of(v.value)
                text = ast.unparse(v)
                for n in names:
                    if n == read:
                        continue
                    flow.mark(fn, n, a.line, f"`{n}` = `{text}` is the token one position after the "
                                              "scored position (its target)")


def _ngram_positions(flow: TargetFlow, fn: Function) -> None:
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
        flow.target_nodes[id(sub)] = text
        flow.mark(fn, text, sub.lineno, label)
        parent = fn.parent_of.get(id(sub))
        while (isinstance(parent, ast.Attribute) and parent.attr in CHAIN_METHODS) or (
                isinstance(parent, ast.Call) and isinstance(parent.func, ast.Attribute)
                and parent.func.attr in CHAIN_METHODS):
            parent = fn.parent_of.get(id(parent))
        if isinstance(parent, (ast.Assign, ast.AnnAssign)):
            names = stmt_targets(parent)
            for n in names:
                flow.mark(fn, n, sub.lineno, f"`{n}` = `{text}` is the token after the context "
                                              f"`{base}[{p} - k]` (the n-gram's predicted token)")


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


