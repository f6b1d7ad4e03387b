"""Findings of the probes (rules of kind `runtime`): R-PROBE-KRAFT and R-PROBE-BYTES.

An error when the probe measured a violation; an info note `.passed` with the measured value when
it holds; an info note `.not-applicable` with the reason when the probe could not drive the
submission. Every rewrite of the CPU port is listed as evidence, so a reviewer sees exactly what
was changed before the evaluator ran. No torch here (the report side imports this module).
"""

from __future__ import annotations

from dataclasses import dataclass

from audit.findings import Evidence, Finding, Severity

KRAFT, BYTES = "R-PROBE-KRAFT", "R-PROBE-BYTES"
SOURCES = {
    KRAFT: "RULES.md R-EVAL-C1-CAUSAL, R-EVAL-C2-NORMALIZED (https://github.com/openai/parameter-golf/issues/1017 ; "
           "https://github.com/openai/parameter-golf/pull/886 ; https://github.com/openai/parameter-golf/pull/1240)",
    BYTES: "RULES.md R-METRIC-BPB (README; train_gpt.py build_sentencepiece_luts; "
           "https://github.com/openai/parameter-golf/pull/1184)",
}


@dataclass(frozen=True)
class ProbeCheck:
    id: str
    title: str
    severity: Severity
    source: str


CHECKS = {
    KRAFT: ProbeCheck(KRAFT, "Kraft-sum probe: the evaluator's scores form a causal, normalised distribution "
                      "(sum over the vocabulary of exp(NLL(x) - NLL(x.v)) = 1)", Severity.ERROR, SOURCES[KRAFT]),
    BYTES: ProbeCheck(BYTES, "Byte-accounting probe: the byte tables are the tokenizer's and charge a text sample "
                      "exactly its UTF-8 bytes", Severity.ERROR, SOURCES[BYTES]),
}


def probe_findings(outcome) -> list[Finding]:
    """Findings of one ProbeOutcome (audit.probes.runner)."""
    out = [kraft_finding(outcome), bytes_finding(outcome)]
    k = outcome.kraft or {}
    if outcome.status == "ok" and k.get("twin_offset"):
        out.append(Finding(
            f"{KRAFT}.model-forward", Severity.WARNING,
            f"The model's own forward(x, y) is not a plain normalised NLL: scored with it, the Kraft sum is "
            f"{k['twin']:.6f}, not 1 (an auxiliary term such as a z-loss in the returned loss, or a forward that "
            "reads the targets). The evaluator was judged against this sum; a reviewer should check what "
            "model(x, y) returns, since the reported val_loss is built from it.",
            path=outcome.path, line=outcome.line, key="kraft-twin", source=SOURCES[KRAFT],
            evidence=(Evidence(f"legal twin K = {k['twin']:.6f}; evaluator K = {k['value']:.6f}", outcome.path,
                               outcome.line),)))
    return out


def _rewrites(outcome) -> tuple[Evidence, ...]:
    rs = outcome.rewrites
    head = Evidence(f"CPU port (libcst, line numbers kept): {len(rs)} rewrite(s), all listed below", outcome.path)
    return (head, *(Evidence(f"rewrite: {r['kind']}", r.get("path"), r["line"] or None,
                             f"{r['before']} -> {r['after']}") for r in rs))


