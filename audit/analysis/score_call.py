"""Which call in `main()` produces the claimed score, and how main builds the model it scores.

The probes (audit/probes) must drive the evaluator that produced the number the submission
claims, not any function that looks like one. The claimed number is the one logged last: the
call whose result is formatted into the last `val_bpb` log line of main is that evaluator.
Everything here is read from the syntax tree; nothing is imported or executed.
"""

from __future__ import annotations

import ast
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


def find_score_call(path: str, tree: ast.Module, source: str) -> ScoreCall | None:
    """The score call of one module's main function, or None when it has none."""
    main = _main_function(tree)
    if main is None:
        return None
    stmts = sorted((n for n in ast.walk(main) if isinstance(n, ast.stmt)), key=lambda n: (n.lineno, n.col_offset))
    assigns = [(s, _assigned_names(s)) for s in stmts if isinstance(s, (ast.Assign, ast.AnnAssign)) and s.value is not None]
    best: tuple[ast.stmt, ast.Call, str | None] | None = None
    for log in stmts:
        label, names = _score_log(log)
        if label is None:
            continue
        for s, targets in reversed(assigns):
            if s.lineno < log.lineno and targets & names and isinstance(_call_of(s), ast.Call):
                best = (s, _call_of(s), label)  # type: ignore[assignment]
                break
    if best is None:
        return None
    stmt, call, label = best
    seg = lambda n: ast.get_source_segment(source, n) or ast.unparse(n)  # noqa: E731
    classes = {c.name for c in tree.body if isinstance(c, ast.ClassDef)}
    model_node = _model_node(call, assigns, classes, tree, stmt.lineno)
    needed = [call.func, *call.args, *(k.value for k in call.keywords), *([model_node] if model_node is not None else [])]
    bindings = _bindings_for(needed, assigns, stmt.lineno, seg)
    hparams = tuple(Binding(n, s.lineno, seg(s.value)) for s, names in assigns for n in names
                    if isinstance(s.value, ast.Call) and _is_hparams_ctor(s.value, classes))
    model = _model_binding(call, assigns, classes, tree, stmt.lineno, seg)
    hp_names = {b.name for b in hparams}
    bindings = tuple(b for b in bindings if b.name not in hp_names and (model is None or b.name != model.name))
    args = tuple((None, seg(a)) for a in call.args) + tuple((k.arg, seg(k.value)) for k in call.keywords)
    luts = next((Binding(",".join(sorted(names)), s.lineno, seg(s.value)) for s, names in assigns
                 if len(names) >= 2 and any("byte" in n.lower() for n in names) and isinstance(s.value, ast.Call)), None)
    sp_names = tuple(n for s, names in assigns for n in names
                     if isinstance(s.value, ast.Call) and "SentencePiece" in ast.unparse(s.value.func))
    val_names = _val_aliases({n.id for a in (*call.args, *(k.value for k in call.keywords)) for n in ast.walk(a)
                              if isinstance(n, ast.Name) and _is_tokens_name(n.id)}, assigns)
    logged = frozenset().union(*(_score_log(x)[1] for x in stmts))
    steps = _val_steps(main, val_names, model.line if model else 0, stmt.lineno, logged, seg)
    trains = _trains(tree, [call.func, *(ast.parse(st.source.strip()).body[0] for st in steps if _parses(st.source))])
    return ScoreCall(path, stmt.lineno, seg(call.func), args, label, bindings, hparams[:1], model, main.name,
                     steps, trains, val_names, luts, sp_names)


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


LOG_FUNCS = ("log", "print", "logger", "log0", "info", "warn")


def _val_steps(main: ast.FunctionDef, val_names: tuple[str, ...], after: int, before: int, logged: frozenset[str],
               seg) -> tuple[Step, ...]:
    """Statement-level calls of main (reached through `if`s only, not loops) after the model is built
    and before the score call, that take the validation tokens or what an earlier such step made,
    and whose results are not logged as scores (those are other evaluations)."""
    tainted = set(val_names)
    out: list[Step] = []

    def visit(body: list[ast.stmt], guards: tuple[str, ...]) -> None:
        for st in body:
            if isinstance(st, ast.If):
                test = seg(st.test)
                visit(st.body, (*guards, test))
                visit(st.orelse, (*guards, f"not ({test})"))
                continue
            if not (after < st.lineno < before) or not isinstance(st, (ast.Expr, ast.Assign, ast.AnnAssign)):
                continue
            value = st.value
            if not isinstance(value, ast.Call):
                continue
            fname = ast.unparse(value.func).rsplit(".", 1)[-1].lower()
            if fname.startswith(LOG_FUNCS):
                continue
            used = {n.id for a in (*value.args, *(k.value for k in value.keywords), value.func) for n in ast.walk(a)
                    if isinstance(n, ast.Name)}
            binds = _assigned_names(st) if not isinstance(st, ast.Expr) else frozenset()
            # earlier evaluations are replayed too: one that adapts the model (TTT) changes what the
            # claimed score is computed with (re-scoring after TTT)
            if used & tainted:
                out.append(Step(st.lineno, seg(st), guards, tuple(sorted(binds))))
                tainted.update(binds)

    visit(main.body, ())
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


def _score_log(stmt: ast.stmt) -> tuple[str | None, frozenset[str]]:
    """(label, names formatted) when stmt logs an f-string mentioning val_bpb/val_loss."""
    if not isinstance(stmt, ast.Expr) or not isinstance(stmt.value, ast.Call):
        return None, frozenset()
    for arg in stmt.value.args:
        if isinstance(arg, ast.JoinedStr):
            text = "".join(v.value for v in arg.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
            if any(w in text for w in SCORE_WORDS):
                names = frozenset(n.id for n in ast.walk(arg) if isinstance(n, ast.Name))
                first = text.split()[0].rstrip(":") if text.split() else None
                return first, names
    return None, frozenset()


def _bindings_for(nodes: list[ast.expr], assigns, before: int, seg) -> tuple[Binding, ...]:
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
