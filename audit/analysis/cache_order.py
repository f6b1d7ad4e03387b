"""Order of cache updates and cache scores inside the loop that processes a chunk (C3).

Why: a count cache is legal only if each position is scored from counts of tokens *before* it
(R-EVAL-C3, R-NGRAM-CACHE item 1). The legal shape scores a chunk and then adds its n-grams
(or, deferred, adds the *previous* chunk's n-grams at the top of the next iteration). The illegal
shape adds the chunk's n-grams first and then scores the same chunk from the cache: each token's
own count is already in the table when it is scored.

So, per function, we collect two kinds of events on the same cache:
  * update: a count-table increment (`np.add.at(T, k, 1)`, `T[k] += 1`, `T.scatter_add_`, a helper
    that adds into a table parameter) or a call of a method that does so (`cache.update(...)`),
    whose key indexes by tokens: hashed, or holding the target itself (`T[prev, nxt] += 1`);
  * score: a read of the table whose value reaches a score (log / loss sum / return), or a call of
    a method that reads the table and returns, whose result reaches a score.
Within the innermost loop (or function body) holding both, an update that precedes a score is
reported when both name the same chunk: the same set of loop-varying names among their key or
position arguments (`update(toks, s, e)` then `prob(toks, s, e)`), or when the update's only extra
argument is the target (`add(prev, nxt)` then `row(prev)`). Different names (`prev_s`)
are the deferred legal shape; a strict superset on the update side is reported as ambiguous.
Events in the two arms of one `if` never both run, so they are not ordered.

API: `cache_order_facts(ctx)` -> list[UpdateBeforeScore].
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from audit.analysis.code_functions import Function
from audit.analysis.count_tables import count_table_params
from audit.analysis.eval_code import code_units
from audit.analysis.ngram import has_hash_op, is_update_context, ngram_facts, reaches_score
from audit.analysis.syntax import (
    assigned_names,
    base_of,
    call_name,
    calls_below,
    dotted,
    names_in,
    stmt_targets,
    strip_chain,
)
from audit.analysis.targets import (
    TargetFlow,
    target_flow,
)
from audit.findings import Evidence

_UPDATE_CALLS = {"scatter_add_", "index_add_", "put_", "index_put_", "scatter_reduce_"}
_LOOPS = (ast.For, ast.AsyncFor, ast.While)


@dataclass(frozen=True)
class CacheEvent:
    kind: str  # "update" or "score"
    cache: str  # table name, or `receiver.method-owner` for calls of cache methods
    tables: frozenset[str]
    line: int
    node: ast.AST  # the call / subscript
    keys: frozenset[str]  # names in the key or position arguments
    label: str


@dataclass(frozen=True)
class UpdateBeforeScore:
    fn: Function
    update: CacheEvent
    score: CacheEvent
    score_step: Evidence
    scope_line: int
    same_chunk: bool  # same loop-varying keys/arguments (else: the update's are a strict superset)
    shared: frozenset[str]


def cache_order_facts(ctx) -> list[UpdateBeforeScore]:  # type: ignore[no-untyped-def]
    return ctx.memo("analysis.cache_order", lambda: _compute(ctx))  # type: ignore[no-any-return]


def _compute(ctx) -> list[UpdateBeforeScore]:  # type: ignore[no-untyped-def]
    units = [u for u in code_units(ctx) if u.parsed.tree is not None]
    flow = target_flow(ctx, units)
    tables = set(ngram_facts(ctx).count_tables)
    if not tables:
        return []
    helpers = count_table_params(flow)
    hash_helpers = _hash_helpers(flow)
    roles = {id(fn): _roles(flow, fn, tables, hash_helpers) for fn in flow.functions}
    out: list[UpdateBeforeScore] = []
    for fn in flow.functions:
        events = _events(flow, fn, tables, helpers, roles, hash_helpers)
        out.extend(_ordered_pairs(flow, fn, events))
    return out


# -- what a function does to a cache ---------------------------------------------------------

def _inline_updates(fn: Function, tables: set[str], helpers: dict[str, set[int]]) -> list[tuple[str, ast.AST, ast.expr]]:
    """(table, node, key expression) for every count-table increment written in fn."""
    out: list[tuple[str, ast.AST, ast.expr]] = []
    for call in fn.calls:
        f = call.func
        name = call_name(call)
        if name == "at" and isinstance(f, ast.Attribute) and isinstance(f.value, ast.Attribute) \
                and f.value.attr == "add" and len(call.args) >= 2:
            b = base_of(call.args[0])
            if b in tables:
                out.append((b, call, call.args[1]))
        elif name in _UPDATE_CALLS and isinstance(f, ast.Attribute) and call.args:
            b = base_of(f.value)
            if b in tables:
                # put_/index_put_(index, values); scatter_add_/index_add_/scatter_reduce_(dim, index, src)
                first = name in ("put_", "index_put_") or len(call.args) == 1
                out.append((b, call, call.args[0] if first else call.args[1]))
        for i in helpers.get(name, ()):
            if i < len(call.args):
                b = base_of(call.args[i])
                if b in tables:
                    rest = [a for j, a in enumerate(call.args) if j != i]
                    out.append((b, call, ast.Tuple(elts=rest, ctx=ast.Load()) if rest else call.args[i]))
    for aug in fn.augassigns:
        if isinstance(aug.op, ast.Add):
            b = base_of(aug.target)
            if b in tables and isinstance(aug.target, ast.Subscript):
                out.append((b, aug, aug.target.slice))
            elif b in tables and isinstance(aug.target, (ast.Name, ast.Attribute)) \
                    and "bincount" in calls_below(aug.value):
                out.append((b, aug, aug.value))
    return out


def _inline_reads(fn: Function, tables: set[str]) -> list[tuple[str, ast.Subscript]]:
    out: list[tuple[str, ast.Subscript]] = []
    for sub in fn.subscripts:
        if isinstance(sub.ctx, ast.Load) and not isinstance(fn.parent_of.get(id(sub)), ast.Subscript):
            b = base_of(sub.value)
            if b in tables and not is_update_context(fn, sub, b):
                out.append((b, sub))
    return out


@dataclass(frozen=True)
class _Role:
    updates: frozenset[str]
    reads: frozenset[str]
    returns: bool


def _roles(flow: TargetFlow, fn: Function, tables: set[str], hash_helpers: set[str]) -> _Role:
    hashed = _hashed_names(fn, hash_helpers)
    ups = frozenset(t for t, _, k in _inline_updates(fn, tables, {}) if _is_token_key(flow, fn, k, hashed, hash_helpers))
    reads = frozenset(t for t, _ in _inline_reads(fn, tables))
    return _Role(ups, reads, any(r.value is not None for r in fn.returns))


def _hash_helpers(flow: TargetFlow) -> set[str]:
    """Functions that return a hashed key (`def key(...): return h % 4096`)."""
    out: set[str] = set()
    for fn in flow.functions:
        hashed = _hashed_names(fn, set())
        for r in fn.returns:
            if r.value is not None and (has_hash_op(r.value) or names_in(r.value, variables=True) & hashed):
                out.add(fn.name)
    return out


def _hashed_names(fn: Function, hash_helpers: set[str]) -> set[str]:
    """Names in fn that hold hashed keys (assigned from `^`, `%`, `&`, shifts, or a hashing helper)."""
    out: set[str] = set()
    for _ in range(3):
        for a in fn.assigns:
            if isinstance(a.node, (ast.For, ast.AsyncFor)):
                continue
            v: ast.AST = a.node if isinstance(a.node, ast.AugAssign) else a.value
            if has_hash_op(v) or _calls_any(a.value, hash_helpers) or _selects(a.value, out):
                out.update(a.names)
    return out


def _selects(value: ast.expr, keys: set[str]) -> bool:
    """`k = keys[mask]`, `k = keys.astype(...)`, `k = keys`: still the key (a count read from a table
    at that key, `T[keys]`, is not)."""
    v = strip_chain(value)
    while isinstance(v, ast.Subscript):
        v = strip_chain(v.value)
    return isinstance(v, (ast.Name, ast.Attribute)) and dotted(v, variable=True) in keys


def _calls_any(node: ast.AST, names: set[str]) -> bool:
    return bool(names) and not calls_below(node).isdisjoint(names)


def _is_hashed_key(key: ast.AST, hashed: set[str], hash_helpers: set[str]) -> bool:
    return has_hash_op(key) or bool(names_in(key, variables=True) & hashed) or _calls_any(key, hash_helpers)


def _is_token_key(flow: TargetFlow, fn: Function, key: ast.AST, hashed: set[str], hash_helpers: set[str]) -> bool:
    """A key that indexes the table by tokens: hashed, or holding the target itself
    (`T[prev, nxt] += 1` with `nxt` the token at the scored position). A counter index
    (`hits[order] += 1`) is neither."""
    return _is_hashed_key(key, hashed, hash_helpers) or any(
        flow.is_target(fn, n) for n in names_in(key, variables=True))


# -- events in one function --------------------------------------------------------------------

def _events(flow: TargetFlow, fn: Function, tables: set[str], helpers: dict[str, set[int]],
            roles: dict[int, _Role], hash_helpers: set[str]) -> list[tuple[CacheEvent, Evidence | None]]:
    events: list[tuple[CacheEvent, Evidence | None]] = []
    hashed = _hashed_names(fn, hash_helpers)
    for table, node, key in _inline_updates(fn, tables, helpers):
        if not _is_token_key(flow, fn, key, hashed, hash_helpers):
            continue  # `hits[order] += 1`: a statistic indexed by a counter, not a token cache
        events.append((CacheEvent("update", table, frozenset({table}), getattr(node, "lineno", 0), node, names_in(key, variables=True) - {table},
                                  f"count table `{table}` is updated"), None))
    for table, sub in _inline_reads(fn, tables):
        stmt = fn.stmt_of(sub)
        score, _ = reaches_score(fn, set(stmt_targets(stmt)), stmt)
        if score is not None:
            events.append((CacheEvent("score", table, frozenset({table}), sub.lineno, sub,
                                      names_in(sub.slice, variables=True) - {table}, f"count table `{table}` is read"), score))
    for call in fn.calls:
        if isinstance(call.func, ast.Name):
            events.extend(_free_table_events(fn, call, flow.by_name.get(call.func.id, []), roles))
            continue
        if not isinstance(call.func, ast.Attribute):
            continue
        receiver = dotted(call.func.value, variable=True)
        callees = [g for g in flow.by_name.get(call_name(call), []) if "." in g.qualname]
        if not receiver or len(callees) != 1:
            continue  # unknown or ambiguous method: no claim
        role = roles[id(callees[0])]
        keys = frozenset(n for a in (*call.args, *(k.value for k in call.keywords)) for n in names_in(a, variables=True)) - {receiver}
        cache = f"{receiver}:{callees[0].qualname.rsplit('.', 1)[0]}"
        if role.updates and not role.reads:
            events.append((CacheEvent("update", cache, role.updates, call.lineno, call, keys,
                                      f"`{ast.unparse(call.func)}` adds counts to `{', '.join(sorted(role.updates))}`"),
                           None))
        elif role.reads and role.returns and not role.updates:
            stmt = fn.stmt_of(call)
            score, _ = reaches_score(fn, set(stmt_targets(stmt)), stmt)
            if score is not None:
                events.append((CacheEvent("score", cache, role.reads, call.lineno, call, keys,
                                          f"`{ast.unparse(call.func)}` reads `{', '.join(sorted(role.reads))}`"),
                               score))
    return events


def _free_table_events(fn: Function, call: ast.Call, callees: list[Function],
                       roles: dict[int, _Role]) -> list[tuple[CacheEvent, Evidence | None]]:
    """`bump(prev, nxt)` / `row(prev)`: a plain function (a closure, or a module-level helper) that
    adds into, or reads and returns, a table it does not receive as a parameter (an enclosing or
    global name). Its events are on that table, so they meet the caller's own reads and updates."""
    if len(callees) != 1:
        return []  # unknown or ambiguous: no claim
    role = roles[id(callees[0])]
    own = set(callees[0].params)
    ups = frozenset(t for t in role.updates if t.split(".")[0] not in own | {"self", "cls"})
    reads = frozenset(t for t in role.reads if t.split(".")[0] not in own | {"self", "cls"})
    keys = frozenset(n for a in (*call.args, *(k.value for k in call.keywords)) for n in names_in(a, variables=True))
    out: list[tuple[CacheEvent, Evidence | None]] = []
    if ups and not reads:
        for t in sorted(ups):
            out.append((CacheEvent("update", t, frozenset({t}), call.lineno, call, keys - {t},
                                   f"`{call_name(call)}` adds counts to `{t}`"), None))
    elif reads and role.returns and not ups:
        stmt = fn.stmt_of(call)
        score, _ = reaches_score(fn, set(stmt_targets(stmt)), stmt)
        if score is not None:
            for t in sorted(reads):
                out.append((CacheEvent("score", t, frozenset({t}), call.lineno, call, keys - {t},
                                       f"`{call_name(call)}` reads `{t}`"), score))
    return out


