"""The AST helpers every analysis module uses: names, dotted chains, walks, nesting bounds.

Why one module: the val-flow facts and the target/cache analyses grew their own `dotted` and
`names_in`, with the same names and different answers. Both behaviours are still needed (a call's
dotted name vs the variable a chain reads), so each is one function with a keyword that says
which, documented here.

Every walk here is iterative, so a 2,500-deep attribute chain cannot raise RecursionError. Answers
about a subtree (`names_in`, `calls_below`, `walk_nodes`) are memoised *on the node itself*: the
memo lives and dies with the parsed tree of one folder, so auditing many folders in one process
does not keep earlier folders' trees alive, and asking about every nested node of a long
expression costs one bottom-up pass, not one walk per node. Functions nested deeper than
`MAX_NESTING` are not analysed at all (`too_deep`); the analyses record them as unanalysed
("nested too deeply") instead of walking them.

Why near 500 lines: the walks and memos share the private helpers (`_unmemoised`, `_union`,
`_SHARED`) and their tests; split, those would become a cross-module API of their own.
"""

from __future__ import annotations

import ast
import bisect
import heapq
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

# Deepest expression/statement nesting inside one function the analyses walk. Real submissions
# stay under 20 levels; recursive stdlib helpers (`ast.unparse`) fail near 300, and the
# val-flow walker recurses once or twice per level on top of the statements around it.
MAX_NESTING = 100

_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_SCOPES = (*_DEFS, ast.Lambda)
# Shared, stateless node instances (`ast.Load()`, `ast.Add()`): never memoised on.
_SHARED = (ast.expr_context, ast.operator, ast.unaryop, ast.cmpop, ast.boolop)
EMPTY_NAMES: frozenset[str] = frozenset()


# -- walks -------------------------------------------------------------------------------------

def child_nodes(node: ast.AST) -> list[ast.AST]:
    """The child nodes of `node` in `ast.iter_child_nodes` order, leaving out the shared
    operator and context nodes (`ast.Load()`, `ast.Add()`: `_SHARED`), memoised on the node.

    Why memoised: the analyses walk each tree some twenty times; `ast.iter_child_nodes` re-reads
    every field by name on each visit, which was a fifth of the static check's time. Why without
    the shared nodes: they are 37% of a script's nodes (a `ctx` under every name), carry no
    name, line or value, and every analysis reads them through their parent (`binop.op`,
    `name.ctx`), so each walk visited them for nothing. The list lives and dies with the folder's
    tree; a shared node itself gets the empty tuple and nothing stored."""
    d = node.__dict__
    hit = d.get("_pga_kids")
    if hit is not None:
        return hit  # type: ignore[no-any-return]
    if isinstance(node, _SHARED):
        return _NO_KIDS  # type: ignore[return-value]
    out: list[ast.AST] = []
    for name in _node_fields(type(node)):
        f = d.get(name)
        if isinstance(f, ast.AST):
            out.append(f)
        elif isinstance(f, list):
            out.extend(x for x in f if isinstance(x, ast.AST))
    d["_pga_kids"] = out
    return out


_SHARED_FIELDS = frozenset({"ctx", "op", "ops"})  # the fields that hold `_SHARED` nodes, always
_FIELDS: dict[type, tuple[str, ...]] = {}


def _node_fields(cls: type) -> tuple[str, ...]:
    """The fields of a node class that may hold child nodes other than shared ones."""
    hit = _FIELDS.get(cls)
    if hit is None:
        hit = _FIELDS[cls] = tuple(f for f in cls._fields if f not in _SHARED_FIELDS)  # type: ignore[attr-defined]
    return hit


_NO_KIDS: tuple[ast.AST, ...] = ()


def walk(node: ast.AST) -> Iterator[ast.AST]:
    """`ast.walk` (breadth-first, node first, the same order) over the memoised child lists,
    without the shared operator and context nodes (see `child_nodes`)."""
    todo = deque([node])
    while todo:
        n = todo.popleft()
        todo.extend(child_nodes(n))
        yield n


