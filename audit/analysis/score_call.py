"""Which call in `main()` produces the claimed score, and how main builds the model it scores.

The probes (audit/probes) must drive the evaluator that produced the number the submission
claims, not any function that looks like one. The claimed number is the one logged last: the
call whose result is formatted into the last `val_bpb` log line of main is that evaluator.
Everything here is read from the syntax tree; nothing is imported or executed.

The claimed score is followed through logging wrappers (`timed_eval(label, fn, *args)`) and
helpers of main (three levels), and the logs decide between candidates with the same label.

(Over 450 lines on purpose: finding the call, the model, the hyperparameters, the data object
and the steps main replays before the call is one plan, `ScoreCall`, handed to the probe driver
as a whole; split, each part would need the others' scope bookkeeping.)
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

SCORE_WORDS = ("val_bpb", "val_loss")
HPARAM_WORDS = ("hyperparam", "config", "args", "settings", "hparams")


@dataclass(frozen=True)
class Binding:
    name: str
    line: int
    source: str  # the right-hand side, as written


@dataclass(frozen=True)
class Step:
    """A statement of main between building the model and the score call that consumes the
    validation tokens (pre-quant TTT, calibration, ...): part of the pipeline behind the score."""

    line: int
    source: str
    guards: tuple[str, ...] = ()  # enclosing `if` tests that must hold (`not (...)` for else branches)
    binds: tuple[str, ...] = ()


@dataclass(frozen=True)
class ScoreCall:
    """The evaluator call behind the claimed score, with what the probe needs to repeat it."""

    path: str  # analysis path of the module holding main
    line: int
    callee: str  # e.g. "eval_val", "HoldoutEvaluator().evaluate", "evaluate"
    call_args: tuple[tuple[str | None, str], ...]  # (keyword or None, source) as written at the call
    label: str | None  # the log line's first word ("final_int8_zlib_roundtrip_exact")
    bindings: tuple[Binding, ...] = ()  # assignments in main the callee depends on, in order
    hparams: tuple[Binding, ...] = ()  # `args = Hyperparameters()`
    model: Binding | None = None  # `base_model = GPT(vocab_size=args.vocab_size, ...)`
    main_name: str = "main"
    steps: tuple[Step, ...] = ()
    trains: bool = False  # the evaluator (or a replayed step) calls backward()/an optimizer step
    val_names: tuple[str, ...] = ()  # names of the validation tokens at the call site
    luts: Binding | None = None  # `base_bytes_lut, has_leading_space_lut, ... = build_sentencepiece_luts(sp, ...)`
    sp_names: tuple[str, ...] = ()  # names main binds to a SentencePieceProcessor
    notes: tuple[str, ...] = field(default=())
    hp_aliases: tuple[str, ...] = ()  # other names the Hyperparameters go by where the model is built
    objects: tuple[Binding, ...] = ()  # `val_data = ValidationData(h, device)` handed to the evaluator
    defs: Binding | None = None  # functions the scope defines that the evaluator's arguments use


@dataclass(frozen=True)
class LoggedScores:
    """What the logs say was scored: the claimed (canonical) labels and every label logged.

    The claimed score's log line names the evaluation that produced it; a block whose score
    lines appear in no log did not run (a switched-off SLOT block printing the same final label)."""

    claimed: tuple[str, ...] = ()
    seen: frozenset[str] = frozenset()


@dataclass
class _Candidate:
    """One place where a score is logged: the evaluator call whose result the log line formats."""

    order: tuple[int, ...]  # execution order: call-site lines from main down to this statement
    scope: ast.FunctionDef  # the function holding the evaluator call
    chain: tuple[tuple[ast.FunctionDef, ast.Call], ...]  # (caller, call of the next function) from main
    stmt: ast.stmt  # the statement holding the evaluator call
    func: ast.expr  # the evaluator
    args: list[ast.expr]
    keywords: list[ast.keyword]
    label: str | None  # the label as written (placeholders kept as `{...}`)
    pattern: re.Pattern[str] | None  # the label as a regex over logged labels
    siblings: tuple[re.Pattern[str], ...] = ()  # other score lines formatting the same result
    via: str | None = None  # the logging wrapper (`timed_eval`) the call goes through


def find_score_call(path: str, tree: ast.Module, source: str, logged: LoggedScores | None = None) -> ScoreCall | None:
    """The score call behind the claimed score, or None when no evaluator call is logged as a score.

    Score lines are looked for in main and in the functions it calls (a `train_and_eval(h)`
    helper), and through logging wrappers (`timed_eval(label, fn, *args)` calls `fn(*args)` and
    logs `{label} val_loss:... val_bpb:...`): the evaluator is then `fn`, its arguments the rest.
    With logs, the candidate whose label is the claimed one (and whose block ran) wins; otherwise
    the score logged last. A scalar conversion (`(loss_sum / n).item()`) is never the evaluator:
    the call it converts is, and a score computed inline (no call) is not a candidate."""
    main = _main_function(tree)
    if main is None:
        return None
    funcs = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}
    lines = None if _parses(source) else source.splitlines()
    ctx = _Module(tree, funcs, _wrappers(funcs, lines), _imported_names(tree), lines)
    cands = _candidates(ctx, main, (), (), set())
    if not cands:
        return None
    best = _choose(cands, logged)
    return _score_call_at(path, tree, source, ctx, main, best)


@dataclass
class _Module:
    tree: ast.Module
    funcs: dict[str, ast.FunctionDef]
    wrappers: dict[str, tuple[int, int, str | None]]  # name -> (label index, fn index, label param)
    imported: frozenset[str]
    lines: list[str] | None = None  # the original source, when the tree is of a downgraded text


def _choose(cands: list[_Candidate], logged: LoggedScores | None) -> _Candidate:
    """The claimed label's candidate (of several, one whose other score lines were logged too: a
    switched-off block can print the same final label); else the last logged one; else the last."""
    cands = sorted(cands, key=lambda c: c.order)
    if logged is None or not logged.seen:
        return cands[-1]

    def seen(p: re.Pattern[str] | None) -> bool:
        return p is not None and any(p.fullmatch(lab) for lab in logged.seen)
    claimed = [c for c in cands if c.pattern is not None and any(c.pattern.fullmatch(lab) for lab in logged.claimed)]
    if claimed:
        return ([c for c in claimed if all(seen(s) for s in c.siblings)] or claimed)[-1]
    return ([c for c in cands if seen(c.pattern)] or cands)[-1]


MAX_DEPTH = 3


def _candidates(ctx: _Module, fn: ast.FunctionDef, order: tuple[int, ...], chain, visiting: set[str]) -> list[_Candidate]:
    """Score candidates of fn and of the module functions it calls, in execution order."""
    visiting = visiting | {fn.name}
    stmts = sorted((n for n in ast.walk(fn) if isinstance(n, ast.stmt)), key=lambda n: (n.lineno, n.col_offset))
    assigns = [(s, _assigned_names(s)) for s in stmts if isinstance(s, (ast.Assign, ast.AnnAssign)) and s.value is not None]
    logs = [(s, *_score_log_full(s, ctx.lines)) for s in stmts]
    logs = [(s, label, names, pat) for s, label, names, pat in logs if label is not None]
    out: list[_Candidate] = []
    for log, label, names, pat in logs:
        for s, targets in reversed(assigns):
            if s.lineno < log.lineno and targets & names and isinstance(_call_of(s), ast.Call):
                call = _evaluator_call(ctx, s, assigns)
                if call is not None:
                    st, c = call
                    sibs = tuple(p for other, _lab, onames, p in logs if other is not log and p is not None
                                 and onames & targets and other.lineno > s.lineno)
                    out.append(_Candidate((*order, log.lineno), fn, chain, st, c.func, list(c.args), list(c.keywords),
                                          label, pat, sibs))
                break
    for st in stmts:
        value = _call_of(st) if isinstance(st, (ast.Expr, ast.Assign, ast.AnnAssign)) else None
        if not isinstance(value, ast.Call) or not isinstance(value.func, ast.Name):
            continue
        name = value.func.id
        if name in ctx.wrappers:
            cand = _wrapper_candidate(ctx, fn, chain, st, value, (*order, st.lineno))
            if cand is not None:
                out.append(cand)
        elif name in ctx.funcs and name not in visiting and len(order) < MAX_DEPTH:
            out += _candidates(ctx, ctx.funcs[name], (*order, st.lineno), (*chain, (fn, value)), visiting)
    return out


def _wrapper_candidate(ctx: _Module, fn, chain, stmt: ast.stmt, call: ast.Call, order) -> _Candidate | None:
    assert isinstance(call.func, ast.Name)
    w = ctx.funcs[call.func.id]
    label_i, fn_i, _ = ctx.wrappers[w.name]
    params = [a.arg for a in (*w.args.posonlyargs, *w.args.args)]
    pos = list(call.args)
    kws = {k.arg: k.value for k in call.keywords if k.arg is not None}
    if any(isinstance(a, ast.Starred) for a in pos[: max(label_i, fn_i) + 1]):
        return None
    label_node = pos[label_i] if label_i < len(pos) else kws.get(params[label_i])
    fn_node = pos[fn_i] if fn_i < len(pos) else kws.get(params[fn_i])
    if fn_node is None:
        return None
    label = label_node.value if isinstance(label_node, ast.Constant) and isinstance(label_node.value, str) else None
    own = set(params)
    rest = [a for i, a in enumerate(pos) if i > max(label_i, fn_i)]
    kw_rest = [k for k in call.keywords if k.arg is None or k.arg not in own]
    pat = re.compile(re.escape(label.strip())) if label else None
    return _Candidate(order, fn, chain, stmt, fn_node, rest, kw_rest, label, pat, (), via=w.name)


def _wrappers(funcs: dict[str, ast.FunctionDef], lines: list[str] | None = None) -> dict[str, tuple[int, int, str | None]]:
    """Module functions that call a parameter (`fn(*args)`) and log its result as a score under a
    label parameter: `def timed_eval(label, fn, *args): v = fn(*args); log(f"{label} val_bpb:{v}")`."""
    out: dict[str, tuple[int, int, str | None]] = {}
    for f in funcs.values():
        params = [a.arg for a in (*f.args.posonlyargs, *f.args.args)]
        called = [n.func.id for n in ast.walk(f) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                  and n.func.id in params]
        if not called or f.args.vararg is None:
            continue
        for st in ast.walk(f):
            if not isinstance(st, ast.stmt):
                continue
            label, names, _ = _score_log_full(st, lines)
            lab_params = [p for p in params if p in names and p not in called]
            if label is not None and lab_params:
                out[f.name] = (params.index(lab_params[0]), params.index(called[0]), lab_params[0])
                break
    return out


CONVERSIONS = ("item", "tolist", "cpu", "detach", "float", "double", "numpy")


def _evaluator_call(ctx: _Module, stmt: ast.stmt, assigns) -> tuple[ast.stmt, ast.Call] | None:
    """The evaluator call behind an assignment: itself, or, for a scalar conversion or a library
    call (`v = (loss_sum / n).item()`, `float(x)`), the call that assigned what it converts."""
    seen: set[int] = set()
    todo = [stmt]
    while todo:
        s = todo.pop(0)
        if id(s) in seen or len(seen) > 8:
            continue
        seen.add(id(s))
        call = _call_of(s)
        if not isinstance(call, ast.Call):
            continue
        if not _is_conversion(ctx, call):
            return s, call
        used = {n.id for n in ast.walk(call) if isinstance(n, ast.Name)} - ctx.imported
        for prev, targets in reversed(assigns):
            if prev.lineno < s.lineno and targets & used:
                todo.append(prev)
    return None


def _is_conversion(ctx: _Module, call: ast.Call) -> bool:
    func = call.func
    if isinstance(func, ast.Attribute) and func.attr in CONVERSIONS:
        return True
    if isinstance(func, ast.Name):
        # a bare imported function (`from eval_helpers import eval_val`) may well be the evaluator
        return func.id in ("float", "int", "round", "abs", "sum", "max", "min", "len")
    root = func
    while isinstance(root, (ast.Attribute, ast.Call, ast.Subscript)):
        root = root.value if not isinstance(root, ast.Call) else root.func
    return isinstance(root, ast.Name) and root.id in ctx.imported


def _imported_names(tree: ast.Module) -> frozenset[str]:
    out: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for a in node.names:
                out.add((a.asname or a.name).split(".")[0])
    return frozenset(out)


def _score_call_at(path: str, tree: ast.Module, source: str, ctx: _Module, main: ast.FunctionDef,
                   best: _Candidate) -> ScoreCall:
    scope = best.scope
    stmts = sorted((n for n in ast.walk(scope) if isinstance(n, ast.stmt)), key=lambda n: (n.lineno, n.col_offset))
    assigns = [(s, _assigned_names(s)) for s in stmts if isinstance(s, (ast.Assign, ast.AnnAssign)) and s.value is not None]
    stmt = best.stmt
    call = ast.Call(func=best.func, args=best.args, keywords=best.keywords)
    if ctx.lines is None:
        seg = lambda n: ast.get_source_segment(source, n) or ast.unparse(n)  # noqa: E731
    else:  # columns of the downgraded text differ from the original's after an f-string
        seg = ast.unparse
    classes = {c.name for c in tree.body if isinstance(c, ast.ClassDef)}
    hparams, hp_aliases = _hparams_for(best, assigns, classes, seg)
    model = _model_binding(call, assigns, classes, tree, stmt.lineno, seg)
    model_node = _model_node(call, assigns, classes, tree, stmt.lineno)
    notes: list[str] = []
    if model is None:
        found = _model_via_factory(ctx, call, assigns, stmt.lineno, seg)
        if found is not None:
            model, model_node, aliases = found
            hp_aliases = tuple(dict.fromkeys((*hp_aliases, *aliases)))
            notes.append(f"model built inside {model.source.split('(')[0]} as main's factory does")
    objects = _object_bindings(call, assigns, tree, stmt.lineno, seg)
    # the model or the validation data handed in by a caller (`run_evals(h, device, val_data, eval_model)`)
    for caller, c_assigns, mapped, line in _up_the_chain(best):
        if not (model is None or not objects):
            break
        there = ast.Call(func=ast.Name("_"), args=[ast.Name(n) for n in mapped], keywords=[])
        if model is None:
            found_b = _model_binding(there, c_assigns, classes, tree, line, seg)
            found_f = _model_via_factory(ctx, there, c_assigns, line, seg) if found_b is None else None
            if found_b is not None or found_f is not None:
                b = found_b if found_b is not None else found_f[0]  # type: ignore[index]
                if b.name in mapped:
                    model = Binding(mapped[b.name], scope.lineno, b.source)
                    if found_f is not None:
                        hp_aliases = tuple(dict.fromkeys((*hp_aliases, *found_f[2])))
                    notes.append(f"model handed in by {caller.name}() (line {line})")
        if not objects:
            objects = tuple(Binding(mapped[b.name], scope.lineno, b.source)
                            for b in _object_bindings(there, c_assigns, tree, line, seg) if b.name in mapped)
    args = tuple((None, seg(a)) for a in call.args) + tuple((k.arg, seg(k.value)) for k in call.keywords)
    luts = next((Binding(",".join(sorted(names)), s.lineno, seg(s.value)) for s, names in assigns
                 if len(names) >= 2 and any("byte" in n.lower() for n in names) and isinstance(s.value, ast.Call)), None)
    sp_names = tuple(n for s, names in assigns for n in names
                     if isinstance(s.value, ast.Call) and "SentencePiece" in ast.unparse(s.value.func))
    if luts is None:  # built inside the validation-data class: `self.base_bytes_lut, ... = build_...(self.sp, ...)`
        luts, sp_names = _attribute_luts(tree, seg) or (None, sp_names)
    val_names = _val_aliases({n.id for a in (*call.args, *(k.value for k in call.keywords)) for n in ast.walk(a)
                              if isinstance(n, ast.Name) and _is_tokens_name(n.id)}, assigns)
    evals = _evaluation_lines(ctx, scope, stmts, assigns)
    # from the first model the scope builds: the scored model is often a fresh one loaded with the
    # trained model's (quantized) weights, and what adapted the trained one on val shows in it
    first = min((s.lineno for s, _n in assigns if s.lineno < stmt.lineno and _builds_model(ctx, s)),
                default=model.line if model else 0)
    steps = _val_steps(scope, val_names, min(first, model.line) if model else first, stmt.lineno, evals, seg)
    # and in the callers, before they call down: `prequant_ttt(h, base_model, val_data)` in
    # train_and_eval before run_evals(h, device, val_data, eval_model)
    for caller, c_assigns, mapped, line in _up_the_chain(best):
        c_stmts = sorted((n for n in ast.walk(caller) if isinstance(n, ast.stmt)), key=lambda n: (n.lineno, n.col_offset))
        c_val = _val_aliases({n for n in mapped if _is_tokens_name(n)}, c_assigns)
        c_first = min((s.lineno for s, _n in c_assigns if _builds_model(ctx, s)), default=caller.lineno)
        outer = _val_steps(caller, c_val, c_first, line - 1, _evaluation_lines(ctx, caller, c_stmts, c_assigns), seg)
        steps = (*outer, *steps)
        val_names = tuple(sorted({*val_names, *c_val}))
    step_stmts = [ast.parse(st.source.strip()).body[0] for st in steps if _parses(st.source)]
    step_nodes: list[ast.AST] = [*step_stmts, *(ast.parse(g, mode="eval").body for st in steps for g in st.guards
                                                if _parses(g))]
    trains = _trains(tree, [call.func, *step_stmts])
    # what the evaluator, the model and the replayed steps use (a step's `ttt_epochs=ttt_epochs`)
    needed: list[ast.AST] = [call.func, *call.args, *(k.value for k in call.keywords),
                             *([model_node] if model_node is not None else []), *step_nodes]
    bindings = _bindings_for(needed, assigns, stmt.lineno, seg)
    hp_names = {b.name for b in hparams}
    step_binds = {n for st in steps for n in st.binds}
    bindings = tuple(b for b in bindings if b.name not in hp_names and b.name not in step_binds
                     and (model is None or b.name != model.name))
    if best.via:
        notes.append(f"score logged by {best.via}({best.label!r}, {seg(best.func)}, ...)")
    defs = _nested_defs(scope, stmt.lineno, [*needed, *(ast.parse(b.source, mode="eval").body for b in bindings
                                                      if _parses(b.source))], assigns, seg)
    return ScoreCall(path, stmt.lineno, seg(call.func), args, best.label, bindings, hparams[:1], model, scope.name,
                     steps, trains, val_names, luts, sp_names, tuple(notes), hp_aliases, objects, defs)


def _nested_defs(scope: ast.FunctionDef, before: int, nodes: list, assigns, seg) -> Binding | None:
    """Functions the scope defines before the call that the evaluator's arguments use (`forward_ttt=
    _fwd_ttt`), with the scope's assignments of their `nonlocal` names, as one block of source the
    probe runs inside a function (so `nonlocal` stays valid); closures read the rest at call time."""
    import textwrap

    nested = {f.name: f for f in ast.walk(scope) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
              and f is not scope and f.lineno < before
              and not f.name.lower().startswith(LOGGING_PREFIXES)}  # main's loggers: the probe's no-op stands in
    wanted = {n.id for node in nodes for n in ast.walk(node) if isinstance(n, ast.Name)} & set(nested)
    todo, seen = list(wanted), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += [n.id for n in ast.walk(nested[name]) if isinstance(n, ast.Name) and n.id in nested]
    if not seen:
        return None
    nonlocals = {n for name in seen for st in ast.walk(nested[name]) if isinstance(st, ast.Nonlocal) for n in st.names}
    parts: list[tuple[int, str]] = []
    for n in nonlocals:
        prior = [s for s, targets in assigns if n in targets and s.lineno < before]
        if prior:
            parts.append((prior[0].lineno, f"{n} = {seg(prior[0].value)}"))
    parts += [(nested[name].lineno, textwrap.dedent(ast.unparse(nested[name]))) for name in seen]
    return Binding(",".join(sorted(seen | nonlocals)), min(p[0] for p in parts),
                   "\n".join(src for _, src in sorted(parts)))


def _hparams_for(best: _Candidate, assigns, classes: set[str], seg) -> tuple[tuple[Binding, ...], tuple[str, ...]]:
    """The Hyperparameters construction: in the scope itself, or in a caller (main builds `h` and
    hands it to `train_and_eval(h, device)`); then the names it goes by on the way down."""
    own = tuple(Binding(n, s.lineno, seg(s.value)) for s, names in assigns for n in names
                if isinstance(s.value, ast.Call) and _is_hparams_ctor(s.value, classes))
    if own:
        return own, ()
    for depth in range(len(best.chain) - 1, -1, -1):
        caller, _ = best.chain[depth]
        c_assigns = [(s, _assigned_names(s)) for s in ast.walk(caller) if isinstance(s, (ast.Assign, ast.AnnAssign))
                     and s.value is not None]
        found = [(n, s) for s, names in c_assigns for n in names
                 if isinstance(s.value, ast.Call) and _is_hparams_ctor(s.value, classes)]
        if not found:
            continue
        name, s = found[0]
        names = {name}
        for _caller, callsite in best.chain[depth:]:  # follow the argument down to the scope
            callee = next((f for f, _c in best.chain if f.name == getattr(callsite.func, "id", None)), None) or best.scope
            names = _param_names_for(callee, callsite, names)
        if not names:
            continue
        first = sorted(names)[0]
        return (Binding(first, s.lineno, seg(s.value)),), tuple(sorted(names - {first}))
    return (), ()


def _up_the_chain(best: _Candidate):
    """For each caller of the scope, innermost first: (caller, its assignments, {caller's name:
    the scope's parameter it becomes}, line of the call) for the scope's parameters that the
    evaluator call uses, followed through the arguments each caller passes."""
    used = {n.id for a in (*best.args, *(k.value for k in best.keywords)) for n in ast.walk(a) if isinstance(n, ast.Name)}
    fn = best.scope
    current = {p: p for p in (a.arg for a in (*fn.args.posonlyargs, *fn.args.args)) if p in used}
    out = []
    for caller, callsite in reversed(best.chain):
        params = [a.arg for a in (*fn.args.posonlyargs, *fn.args.args)]
        mapped = {a.id: current[params[i]] for i, a in enumerate(callsite.args)
                  if i < len(params) and params[i] in current and isinstance(a, ast.Name)}
        mapped.update({k.value.id: current[k.arg] for k in callsite.keywords
                       if k.arg in current and isinstance(k.value, ast.Name)})
        if not mapped:
            break
        c_assigns = [(s, _assigned_names(s)) for s in ast.walk(caller) if isinstance(s, (ast.Assign, ast.AnnAssign))
                     and s.value is not None]
        # statements before the call; on its own line too (`m = deserialize(h); run_evals(h, m)`)
        c_assigns = [(s, n) for s, n in c_assigns if (s.lineno, s.col_offset) < (callsite.lineno, callsite.col_offset)]
        out.append((caller, sorted(c_assigns, key=lambda x: x[0].lineno), mapped, callsite.lineno + 1))
        fn, current = caller, mapped
    return out


def _param_names_for(callee: ast.FunctionDef, call: ast.Call, names: set[str]) -> set[str]:
    params = [a.arg for a in (*callee.args.posonlyargs, *callee.args.args)]
    out = {params[i] for i, a in enumerate(call.args) if i < len(params) and isinstance(a, ast.Name) and a.id in names}
    out |= {k.arg for k in call.keywords if k.arg and isinstance(k.value, ast.Name) and k.value.id in names}
    return out


def _model_via_factory(ctx: _Module, call: ast.Call, assigns, before: int, seg):
    """`eval_model = deserialize(h, device)` / `model, compiled = train_model(h, ...)`: the model is
    built inside a module function; its construction there (`GPT(h)`) is what the probe evaluates,
    bound to the name the evaluator call uses. Returns (binding, node, that function's hparams names)."""
    passed = {n.id for a in (*call.args, *(k.value for k in call.keywords)) for n in ast.walk(a) if isinstance(n, ast.Name)}
    modules = {c.name for c in ctx.tree.body if isinstance(c, ast.ClassDef) and _looks_like_module(c)}
    for s, names in reversed(assigns):
        if s.lineno >= before or not (names & passed) or not any("model" in n.lower() for n in names & passed):
            continue
        v = _call_of(s)
        if not (isinstance(v, ast.Call) and isinstance(v.func, ast.Name) and v.func.id in ctx.funcs):
            continue
        factory = ctx.funcs[v.func.id]
        for node in ast.walk(factory):
            c = node
            while isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute) and isinstance(c.func.value, ast.Call):
                c = c.func.value
            if isinstance(c, ast.Call) and isinstance(c.func, ast.Name) and c.func.id in modules:
                name = sorted(n for n in names & passed if "model" in n.lower())[0]
                params = {a.arg for a in (*factory.args.posonlyargs, *factory.args.args)}
                params |= {t.id for st in ast.walk(factory) if isinstance(st, ast.Assign) and isinstance(st.value, ast.Name)
                           and st.value.id in params for t in st.targets if isinstance(t, ast.Name)}  # `a = args`
                used = {n.id for n in ast.walk(c) if isinstance(n, ast.Name)}  # GPT(h): h, not device
                return Binding(name, s.lineno, seg(c)), c, tuple(sorted(params & used))
    return None


def _object_bindings(call: ast.Call, assigns, tree: ast.Module, before: int, seg) -> tuple[Binding, ...]:
    """Names handed to the evaluator that main binds to a plain class of the script holding the
    validation data (`val_data = ValidationData(h, device)`): the probe builds one and swaps in its
    own tokens and byte tables, by attribute name."""
    plain = {c.name for c in tree.body if isinstance(c, ast.ClassDef) and not _looks_like_module(c)}
    passed = {n.id for a in (*call.args, *(k.value for k in call.keywords)) for n in ast.walk(a) if isinstance(n, ast.Name)}
    out: list[Binding] = []
    for s, names in reversed(assigns):
        hit = names & passed
        v = s.value
        if s.lineno < before and len(names) == 1 and hit and isinstance(v, ast.Call) and isinstance(v.func, ast.Name) \
                and v.func.id in plain and not any(w in v.func.id.lower() for w in HPARAM_WORDS) \
                and not any(b.name in hit for b in out):
            out.append(Binding(next(iter(hit)), s.lineno, seg(v)))
    return tuple(out)


def _evaluation_lines(ctx: _Module, scope: ast.FunctionDef, stmts, assigns) -> frozenset[int]:
    """Lines of the scope's other evaluations that do not adapt the model (no backward reachable):
    replaying them before every probe run would only cost time."""
    scored = frozenset().union(*(_score_log_full(s, ctx.lines)[1] for s in stmts))
    out = set()
    for s in stmts:
        v = _call_of(s) if isinstance(s, (ast.Expr, ast.Assign, ast.AnnAssign)) else None
        if not isinstance(v, ast.Call):
            continue
        target = None
        if isinstance(v.func, ast.Name) and v.func.id in ctx.wrappers:  # timed_eval("label", fn, ...)
            _, fn_i, _ = ctx.wrappers[v.func.id]
            target = v.args[fn_i] if fn_i < len(v.args) else None
        elif isinstance(s, (ast.Assign, ast.AnnAssign)) and _assigned_names(s) & scored:  # v = eval_val(...); log(v)
            target = v.func
        # only a module function whose body (and callees) never back-propagates is known not to adapt
        if isinstance(target, ast.Name) and target.id in ctx.funcs and not _trains(ctx.tree, [target]):
            out.add(s.lineno)
    return frozenset(out)


def _attribute_luts(tree: ast.Module, seg) -> tuple[Binding, tuple[str, ...]] | None:
    """Byte tables a class of the script builds into its attributes, and the attributes holding a
    SentencePieceProcessor (`self.sp`), for the byte probe."""
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Tuple)):
            continue
        names = [ast.unparse(t) for t in node.targets[0].elts if isinstance(t, (ast.Name, ast.Attribute))]
        if len(names) >= 2 and any("byte" in n.lower() for n in names):
            sps = tuple(ast.unparse(t) for n in ast.walk(tree) if isinstance(n, ast.Assign)
                        and isinstance(n.value, ast.Call) and "SentencePiece" in ast.unparse(n.value.func)
                        for t in n.targets if isinstance(t, (ast.Name, ast.Attribute)))
            return Binding(",".join(names), node.lineno, seg(node.value)), sps
    return None


def _builds_model(ctx: _Module, s: ast.stmt) -> bool:
    """A construction of the script's model class, or a call of a module function that makes one
    (`base_model, compiled = train_model(h, ...)`)."""
    if _builds_module(s, ctx.tree):
        return True
    v = _call_of(s)
    if not (isinstance(v, ast.Call) and isinstance(v.func, ast.Name) and v.func.id in ctx.funcs):
        return False
    return any(isinstance(n, (ast.Assign, ast.AnnAssign)) and n.value is not None and _builds_module(n, ctx.tree)
               for n in ast.walk(ctx.funcs[v.func.id]))


def _builds_module(s: ast.stmt, tree: ast.Module) -> bool:
    """`x = Net(...)` / `x = Net(...).to(device).bfloat16()` for an nn.Module class of the script."""
    modules = {c.name for c in tree.body if isinstance(c, ast.ClassDef) and _looks_like_module(c)}
    v = _call_of(s)
    while isinstance(v, ast.Call) and isinstance(v.func, ast.Attribute) and isinstance(v.func.value, ast.Call):
        v = v.func.value
    return isinstance(v, ast.Call) and isinstance(v.func, ast.Name) and v.func.id in modules


def _parses(src: str) -> bool:
    try:
        ast.parse(src.strip())
        return True
    except SyntaxError:
        return False


def _trains(tree: ast.Module, nodes: list) -> bool:
    """Whether a module function named in these expressions (the callee, the steps' calls) runs
    backward() or an optimizer step: such code trims the stream to whole training sequences."""
    funcs = {f.name: f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)}
    names = {n.id if isinstance(n, ast.Name) else n.attr for node in nodes for n in ast.walk(node)
             if isinstance(n, (ast.Name, ast.Attribute))}
    seen: set[str] = set()
    stack = [funcs[n] for n in names if n in funcs]
    while stack:
        f = stack.pop()
        if f.name in seen:
            continue
        seen.add(f.name)
        for n in ast.walk(f):
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "backward":
                return True
            if isinstance(n, ast.Call):
                callee = n.func.id if isinstance(n.func, ast.Name) else None
                if callee in funcs:
                    stack.append(funcs[callee])
    return False


def _is_tokens_name(name: str) -> bool:
    low = name.lower()
    return ("token" in low or low.startswith("val")) and not any(w in low for w in ("lut", "byte", "space", "boundary"))


def _val_aliases(names: set[str], assigns) -> tuple[str, ...]:
    """The call site's token names plus the names they copy (`val_tokens_eval = val_tokens`)."""
    out = set(names)
    changed = True
    while changed:
        changed = False
        for s, targets in assigns:
            if targets & out and isinstance(s.value, ast.Name) and s.value.id not in out:
                out.add(s.value.id)
                changed = True
    return tuple(sorted(out))


LOGGING_PREFIXES = ("log", "print", "logger", "log0", "info", "warn")


def _val_steps(main: ast.FunctionDef, val_names: tuple[str, ...], after: int, before: int, evals: frozenset[int],
               seg) -> tuple[Step, ...]:
    """Statement-level calls of main (reached through `if`s only, not loops) after the model is built
    and before the score call, that take the validation tokens or what an earlier such step made,
    and whose results are not logged as scores (those are other evaluations)."""
    tainted = set(val_names)
    out: list[Step] = []
    # the `if`s around the score call held in the scored run: a step under the same test needs no
    # check (and the probe's own window settings must not decide it: `stride < seq_len`)
    held = {id(n) for n in ast.walk(main) if isinstance(n, ast.If)
            and any(getattr(x, "lineno", 0) == before for b in n.body for x in ast.walk(b))}

    # statements in source order, an `if`'s body before its `else`, each with the tests around it
    # (a stack of iterators, not a recursive closure: that would be a reference cycle holding
    # the tree until a collection)
    stack: list[tuple[Iterator[ast.stmt], tuple[str, ...]]] = [(iter(main.body), ())]
    while stack:
        pending, guards = stack[-1]
        st = next(pending, None)
        if st is None:
            stack.pop()
            continue
        if isinstance(st, ast.If):
            test = seg(st.test)
            stack.append((iter(st.orelse), (*guards, f"not ({test})")))
            stack.append((iter(st.body), guards if id(st) in held else (*guards, test)))
            continue
        if not (after < st.lineno < before) or not isinstance(st, (ast.Expr, ast.Assign, ast.AnnAssign)):
            continue
        value = st.value
        if not isinstance(value, ast.Call):
            continue
        fname = ast.unparse(value.func).rsplit(".", 1)[-1].lower()
        if fname.startswith(LOGGING_PREFIXES):
            continue
        used = {n.id for a in (*value.args, *(k.value for k in value.keywords), value.func) for n in ast.walk(a)
                if isinstance(n, ast.Name)}
        binds = _assigned_names(st) if not isinstance(st, ast.Expr) else frozenset()
        # earlier evaluations are replayed too: one that adapts the model (TTT) changes what the
        # claimed score is computed with (re-scoring after TTT)
        if used & tainted and st.lineno not in evals:
            out.append(Step(st.lineno, seg(st), guards, tuple(sorted(binds))))
            tainted.update(binds)
    return tuple(out)


def _main_function(tree: ast.Module) -> ast.FunctionDef | None:
    funcs = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}
    for node in tree.body:  # the function called under `if __name__ == "__main__":`
        if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
            for sub in ast.walk(node):
                if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name) and sub.func.id in funcs:
                    return funcs[sub.func.id]
    return funcs.get("main")


def _assigned_names(s: ast.stmt) -> frozenset[str]:
    """Names bound by an assignment (`a = ...`, `a, b = ...`); not `torch.x.y = ...` or `d[k] = ...`."""
    targets = s.targets if isinstance(s, ast.Assign) else [s.target]  # type: ignore[attr-defined]
    out: set[str] = set()
    stack = list(targets)
    while stack:
        t = stack.pop()
        if isinstance(t, ast.Name):
            out.add(t.id)
        elif isinstance(t, (ast.Tuple, ast.List)):
            stack.extend(t.elts)
        elif isinstance(t, ast.Starred):
            stack.append(t.value)
    return frozenset(out)


def _call_of(s: ast.stmt) -> ast.expr | None:
    value = s.value  # type: ignore[attr-defined]
    while isinstance(value, ast.Await):
        value = value.value
    return value


def _score_log_full(stmt: ast.stmt, lines: list[str] | None = None
                    ) -> tuple[str | None, frozenset[str], re.Pattern[str] | None]:
    """(label, names formatted, label as a regex over logged labels) when stmt logs a score.
    `lines`: the original source when the tree was parsed with its f-strings downgraded to plain
    strings (Python 3.12 syntax); the f-string is then read back from its line."""
    if not isinstance(stmt, ast.Expr) or not isinstance(stmt.value, ast.Call):
        return None, frozenset(), None
    for arg in stmt.value.args:
        parts = _string_parts(arg, lines)
        if parts is None:
            continue
        text = "".join(t for is_field, t in parts if not is_field)
        if not any(w in text for w in SCORE_WORDS):
            continue
        names = frozenset(n for is_field, t in parts if is_field for n in _IDENT.findall(t))
        if isinstance(arg, ast.JoinedStr):
            names = frozenset(n.id for n in ast.walk(arg) if isinstance(n, ast.Name))
        template: list[str] = []  # literal text, with "\0" where a value is formatted
        shown: list[str] = []
        for is_field, t in parts:
            if not is_field:
                cut = min((t.find(w) for w in SCORE_WORDS if w in t), default=-1)
                piece = t if cut < 0 else t[:cut]
                template.append(piece)
                shown.append(piece)
                if cut >= 0:
                    break
            else:
                template.append("\0")
                shown.append("{" + t + "}")
        label = _log_label("".join(shown))
        text = _log_label("".join(template))
        pattern = re.compile(".*?".join(re.escape(p) for p in text.split("\0"))) if text.strip("\0") else None
        return label or None, names, pattern
    return None, frozenset(), None


_IDENT = re.compile(r"(?<![\w.])[A-Za-z_]\w*")


def _string_parts(arg: ast.expr, lines: list[str] | None) -> list[tuple[bool, str]] | None:
    """A formatted string's parts (is a replacement field, text), or None for anything else."""
    if isinstance(arg, ast.JoinedStr):
        return [(False, str(v.value)) if isinstance(v, ast.Constant) else
                (True, ast.unparse(v.value if isinstance(v, ast.FormattedValue) else v)) for v in arg.values]
    if lines is None or not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
        return None
    from audit.analysis.fstrings import fstring_parts

    line = lines[arg.lineno - 1] if 0 < arg.lineno <= len(lines) else ""
    for plain, parts in fstring_parts(line):
        if plain == arg.value:
            return parts
    # an f-string joined to a plain literal (`"label " f"val_bpb:{v}"`): its words, all literal,
    # and every identifier among them a candidate name
    return [(False, arg.value), *((True, n) for n in _IDENT.findall(arg.value))]


def _log_label(text: str) -> str:
    """The label as audit/logs.py reads it: the words before val_loss, trailing `key:value` words dropped."""
    tokens = text.split()
    while len(tokens) > 1 and (":" in tokens[-1] or "=" in tokens[-1]):
        tokens.pop()
    return " ".join(tokens).rstrip(":,")


def _bindings_for(nodes: list, assigns, before: int, seg) -> tuple[Binding, ...]:
    """Assignments in main (before the call) of the names these expressions use, transitively
    (the last assignment before the call wins)."""
    wanted = {n.id for node in nodes for n in ast.walk(node) if isinstance(n, ast.Name)}
    out: dict[str, Binding] = {}
    changed = True
    while changed:
        changed = False
        for s, names in reversed(assigns):
            hit = names & wanted
            if s.lineno >= before or not hit or any(n in out for n in hit) or len(names) != 1:
                continue
            name = next(iter(hit))
            out[name] = Binding(name, s.lineno, seg(s.value))
            more = {n.id for n in ast.walk(s.value) if isinstance(n, ast.Name)} - wanted
            if more:
                wanted |= more
                changed = True
    return tuple(sorted(out.values(), key=lambda b: b.line))


def _is_hparams_ctor(call: ast.Call, classes: set[str]) -> bool:
    name = call.func.id if isinstance(call.func, ast.Name) else None
    return name in classes and any(w in name.lower() for w in HPARAM_WORDS) and not call.args


def _model_binding(call: ast.Call, assigns, classes: set[str], tree: ast.Module, before: int, seg) -> Binding | None:
    found = _model_candidate(call, assigns, tree, before)
    if found is None:
        return None
    line, name, v = found
    return Binding(name, line, seg(v))


def _model_node(call: ast.Call, assigns, classes: set[str], tree: ast.Module, before: int) -> ast.expr | None:
    found = _model_candidate(call, assigns, tree, before)
    return found[2] if found is not None else None


def _model_candidate(call: ast.Call, assigns, tree: ast.Module, before: int):
    """The construction of a module-defined class in main, preferring one whose name is passed to the call."""
    modules = {c.name for c in tree.body if isinstance(c, ast.ClassDef) and _looks_like_module(c)}
    passed = {n.id for a in (*call.args, *(k.value for k in call.keywords)) for n in ast.walk(a) if isinstance(n, ast.Name)}
    cands = []
    for s, names in assigns:
        v = s.value
        while isinstance(v, ast.Call) and isinstance(v.func, ast.Attribute) and isinstance(v.func.value, ast.Call):
            v = v.func.value  # GPT(...).to(device).bfloat16()
        if isinstance(v, ast.Call) and isinstance(v.func, ast.Name) and v.func.id in modules and s.lineno < before:
            cands.append((bool(names & passed), len(v.keywords) + len(v.args), s.lineno, next(iter(names)), v))
    if not cands:
        return None
    cands.sort(key=lambda c: (c[0], c[1], -c[2]))
    _, _, line, name, v = cands[-1]
    return line, name, v


def _looks_like_module(c: ast.ClassDef) -> bool:
    bases = " ".join(ast.unparse(b) for b in c.bases)
    return "Module" in bases and any(isinstance(f, ast.FunctionDef) and f.name == "forward" for f in c.body)