def _ordered_pairs(flow: TargetFlow, fn: Function,
                   events: list[tuple[CacheEvent, Evidence | None]]) -> list[UpdateBeforeScore]:
    out: list[UpdateBeforeScore] = []
    seen: set[int] = set()
    updates = [e for e, _ in events if e.kind == "update"]
    for score, step in events:
        if score.kind != "score" or step is None:
            continue
        for up in updates:
            if up.cache != score.cache or not (up.tables & score.tables) or up.line >= score.line:
                continue
            scope = _common_scope(fn, up.node, score.node)
            if scope is None or _exclusive_arms(fn, up.node, score.node):
                continue
            if scope is fn.node and (_in_loop(fn, up.node) or _in_loop(fn, score.node)):
                continue  # separate loops (a prefill, a later pass): not one iteration's order
            ur, sr = _roots(fn, scope, up.keys, up.line), _roots(fn, scope, score.keys, score.line)
            if not sr or not ur >= sr:
                continue  # e.g. the previous chunk's bounds, carried from the last iteration
            if id(score.node) in seen:
                continue
            seen.add(id(score.node))
            varying = _varying(fn, scope)
            uk, sk = up.keys & varying, score.keys & varying
            # an inline read `T[ctx_key]` after `np.add.at(T, (ctx_key, y), 1)` reads the same rows, and
            # so does `cache.row(ctx)` after `cache.add(ctx, y)`: the update's extra key is the target
            extra = uk - sk
            same = ur == sr and (uk == sk or isinstance(score.node, ast.Subscript)
                                 or (sk < uk and all(flow.is_target(fn, n) for n in extra)))
            out.append(UpdateBeforeScore(fn, up, score, step, getattr(scope, "lineno", 1), same, frozenset(sr)))
    return out