def kraft_finding(outcome) -> Finding:
    where = {"path": outcome.path, "line": outcome.line}
    call = Evidence(f"evaluator driven: {outcome.evaluator or '(none found)'} (the call behind the claimed score)",
                    outcome.path, outcome.line)
    if outcome.status != "ok" or not outcome.kraft:
        return Finding(f"{KRAFT}.not-applicable", Severity.INFO,
                       f"Kraft-sum probe not applicable ({outcome.category or 'not driven'}): {outcome.reason}",
                       evidence=(call, *_rewrites(outcome)), key="kraft-na", source=SOURCES[KRAFT], **where)
    k = outcome.kraft
    cfg = outcome.config
    over = (f"{k['candidates']} of {k['vocab']} candidates (stopped early: every term is positive, so the whole "
            "sum is at least this)") if k.get("stopped_early") else f"{k['candidates']} candidates"
    measured = Evidence(
        f"Kraft sum K {'>=' if k.get('stopped_early') else '='} {k['value']:.6f} over {over} (per-candidate p(v|x) from "
        f"{k['p_min']:.2e} to {k['p_max']:.2e}); legal twin (same weights, plain causal forward) "
        f"K = {k['twin']:.6f}; {k['tolerance_explained']}", outcome.path, outcome.line)
    setup = Evidence(f"probe stream: {cfg.get('n')} targets + 1 candidate, vocabulary {cfg.get('vocab')}, "
                     f"{cfg.get('windows')} (seq_len {cfg.get('seq_len')}, stride {cfg.get('stride')}, "
                     f"chunk {cfg.get('chunk')}), random weights, float32 on CPU")
    rejected = k.get("rejected") or {}
    if rejected:
        setup = Evidence(setup.label + f"; {len(rejected)} candidate(s) the evaluator fails on counted with the legal "
                         f"twin's probability: " + ", ".join(f"id {v} ({why})" for v, why in list(rejected.items())[:3]))
    steps = tuple(Evidence("replayed before the evaluator: main's step that consumes the validation tokens",
                           r["path"], r["line"]) for r in getattr(outcome, "replayed", []))
    steps += tuple(Evidence(f"not replayed: {s}") for s in getattr(outcome, "skipped_steps", []))
    if getattr(outcome, "env_from_logs", None):
        steps += (Evidence("set as the logs' hyperparameters show: " + ", ".join(
            f"{k}={v}" for k, v in sorted(outcome.env_from_logs.items()))),)
    if getattr(outcome, "env_refused", None):
        steps += (Evidence("not set, the harness's environment policy refuses them: " + ", ".join(
            f"{k} ({why})" for k, why in sorted(outcome.env_refused.items()))),)
    evidence = (call, measured, setup, *steps, *_rewrites(outcome))
    if k["violated"]:
        return Finding(KRAFT, Severity.ERROR,
                       f"The evaluator's scores are not a causal, normalised distribution: the Kraft sum is "
                       f"{'at least ' if k.get('stopped_early') else ''}{k['value']:.6g}, not {k.get('reference', 1.0):.6g} (tolerance {k['tolerance']:.1e}, measured on the legal twin in the "
                       "same run). A legal evaluator's score of a prefix does not depend on the next token and its "
                       "p(v|x) sums to 1; training on unscored tokens, target-keyed caches, unnormalised mixtures, "
                       "SLOT and gates that read the realised token all move this sum (C1/C2).",
                       evidence=evidence, key="kraft", source=SOURCES[KRAFT], **where)
    return Finding(f"{KRAFT}.passed", Severity.INFO,
                   f"Kraft-sum probe passed: K = {k['value']:.7f} (|K-{k.get('reference', 1.0):.6g}| = "
                   f"{abs(k['value'] - k.get('reference', 1.0)):.1e} <= tolerance "
                   f"{k['tolerance']:.1e}).", evidence=evidence, key="kraft-ok", source=SOURCES[KRAFT], **where)


def bytes_finding(outcome) -> Finding:
    b = outcome.bytes or {}
    if b.get("status") != "ok":
        reason = b.get("reason") or outcome.reason or "the probe did not reach the byte tables"
        return Finding(f"{BYTES}.not-applicable", Severity.INFO, f"Byte-accounting probe not applicable: {reason}",
                       path=outcome.path, key="bytes-na", source=SOURCES[BYTES])
    line = b.get("line")
    built = Evidence(f"tables built by the submission's own code: {b.get('expression', '')[:120]}", outcome.path, line)
    sample = Evidence(f"text sample: {b['sample_docs']} documents, {b['sample_text_bytes']} UTF-8 bytes as tokenized, "
                      f"{b['sample_charged_bytes']} bytes charged by the tables")
    mism = tuple(Evidence(f"id {m['id']} {m['piece']!r}: {m['field']} is {m['theirs']}, sentencepiece says {m['ours']}")
                 for m in b.get("mismatches", [])[:8])
    if b.get("ok"):
        return Finding(f"{BYTES}.passed", Severity.INFO,
                       f"Byte-accounting probe passed: the {b['table_size']}-entry tables equal the ones recomputed "
                       f"from the tokenizer, and charge the sample exactly its {b['sample_text_bytes']} bytes.",
                       path=outcome.path, line=line, evidence=(built, sample), key="bytes-ok", source=SOURCES[BYTES])
    worst = b.get("worst_doc") or {}
    extra = (Evidence(f"worst document: {worst.get('charged')} bytes charged for {worst.get('text_bytes')}: "
                      f"{worst.get('text', '')[:80]!r}"),) if worst else ()
    return Finding(BYTES, Severity.ERROR,
                   f"The byte tables disagree with the tokenizer: {b.get('mismatch_count', 0)} entries differ and the "
                   f"sample is charged {b['sample_charged_bytes']} bytes for {b['sample_text_bytes']} bytes of text. "
                   "val_bpb divides by these bytes, so the reported score is not the challenge's metric (R-METRIC-BPB).",
                   path=outcome.path, line=line, evidence=(built, sample, *mism, *extra), key="bytes",
                   source=SOURCES[BYTES])