def nodes_of(tree: ast.AST, *types: type) -> list[Any]:
    """The nodes of `tree` that are instances of `types`, in `ast.walk` order. The first call
    walks the tree once and indexes every node below the root by its class, on the root, so the
    many analyses that each look for the assignments or imports of a whole module share one walk.
    The root itself is not in its own index (see `walk_nodes`: no memo refers back to its node)."""
    index = tree.__dict__.get("_pga_types")
    if index is None:
        index = {}
        for i, n in enumerate(walk(tree)):
            if i:
                index.setdefault(type(n), []).append((i, n))
        tree.__dict__["_pga_types"] = index
    head = [tree] if isinstance(tree, types) else []
    lists = [pairs for cls, pairs in index.items() if issubclass(cls, types)]
    if len(lists) == 1:
        return head + [n for _, n in lists[0]]
    return head + [n for _, n in heapq.merge(*lists, key=lambda p: p[0])]


def walk_nodes(node: ast.AST) -> tuple[ast.AST, ...]:
    """`ast.walk(node)` (breadth-first, node first) as a tuple; the nodes below it are memoised
    on the node. The memo leaves the node itself out: a node that refers to itself makes its
    whole tree reference-cycle garbage, which the collector must trace after the check (0.1 s
    and 150,000 objects on #1945) instead of freeing it when the folder's context goes."""
    below = node.__dict__.get("_pga_below")
    if below is None:
        nodes = tuple(walk(node))
        if not isinstance(node, _SHARED):
            node.__dict__["_pga_below"] = nodes[1:]
        return nodes
    return (node, *below)


def own_nodes(fn_node: ast.AST) -> Iterator[tuple[ast.AST, ast.AST]]:
    """(node, parent) pairs inside a function, not descending into nested defs/classes/lambdas."""
    stack: list[tuple[ast.AST, ast.AST]] = [(c, fn_node) for c in child_nodes(fn_node)]
    while stack:
        node, parent = stack.pop()
        yield node, parent
        if not isinstance(node, _SCOPES):
            kids = child_nodes(node)
            if kids:
                stack += [(c, node) for c in kids]


def body_nodes(fn_node: ast.AST) -> tuple[ast.AST, ...]:
    """Every node of a function's (or module's) body statements, lambdas included, not entering
    nested defs and classes (which are not yielded either); memoised on the node. Unlike
    `own_nodes` it starts from the body, so decorators and default values are not included."""
    hit = fn_node.__dict__.get("_pga_body")
    if hit is not None:
        return hit  # type: ignore[no-any-return]
    out: list[ast.AST] = []
    stack: list[ast.AST] = list(getattr(fn_node, "body", []))
    while stack:
        n = stack.pop()
        if isinstance(n, _DEFS):
            continue
        out.append(n)
        stack.extend(child_nodes(n))
    nodes = tuple(out)
    fn_node.__dict__["_pga_body"] = nodes
    return nodes


def nesting_depth(fn_node: ast.AST, limit: int = MAX_NESTING) -> int:
    """Deepest nesting of a function's nodes, lambdas included (nested defs and classes are
    measured on their own), or `limit + 1` as soon as it is known to exceed `limit`. The shared
    operator and context nodes count as the level below their parent, as in `ast.walk`, although
    `child_nodes` leaves them out."""
    level = child_nodes(fn_node)
    depth = 0
    while level:  # one level at a time: a list comprehension per level, not a push per node
        depth += 1
        if depth > limit:
            return limit + 1
        # nested defs and classes end here (a lambda's body is part of this function)
        below = [c for n in level if not isinstance(n, _DEFS) for c in child_nodes(n)]
        if not below and any(isinstance(n, _WITH_SHARED) for n in level):
            return depth + 1  # a name in the deepest level has its `ctx` below it (at most limit + 1)
        level = below
    return depth


# the node classes with a field that holds shared nodes (`Name.ctx`, `BinOp.op`, `Compare.ops`)
_WITH_SHARED = tuple(c for c in vars(ast).values() if isinstance(c, type) and issubclass(c, ast.AST)
                     and _SHARED_FIELDS & set(c._fields))


def too_deep(fn_node: ast.AST) -> bool:
    """The function nests deeper than the analyses walk (`MAX_NESTING`); memoised on the node."""
    hit = fn_node.__dict__.get("_pga_deep")
    if hit is None:
        hit = nesting_depth(fn_node) > MAX_NESTING
        fn_node.__dict__["_pga_deep"] = hit
    return hit  # type: ignore[no-any-return]


