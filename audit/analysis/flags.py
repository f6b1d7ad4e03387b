"""Which code the submitted runs could not have executed, judged from the logs' hyperparameters.

Records often carry switched-off features (`if h.etlb_enabled:`, `use_slot = getattr(args,
"slot_enabled", False)`). When every seed log that prints hyperparameters shows such a flag
false or zero, code guarded by it did not run in the reported results. Only explicit evidence
counts: a flag the logs do not print is unknown, and unknown never makes code dead (a default
of 0 in the source proves nothing, since runs set flags through the environment).
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict

from audit.analysis.facts import FunctionFacts, Site
from audit.analysis.program import Program
from audit.analysis.syntax import lines_where, nodes_of, spans_a_line, walk

Value = bool | float | str

FALSY = {"false", "0", "0.0", "none", "off", "no", ""}
TRUTHY = {"true", "1", "yes", "on"}


def logged_flags(runs) -> dict[str, Value]:
    """Hyperparameters that take the same value in every log that prints hyperparameters."""
    tables = [r.hyperparameters for r in runs if getattr(r, "hyperparameters", None)]
    if not tables:
        return {}
    out: dict[str, Value] = {}
    for key in set.intersection(*(set(t) for t in tables)):
        values = {str(t[key]).strip() for t in tables}
        if len(values) == 1:
            out[key.lower()] = _parse(values.pop())
    return out


def _parse(raw: str) -> Value:
    low = raw.lower()
    if low in FALSY and low not in {"0", "0.0"}:
        return False
    if low in TRUTHY and low not in {"1"}:
        return True
    try:
        return float(raw)
    except ValueError:
        return raw


def truth(test: ast.AST, flags: dict[str, Value], aliases: dict[str, str]) -> bool | None:
    """Truth of an `if` test under the logged flags; None when it cannot be decided."""
    v = _value(test, flags, aliases)
    if v is None:
        return None
    if isinstance(v, str):
        return None
    return bool(v)


def _value(e: ast.AST, flags: dict[str, Value], aliases: dict[str, str]) -> Value | None:
    if isinstance(e, ast.Constant) and isinstance(e.value, (bool, int, float)):
        return e.value
    if isinstance(e, ast.Name):
        return flags.get(aliases.get(e.id, e.id).lower())
    if isinstance(e, ast.Attribute):
        return flags.get(e.attr.lower())
    if isinstance(e, ast.Call) and isinstance(e.func, ast.Name):
        if e.func.id == "getattr" and len(e.args) >= 2 and isinstance(e.args[1], ast.Constant):
            return flags.get(str(e.args[1].value).lower())
        if e.func.id in {"bool", "int", "float"} and len(e.args) == 1:
            return _value(e.args[0], flags, aliases)
        return None
    if isinstance(e, ast.UnaryOp) and isinstance(e.op, ast.Not):
        t = truth(e.operand, flags, aliases)
        return None if t is None else (not t)
    if isinstance(e, ast.BoolOp):
        vals = [truth(v, flags, aliases) for v in e.values]
        if isinstance(e.op, ast.And):
            return False if False in vals else (True if all(v is True for v in vals) else None)
        return True if True in vals else (False if all(v is False for v in vals) else None)
    if isinstance(e, ast.Compare) and len(e.ops) == 1:
        a = _value(e.left, flags, aliases)
        b = _value(e.comparators[0], flags, aliases)
        if isinstance(a, (bool, int, float)) and isinstance(b, (bool, int, float)):
            op = e.ops[0]
            table = {ast.Gt: a > b, ast.GtE: a >= b, ast.Lt: a < b, ast.LtE: a <= b, ast.Eq: a == b,
                     ast.NotEq: a != b}
            return table.get(type(op))
    return None


def site_dead(site: Site, ff: FunctionFacts, flags: dict[str, Value]) -> bool:
    """The site sits under an `if` that the logged flags make false (or on its else-arm, true)."""
    if not flags:
        return False
    for test, on_else in site.guard_tests:
        t = truth(test, flags, ff.flag_aliases)
        if t is not None and t == on_else:
            return True
    return False


def dead_functions(prog: Program, calls, flags: dict[str, Value]) -> set[str]:
    """Functions reached only through call sites that the logged flags switch off."""
    if not flags:
        return set()
    callers: dict[str, list[tuple[str, Site, FunctionFacts]]] = defaultdict(list)
    for r in prog.functions:
        for site, callees in calls(r):
            for c in callees:
                callers[c.facts.qualname].append((r.facts.qualname, site, r.facts))
        for site in r.facts.sites:  # `timed_eval("x", eval_fn, ...)`: a function passed as an argument
            if site.kind == "call" and isinstance(site.node, ast.Call):
                for a in site.node.args:
                    if isinstance(a, ast.Name):
                        for c in prog.by_name.get(a.id, []):
                            callers[c.facts.qualname].append((r.facts.qualname, site, r.facts))
    live = {r.facts.qualname for r in prog.functions if not callers.get(r.facts.qualname)}
    changed = True
    while changed:
        changed = False
        for r in prog.functions:
            q = r.facts.qualname
            if q in live:
                continue
            if any(cq in live and not site_dead(site, cf, flags) for cq, site, cf in callers[q]):
                live.add(q)
                changed = True
    return {r.facts.qualname for r in prog.functions} - live


def folder_default_off_flags(ctx, prog: Program) -> dict[str, Value]:
    """`default_off_flags` over the folder's README, logs and submission.json, once per folder."""
    def build() -> dict[str, Value]:
        sub = ctx.submission
        texts = [t.text or "" for t in (sub.readme, *sub.logs.values()) if t is not None]
        if sub.json_data is not None:
            texts.append(repr(sub.json_data))
        return default_off_flags(prog, texts)
    return ctx.memo("analysis.default_off_flags", build)  # type: ignore[no-any-return]


