"""Val-flow patterns beyond the update/score ordering: re-scoring after TTT, knobs fitted on
scored tokens, quantisation calibration on val data, val data written into the artifact.

Each detector returns plain records (events + lines); the rules turn them into findings.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from audit.analysis import names as N
from audit.analysis.facts import Site, names_in, substitute
from audit.analysis.program import FunctionRef
from audit.analysis.valflow import Event, ValFlow

MODEL_ARG = re.compile(r"model|net|gpt|(?:^|_)lm(?:_|$)", re.IGNORECASE)


@dataclass
class Rescore:
    ttt: Event  # the score-first TTT call
    rescore: Event  # a later scoring of the same model
    model: str


@dataclass
class Calibration:
    ref: FunctionRef
    loop_line: int
    score: Event
    compare_line: int


@dataclass
class ValSink:
    ref: FunctionRef
    site: Site
    what: str  # calibration | artifact


def _exclusive(a: Site, b: Site) -> bool:
    """Sites on the two arms of one `if` (the else-arm guard carries an `<else>` marker)."""
    for ga in a.guards:
        for gb in b.guards:
            if ("<else>" in ga) != ("<else>" in gb) and (ga - {"<else>"}) == (gb - {"<else>"}):
                return True
    return False


def _model_args(site: Site) -> set[str]:
    out = {n for n in site.arg_names if n and MODEL_ARG.search(n)}
    out |= {n for n in site.kw_names.values() if n and MODEL_ARG.search(n)}
    return out


def rescoring(vf: ValFlow) -> list[Rescore]:
    """A score-first TTT pass (a call that both adapts on val and returns a val score) followed
    by another scoring call on the same model object: the reported number is then s_1."""
    out: list[Rescore] = []
    for r in vf.program.functions:
        scores = [e for e in vf.scores.get(r.facts.qualname, []) if e.site.kind == "call"]
        for site, callees in vf.calls_in(r):
            adapts = False
            for c in callees:
                if vf.isval(r, substitute(vf.adapts.get(c.facts.qualname, frozenset()), vf.binding(c, site))):
                    adapts = True
            if not adapts:
                continue
            ttt = next((e for e in scores if e.site.node is site.node), None)
            if ttt is None:
                continue
            models = _model_args(site)
            for s in scores:
                if s.site.order <= site.order or s.site.node is site.node or _exclusive(site, s.site):
                    continue
                shared = models & _model_args(s.site)
                if shared:
                    out.append(Rescore(ttt, s, sorted(shared)[0]))
                    break
    return out


def calibration_on_scored(vf: ValFlow) -> list[Calibration]:
    """A loop over candidate settings (temperatures, scales) that scores val data for each and
    keeps the best: the knob is fitted on the tokens being reported."""
    out: list[Calibration] = []
    for r in vf.program.functions:
        for e in vf.scores.get(r.facts.qualname, []):
            if e.site.kind != "call" or not e.site.loops:
                continue
            lp = e.site.loops[-1]
            loop = lp.node
            if not isinstance(loop, ast.For) or not _candidate_loop(loop):
                continue
            result = e.site.target
            if not result:
                continue
            cmp_line = _compares(loop, result)
            if cmp_line is not None:
                out.append(Calibration(r, lp.line, e, cmp_line))
    return out


def _candidate_loop(loop: ast.For) -> bool:
    it = loop.iter
    if isinstance(it, (ast.List, ast.Tuple, ast.Set)) and it.elts and all(
            isinstance(x, ast.Constant) and isinstance(x.value, (int, float)) for x in it.elts):
        return True
    return any(N.TEMPERATURE_NAME.search(n) for n in names_in(it) | names_in(loop.target))


def _compares(loop: ast.For, result: str) -> int | None:
    for n in ast.walk(loop):
        if isinstance(n, ast.Compare) and any(isinstance(o, (ast.Lt, ast.Gt, ast.LtE, ast.GtE)) for o in n.ops):
            if result in names_in(n):
                return n.lineno
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in {"min", "max", "sorted"}:
            if result in names_in(n):
                return n.lineno
    return None


def val_sinks(vf: ValFlow) -> list[ValSink]:
    """Val-derived data reaching quantisation calibration or a file write (the artifact)."""
    out: list[ValSink] = []
    for r in vf.program.functions:
        in_calib_fn = bool(N.CALIB_NAME.search(r.facts.name)) and not N.is_warmup_name(r.facts.name)
        for s in r.facts.sites:
            if s.kind == "call":
                simple = s.name.rsplit(".", 1)[-1]
                if N.CALIB_NAME.search(simple) and not re.search(r"temp", simple, re.I):
                    if any(vf.isval(r, lab) for lab in (*s.arg_labels, *s.kw_labels.values())):
                        out.append(ValSink(r, s, "calibration"))
                        continue
                if in_calib_fn and N.VAL in s.labels and s.name.rsplit(".", 1)[-1] not in N.SIZE_CALLS:
                    out.append(ValSink(r, s, "calibration"))
            elif s.kind == "save" and _artifact_save(s) and vf.isval(r, s.labels):
                out.append(ValSink(r, s, "artifact"))
    # one finding per function and kind is enough
    seen: set[tuple[str, str]] = set()
    uniq = []
    for v in out:
        k = (v.ref.facts.qualname, v.what)
        if k not in seen:
            seen.add(k)
            uniq.append(v)
    return uniq


def _artifact_save(s: Site) -> bool:
    root = s.name.split(".", 1)[0]
    return root in {"torch", "np", "numpy", "pickle", "safetensors", "save_file"} or s.name in {"save_file"}
