"""Eval-time n-gram caches: count tables, what keys their lookups, and where the looked-up value goes.

Why: R-NGRAM-CACHE splits one shape into a legal and an illegal half. Building counts with the
realized token (`np.add.at(full_counts, hash(ctx, y), 1)`) after scoring is how a cache learns;
*looking up* `full_counts[hash(ctx, y)]` to score position t reads the answer (C1) and yields a
value for the gold token only, not a distribution over the vocabulary (C2). So we record
  * count tables: anything updated by `np.add.at`, `scatter_add_`, `index_add_`, `+=` on a
    subscript, `bincount`, `T[k] = T.get(k, 0) + 1`;
  * target hash keys: an integer key whose arithmetic (`^`, `*`, `%`, `&`, shifts) combines a
    target-derived token with other context data;
  * target lookups: a read of a table at such a key whose value reaches a score (a `log`, a loss
    accumulator, or the function's return). Any table: a count table gives a count ratio for the
    gold token (C2 as well, `TargetLookup.counted`); a bias or embedding row (subscript,
    `F.embedding`, a call of an `nn.Embedding`) read at a key that holds the target leaks it just
    the same (C1) when the row enters the scored distribution (the logits of a cross-entropy, the
    input of a softmax/log_softmax/log), even though that distribution is normalised;
  * oracle gates: `min`/`minimum`/`where(a < b)` choosing between two gold-token scores.
Bigram/trigram hash *embeddings* over input ids never qualify: their keys hold no target and
they index an embedding, not a count table.

API: `ngram_facts(ctx)` -> NgramFacts(count_tables, lookups, oracle_gates); each TargetLookup and
OracleGate carries its evidence chain as audit.findings.Evidence records, ready for a finding.
Count tables are found by count_tables.py, oracle gates by oracle_gates.py; this module follows
target hash keys to the table reads whose value is scored. (About 460 lines: following a key
to its read and the read to the score is one chain of evidence, kept in one module so the chain
is built and read in one place.)
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from audit.analysis.code_functions import Function
from audit.analysis.count_tables import count_tables
from audit.analysis.eval_code import code_units
from audit.analysis.names import LOGARITHM_FUNCS
from audit.analysis.oracle_gates import OracleGate, gold_score_functions, oracle_gates
from audit.analysis.syntax import (
    any_below,
    assigned_names,
    base_of,
    call_name,
    dotted,
    names_in,
    strip_chain,
    walk_nodes,
)
from audit.analysis.targets import (
    TargetFlow,
    target_flow,
)
from audit.findings import Evidence

_CONSTISH = re.compile(r"(prime|mask|mod$|bucket|size|vocab|mult|seed)", re.I)
_CAPS = re.compile(r"^_?[A-Z][A-Z0-9_]*$")
_SCORE_ACC = re.compile(r"(loss|nll|bits|bpb|score|logp|log_p|total)", re.I)


@dataclass
class TargetLookup:
    fn: Function
    line: int
    table: str
    key_name: str | None
    chain: list[Evidence]
    key_step: Evidence
    lookup_step: Evidence
    ratio_step: Evidence | None
    score_step: Evidence
    counted: bool = True  # the table is a count table (a count ratio, C2); else a bias/embedding table


@dataclass
class NgramFacts:
    count_tables: dict[str, Evidence]
    lookups: list[TargetLookup]
    oracle_gates: list[OracleGate]


def ngram_facts(ctx) -> NgramFacts:  # type: ignore[no-untyped-def]
    return ctx.memo("analysis.ngram_facts", lambda: _compute(ctx))


def _compute(ctx) -> NgramFacts:  # type: ignore[no-untyped-def]
    units = [u for u in code_units(ctx) if u.parsed.tree is not None]
    flow = target_flow(ctx, units)
    tables = count_tables(flow)
    lookups: list[TargetLookup] = []
    gates: list[OracleGate] = []
    defs_by_fn: dict[int, _KeyDefs] = {}
    keys_by_fn = {id(fn): _target_hash_keys(flow, fn, defs_by_fn) for fn in flow.functions}
    returns = _returned_keys(flow, keys_by_fn)
    gold_fns = gold_score_functions(flow)
    embeddings = _embedding_modules(flow)
    for fn in flow.functions:
        lookups.extend(_lookups(flow, fn, keys_by_fn[id(fn)], tables, defs_by_fn.get(id(fn)), returns, embeddings))
        gates.extend(oracle_gates(flow, fn, gold_fns))
    return NgramFacts(tables, lookups, gates)


# -- target hash keys ------------------------------------------------------------------------

def has_hash_op(node: ast.AST) -> bool:
    """A hashing operator or call anywhere in the expression (asked for every assignment and key
    of the n-gram analyses, hence memoised on the nodes)."""
    return any_below(node, "_pga_hash", _hash_op_here)


def _hash_op_here(n: ast.AST) -> bool:
    if isinstance(n, ast.BinOp):
        return isinstance(n.op, (ast.BitXor, ast.Mod, ast.BitAnd, ast.LShift, ast.RShift))
    if isinstance(n, ast.AugAssign):
        return isinstance(n.op, (ast.BitXor, ast.Mod, ast.BitAnd))
    return isinstance(n, ast.Call) and call_name(n) in ("hash", "remainder", "bitwise_xor", "fmod")


def _data_names(flow: TargetFlow, fn: Function, node: ast.AST) -> tuple[set[str], set[str]]:
    """(target-derived names, other non-constant names) an expression reads."""
    tgt: set[str] = set()
    other: set[str] = set()
    for sub in walk_nodes(node):
        text = flow.target_nodes.get(id(sub))
        if text is not None:
            tgt.add(text)
    for n in names_in(node, variables=True):
        last = n.split(".")[-1]
        if n in ("np", "torch", "math", "F", "self") or _CONSTISH.search(last) or _CAPS.match(last):
            continue
        (tgt if flow.is_target(fn, n) else other).add(n)
    return tgt, other


def _combines_target(flow: TargetFlow, fn: Function, value: ast.AST) -> str | None:
    """The target name when `value` hashes it together with other (context) data."""
    if not has_hash_op(value):
        return None
    for n in walk_nodes(value):
        operands: list[ast.AST] = []
        if isinstance(n, ast.BinOp) and isinstance(n.op, (ast.BitXor, ast.Add, ast.BitOr, ast.Mult)):
            operands = [n.left, n.right]
        elif isinstance(n, ast.Call) and call_name(n) in ("bitwise_xor", "hash") and len(n.args) >= 2:
            operands = list(n.args[:2])
        elif isinstance(n, ast.Call) and call_name(n) == "hash" and n.args and isinstance(n.args[0], ast.Tuple):
            operands = list(n.args[0].elts)
        if len(operands) < 2:
            continue
        sides = [_data_names(flow, fn, o) for o in operands]
        for i, (tgt, _) in enumerate(sides):
            if tgt and any(other - tgt for j, (_, other) in enumerate(sides) if j != i):
                return min(sorted(tgt), key=lambda t: len(flow.chain(fn, t, limit=99)))
    return None


@dataclass(frozen=True)
class KeyFact:
    """A hash key that mixes a target into its context: where, which target, in which function."""

    line: int
    target: str
    owner: Function
    via: str | None = None  # callee that computed it, when returned from a helper


def _target_hash_keys(flow: TargetFlow, fn: Function, defs_by_fn: dict[int, _KeyDefs]) -> dict[str, KeyFact]:
    """name -> KeyFact for keys that hash a target with its context."""
    keys: dict[str, KeyFact] = {}
    defs = _KeyDefs()
    for a in fn.assigns:
        if isinstance(a.node, ast.AugAssign):
            value: ast.AST = ast.BinOp(ast.Name(a.names[0]) if a.names else ast.Constant(0),
                                       a.node.op, a.value)
        else:
            value = a.value
        t = _combines_target(flow, fn, value)
        if t is not None:
            for n in a.names:
                keys.setdefault(n, KeyFact(a.line, t, fn))
                defs.add(n, a.line)
    for _ in range(4):  # `fk = full_key[ok]`, `k = full_key.astype(...)` keep the key
        if not keys:
            break
        grew = False
        for a in fn.assigns:
            v = strip_chain(a.value)
            src = base_of(v) if isinstance(v, (ast.Subscript, ast.Name, ast.Attribute)) else None
            if src is None and isinstance(v, ast.Call) and call_name(v) in flow.by_name and len(v.args) == 1:
                # `full_key = self._bucket(full_h)`: a user helper that only buckets the hash
                inner = strip_chain(v.args[0])
                src = base_of(inner) if isinstance(inner, (ast.Subscript, ast.Name, ast.Attribute)) else None
            if src is None and isinstance(v, ast.BinOp) and isinstance(v.op, (ast.BitAnd, ast.Mod)):
                # `full_key = (full_hash & mask)`: masking a key keeps it a key
                inner = strip_chain(v.left)
                src = base_of(inner) if isinstance(inner, (ast.Subscript, ast.Name, ast.Attribute)) else None
            if src in keys:
                for n in a.names:
                    if n not in keys:
                        keys[n] = keys[src]
                        defs.add(n, a.line)
                        grew = True
        if not grew:
            break  # a pass reads only `keys`: one that adds nothing ends the propagation
    defs_by_fn[id(fn)] = defs
    return keys


def _returned_keys(flow: TargetFlow, keys_by_fn: dict[int, dict[str, KeyFact]]) -> dict[str, dict[int | None, KeyFact]]:
    """`full_keys = hash_full(ctx, targets)` / `ctx_h, full_h, _ = self._hashes(...)`: keys that a
    helper returns become keys in its caller (by tuple position)."""
    returns: dict[str, dict[int | None, KeyFact]] = {}
    for _ in range(3):
        returns = {}
        for fn in flow.functions:
            keys = keys_by_fn[id(fn)]
            for r in fn.returns:
                v = strip_chain(r.value) if r.value is not None else None
                elts = list(v.elts) if isinstance(v, ast.Tuple) else [v] if v is not None else []
                for i, e in enumerate(elts):
                    slot = i if isinstance(v, ast.Tuple) else None
                    k = next((n for n in sorted(names_in(e, variables=True)) if n in keys), None)
                    if k is not None:
                        returns.setdefault(fn.name, {})[slot] = keys[k]
                        continue
                    inline = _combines_target(flow, fn, e)  # `return (ctx ^ (target * P)) & mask`
                    if inline is not None:
                        returns.setdefault(fn.name, {})[slot] = KeyFact(r.lineno, inline, fn)
        grew = False
        for fn in flow.functions:
            keys = keys_by_fn[id(fn)]
            for a in fn.assigns:
                v = strip_chain(a.value)
                if not isinstance(v, ast.Call) or not isinstance(a.node, ast.Assign):
                    continue
                info = returns.get(call_name(v))
                if not info:
                    continue
                target = a.node.targets[0]
                pairs: list[tuple[list[str], KeyFact]] = []
                if None in info:
                    pairs.append((a.names, info[None]))
                elif isinstance(target, (ast.Tuple, ast.List)):
                    pairs += [(assigned_names(elt), info[i]) for i, elt in enumerate(target.elts) if i in info]
                for names, fact in pairs:
                    for n in names:
                        if n not in keys:
                            keys[n] = KeyFact(a.line, fact.target, fact.owner, call_name(v))
                            grew = True
        if not grew:
            break
    return returns


class _KeyDefs:
    """Every line that defines a key name, to cite the definition nearest before a lookup."""

    def __init__(self) -> None:
        self.lines: dict[str, list[int]] = {}

    def add(self, name: str, line: int) -> None:
        self.lines.setdefault(name, []).append(line)

    def nearest(self, name: str, before: int, default: int) -> int:
        prior = [ln for ln in self.lines.get(name, []) if ln <= before]
        return max(prior) if prior else default




# -- lookups ---------------------------------------------------------------------------------

def is_update_context(fn: Function, sub: ast.AST, table: str) -> bool:
    """`T[k] = T[k] + 1` / `T[k] = T.get(k, 0) + 1` read T only to write it back."""
    node: ast.AST | None = sub
    while node is not None and not isinstance(node, ast.stmt):
        node = fn.parent_of.get(id(node))
    if isinstance(node, ast.Assign):
        return any(base_of(t) == table for t in node.targets if isinstance(t, ast.Subscript))
    if isinstance(node, ast.AugAssign):
        return True
    return False


def _lookups(flow: TargetFlow, fn: Function, keys: dict[str, KeyFact],
             tables: dict[str, Evidence], defs: _KeyDefs | None,
             returns: dict[str, dict[int | None, KeyFact]], embeddings: frozenset[str]) -> list[TargetLookup]:
    found: list[TargetLookup] = []
    reads: list[tuple[ast.AST, str, ast.AST]] = []  # (node, table, key expr)
    for sub in fn.subscripts:
        if isinstance(sub.ctx, ast.Load):
            # any table, not only counts: a bias row or embedding read at a key that hashes the
            # target makes the scored distribution depend on the target just the same
            table = base_of(sub.value)
            if table and not is_update_context(fn, sub, table) and not flow.is_target(fn, table):
                reads.append((sub, table, sub.slice))
    for call in fn.calls:
        name = call_name(call)
        if name == "embedding" and len(call.args) >= 2:
            reads.append((call, base_of(call.args[1]) or "embedding", call.args[0]))  # `F.embedding(k, w)`
            continue
        callee = dotted(call.func, variable=True) if isinstance(call.func, (ast.Name, ast.Attribute)) else None
        if callee in embeddings and len(call.args) == 1:
            reads.append((call, callee, call.args[0]))  # `self.bias(k)` with `self.bias = nn.Embedding(...)`
            continue
        method_table = base_of(call.func.value) if isinstance(call.func, ast.Attribute) else None
        if method_table in tables and is_update_context(fn, call, method_table):
            continue
        if name in ("get", "index_select", "take", "gather") and call.args and method_table in tables:
            # `t.get(k, 0)`, `t.take(k)`: the key is first; `t.index_select(0, k)`, `t.gather(0, k)`: last
            reads.append((call, method_table, call.args[0] if name in ("get", "take") else call.args[-1]))
        elif name in ("take", "gather", "index_select") and len(call.args) >= 2 and base_of(call.args[0]) in tables:
            # `np.take(t, k)`, `torch.gather(t, 0, k)`, `torch.index_select(t, 0, k)`
            reads.append((call, base_of(call.args[0]) or "", call.args[-1]))
    seen_lines: set[int] = set()
    for node, table, key in reads:
        line = getattr(node, "lineno", 0)
        if line in seen_lines:
            continue
        key_name = next((n for n in sorted(names_in(key, variables=True)) if n in keys), None)
        if key_name is not None:
            fact = keys[key_name]
            key_line, tname, owner = fact.line, fact.target, fact.owner
            if defs is not None and fact.via is None:
                key_line = defs.nearest(key_name, line, key_line)
        else:
            tname = _combines_target(flow, fn, key) or ""
            key_line, owner, fact = line, fn, None
            helper = strip_chain(key) if isinstance(key, ast.expr) else key
            if not tname and isinstance(helper, ast.Call) and None in returns.get(call_name(helper), {}):
                fact = returns[call_name(helper)][None]  # `T.get(hash_pair(ctx, target))`
                fact = KeyFact(line, fact.target, fact.owner, call_name(helper))
                tname, owner = fact.target, fact.owner
            if not tname:
                continue
        stmt = fn.stmt_of(node)
        start = set(assigned_names_of(stmt))
        if table in tables:
            score, ratio = reaches_score(fn, start, stmt)
        else:  # a learned/bias table: only a distribution built from it is a score of the target
            score, ratio = enters_distribution(fn, node, start), None
        if score is None:
            continue
        seen_lines.add(line)
        via = f" (returned by `{fact.via}`)" if fact is not None and fact.via else ""
        chain = flow.chain(owner, tname)
        found.append(TargetLookup(
            fn=fn, line=line, table=table, key_name=key_name, chain=chain,
            key_step=fn.evidence(key_line, f"hash key `{key_name or 'inline key'}` combines target `{tname}` "
                                         f"with the context{via}"),
            lookup_step=fn.evidence(line, f"lookup of count table `{table}` at that key (a read, before any update)"
                                    if table in tables else
                                    f"lookup of table `{table}` at that key: its value enters what is scored"),
            ratio_step=ratio, score_step=score, counted=table in tables,
        ))
    return found


def _embedding_modules(flow: TargetFlow) -> frozenset[str]:
    """Names (`self.bias`, `emb`) assigned an `nn.Embedding`: calling one reads a table row."""
    out: set[str] = set()
    for fn in flow.functions:
        for a in fn.assigns:
            v = strip_chain(a.value)
            if isinstance(v, ast.Call) and call_name(v) == "Embedding":
                out.update(a.names)
    return frozenset(out)


def assigned_names_of(stmt: ast.AST) -> list[str]:
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call) \
            and isinstance(stmt.value.func, ast.Attribute) and stmt.value.func.attr in ("append", "extend"):
        base = base_of(stmt.value.func.value)  # `rows.append(table[key])`
        return [base] if base else []
    if isinstance(stmt, ast.Assign):
        return [n for t in stmt.targets for n in assigned_names(t)]
    if isinstance(stmt, (ast.AnnAssign, ast.AugAssign)):
        return assigned_names(stmt.target)
    return []


def reaches_score(fn: Function, start: set[str], stmt: ast.AST) -> tuple[Evidence | None, Evidence | None]:
    """Follow the looked-up value to a score: a log, a loss accumulator, or a return."""
    direct = _sink_in(fn, stmt, None)
    if direct is not None:
        return direct, None
    reach = set(start)
    ratio: Evidence | None = None
    for _ in range(10):
        grew = False
        for a in fn.assigns:
            if not set(a.names) <= reach and names_in(a.value, variables=True) & reach:
                reach.update(a.names)
                grew = True
                if ratio is None and _is_ratio_or_mix(a.value, reach):
                    ratio = fn.evidence(a.line, "probability for the gold token only: a count ratio/mixture, "
                                              "not a distribution over the vocabulary")
        if not grew:
            break
    if not reach:
        return None, None
    sinks: list[Evidence] = []
    for call in fn.calls:
        if call_name(call) in LOGARITHM_FUNCS and any(names_in(x, variables=True) & reach for x in (*call.args, call.func)):
            sinks.append(fn.evidence(call.lineno, "its log is taken: it becomes the score of the position"))
    for aug in fn.augassigns:
        tnames = assigned_names(aug.target)
        if any(_SCORE_ACC.search(t) for t in tnames) and names_in(aug.value, variables=True) & reach:
            sinks.append(fn.evidence(aug.lineno, "accumulated into the reported loss"))
    for ret in fn.returns:
        if ret.value is not None and names_in(ret.value, variables=True) & reach:
            sinks.append(fn.evidence(ret.lineno, f"returned from `{fn.qualname}` as the scored probability/NLL"))
    if not sinks:
        return None, ratio
    return min(sinks, key=lambda s: s.line or 0), ratio


_DIST_INPUT = frozenset({"cross_entropy", "nll_loss"})  # the first argument is the prediction
_DIST_MAKERS = frozenset({"log_softmax", "softmax", "log", "log1p", "logsumexp"})


def enters_distribution(fn: Function, node: ast.AST, start: set[str]) -> Evidence | None:
    """Does the value read at `node` become part of the distribution that is scored: the logits of
    a cross-entropy, or the input of a softmax/log_softmax/log (in the same expression or through
    the names assigned from it)? A learned row that is only returned or summed is not shown to be."""
    def label(call: ast.Call) -> Evidence:
        return fn.evidence(call.lineno, f"it enters the distribution that is scored (`{call_name(call)}`)")

    child: ast.AST = node
    parent = fn.parent_of.get(id(node))
    while parent is not None and not isinstance(parent, ast.stmt):
        if isinstance(parent, ast.Call):
            cname = call_name(parent)
            if cname in _DIST_INPUT and parent.args and child is parent.args[0]:
                return label(parent)
            if cname in _DIST_MAKERS and (child in parent.args or child is parent.func):  # `(z).log_softmax(-1)`
                return label(parent)
        child, parent = parent, fn.parent_of.get(id(parent))
    reach = set(start)
    for _ in range(10):
        grew = False
        for a in fn.assigns:
            if not set(a.names) <= reach and names_in(a.value, variables=True) & reach:
                reach.update(a.names)
                grew = True
        if not grew:
            break
    for call in fn.calls:
        cname = call_name(call)
        if cname in _DIST_INPUT and call.args and names_in(call.args[0], variables=True) & reach:
            return label(call)
        if cname in _DIST_MAKERS and any(names_in(x, variables=True) & reach for x in (*call.args, call.func)):
            return label(call)
    return None


def _sink_in(fn: Function, stmt: ast.AST, _reach: set[str] | None) -> Evidence | None:
    for n in walk_nodes(stmt):
        if isinstance(n, ast.Call) and call_name(n) in LOGARITHM_FUNCS:
            return fn.evidence(n.lineno, "its log is taken: it becomes the score of the position")
    if isinstance(stmt, ast.Return):
        return fn.evidence(stmt.lineno, f"returned from `{fn.qualname}`")
    return None


def _is_ratio_or_mix(value: ast.AST, reach: set[str]) -> bool:
    for n in walk_nodes(value):
        if isinstance(n, ast.BinOp) and isinstance(n.op, (ast.Div, ast.Add)) and \
                (names_in(n.left, variables=True) & reach or names_in(n.right, variables=True) & reach):
            return True
    return False