def default_off_flags(prog: Program, texts: list[str]) -> dict[str, Value]:
    """Flags read from the environment with an off default (`os.environ.get("SLOT_ENABLED", "0")`)
    whose variable is never set in the README, run scripts or logs. Weaker evidence than logged
    hyperparameters, so rules use it only to soften warnings, never to drop errors."""
    out: dict[str, Value] = {}
    blob = "\n".join(texts)
    for pm in prog.modules:
        assert pm.tree is not None
        # the lines of the environment reads with a default: an assignment spanning none of them
        # cannot hold one, and is not walked
        env_lines = lines_where(pm.tree, "_pga_env_lines", _is_env_get, ast.Call)
        if not env_lines:
            continue
        for node in nodes_of(pm.tree, ast.Assign, ast.AnnAssign):
            if node.value is None or not spans_a_line(node, env_lines):
                continue
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [t.id if isinstance(t, ast.Name) else t.attr for t in targets
                     if isinstance(t, (ast.Name, ast.Attribute))]
            env = _env_default(node.value)
            if not names or env is None:
                continue
            var, default = env
            if default is False and not _set_in(var, blob):
                for n in names:
                    out[n.lower()] = False
    return out


_WORD = re.compile(r"\w")


def _set_in(var: str, blob: str) -> bool:
    """`var` is followed by `=` or `:` somewhere in the texts (README, run scripts, logs), as the
    whole word (`\\bVAR\\s*[=:]`). A plain word is looked for with `str.find`, which runs at memory
    speed over a megabyte of logs where a regular expression per flag took seconds."""
    if not re.fullmatch(r"\w+", var):
        return re.search(rf"\b{re.escape(var)}\s*[=:]", blob) is not None
    at = blob.find(var)
    while at >= 0:
        end = at + len(var)
        if (at == 0 or not _WORD.match(blob[at - 1])) and (end == len(blob) or not _WORD.match(blob[end])) \
                and _ASSIGN_AFTER.match(blob, end):
            return True
        at = blob.find(var, at + 1)
    return False


_ASSIGN_AFTER = re.compile(r"\s*[=:]")


def _is_env_get(n: ast.Call) -> bool:
    """`os.environ.get("VAR", <constant>)` / `os.getenv("VAR", <constant>)`."""
    return (isinstance(n.func, ast.Attribute) and n.func.attr in {"get", "getenv"}
            and len(n.args) == 2 and isinstance(n.args[0], ast.Constant) and isinstance(n.args[0].value, str)
            and isinstance(n.args[1], ast.Constant))


def _env_default(v: ast.AST) -> tuple[str, Value | None] | None:
    """(`VAR`, parsed default) for `os.environ.get("VAR", d)` / `os.getenv("VAR", d)` inside casts."""
    for n in walk(v):
        if isinstance(n, ast.Call) and _is_env_get(n):
            raw = n.args[1].value  # type: ignore[attr-defined]
            low = str(raw).strip().lower()
            return n.args[0].value, (False if low in FALSY else None)  # type: ignore[attr-defined]
    return None
