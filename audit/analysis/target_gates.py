"""Gates and experts that read the realised token's metadata (RULES.md R-EVAL-C1-CAUSAL, #1017).

An n-gram "tilt" or expert keyed on the context alone can still leak the answer through its
gate: `lam = where(leading_space[y], a, b)` or a within-word boost multiplied by
`~leading_space[y]` picks the mixture by whether the TARGET starts a word. The distribution
scored at t then depends on the token at t. We look for
  * a read of a per-token metadata table (boundary, word start, leading space, ...) indexed by
    a target-derived value (targets.py's taint);
  * a value built from it that is combined with the model's distribution (logits, log-probs,
    probabilities) into what is scored (a log, a loss accumulator or the return).
The same tables indexed by the target for byte accounting (`n_bytes += base_bytes[y] +
leading_space[y] & ~is_boundary[x]`) never meet the model's distribution, and gates read from
the context (`is_boundary[x]`: does the previous token end a word?) are legal.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from audit.analysis.code_functions import Function
from audit.analysis.ngram import reaches_score
from audit.analysis.syntax import base_of, call_name, names_in, walk_nodes
from audit.analysis.targets import target_flow
from audit.findings import Evidence

META_TABLE = re.compile(r"boundary|word_?start|start_?word|leading_?space|has_space|is_space|whitespace|"
                        r"newline|punct|mid_?word|within_?word|continuation|is_ws|ws_", re.IGNORECASE)
_DIST_CALLS = {"log_softmax", "softmax", "model_logits", "logits", "forward_logits", "get_logits"}
_DIST_NAME = re.compile(r"logit|logp|log_p|prob|p_model|lprobs", re.IGNORECASE)
_ACCOUNTING = re.compile(r"byte|bpb|bits|count|n_tok|ntok|tokens", re.IGNORECASE)


@dataclass
class TargetGate:
    fn: Function
    line: int  # where the gate meets the model's distribution
    table: str
    steps: list[Evidence]


def target_gates(ctx) -> list[TargetGate]:  # type: ignore[no-untyped-def]
    return ctx.memo("analysis.target_gates", lambda: _compute(ctx))


def _compute(ctx) -> list[TargetGate]:  # type: ignore[no-untyped-def]
    flow = target_flow(ctx)
    out: list[TargetGate] = []
    for fn in flow.functions:
        reads = [s for s in fn.subscripts if isinstance(s.ctx, ast.Load) and META_TABLE.search(base_of(s.value) or "")
                 and any(flow.is_target(fn, n) for n in names_in(s.slice, variables=True))]
        if not reads:
            continue
        gate = _gate_names(fn, reads)
        if not gate:
            continue
        dist = _dist_names(fn)
        for a in fn.assigns:
            if isinstance(a.node, (ast.For, ast.AsyncFor)) or any(_ACCOUNTING.search(n) for n in a.names):
                continue
            used = names_in(a.value, variables=True)
            g = used & set(gate)
            if not g or not (used & dist or _has_dist_call(a.value)) or _only_divides(a.value, g):
                continue
            sink, _ = reaches_score(fn, set(a.names), a.node)
            if sink is None:
                continue
            name = sorted(g)[0]
            read_line, table = gate[name]
            steps = [fn.evidence(read_line, f"metadata `{table}` of the target token (the token being scored) "
                                          "is read"),
                     fn.evidence(a.line, f"`{name}`, built from it, gates/weights the model's distribution"),
                     sink]
            out.append(TargetGate(fn, a.line, table, steps))
            break
    return out


def _gate_names(fn: Function, reads: list[ast.Subscript]) -> dict[str, tuple[int, str]]:
    """Names assigned from a target-metadata read (and values built from them) -> (read line, table)."""
    ids = {id(r): (r.lineno, base_of(r.value) or "") for r in reads}
    gate: dict[str, tuple[int, str]] = {}
    for _ in range(4):
        grew = False
        for a in fn.assigns:
            if isinstance(a.node, (ast.For, ast.AsyncFor)) or any(_ACCOUNTING.search(n) for n in a.names):
                continue
            src = next((ids[id(n)] for n in walk_nodes(a.value) if id(n) in ids), None)
            if src is None:
                src = next((gate[n] for n in sorted(names_in(a.value, variables=True)) if n in gate), None)
            if src is None:
                continue
            for n in a.names:
                if n not in gate:
                    gate[n] = src
                    grew = True
        if not grew:
            break
    return gate


def _dist_names(fn: Function) -> set[str]:
    """Names holding the model's distribution (logits, log-probs, probabilities)."""
    out = {n for a in fn.assigns for n in a.names if _DIST_NAME.search(n) or _has_dist_call(a.value)}
    return out


def _has_dist_call(e: ast.AST) -> bool:
    return any(isinstance(n, ast.Call) and call_name(n) in _DIST_CALLS for n in walk_nodes(e))


def _only_divides(e: ast.AST, names: set[str] | frozenset[str]) -> bool:
    """The gate names appear only as divisors (a per-byte normalisation, not a gate)."""
    divisor: set[int] = set()
    for n in walk_nodes(e):
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Div):
            divisor |= {id(x) for x in walk_nodes(n.right)}
    return all(id(x) in divisor for x in walk_nodes(e) if isinstance(x, ast.Name) and x.id in names)
