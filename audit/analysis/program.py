"""The program of a submission: every function of every analysed source, walked to a fixpoint.

Functions are indexed by simple name across all sources (a submission's runner may call into
its `train_gpt.py`). A call resolves to user functions by name: `foo()` to functions called
`foo`, `self.foo()` to the method of the caller's class, `obj.foo()` to methods called `foo`
unless `foo` is a ubiquitous tensor/module method or `obj` is a library module. `Cls(...)`
resolves to `Cls.__init__`.

The walk is repeated until return summaries (and `self.` field labels) stop changing, so labels
cross any number of calls (`main -> run_eval -> ttt_adapt -> _step`).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from audit.analysis import names as N
from audit.analysis.facts import EMPTY, FunctionFacts, Labels
from audit.analysis.names import PATH_ATTR
from audit.analysis.parse import ParsedModule
from audit.analysis.syntax import dotted, too_deep
from audit.analysis.walker import walk_function

MAX_ROUNDS = 6


@dataclass
class FunctionRef:
    facts: FunctionFacts
    path: str
    body: list[ast.stmt]


@dataclass
class Program:
    """All functions of the analysed sources, with their facts after the fixpoint."""

    modules: list[ParsedModule]
    functions: list[FunctionRef] = field(default_factory=list)
    by_name: dict[str, list[FunctionRef]] = field(default_factory=lambda: defaultdict(list))
    by_qualname: dict[str, FunctionRef] = field(default_factory=dict)
    classes: set[str] = field(default_factory=set)
    fields: dict[str, dict[str, Labels]] = field(default_factory=lambda: defaultdict(dict))
    path_fields: dict[str, Labels] = field(default_factory=dict)  # path-like attr -> splits stored
    rounds: int = 0
    skipped: list[str] = field(default_factory=list)  # functions too deeply nested to walk

    def path_of(self, ff: FunctionFacts) -> str:
        return self.by_qualname[_key(ff)].path

    def callees(self, call: ast.Call, caller_class: str | None,
                aliases: dict[str, str] | None = None, caller: FunctionFacts | None = None) -> list[FunctionRef]:
        """User functions a call may reach (empty for library calls). `aliases` maps local names
        bound to a wrapped function (`step = torch.compile(train_step)`) to that function; with the
        `caller`'s facts, `obj.m()` on an object built from a known class reaches that class's `m`."""
        func = call.func
        if isinstance(func, ast.Name):
            name = (aliases or {}).get(func.id, func.id)
            if name in self.classes:
                return [r for r in self.by_name.get("__init__", []) if r.facts.class_name == name]
            return [r for r in self.by_name.get(name, []) if not r.facts.is_method]
        if isinstance(func, ast.Attribute):
            name = func.attr
            base = func.value
            if isinstance(base, ast.Name) and base.id in {"self", "cls"}:
                own = [r for r in self.by_name.get(name, []) if r.facts.class_name == caller_class]
                return own or [r for r in self.by_name.get(name, []) if r.facts.is_method]
            if name in N.COMMON_METHODS:
                return []
            root = dotted(base).split(".", 1)[0]
            if root in N.LIBRARY_ROOTS:
                return []
            methods = [r for r in self.by_name.get(name, []) if r.facts.is_method]
            kinds = self._instance_of(base.id, caller) if isinstance(base, ast.Name) else None
            if kinds:
                mine = [r for r in methods if r.facts.class_name in kinds]
                return mine or methods
            return methods
        return []


    def _instance_of(self, name: str, caller: FunctionFacts | None) -> frozenset[str] | None:
        """The user classes `name` is built from in `caller` or a function enclosing it."""
        while caller is not None:
            kinds = caller.instance_types.get(name)
            if kinds is not None:
                return kinds
            parent = self.by_qualname.get(caller.parent or "")
            caller = parent.facts if parent is not None and caller.parent and not caller.parent.endswith(
                "<module>") else None
        return None


def _key(ff: FunctionFacts) -> str:
    return ff.qualname


def _params(args: ast.arguments) -> tuple[list[str], str | None, str | None]:
    ps = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
    return ps, (args.vararg.arg if args.vararg else None), (args.kwarg.arg if args.kwarg else None)


def _decorated_grad_off(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    for d in node.decorator_list:
        if dotted(d.func if isinstance(d, ast.Call) else d).endswith(("no_grad", "inference_mode")):
            return True
    return False


def _collect(prog: Program, pm: ParsedModule) -> None:
    assert pm.tree is not None
    mod_q = f"{pm.path}:<module>"
    mod = FunctionFacts(mod_q, "<module>", None, pm.tree, [], None, None, 1)
    ref = FunctionRef(mod, pm.path, pm.tree.body)
    prog.functions.append(ref)
    prog.by_qualname[mod_q] = ref

    _collect_defs(prog, pm, pm.tree.body, f"{pm.path}:", None, mod_q)


def _collect_defs(prog: Program, pm: ParsedModule, body: list[ast.stmt], prefix: str, cls: str | None,
                  parent: str) -> None:
    """The functions defined in `body` and below (a module-level function: a recursive closure
    is a reference cycle that would keep the folder's trees alive until a collection)."""
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            ps, va, kw = _params(node.args)
            q = f"{prefix}{node.name}"
            ff = FunctionFacts(q, node.name, cls, node, ps, va, kw, node.lineno,
                               decorated_grad_off=_decorated_grad_off(node), parent=parent)
            r = FunctionRef(ff, pm.path, node.body)
            prog.functions.append(r)
            prog.by_name[node.name].append(r)
            prog.by_qualname[q] = r
            _collect_defs(prog, pm, node.body, q + ".", None, q)
        elif isinstance(node, ast.ClassDef):
            prog.classes.add(node.name)
            _collect_defs(prog, pm, node.body, f"{prefix}{node.name}.", node.name, parent)
        elif isinstance(node, (ast.If, ast.Try, ast.With, ast.For, ast.While)):
            # defs under `if __name__ == ...:` / try-imports still count
            for sub in ("body", "orelse", "finalbody"):
                _collect_defs(prog, pm, getattr(node, sub, []) or [], prefix, cls, parent)
            for h in getattr(node, "handlers", []) or []:
                _collect_defs(prog, pm, h.body, prefix, cls, parent)


def build_program(modules: list[ParsedModule]) -> Program:
    """Walk every function of the parsed sources until return summaries are stable.

    A function is walked again only when something it read has changed since its last walk: a
    callee's summary (recorded with the summary's version at the time of the read), its class's
    `self.` fields, its enclosing function (summary or the environment handed to nested defs), or
    a path-like field it mentions. A walk is a function of those inputs alone, so skipping a walk
    whose inputs are unchanged gives the same facts; most functions are walked once instead of
    twice (a callee defined after its caller still costs the caller a second walk).
    """
    prog = Program([m for m in modules if m.tree is not None])
    for pm in prog.modules:
        _collect(prog, pm)

    version: dict[str, int] = defaultdict(int)  # qualname -> times its summary changed
    reads: dict[str, dict[str, int]] = {}  # caller -> {callee: version read}
    current: list[str] = [""]

    def resolve(call: ast.Call, name: str, caller: FunctionFacts):
        out = []
        seen = reads.setdefault(current[0], {})
        for r in prog.callees(call, caller.class_name, caller.call_aliases, caller):
            seen[r.facts.qualname] = version[r.facts.qualname]
            out.append((r.facts, r.facts.returns if r.facts.name != "__init__" else _init_result(r.facts)))
        return out

    nested_env: dict[str, dict[str, Labels]] = {}
    deep = {r.facts.qualname for r in prog.functions if too_deep(r.facts.node)}
    prog.skipped.extend(q for q in prog.by_qualname if q in deep)
    live = [r for r in prog.functions if r.facts.qualname not in deep]
    inputs: dict[str, tuple] = {}  # qualname -> (outer env, class fields, parent version) last read
    path_asked: dict[str, dict[str, Labels | None]] = {}  # qualname -> path fields looked up, as they were
    todo = live
    classes = frozenset(prog.classes)
    for rnd in range(MAX_ROUNDS):
        for r in todo:
            ff = r.facts
            before = _summary(ff)
            outer = nested_env.get(ff.qualname, {}) if ff.parent and not ff.parent.endswith("<module>") else {}
            fields = prog.fields.get(ff.class_name or "", {})
            current[0] = ff.qualname
            reads[ff.qualname] = {}
            asked = _AskedKeys(prog.path_fields)
            inputs[ff.qualname] = _inputs(prog, ff, outer, version)
            try:
                walk_function(ff, r.body, resolve, fields, outer, nested_env, classes, asked)
            except RecursionError:  # absurdly nested expressions: leave this function without facts
                ff.sites, ff.returns = [], frozenset()
                prog.skipped.append(ff.qualname)
            path_asked[ff.qualname] = asked.keys_asked
            if _summary(ff) != before:
                version[ff.qualname] += 1
        _merge_fields(prog)
        prog.rounds = rnd + 1
        todo = [r for r in live if _stale(prog, r.facts, reads, inputs, nested_env, version)
                or any(prog.path_fields.get(k) != v for k, v in path_asked.get(r.facts.qualname, {}).items())]
        if not todo:
            break
    return prog


def _inputs(prog: Program, ff: FunctionFacts, outer: dict[str, Labels], version: dict[str, int]) -> tuple:
    """What a walk of `ff` reads besides its callees' summaries and the path fields, as a
    comparable snapshot."""
    fields = prog.fields.get(ff.class_name or "", {})
    return (dict(outer), tuple(sorted(fields.items())), version[ff.parent or ""])


class _AskedKeys(Mapping[str, Labels]):
    """The program's path fields as one walk sees them, recording every key it looks up with
    the value it found (None: absent), so the walk is repeated only if one of those changes."""

    def __init__(self, data: dict[str, Labels]):
        self._data = data
        self.keys_asked: dict[str, Labels | None] = {}

    def __getitem__(self, key: str) -> Labels:
        self.keys_asked[key] = self._data.get(key)
        return self._data[key]

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.keys_asked[key] = self._data.get(key)
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        raise TypeError("a walk looks path fields up by name; iterating would hide what it read")

    def __len__(self) -> int:
        return len(self._data)


def _stale(prog: Program, ff: FunctionFacts, reads: dict[str, dict[str, int]], inputs: dict[str, tuple],
           nested_env: dict[str, dict[str, Labels]], version: dict[str, int]) -> bool:
    q = ff.qualname
    if any(version[c] != v for c, v in reads.get(q, {}).items()):
        return True
    outer = nested_env.get(q, {}) if ff.parent and not ff.parent.endswith("<module>") else {}
    return inputs.get(q) != _inputs(prog, ff, outer, version)


def _summary(ff: FunctionFacts) -> tuple:
    return (ff.returns, tuple(sorted(ff.param_writes.items())), tuple(sorted(ff.acc_params.items())),
            tuple(sorted(ff.field_writes.items())), tuple(sorted(ff.free_accs.items())),
            tuple(sorted(ff.method_accs.items())),
            ff.returns_detached, ff.return_elts, ff.returns_classes,
            tuple(sorted(ff.instance_types.items())))


def _field_signature(prog: Program) -> dict[str, tuple]:
    return {c: tuple(sorted(f.items())) for c, f in prog.fields.items()}


def _changed_classes(before: dict[str, tuple], after: dict[str, tuple]) -> set[str]:
    return {c for c in set(before) | set(after) if before.get(c) != after.get(c)}


def _init_result(ff: FunctionFacts) -> Labels:
    """An object built by `Cls(args)` carries whatever its `__init__` stored in `self.`."""
    out: set[str] = set()
    for attr, lab in ff.field_writes.items():
        # `self.val_files = ...` on a config object: reads of `.val_files` are val by name; the
        # object itself (and so `args.seq_len`) must not become val-derived.
        if N.is_val_name(attr) or N.is_train_name(attr) or PATH_ATTR.search(attr):
            continue
        out |= lab
    return frozenset(out)


def _merge_fields(prog: Program) -> None:
    """`self.x = <val>` in any method makes `self.x` val-derived in every method of the class."""
    for r in prog.functions:
        ff = r.facts
        if ff.class_name is None:
            continue
        cls_fields = prog.fields[ff.class_name]
        for attr, lab in ff.field_writes.items():
            split = frozenset(x for x in lab if x in {N.VAL, N.TRAIN})
            if split and PATH_ATTR.search(attr):
                prog.path_fields[attr] = prog.path_fields.get(attr, EMPTY) | split
            concrete = frozenset(x for x in lab if not x.startswith(N.PARAM))
            if ff.name == "__init__":
                concrete = lab  # params of __init__ are resolved at construction; keep symbolic
                concrete = frozenset(x for x in concrete if not x.startswith(N.PARAM))
            if concrete:
                cls_fields[attr] = cls_fields.get(attr, EMPTY) | concrete
