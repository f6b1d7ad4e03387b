"""Val-flow patterns beyond the update/score ordering: re-scoring after TTT, knobs fitted on
scored tokens, quantisation calibration on val data, val data written into the artifact.
Calibration is recognised by name (GPTQ, Hessian, clip search) or, whatever the names, by what
the code does (`_feeds_quantiser`): val data handed to a function that overwrites weights with
rounded values scaled from it, or to one that records layer inputs with forward hooks and whose
result is handed to such a function.

Each detector returns plain records (events + lines); the rules turn them into findings.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from audit.analysis import names as N
from audit.analysis.facts import Site, assign_closure, substitute
from audit.analysis.program import FunctionRef
from audit.analysis.syntax import names_in, walk
from audit.analysis.valflow import Event, ValFlow

MODEL_ARG = re.compile(r"model|net|gpt|(?:^|_)lm(?:_|$)", re.IGNORECASE)


@dataclass
class Rescore:
    ttt: Event  # the score-first TTT call
    rescore: Event  # a later scoring of the same model
    model: str
    label: str | None = None  # the log label the re-score is printed under, e.g. "final_ttt_T0.98"


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
                if vf.isval(r, substitute(vf.adapts.get(c.facts.qualname, frozenset()), vf.binding(c, site))) \
                        and _adapts_in_place(c):
                    adapts = True
            if not adapts:
                continue
            ttt = next((e for e in scores if e.site.node is site.node), None)
            if ttt is None or _returned_directly(r, site):
                continue  # `return eval_ttt(...)`: nothing after it runs on that path
            models = _model_args(site)
            for s in scores:
                if s.site.order <= site.order or s.site.node is site.node or _exclusive(site, s.site):
                    continue
                shared = {m for m in models & _model_args(s.site)
                          if not _reassigned(r, m, site.line, s.site.line)}
                if shared:
                    out.append(Rescore(ttt, s, sorted(shared)[0], log_label(r, s.site)))
                    break
    return out


def _returned_directly(ref: FunctionRef, site: Site) -> bool:
    """The call is (part of) a `return` statement's value."""
    for s in ref.facts.sites:
        if (s.kind == "return" and isinstance(s.node, ast.Return) and s.node.value is not None
                and s.line <= site.line <= s.end_line and any(n is site.node for n in walk(s.node.value))):
            return True
    return False


def _adapts_in_place(callee: FunctionRef) -> bool:
    """False when the TTT routine trains a deep copy of the model, or puts the saved weights back
    after its last update: the caller's model is then not the adapted one."""
    ff = callee.facts
    backs = [s for s in ff.sites if s.kind == "backward"]
    if not backs:
        return True  # the updates happen further down; assume in place
    for o in (s for s in ff.sites if s.kind == "optim"):
        seen = assign_closure(ff, o.mentions, limit=100)
        if "deepcopy" in seen:
            return False
    last = max(b.order for b in backs)
    for s in ff.sites:
        if s.kind == "call" and s.order > last and s.name.endswith("load_state_dict"):
            root = s.name.split(".", 1)[0]
            if root in ff.params:
                return False
    return True


def log_label(ref: FunctionRef, site: Site) -> str | None:
    """The label of the first log line after `site` that prints its result (`f"final_x val_bpb:{b}"`
    -> "final_x"), to match against the score lines of the logs."""
    if not site.target:
        # `_sampled_eval(model, "post_ttt_diag")`: a scorer that logs its result under the label
        # it is handed
        call = site.node
        for a in (call.args if isinstance(call, ast.Call) else []):
            if isinstance(a, ast.Constant) and isinstance(a.value, str) and a.value.strip():
                return a.value.split()[0].rstrip(":")
        return None
    for s in ref.facts.sites:
        if s.kind != "call" or s.order <= site.order or not N.LOG_CALLS.search(s.name.rsplit(".", 1)[-1]):
            continue
        if not isinstance(s.node, ast.Call):
            continue
        for a in s.node.args:
            if isinstance(a, ast.JoinedStr) and site.target in names_in(a) and a.values:
                head = a.values[0]
                if isinstance(head, ast.Constant) and isinstance(head.value, str) and head.value.strip():
                    return head.value.split()[0].rstrip(":")
    return None


def _reassigned(ref: FunctionRef, name: str, after: int, before: int) -> bool:
    """`name` is bound to a new object between two lines (a fresh model is built for the eval)."""
    for n in walk(ref.facts.node):
        if isinstance(n, (ast.Assign, ast.AnnAssign)) and after < n.lineno < before:
            targets = n.targets if isinstance(n, ast.Assign) else [n.target]
            if any(name in {t.id for t in walk(tg) if isinstance(t, ast.Name)} for tg in targets):
                return True
    return False


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
            # the tokens handed to the scorer must be val data: a scorer whose parameter is called
            # `val_tokens` run on held-out training tokens (`find_temp(..., train_slice)`) is not
            if not any(vf.isval(r, lab) for lab in (*e.site.arg_labels, *e.site.kw_labels.values())):
                continue
            if not _callers_pass_val(vf, r, e.site):
                continue
            cmp_line = _compares(loop, result)
            if cmp_line is not None:
                out.append(Calibration(r, lp.line, e, cmp_line))
    return out