def _bottom_up(node: ast.AST, attr: str, children: Callable[[ast.AST], list[ast.AST]],
               combine: Callable[[ast.AST, list], object]) -> object:
    """Compute `combine(n, [value of each child])` for every node under `node` that has no value
    yet, children first, without recursion; each value is stored on its node under `attr`.
    `children` never returns shared nodes (`_SHARED`), which carry no names.

    Two passes: a depth-first list of the nodes still without a value (each after its parent),
    then that list backwards, so every node's children have their values before it does."""
    if attr in node.__dict__:
        return node.__dict__[attr]
    order: list[tuple[ast.AST, list[ast.AST]]] = []
    todo = [node]
    while todo:
        n = todo.pop()
        kids = children(n)
        order.append((n, kids))
        todo += [c for c in kids if attr not in c.__dict__]
    for n, kids in reversed(order):
        n.__dict__[attr] = combine(n, [c.__dict__[attr] for c in kids])
    return node.__dict__[attr]



def _unmemoised(node: ast.AST, attr: str) -> list[ast.AST]:
    """`node` and the nodes below it that have no value under `attr` yet (shared operator nodes
    aside), each after its parent: walked backwards, every node comes after its children."""
    order: list[ast.AST] = []
    todo = [node]
    while todo:
        n = todo.pop()
        order.append(n)
        todo += [c for c in child_nodes(n) if attr not in c.__dict__]
    return order


def any_below(node: ast.AST, attr: str, here: Callable[[ast.AST], bool]) -> bool:
    """Whether `here` holds for `node` or any node below it (shared operator nodes aside),
    memoised on every node under `attr`: asking again about a sub-expression is a lookup."""
    if isinstance(node, _SHARED):
        return False
    hit = node.__dict__.get(attr)
    if hit is not None:
        return hit  # type: ignore[no-any-return]
    # `_bottom_up(node, attr, child_nodes, lambda n, kids: any(kids) or here(n))` without per-node
    # callbacks (tests/test_syntax_memos.py compares the two)
    for n in reversed(_unmemoised(node, attr)):
        n.__dict__[attr] = any(c.__dict__.get(attr) for c in n.__dict__["_pga_kids"]) or bool(here(n))
    return node.__dict__[attr]  # type: ignore[no-any-return]


def _union(own: frozenset[str], parts: list) -> frozenset[str]:
    """Union that reuses a part's set when nothing is added (long chains stay linear)."""
    out = own
    for p in parts:
        if not p or p is out:
            continue
        if not out:
            out = p
        elif not p <= out:
            out = out | p
    return out


# -- names -------------------------------------------------------------------------------------

def names_in(node: ast.AST | None, *, variables: bool = False) -> frozenset[str]:
    """Identifiers in an expression, memoised on the node. Two readings, for two kinds of caller:

    - default (the val-flow facts): every `Name` id and every attribute name, anywhere below
      `node` (lambdas and comprehensions included): `a.b(c)` -> {a, b, c};
    - `variables=True` (target/cache analyses): the variables the expression reads: names, and
      attributes of `self`/`cls` as `self.x`, but not other attribute names; names bound by a
      comprehension are not reads of the enclosing scope, and lambdas/defs read nothing here:
      `self.t[y].sum()` -> {self.t, y}.
    """
    if node is None or isinstance(node, _SHARED):
        return EMPTY_NAMES
    if variables:
        return _bottom_up(node, "_pga_vars", _var_children, _var_combine)  # type: ignore[return-value]
    hit = node.__dict__.get("_pga_ids")
    return hit if hit is not None else _ids_below(node)


def _ids_below(node: ast.AST) -> frozenset[str]:
    """The names of every node below `node` that has none yet, children first: `_bottom_up` with
    the callbacks written out (the val-flow walkers ask for the names of nearly every expression,
    a tenth of the check's time through the generic callbacks; tests/test_syntax_memos.py
    compares the two). A `Name` gives its id, an `Attribute` its attr."""
    for n in reversed(_unmemoised(node, "_pga_ids")):
        kind = type(n)
        own = frozenset((n.id,)) if kind is ast.Name else (  # type: ignore[attr-defined]
            frozenset((n.attr,)) if kind is ast.Attribute else EMPTY_NAMES)  # type: ignore[attr-defined]
        n.__dict__["_pga_ids"] = _union(own, [c.__dict__.get("_pga_ids") for c in n.__dict__["_pga_kids"]])
    return node.__dict__["_pga_ids"]  # type: ignore[no-any-return]


