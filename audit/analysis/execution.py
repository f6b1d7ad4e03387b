"""Did the flagged code run? The logs as evidence of execution (DESIGN.md "Execution evidence").

Records ship dead or disabled code: an n-gram evaluator behind `NGRAM_EVAL_ENABLED=0`, an old
TTT variant behind a flag that is off by default. A static rule sees the code; the logs show
what the submitted runs executed. Every static finding gets one of three states:

- **ran**: the flagged function printed a line that is in a log (its f-string's constant parts
  match, in order, a log line), or the claimed score line is printed by it or from a value it
  produced, or the logged hyperparameters switch its guard on. The finding keeps its severity.
- **shipped but not run**: the logged hyperparameters switch the guard of the flagged line (or
  every call of its function) off; or the function's own unconditional prints are in no log
  while other prints of the same script are (so the logs do come from this script); or the
  guard reads an environment variable whose default is off and that no README, log or
  submission.json sets. At most a warning: a re-run with other settings would differ.
- **unknown**: no logs, or nothing decides. Today's conservative behaviour (severity kept).

The deciding line (the log line, or the code line and the absence in the logs) is the evidence.
The facts it judges from (prints, log lines, claim lines, flags) are in execution_facts.py; the
judgement stays one module (about 500 lines) because its steps are one ordered decision procedure
(guards, claim path, own prints, callers' witnesses) over the same facts.
Lines of a log that hold the script's own source (the reference script writes it at the top of
its log) are never taken as printed output.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import replace

from audit.analysis.execution_facts import (
    NOT_RUN,
    RAN,
    UNKNOWN,
    Execution,
    ExecutionFacts,
    _LogLine,
    _Print,
    _visit_prints,
    execution_facts,
)
from audit.analysis.flags import truth
from audit.analysis.program import FunctionRef, Program
from audit.analysis.sources import analysis_sources
from audit.analysis.syntax import body_nodes, too_deep, walk
from audit.findings import Evidence, Finding, Severity


# -- judging one place ----------------------------------------------------------------------------
def execution_of(ctx, path: str | None, line: int | None) -> Execution:
    """The execution state of the code at `path:line` (a finding's location)."""
    if path is None or line is None:
        return Execution(UNKNOWN, "the finding points at no code line")
    facts = execution_facts(ctx)
    ref = _function_at(ctx, facts.program, path, line)
    if ref is None or too_deep(ref.facts.node):
        return Execution(UNKNOWN, "the flagged line is in no analysed function or module body")
    if not facts.logs:
        return Execution(UNKNOWN, "no logs in the folder to show whether it ran")
    guard = _guard_state(ref, line, facts.flags)
    if guard is not None and guard[0] is False:
        return Execution(NOT_RUN, f"the logged hyperparameters switch its guard `{guard[1]}` off",
                         tuple(_flag_lines(facts, guard[2])))
    claimed = _claim_through(facts, ref)
    if claimed is not None:
        return claimed
    ran = _printed(facts, ref)
    if ran is not None:
        elsewhere = _claim_elsewhere(facts, ref)
        return replace(ran, reason=ran.reason + elsewhere[0], evidence=ran.evidence + elsewhere[1])
    dead = _switched_off_calls(facts, ref, facts.flags)
    if dead is not None:
        return Execution(NOT_RUN, f"`{ref.facts.name}` is only called under `{dead[0]}`, which the logged "
                         "hyperparameters switch off", tuple(_flag_lines(facts, dead[1])))
    if guard is not None and guard[0] is True:
        return Execution(RAN, f"the logged hyperparameters switch its guard `{guard[1]}` on",
                         tuple(_flag_lines(facts, guard[2])))
    live = _switched_on_calls(facts, ref)
    if live is not None:
        return Execution(RAN, f"`{ref.facts.name}` is called under `{live[0]}`, which the logged "
                         "hyperparameters switch on", tuple(_flag_lines(facts, live[1])))
    silent = _silent(ctx, facts, ref)
    if silent is not None:
        return silent
    soft = _guard_state(ref, line, facts.soft_flags)
    if soft is not None and soft[0] is False:
        return Execution(NOT_RUN, f"its guard `{soft[1]}` reads an environment variable that is off by "
                         "default and set in no README, log or submission.json",
                         tuple(_env_lines(ctx, facts, soft[2])))
    dead = _switched_off_calls(facts, ref, facts.soft_flags)
    if dead is not None:
        return Execution(NOT_RUN, f"`{ref.facts.name}` is only called under `{dead[0]}`, an environment "
                         "variable off by default and set in no README, log or submission.json",
                         tuple(_env_lines(ctx, facts, dead[1])))
    if facts.unsupported_claim is not None:
        return Execution(UNKNOWN, f"the claimed val_bpb {facts.unsupported_claim} is in no log, so the logs may "
                         "come from another run than the claimed one")
    return Execution(UNKNOWN, "nothing in the logs shows whether it ran")


def _function_at(ctx, prog: Program, path: str, line: int) -> FunctionRef | None:
    paths = {s.path for s in analysis_sources(ctx) if s.path == path or s.decoded_from == path}
    best: FunctionRef | None = None
    for r in prog.functions:
        node = r.facts.node
        if r.path not in paths or not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        end = node.end_lineno or node.lineno
        if node.lineno <= line <= end:
            if best is None or node.lineno >= best.facts.node.lineno:  # type: ignore[attr-defined]
                best = r
    if best is None:  # module-level code: judged as the module body
        best = next((r for r in prog.functions if r.path in paths and r.facts.name == "<module>"
                     and any(st.lineno <= line <= (st.end_lineno or st.lineno) for st in r.body)), None)
    return best


def _enclosing_ifs(ref: FunctionRef, line: int) -> list[tuple[ast.expr, bool]]:
    """The `if` tests around `line` in the function, with True when it is on the else-arm."""
    out: list[tuple[ast.expr, bool]] = []
    stmts: list[ast.stmt] = list(ref.body)
    while stmts:
        nxt: list[ast.stmt] = []
        for st in stmts:
            if not (st.lineno <= line <= (st.end_lineno or st.lineno)):
                continue
            if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                return out
            if isinstance(st, ast.If):
                if st.body and st.body[0].lineno <= line <= (st.body[-1].end_lineno or 0):
                    out.append((st.test, False))
                    nxt = list(st.body)
                elif st.orelse:
                    out.append((st.test, True))
                    nxt = list(st.orelse)
                break
            for attr in ("body", "orelse", "finalbody"):
                nxt.extend(getattr(st, attr, []) or [])
            for h in getattr(st, "handlers", []) or []:
                nxt.extend(h.body)
            break
        stmts = nxt
    return out


def _guard_state(ref: FunctionRef, line: int, flags: dict) -> tuple[bool, str, list[str]] | None:
    """(False, test, flag names) when some enclosing guard is off under `flags`; (True, ...) when
    the flag guards are all decided on; None when no guard is decided."""
    if not flags:
        return None
    on: tuple[bool, str, list[str]] | None = None
    for test, on_else in _enclosing_ifs(ref, line):
        t = truth(test, flags, ref.facts.flag_aliases)
        if t is None:
            continue
        names = _flag_names(test, ref, flags)
        if t == on_else:
            return False, ast.unparse(test)[:80], names
        on = on or (True, ast.unparse(test)[:80], names)
    return on


def _flag_names(test: ast.AST, ref: FunctionRef, flags: dict) -> list[str]:
    out = []
    for n in walk(test):
        name = None
        if isinstance(n, ast.Name):
            name = ref.facts.flag_aliases.get(n.id, n.id)
        elif isinstance(n, ast.Attribute):
            name = n.attr
        elif isinstance(n, ast.Constant) and isinstance(n.value, str):
            name = n.value
        if name and name.lower() in flags and name.lower() not in out:
            out.append(name.lower())
    return out


def _callers(facts: ExecutionFacts) -> dict[str, list[tuple[FunctionRef, ast.Call]]]:
    if facts._callers is None:
        out: dict[str, list[tuple[FunctionRef, ast.Call]]] = {}
        prog = facts.program
        for r in prog.functions:
            for n in _own_nodes(r):
                if isinstance(n, ast.Call):
                    for c in prog.callees(n, r.facts.class_name, r.facts.flag_aliases, r.facts):
                        out.setdefault(c.facts.qualname, []).append((r, n))
                    for a in n.args:  # a function passed as an argument (`timed(eval_fn, ...)`)
                        if isinstance(a, ast.Name):
                            for c in prog.by_name.get(a.id, []):
                                out.setdefault(c.facts.qualname, []).append((r, n))
        facts._callers = out
    return facts._callers


def _own_nodes(ref: FunctionRef) -> tuple[ast.AST, ...]:
    return body_nodes(ref.facts.node)


def _switched_off_calls(facts: ExecutionFacts, ref: FunctionRef, flags: dict) -> tuple[str, list[str]] | None:
    """(guard, flags) when every call of the function sits under a guard `flags` switch off."""
    if not flags:
        return None
    calls = _callers(facts).get(ref.facts.qualname, [])
    if not calls:
        return None
    first: tuple[str, list[str]] | None = None
    for caller, call in calls:
        g = _guard_state(caller, call.lineno, flags)
        if g is None or g[0] is not False:
            return None
        first = first or (g[1], g[2])
    return first


def _claim_map(facts: ExecutionFacts) -> dict[str, tuple[_Print, _LogLine, int]]:
    """Functions the claimed score is computed through -> (the print of the claimed line, that
    line, the line of the call it came from): the callees, at any depth, of the calls whose
    results the print formats."""
    if facts._claim_map is not None:
        return facts._claim_map
    out: dict[str, tuple[_Print, _LogLine, int]] = {}
    forward: dict[str, list[FunctionRef]] = {}
    for q, calls in _callers(facts).items():
        callee = facts.program.by_qualname.get(q)
        if callee is None:
            continue
        for caller, _call in calls:
            forward.setdefault(caller.facts.qualname, []).append(callee)
    prints = [p for ps in facts.prints.values() for p in ps]
    for ln in facts.claim_lines:
        for p in prints:
            if not p.fields or not p.regex.search(ln.text):
                continue
            g = p.ref
            for n in _own_nodes(g):
                if not (isinstance(n, (ast.Assign, ast.AnnAssign)) and n.value is not None and n.lineno < p.line):
                    continue
                targets = n.targets if isinstance(n, ast.Assign) else [n.target]
                if not {x.id for t in targets for x in walk(t) if isinstance(x, ast.Name)} & p.fields:
                    continue
                for c in walk(n.value):
                    if not isinstance(c, ast.Call):
                        continue
                    frontier = list(facts.program.callees(c, g.facts.class_name, g.facts.flag_aliases, g.facts))
                    frontier += [r for a in c.args if isinstance(a, ast.Name) for r in facts.program.by_name.get(a.id, [])]
                    for _ in range(8):
                        nxt = []
                        for r in frontier:
                            if r.facts.qualname not in out:
                                out[r.facts.qualname] = (p, ln, n.lineno)
                                nxt.extend(forward.get(r.facts.qualname, []))
                        frontier = nxt
    facts._claim_map = out
    return out


def _claim_through(facts: ExecutionFacts, ref: FunctionRef) -> Execution | None:
    hit = _claim_map(facts).get(ref.facts.qualname)
    if hit is None:
        return None
    p, ln, call_line = hit
    label = ln.label or "score"
    return Execution(RAN, f"the claimed score line `{label}` is printed by `{p.ref.facts.name}` (line {p.line}) "
                     f"from the call at line {call_line}, which runs through `{ref.facts.name}`",
                     (_log_evidence(ln, "the score line the claim comes from"),))


def _claim_elsewhere(facts: ExecutionFacts, ref: FunctionRef) -> tuple[str, tuple[Evidence, ...]]:
    """A note when the claimed score line is known to come from another evaluator (not one the
    flagged function prints it from, or calls on the way to it)."""
    for ln in facts.claim_lines:
        for p, line, call_line in _claim_map(facts).values():
            if line is ln and ref.facts.qualname not in _reachers(facts, p.ref):
                label = ln.label or "score"
                return (f"; the claimed score line `{label}` comes from the call at line {call_line} "
                        f"(printed by `{p.ref.facts.name}`), not through it",
                        (_log_evidence(ln, "the score line the claim comes from"),))
    return "", ()


def _switched_on_calls(facts: ExecutionFacts, ref: FunctionRef) -> tuple[str, list[str]] | None:
    """(guard, flags) when a call of the function sits under a guard the logged flags switch on
    (and under none they switch off), in a caller that is not itself switched off."""
    if not facts.flags:
        return None
    for caller, call in _callers(facts).get(ref.facts.qualname, []):
        g = _guard_state(caller, call.lineno, facts.flags)
        if g is not None and g[0] is True and _switched_off_calls(facts, caller, facts.flags) is None:
            return g[1], g[2]
    return None


def _printed(facts: ExecutionFacts, ref: FunctionRef) -> Execution | None:
    """RAN when a print of the function, or the claimed score line fed by it, is in a log."""
    for p in facts.prints.get(ref.path, []):
        if p.ref is ref:
            hit = facts.first_match(p)
            if hit is not None:
                return Execution(RAN, f"`{ref.facts.name}` printed a line that is in the logs",
                                 (_log_evidence(hit, f"printed by `{ref.facts.name}` (line {p.line})"),))
    for caller, call in _callers(facts).get(ref.facts.qualname, []):
        for p in _witnesses(facts, caller, call):
            hit = facts.first_match(p)
            if hit is not None:
                return Execution(RAN, f"the line `{caller.facts.name}` prints right after calling "
                                 f"`{ref.facts.name}` (line {call.lineno}) is in the logs",
                                 (_log_evidence(hit, f"printed after the call of `{ref.facts.name}`"),))
    fed = _feeds_a_logged_print(facts, ref)
    if fed is not None:
        p, hit = fed
        return Execution(RAN, f"the logged line printed by `{p.ref.facts.name}` (line {p.line}) reports a "
                         f"value computed through `{ref.facts.name}`",
                         (_log_evidence(hit, f"printed from a value `{ref.facts.name}` produced"),))
    return None


def _feeds_a_logged_print(facts: ExecutionFacts, ref: FunctionRef) -> tuple[_Print, _LogLine] | None:
    """A logged print (in a caller) whose fields name the result of a call that reaches `ref`."""
    reach = _reachers(facts, ref)
    for caller, call in _callers_chain(facts, reach):
        target = _assigned_from(caller, call)
        if not target:
            continue
        for p in facts.prints.get(caller.path, []):
            if p.ref is caller and p.line > call.lineno and p.fields & target:
                hit = facts.first_match(p)
                if hit is not None:
                    return p, hit
    return None


def _reachers(facts: ExecutionFacts, ref: FunctionRef, limit: int = 4) -> set[str]:
    """`ref` and the functions that call it, up to `limit` calls up."""
    seen = {ref.facts.qualname}
    frontier = [ref.facts.qualname]
    callers = _callers(facts)
    for _ in range(limit):
        nxt = []
        for q in frontier:
            for caller, _call in callers.get(q, []):
                if caller.facts.qualname not in seen:
                    seen.add(caller.facts.qualname)
                    nxt.append(caller.facts.qualname)
        frontier = nxt
    return seen


def _callers_chain(facts: ExecutionFacts, reach: set[str]) -> Iterable[tuple[FunctionRef, ast.Call]]:
    callers = _callers(facts)
    for q in sorted(reach):
        yield from callers.get(q, [])


def _assigned_from(caller: FunctionRef, call: ast.Call) -> set[str]:
    for n in _own_nodes(caller):
        if isinstance(n, (ast.Assign, ast.AnnAssign)) and n.value is not None:
            if any(c is call for c in walk(n.value)):
                targets = n.targets if isinstance(n, ast.Assign) else [n.target]
                return {x.id for t in targets for x in walk(t) if isinstance(x, ast.Name)}
    return set()


def _silent(ctx, facts: ExecutionFacts, ref: FunctionRef) -> Execution | None:
    """NOT_RUN when the logs are complete, other prints of the same script are in them (so they
    come from this script), and the function's own unconditional prints, or for each of its
    calls the prints that always follow that call, are in no log."""
    if not facts.complete_logs or facts.unsupported_claim is not None:
        return None
    other = next((facts.first_match(p) for p in facts.prints.get(ref.path, [])
                  if facts.first_match(p) is not None), None)
    if other is None:
        return None
    missing = _never_printed(facts, ref, depth=0, seen=set())
    if missing is None:
        return None
    from audit.analysis.api import evidence_line
    ev = [evidence_line(ctx, p.ref.path, p.line, f"printed whenever `{ref.facts.name}` runs "
                        f"(in `{p.ref.facts.name}`); no log line matches") for p in missing[:3]]
    ev.append(_log_evidence(other, "other output of the same script is in the logs"))
    return Execution(NOT_RUN, f"the lines printed whenever `{ref.facts.name}` runs are in none of the logs",
                     tuple(ev))


def _never_printed(facts: ExecutionFacts, ref: FunctionRef, depth: int, seen: set[str]) -> list[_Print] | None:
    """Prints that would be in the logs had `ref` run, none of which is: its own unconditional
    prints, or else, for every call of it, those following the call (or its caller's, upwards)."""
    own = [p for p in facts.prints.get(ref.path, []) if p.ref is ref and not p.conditional]
    if own:
        return own if all(facts.first_match(p) is None for p in own) else None
    calls = _callers(facts).get(ref.facts.qualname, [])
    if not calls or depth >= 4 or ref.facts.qualname in seen:
        return None
    seen = seen | {ref.facts.qualname}
    out: list[_Print] = []
    for caller, call in calls:
        after = _witnesses(facts, caller, call)
        if after:
            if any(facts.first_match(p) is not None for p in after):
                return None
            out.extend(after)
            continue
        if caller.facts.name == "<module>":
            return None
        up = _never_printed(facts, caller, depth + 1, seen)
        if up is None:
            return None
        out.extend(up)
    return out or None


def _witnesses(facts: ExecutionFacts, caller: FunctionRef, call: ast.Call) -> list[_Print]:
    """Unconditional prints that follow the statement holding `call` in the same block."""
    key = id(call)
    if key in facts._witness:
        return facts._witness[key]
    src = facts.sources.get(caller.path)
    out: list[_Print] = []
    block = _block_after(caller.body, call)
    if src is not None and block:
        stop = next((i for i, st in enumerate(block)
                     if isinstance(st, (ast.Return, ast.Raise, ast.Continue, ast.Break))), len(block))
        out = [p for p in _visit_prints(caller, src, block[:stop], False) if not p.conditional]
    facts._witness[key] = out
    return out


def _block_after(body: list[ast.stmt], call: ast.Call) -> list[ast.stmt]:
    for i, st in enumerate(body):
        if not any(n is call for n in walk(st)):
            continue
        for attr in ("body", "orelse", "finalbody"):
            inner = getattr(st, attr, None)
            if isinstance(inner, list) and inner and isinstance(inner[0], ast.stmt):
                found = _block_after(inner, call)
                if found or any(any(n is call for n in walk(x)) for x in inner):
                    return found
        for h in getattr(st, "handlers", []) or []:
            if any(any(n is call for n in walk(x)) for x in h.body):
                return _block_after(h.body, call)
        return body[i + 1:]
    return []


def _log_evidence(ln: _LogLine, label: str) -> Evidence:
    return Evidence(label, ln.path, ln.line, ln.text.strip()[:200])


def _flag_lines(facts: ExecutionFacts, names: list[str]) -> list[Evidence]:
    out = []
    for name in names:
        rx = re.compile(rf"(?i)(?<![A-Za-z0-9_]){re.escape(name)}\s*[:=]\s*\S+")
        hit = next((ln for ln in facts.logs if rx.search(ln.text)), None)
        if hit is not None:
            out.append(_log_evidence(hit, f"logged hyperparameter `{name}`"))
        else:
            out.append(Evidence(f"logged hyperparameter `{name}` = {facts.flags.get(name)!r}"))
    return out


def _env_lines(ctx, facts: ExecutionFacts, names: list[str]) -> list[Evidence]:
    """The `os.environ.get("VAR", "0")` lines that give the flags their off default."""
    from audit.analysis.api import evidence_line
    out = []
    for pm in facts.program.modules:
        assert pm.tree is not None
        for node in walk(pm.tree):
            if not isinstance(node, (ast.Assign, ast.AnnAssign)) or node.value is None:
                continue
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            got = {(t.id if isinstance(t, ast.Name) else t.attr).lower() for t in targets
                   if isinstance(t, (ast.Name, ast.Attribute))}
            if got & set(names) and re.search(r"environ|getenv", ast.unparse(node.value)):
                out.append(evidence_line(ctx, pm.path, node.lineno,
                                         "off by default; set in no README, log or submission.json"))
                if len(out) >= 3:
                    return out
    return out or [Evidence(f"off by default and set nowhere: {', '.join(names)}")]


# -- the post-step every static rule's findings go through ---------------------------------------
def with_execution_state(ctx, findings: Iterable[Finding]) -> list[Finding]:
    """Say, in each warning or error of a static rule, whether the flagged code ran; a finding on
    code shipped but not run is at most a warning."""
    out = []
    for f in findings:
        if f.severity == Severity.INFO or f.path is None or f.line is None or not _is_code(ctx, f.path):
            out.append(f)
            continue
        ex = execution_of(ctx, f.path, f.line)
        out.append(annotate(f, ex))
    return out


def annotate(f: Finding, ex: Execution) -> Finding:
    severity = f.severity
    if ex.state == NOT_RUN and severity == Severity.ERROR:
        severity = Severity.WARNING
        note = (f" Execution: shipped but not run ({ex.reason}); a warning, not an error, because the "
                "submitted runs did not use this code, but a re-run with other settings would.")
    else:
        note = f" Execution: {ex.state} ({ex.reason})."
    return replace(f, severity=severity, message=f.message.rstrip() + note,
                   evidence=tuple(f.evidence) + ex.evidence, key=f.key or f.message)


def _is_code(ctx, path: str) -> bool:
    return any(s.path == path or s.decoded_from == path for s in analysis_sources(ctx))