def _callers_pass_val(vf: ValFlow, ref: FunctionRef, site: Site) -> bool:
    """When the scored tokens arrive through parameters of `ref`, some caller hands it val data.
    A helper's parameter named `val_tokens` says nothing when every caller passes a held-out
    slice of the training stream (`find_best_temperature(..., calib_tokens)`)."""
    call = site.node
    if not isinstance(call, ast.Call):
        return True
    used = set().union(*(names_in(a) for a in (*call.args, *(k.value for k in call.keywords))))
    params = used & set(ref.facts.params)
    if not params:
        return True
    sites = [(c, cs) for c in vf.program.functions for cs, callees in vf.calls_in(c)
             if any(x.facts.qualname == ref.facts.qualname for x in callees)]
    if not sites:
        return True  # an entry point: its parameter names are all there is to go on
    return any(vf.isval(c, vf.binding(ref, cs).get(p, frozenset())) for c, cs in sites for p in params)


def _candidate_loop(loop: ast.For) -> bool:
    it = loop.iter
    if isinstance(it, (ast.List, ast.Tuple, ast.Set)) and it.elts and all(
            isinstance(x, ast.Constant) and isinstance(x.value, (int, float)) for x in it.elts):
        return True
    return any(N.TEMPERATURE_NAME.search(n) for n in names_in(it) | names_in(loop.target))


def _compares(loop: ast.For, result: str) -> int | None:
    for n in walk(loop):
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
    flagged_callees: set[str] = set()
    for r in vf.program.functions:
        for s in r.facts.sites:
            if s.kind == "call" and _quant_calibration_call(vf, r, s):
                if any(vf.isval(r, lab) for lab in (*s.arg_labels, *s.kw_labels.values())):
                    out.append(ValSink(r, s, "calibration"))
                    if isinstance(s.node, ast.Call):
                        flagged_callees |= {c.facts.qualname for c in vf.program.callees(s.node, r.facts.class_name, caller=r.facts)}
            elif s.kind == "save" and _artifact_save(s, r) and vf.isval(r, _without_metrics(s.labels)):
                out.append(ValSink(r, s, "artifact"))
    # A calibration routine that loads val data itself (not handed it by a flagged caller).
    for r in vf.program.functions:
        if r.facts.qualname in flagged_callees or not _is_quant_calibration_fn(r):
            continue
        for s in r.facts.sites:
            if s.kind == "call" and N.VAL in s.labels and not any(
                    lab.startswith(N.PARAM) for lab in s.labels) and _reads_val_source(s):
                out.append(ValSink(r, s, "calibration"))
                break
    seen: set[tuple[str, str, int]] = set()
    uniq = []
    for v in out:
        k = (v.ref.facts.qualname, v.what, v.site.line)
        if k not in seen:
            seen.add(k)
            uniq.append(v)
    return uniq


QUANT_WORDS = re.compile(r"hessian|gptq|quant|clip|int[4-8]|scale", re.IGNORECASE)


def _is_quant_calibration_fn(ref: FunctionRef) -> bool:
    name = ref.facts.name
    if N.NOT_QUANT_CALIB.search(name) or not N.CALIB_NAME.search(name):
        return False
    return bool(re.search(r"gptq|hessian", name, re.I)) or any(
        QUANT_WORDS.search(n) for n in names_in(ref.facts.node))


def _quant_calibration_call(vf: ValFlow, ref: FunctionRef, s: Site) -> bool:
    """A call into GPTQ / Hessian / clip calibration: by name, or a user function whose body
    does quantisation work, or, whatever the names, by what it does (`_feeds_quantiser`)."""
    simple = s.name.rsplit(".", 1)[-1]
    if _feeds_quantiser(vf, ref, s):
        return True
    if not N.CALIB_NAME.search(simple) or N.NOT_QUANT_CALIB.search(simple):
        return False
    if re.search(r"gptq|hessian", simple, re.I):
        return True
    callees = vf.program.callees(s.node, ref.facts.class_name, caller=ref.facts) if isinstance(s.node, ast.Call) else []
    if callees:
        return any(_is_quant_calibration_fn(c) for c in callees)
    return bool(QUANT_WORDS.search(simple))


_HOOKS = ("register_forward_hook", "register_forward_pre_hook", "register_full_backward_hook")