def calls_below(node: ast.AST) -> frozenset[str]:
    """What is called anywhere in an expression (`call_name` of every `Call` below `node`, the
    node included), memoised on the nodes: "does this value call `bincount` / a loader / a
    hashing helper?" is asked of every assignment by several analyses, and each question was a
    walk of the value. `x = np.bincount(f(y))` -> {"bincount", "f"}."""
    if isinstance(node, _SHARED):
        return EMPTY_NAMES
    hit = node.__dict__.get("_pga_calls")
    if hit is not None:
        return hit  # type: ignore[no-any-return]
    for n in reversed(_unmemoised(node, "_pga_calls")):
        own = frozenset((call_name(n),)) if type(n) is ast.Call else EMPTY_NAMES  # type: ignore[arg-type]
        n.__dict__["_pga_calls"] = _union(own, [c.__dict__.get("_pga_calls") for c in n.__dict__["_pga_kids"]])
    return node.__dict__["_pga_calls"]  # type: ignore[no-any-return]


_COMPS = (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)


def _is_self_attr(n: ast.AST) -> bool:
    return isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in ("self", "cls")


def _comp_parts(n: ast.AST) -> tuple[list[ast.AST], list[ast.AST]]:
    """(generator iterables, body parts read with the comprehension's names bound)."""
    gens = n.generators  # type: ignore[attr-defined]
    body: list[ast.AST] = [n.key, n.value] if isinstance(n, ast.DictComp) else [n.elt]  # type: ignore[attr-defined]
    body += [c for g in gens for c in g.ifs]
    return [g.iter for g in gens], body


def _var_children(n: ast.AST) -> list[ast.AST]:
    if isinstance(n, (ast.Name, ast.Lambda, ast.FunctionDef)) or _is_self_attr(n):
        return []
    if isinstance(n, _COMPS):
        iters, body = _comp_parts(n)
        return iters + body
    return child_nodes(n)


def _var_combine(n: ast.AST, kids: list) -> frozenset[str]:
    if isinstance(n, ast.Name):
        return frozenset({n.id})
    if _is_self_attr(n):
        return frozenset({f"{n.value.id}.{n.attr}"})  # type: ignore[attr-defined]
    if isinstance(n, (ast.Lambda, ast.FunctionDef)):
        return EMPTY_NAMES
    if isinstance(n, _COMPS):
        iters, _ = _comp_parts(n)
        bound = {b for g in n.generators for b in assigned_names(g.target)}  # type: ignore[attr-defined]
        read = _union(EMPTY_NAMES, kids[:len(iters)])
        inner = _union(EMPTY_NAMES, kids[len(iters):])
        return _union(read, [frozenset(x for x in inner if x not in bound)])
    return _union(EMPTY_NAMES, kids)


def lines_where(tree: ast.AST, attr: str, here: Callable[[Any], bool], *types: type) -> list[int]:
    """The sorted lines of the nodes of `types` in `tree` for which `here` holds, memoised on the
    tree under `attr`: the index `spans_a_line` reads to skip what holds none of them."""
    hit = tree.__dict__.get(attr)
    if hit is None:
        hit = tree.__dict__[attr] = sorted(n.lineno for n in nodes_of(tree, *types) if here(n))
    return hit  # type: ignore[no-any-return]


def spans_a_line(node: ast.AST, lines: list[int]) -> bool:
    """Whether one of `lines` (sorted) falls within the node's lines (any line, for a node without
    a span: a module). Every node below `node` starts within its lines (a def's decorators
    included, above its `def` line), so a question about the nodes below need not walk them when
    none of the lines that answer it is there."""
    start, end = getattr(node, "lineno", None), getattr(node, "end_lineno", None)
    if start is None or end is None:
        return bool(lines)
    start = min([start, *(d.lineno for d in getattr(node, "decorator_list", ()))])
    at = bisect.bisect_left(lines, start)
    return at < len(lines) and lines[at] <= end


# -- source text -------------------------------------------------------------------------------

def unparsed(node: ast.AST) -> str:
    """`ast.unparse(node)`, memoised on the node: a loop header is printed on every walk of its
    function (twice per loop), and `ast.unparse` builds a visitor each time."""
    hit = node.__dict__.get("_pga_text")
    if hit is None:
        hit = ast.unparse(node)
        if not isinstance(node, _SHARED):
            node.__dict__["_pga_text"] = hit
    return hit  # type: ignore[no-any-return]