# -- scopes ----------------------------------------------------------------------------------------

def _ancestors(fn: Function, node: ast.AST) -> list[ast.AST]:
    out: list[ast.AST] = []
    cur = fn.parent_of.get(id(node))
    while cur is not None:
        out.append(cur)
        cur = fn.parent_of.get(id(cur))
    return out


def _common_scope(fn: Function, a: ast.AST, b: ast.AST) -> ast.AST | None:
    """The innermost loop holding both nodes (else the function itself)."""
    anc_b = {id(x) for x in _ancestors(fn, b)}
    for x in _ancestors(fn, a):
        if id(x) in anc_b and isinstance(x, _LOOPS):
            return x
    return fn.node


def _exclusive_arms(fn: Function, a: ast.AST, b: ast.AST) -> bool:
    """True when a and b sit in different arms of one `if` (or of a try/except)."""
    chain_a = [a, *_ancestors(fn, a)]
    chain_b = [b, *_ancestors(fn, b)]
    ids_b = {id(x): i for i, x in enumerate(chain_b)}
    for i, x in enumerate(chain_a):
        if id(x) in ids_b and isinstance(x, (ast.If, ast.Try)):
            child_a = chain_a[i - 1] if i > 0 else a
            child_b = chain_b[ids_b[id(x)] - 1] if ids_b[id(x)] > 0 else b
            return _arm(x, child_a) != _arm(x, child_b)
        if id(x) in ids_b:
            return False
    return False


