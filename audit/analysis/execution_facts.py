"""What the code prints and what the logs say: the facts execution.py judges from.

Prints of every analysed function (their constant text as a regex), the log lines (without the
source the script writes into its own log), the claimed score lines and the logged flags,
computed once per folder. Split from execution.py so that each module keeps one job.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from audit.analysis.flags import folder_default_off_flags, logged_flags
from audit.analysis.names import LOG_CALLS
from audit.analysis.program import FunctionRef, Program
from audit.analysis.sources import Source, analysis_sources
from audit.analysis.syntax import too_deep, unparsed
from audit.findings import Evidence

RAN = "ran"
NOT_RUN = "shipped but not run"
UNKNOWN = "unknown"

# A print is distinctive when its constant text carries this many letters or digits.
MIN_PRINT_CHARS = 6
# Guards that only pick the process that logs; they do not make a print conditional.
_RANK_GUARD = re.compile(r"rank|master|main_process|is_main|__name__", re.IGNORECASE)
_FIELD_NAME = re.compile(r"[A-Za-z_]\w*")
_CODE_LINE = re.compile(r"\b(?:print\w*|log\w*|info)\s*\(\s*[rRbBuUfF]{0,2}[\"']")
_MAX_PATTERNS = 4000


@dataclass(frozen=True)
class Execution:
    """One finding's execution state, why, and the lines that decide it."""

    state: str
    reason: str
    evidence: tuple[Evidence, ...] = ()


@dataclass
class _Print:
    """A log call in the code: its function, line and the regex of its constant text."""

    ref: FunctionRef
    line: int
    regex: re.Pattern[str]
    fields: frozenset[str]
    conditional: bool


@dataclass
class _LogLine:
    path: str
    line: int
    text: str
    label: str = ""  # for a score line: its label (`legal_ttt_exact`)


@dataclass
class ExecutionFacts:
    """Per-submission data the judgement needs, computed once."""

    program: Program
    logs: list[_LogLine] = field(default_factory=list)
    complete_logs: bool = False  # some log reached a final score line
    # the claimed val_bpb, when no log line (nor the mean of the runs' final lines) gives it: the
    # logs then may come from another run than the claimed one, and missing output proves nothing
    unsupported_claim: float | None = None
    claim_lines: list[_LogLine] = field(default_factory=list)  # the score lines the claim comes from
    _claim_map: dict[str, tuple[_Print, _LogLine, int]] | None = None
    flags: dict = field(default_factory=dict)
    soft_flags: dict = field(default_factory=dict)
    prints: dict[str, list[_Print]] = field(default_factory=dict)  # source path -> prints
    _matches: dict[int, _LogLine | None] = field(default_factory=dict)
    _callers: dict[str, list[tuple[FunctionRef, ast.Call]]] | None = None
    _witness: dict[int, list[_Print]] = field(default_factory=dict)
    sources: dict[str, Source] = field(default_factory=dict)

    def first_match(self, p: _Print) -> _LogLine | None:
        key = id(p)
        if key not in self._matches:
            self._matches[key] = next((ln for ln in self.logs if p.regex.search(ln.text)), None)
        return self._matches[key]


# -- building the facts -----------------------------------------------------------------------
def execution_facts(ctx) -> ExecutionFacts:
    from audit.analysis.api import program
    return ctx.memo("analysis.execution", lambda: _build(ctx, program(ctx)))


def _build(ctx, prog: Program) -> ExecutionFacts:
    sub = ctx.submission
    runs = ctx.runs  # parsed by the engine before any rule (audit.context)
    facts = ExecutionFacts(prog)
    source_lines: dict[str, set[int]] = {}
    for r in runs:
        if r.embedded_source and r.embedded_source_line:
            n = len(r.embedded_source.splitlines())
            source_lines.setdefault(r.log_path, set()).update(
                range(r.embedded_source_line, r.embedded_source_line + n + 1))
        if r.scores and not r.truncated:
            facts.complete_logs = True
    for path, tf in sorted(sub.logs.items()):
        skip = source_lines.get(path, set())
        for i, text in enumerate((tf.text or "").splitlines(), start=1):
            if i in skip or _CODE_LINE.search(text):
                continue
            facts.logs.append(_LogLine(path, i, text))
    facts.unsupported_claim = _unsupported_claim(ctx, runs)
    facts.claim_lines = _claim_lines(ctx, runs)
    facts.flags = logged_flags(runs)
    facts.soft_flags = {k: v for k, v in folder_default_off_flags(ctx, prog).items() if k not in facts.flags}
    by_path = {s.path: s for s in analysis_sources(ctx)}
    facts.sources = by_path
    count = 0
    for ref in prog.functions:
        src = by_path.get(ref.path)
        if src is None or too_deep(ref.facts.node):  # never walked (syntax.MAX_NESTING)
            continue
        for p in _prints_of(ref, src):
            if count >= _MAX_PATTERNS:
                break
            facts.prints.setdefault(ref.path, []).append(p)
            count += 1
    return facts