def _feeds_quantiser(vf: ValFlow, ref: FunctionRef, s: Site) -> bool:
    """Calibration by structure: the call hands data to a function that writes rounded values into
    the model's weights from it (a quantiser), or its callee collects activation statistics with
    forward hooks and its result is handed to such a quantiser in the same function
    (`stats = gather(model, tokens)`, then `quantise(model, stats)`)."""
    if not isinstance(s.node, ast.Call):
        return False
    callees = vf.program.callees(s.node, ref.facts.class_name, caller=ref.facts)
    if not callees:
        return False
    bound = [i for i, lab in enumerate(s.arg_labels) if vf.isval(ref, lab)]
    if any(_rounds_into_weights(vf, c, _param_at(c, s.node, i)) for c in callees for i in bound):
        return True
    if not s.target or not any(_collects_activations(c) for c in callees):
        return False
    for t in ref.facts.sites:
        if t.kind != "call" or t.line < s.line or not isinstance(t.node, ast.Call) or s.target not in t.arg_names:
            continue
        i = t.arg_names.index(s.target)
        for c in vf.program.callees(t.node, ref.facts.class_name, caller=ref.facts):
            if _rounds_into_weights(vf, c, _param_at(c, t.node, i)):
                return True
    return False


def _param_at(callee: FunctionRef, call: ast.Call, i: int) -> str | None:
    params = list(callee.facts.params)
    if callee.facts.is_method and isinstance(call.func, ast.Attribute):
        params = params[1:]
    return params[i] if i < len(params) else None


def _collects_activations(callee: FunctionRef) -> bool:
    return any(s.kind == "call" and s.name.rsplit(".", 1)[-1] in _HOOKS for s in callee.facts.sites)


def _rounds_into_weights(vf: ValFlow, callee: FunctionRef, param: str | None, depth: int = 0) -> bool:
    """`w.copy_(torch.round(w / scale) * scale)` with the scale computed from `param`: the
    function writes quantised weights that depend on that parameter, itself or through the
    functions it hands `param` to (three calls deep)."""
    if param is None:
        return False
    label = N.PARAM + param
    for s in callee.facts.sites:
        if s.kind != "call" or not isinstance(s.node, ast.Call):
            continue
        if s.name.endswith("copy_") and any(label in lab for lab in s.arg_labels) and any(
                isinstance(n, ast.Call) and isinstance(n.func, (ast.Name, ast.Attribute))
                and (n.func.id if isinstance(n.func, ast.Name) else n.func.attr) == "round"
                for a in s.node.args for n in ast.walk(a)):
            return True
        if depth < 3:
            handed = [j for j, lab in enumerate(s.arg_labels) if label in lab]
            if handed and any(_rounds_into_weights(vf, c, _param_at(c, s.node, j), depth + 1)
                              for c in vf.program.callees(s.node, callee.facts.class_name, caller=callee.facts)
                              for j in handed):
                return True
    return False


def _reads_val_source(s: Site) -> bool:
    node = s.node
    return isinstance(node, ast.Call) and (
        bool(N.VAL_LOADER.search(s.name.rsplit(".", 1)[-1]))
        or any(N.is_val_name(n) for n in names_in(node)))


ARTIFACT_NAME = re.compile(r"state_dict|quant|artifact", re.IGNORECASE)  # what flows into the save
ARTIFACT_PATH = re.compile(r"model|artifact|final|\.ptz?$", re.IGNORECASE)  # where it is written


# A parameter holding a number measured on val (`save_checkpoint(model, step, val_bpb, ...)`):
# writing it next to the weights records a metric, it does not store validation data.
METRIC_PARAM = re.compile(r"(?:^|_)(?:bpb|loss|nll|ppl|perplexity|score|metric|acc|accuracy)(?:$|_)", re.IGNORECASE)


def _without_metrics(labels: frozenset[str]) -> frozenset[str]:
    return frozenset(lab for lab in labels
                     if not (lab.startswith(N.PARAM) and METRIC_PARAM.search(lab[len(N.PARAM):])))


def _artifact_save(s: Site, ref: FunctionRef) -> bool:
    """A serialisation that writes the artifact: it stores model weights or targets a model file
    (a debugging dump of eval arrays to some other path is not the artifact)."""
    root = s.name.split(".", 1)[0]
    if not (root in {"torch", "np", "numpy", "pickle", "safetensors"} or s.name == "save_file"):
        return False
    if not isinstance(s.node, ast.Call):
        return False
    todo = [n for a in (*s.node.args, *(k.value for k in s.node.keywords)) for n in names_in(a)]
    strings = [c.value for a in (*s.node.args, *(k.value for k in s.node.keywords)) for c in walk(a)
               if isinstance(c, ast.Constant) and isinstance(c.value, str)]
    seen = assign_closure(ref.facts, todo, limit=200)
    return any(ARTIFACT_NAME.search(x) for x in seen) or any(ARTIFACT_PATH.search(x) for x in strings)