def _arm(node: ast.AST, child: ast.AST) -> str:
    for field in ("body", "orelse", "handlers", "finalbody"):
        if any(c is child for c in getattr(node, field, [])):
            return field
    return "test"


def _in_loop(fn: Function, node: ast.AST) -> bool:
    return any(isinstance(x, _LOOPS) for x in _ancestors(fn, node))


def _roots(fn: Function, scope: ast.AST, names: frozenset[str], line: int) -> frozenset[str]:
    """What this iteration's values of `names` are made of: the scope's loop variables (or, for a
    function body, its parameters), followed through the assignments made earlier in the same
    iteration. A name last assigned *later* in the loop carries the previous iteration's value
    (`prev`): it becomes its own root `prev@`, never equal to the current chunk."""
    lo = getattr(scope, "lineno", 0)
    hi = getattr(scope, "end_lineno", 10 ** 9) or 10 ** 9
    loop_vars = set(assigned_names(scope.target)) if isinstance(scope, (ast.For, ast.AsyncFor)) else set()
    if scope is fn.node:
        loop_vars = set(fn.params) - {"self", "cls"}
    inside = [a for a in fn.assigns if lo < a.line <= hi or (a.node is scope)]
    roots: set[str] = set()
    seen: set[tuple[str, int]] = set()
    work = [(n, line) for n in names]
    while work and len(seen) < 400:
        name, at = work.pop()
        if (name, at) in seen:
            continue
        seen.add((name, at))
        if name in loop_vars and not any(a.line < at and name in a.names and a.node is not scope for a in inside):
            roots.add(name)
            continue
        prior = [a for a in inside if name in a.names and a.line < at and a.node is not scope]
        if not prior:
            if any(name in a.names for a in inside):
                roots.add(f"{name}@")  # assigned later in the loop: the previous iteration's value
            continue  # loop-invariant (tokens, tables, constants)
        a = max(prior, key=lambda x: x.line)
        work.extend((n, a.line) for n in names_in(a.value, variables=True))
        if isinstance(a.node, ast.AugAssign):
            work.append((name, a.line))
    return frozenset(roots)


def _varying(fn: Function, scope: ast.AST) -> frozenset[str]:
    """Names that change from one pass over the scope to the next (assigned inside it)."""
    lo = getattr(scope, "lineno", 0)
    hi = getattr(scope, "end_lineno", 10 ** 9) or 10 ** 9
    names = {n for a in fn.assigns if lo <= a.line <= hi for n in a.names}
    if scope is fn.node:
        names |= set(fn.params)
    return frozenset(names - {"self", "cls"})