# -- dotted names ------------------------------------------------------------------------------

def dotted(node: ast.AST, *, variable: bool = False) -> str:
    """The dotted name of an expression, '' when there is none. Two readings:

    - default (what is called or stepped): the whole chain, looking through subscripts and
      calls: `torch.optim.AdamW` -> "torch.optim.AdamW", `a.b[i].c` -> "a.b.c", `f().x` -> "f.x";
    - `variable=True` (which variable a chain reads): `self.x` -> "self.x", `a` -> "a", any other
      attribute chain -> its root name (`a.b.c` -> "a", `self.x.y` -> "self.x"); a subscript or
      call anywhere in the chain -> ''.
    """
    if not variable:  # memoised on the node: the val-flow walk asks about each ~3 times
        d = getattr(node, "__dict__", None)  # None for `None` (no callee), whose name is ''
        hit = d.get("_pga_dot") if d is not None else None
        if hit is None:
            hit = _dotted_chain(node)
            if d is not None and not isinstance(node, _SHARED):
                d["_pga_dot"] = hit
        return hit  # type: ignore[no-any-return]
    while isinstance(node, ast.Attribute):
        if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
            return f"{node.value.id}.{node.attr}"
        node = node.value
    return node.id if isinstance(node, ast.Name) else ""


def _dotted_chain(node: ast.AST) -> str:
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
        else:
            break
    return ".".join(reversed(parts))


def root_name(node: ast.AST) -> str | None:
    """The name an attribute/subscript/call chain starts from (`a.b[0].c()` -> "a")."""
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call, ast.Starred)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def call_name(node: ast.Call) -> str:
    """The last part of what is called: `np.add.at(...)` -> "at", `f(...)` -> "f"."""
    f = node.func
    if isinstance(f, ast.Name):
        return f.id
    if isinstance(f, ast.Attribute):
        return f.attr
    return ""


CHAIN_METHODS = frozenset({
    "to", "view", "reshape", "long", "int", "contiguous", "cuda", "cpu", "astype", "flatten",
    "clone", "numpy", "unsqueeze", "squeeze", "float", "double", "type", "detach", "ravel",
    "view_as", "reshape_as", "expand", "expand_as", "tolist", "item",
})
_WRAP_CALLS = frozenset({"as_tensor", "asarray", "array", "tensor", "from_numpy", "ascontiguousarray", "int", "long"})


def strip_chain(node: ast.expr) -> ast.expr:
    """`y.reshape(-1).long()` -> `y`; `torch.as_tensor(y)` -> `y` (same data, new view/type)."""
    while True:
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Attribute) and f.attr in CHAIN_METHODS:
                node = f.value
                continue
            if isinstance(f, (ast.Attribute, ast.Name)) and call_name(node) in _WRAP_CALLS and node.args:
                node = node.args[0]
                continue
        return node


def base_of(node: ast.expr) -> str | None:
    """The table a subscript/method reads: `self.t[oi][k]` -> "self.t"; `t.view(-1)` -> "t"."""
    node = strip_chain(node)
    while isinstance(node, ast.Subscript):
        node = strip_chain(node.value)
    return dotted(node, variable=True) or None


def assigned_names(target: ast.expr) -> list[str]:
    """Variables an assignment target binds, in order (`a, (self.b, c[i])` -> a, self.b, c)."""
    out: list[str] = []
    stack: list[ast.expr] = [target]
    while stack:
        t = stack.pop()
        if isinstance(t, (ast.Tuple, ast.List)):
            stack.extend(reversed(t.elts))
        elif isinstance(t, ast.Starred):
            stack.append(t.value)
        elif isinstance(t, ast.Subscript):
            b = base_of(t)
            if b:
                out.append(b)
        else:
            d = dotted(t, variable=True)
            if d:
                out.append(d)
    return out


def stmt_targets(stmt: ast.AST) -> list[str]:
    """Variables an assignment statement (`=`, annotated, augmented) binds; [] for others."""
    if isinstance(stmt, ast.Assign):
        return [n for t in stmt.targets for n in assigned_names(t)]
    if isinstance(stmt, (ast.AnnAssign, ast.AugAssign)):
        return assigned_names(stmt.target)
    return []