def _claim_lines(ctx, runs) -> list[_LogLine]:
    """The score line each log gives for the claim: the line equal to the claimed val_bpb, else
    the run's canonical final line."""
    claims = ctx.claims
    bpb = claims.val_bpb if claims is not None else None
    out = []
    texts = {p: (tf.text or "").splitlines() for p, tf in ctx.submission.logs.items()}
    for r in runs:
        hit = r.score_matching(bpb, 5e-5) if bpb is not None else None
        line = hit.line if hit is not None else r.score_line
        label = hit.label if hit is not None else (r.score_label or "")
        lines = texts.get(r.log_path, [])
        if line and 0 < line <= len(lines):
            out.append(_LogLine(r.log_path, line, lines[line - 1], label.strip() or "score"))
    return out


def _unsupported_claim(ctx, runs) -> float | None:
    claims = ctx.claims
    bpb = claims.val_bpb if claims is not None else None
    if bpb is None:
        return None
    if any(r.score_matching(bpb, 5e-5) is not None for r in runs):
        return None
    finals = [r.val_bpb for r in runs if r.val_bpb is not None]
    if finals and abs(sum(finals) / len(finals) - bpb) <= 1e-4:
        return None
    return bpb


def _prints_of(ref: FunctionRef, src: Source) -> Iterable[_Print]:
    """The log calls written directly in this function (nested functions print for themselves)."""
    yield from _visit_prints(ref, src, ref.body, False)


def _visit_prints(ref: FunctionRef, src: Source, stmts: list[ast.stmt], conditional: bool) -> Iterable[_Print]:
    lines = src.parsed.lines
    for st in stmts:
        if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        if isinstance(st, ast.Expr) and isinstance(st.value, ast.Call) and _is_log_call(st.value):
            text = "\n".join(lines[st.lineno - 1:(st.end_lineno or st.lineno)])
            made = _pattern(text)
            if made is not None:
                yield _Print(ref, st.lineno, made[0], made[1], conditional)
            continue
        if isinstance(st, ast.If):
            cond = conditional or not _RANK_GUARD.search(unparsed(st.test))
            yield from _visit_prints(ref, src, st.body, cond)
            yield from _visit_prints(ref, src, st.orelse, True)
        elif isinstance(st, ast.Try):
            yield from _visit_prints(ref, src, st.body, conditional)
            for h in st.handlers:
                yield from _visit_prints(ref, src, h.body, True)
            yield from _visit_prints(ref, src, st.orelse, True)
            yield from _visit_prints(ref, src, st.finalbody, conditional)
        elif isinstance(st, (ast.For, ast.AsyncFor, ast.While)):
            yield from _visit_prints(ref, src, st.body, conditional)
            yield from _visit_prints(ref, src, st.orelse, True)
        elif isinstance(st, (ast.With, ast.AsyncWith)):
            yield from _visit_prints(ref, src, st.body, conditional)


def _is_log_call(call: ast.Call) -> bool:
    f = call.func
    name = f.id if isinstance(f, ast.Name) else (f.attr if isinstance(f, ast.Attribute) else "")
    return bool(LOG_CALLS.match(name))


def _pattern(call_text: str) -> tuple[re.Pattern[str], frozenset[str]] | None:
    """A regex for the lines this log call prints: its string literals' constant parts in order,
    replacement fields (`{x:.4f}`, `%d`) as wildcards that stay inside one line."""
    parts, names = _literal_parts(call_text)
    letters = sum(len(re.findall(r"[A-Za-z0-9]", p)) for p in parts)
    if letters < MIN_PRINT_CHARS:
        return None
    wild = r"[^\n{}]*?"
    body = wild.join(re.escape(p) for p in parts if p)
    try:
        return re.compile(body), frozenset(names)
    except re.error:
        return None


def _literal_parts(text: str) -> tuple[list[str], list[str]]:
    """Constant text of the string literals in `text` (split at fields) and the field names."""
    parts: list[str] = []
    names: list[str] = []
    i, n = 0, len(text)
    while i < n:
        m = re.compile(r"([rRbBuUfF]{0,2})(\"\"\"|'''|\"|')").search(text, i)
        if m is None:
            break
        is_f = "f" in m.group(1).lower()
        quote = m.group(2)
        j = m.end()
        cur: list[str] = []
        depth = 0
        field_text: list[str] = []
        while j < n:
            if depth == 0 and text.startswith(quote, j):
                j += len(quote)
                break
            ch = text[j]
            if depth == 0 and ch == "\\" and j + 1 < n:
                cur.append({"n": "\n", "t": "\t"}.get(text[j + 1], text[j + 1]))
                j += 2
                continue
            if is_f and ch == "{" and depth == 0 and text.startswith("{{", j):
                cur.append("{")
                j += 2
                continue
            if is_f and ch == "}" and depth == 0 and text.startswith("}}", j):
                cur.append("}")
                j += 2
                continue
            if is_f and ch == "{":
                if depth == 0:
                    parts.append("".join(cur))
                    cur = []
                    field_text = []
                depth += 1
            elif is_f and ch == "}" and depth > 0:
                depth -= 1
                if depth == 0:
                    names.extend(_FIELD_NAME.findall("".join(field_text).split(":")[0].split("!")[0]))
            elif depth > 0:
                field_text.append(ch)
            else:
                cur.append(ch)
            j += 1
        literal = "".join(cur)
        if not is_f:  # `%`-style or `.format` fields
            pieces = re.split(r"%[-+ #0-9.]*[sdifgeErx]|\{[^{}]*\}", literal)
            parts.extend(pieces[:-1])
            literal = pieces[-1]
        parts.append(literal)
        i = j
    return [p for p in parts if p.strip()], names


