"""Byte-level PPM mixtures fed with token scores spread over bytes (asked by R-PPM-BYTE-MIXTURE):
a called function named like PPM whose body divides a token log-probability by its byte count,
raises a probability to 1/n_bytes or repeats a token score over its bytes."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from audit.analysis.eval_code import CodeUnit
from audit.analysis.imports import runtime_functions
from audit.analysis.syntax import call_name, names_in, walk_nodes

PPM_NAME = re.compile(r"ppm|prediction_by_partial", re.I)
SCORE_NAME = re.compile(r"(^|_)(lp|logp|log_p|logprob|nll|nlp|ptl|loss|lprob)s?($|_)", re.I)
LEN_NAME = re.compile(r"(len|lens|nb|n_?bytes|byte_?count|bytes|piece_len|tok_len)", re.I)
C_SPREAD = re.compile(r"(nll|logp|lp)\w*\s*(\[[^\]]*\])?\s*/\s*\(\s*double\s*\)\s*\w*(nb|len|bytes)", re.I)


@dataclass(frozen=True)
class PpmMixture:
    unit: CodeUnit
    name: str  # the PPM function
    def_line: int
    line: int  # the first spreading site
    what: str


def ppm_byte_mixtures(ctx) -> list[PpmMixture]:  # type: ignore[no-untyped-def]
    """Every called PPM-named function of the run-time code that spreads token scores over bytes."""
    def build() -> list[PpmMixture]:
        out = []
        for unit, fns in runtime_functions(ctx):
            ppm_defs = [f.node for f in fns if PPM_NAME.search(f.name)
                        and isinstance(f.node, (ast.FunctionDef, ast.AsyncFunctionDef))]
            called = {call_name(c) for f in fns for c in f.calls}
            for fn in ppm_defs:
                if fn.name not in called:
                    continue
                sites = _spread_sites(fn)
                if sites:
                    line, what = min(sites)
                    out.append(PpmMixture(unit, fn.name, fn.lineno, line, what))
        return out
    return ctx.memo("patterns.ppm_byte_mixtures", build)


def _spread_sites(fn: ast.AST) -> list[tuple[int, str]]:
    """Per-byte spreading of a token score: `lp / n_bytes`, `np.repeat(lp, lens)`, `p ** (1 / n)`."""
    out: list[tuple[int, str]] = []
    for n in walk_nodes(fn):
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Div):
            num = {x.split(".")[-1] for x in names_in(n.left, variables=True)}
            den = {x.split(".")[-1] for x in names_in(n.right, variables=True)}
            if any(SCORE_NAME.search(x) for x in num) and any(LEN_NAME.search(x) for x in den):
                out.append((n.lineno, "token log-probability divided by its byte count (spread over bytes)"))
        elif isinstance(n, ast.BinOp) and isinstance(n.op, ast.Pow) and isinstance(n.right, ast.BinOp) \
                and isinstance(n.right.op, ast.Div) and any(LEN_NAME.search(x) for x in names_in(n.right.right, variables=True)):
            out.append((n.lineno, "token probability raised to 1/n_bytes (spread over bytes)"))
        elif isinstance(n, ast.Call) and call_name(n) in ("repeat", "repeat_interleave") and len(n.args) >= 2 \
                and any(SCORE_NAME.search(x.split(".")[-1]) for x in names_in(n.args[0], variables=True)):
            out.append((n.lineno, "token score repeated over its bytes"))
        elif isinstance(n, ast.Constant) and isinstance(n.value, str) and len(n.value) > 200 \
                and C_SPREAD.search(n.value):
            out.append((n.lineno, "compiled kernel source divides the token NLL by its byte count"))
    return out
