"""Evidence chains for val-flow findings: source -> calls -> update -> the score it meets.

A reviewer should be able to follow a finding in a minute, so each link names the line and
shows it: where validation data enters, each call that carries it, the `.backward()` and the
optimizer step, the loop they sit in, and the scoring before or after.
"""

from __future__ import annotations

import re

from audit.analysis import names as N
from audit.analysis.api import display, evidence_line, source_of
from audit.analysis.facts import Site
from audit.analysis.valflow import Classified, Event
from audit.findings import Evidence

_SOURCE_HINT = re.compile(
    r"load_validation\w*|fineweb_val|\bval_(?:tokens|data|files|toks|stream)\b|\.val_tokens\b|val_files")


def val_source_evidence(ctx, ev: Event) -> Evidence | None:
    """The first line, in the function that holds the top of the chain, that names val data."""
    ff = ev.ref.facts
    node = ff.node
    start = getattr(node, "lineno", 1) if ff.name != "<module>" else 1
    end = getattr(node, "end_lineno", None) or start
    src = source_of(ctx, ev.path)
    if src is None:
        return None
    lines = src.parsed.lines
    if ff.name == "<module>":
        end = len(lines)
    for ln in range(start, min(end, ev.site.line) + 1):
        if _SOURCE_HINT.search(lines[ln - 1] if ln - 1 < len(lines) else ""):
            return evidence_line(ctx, ev.path, ln, "validation data enters here")
    return None


def step_after(ev: Event) -> Site | None:
    for s in ev.ref.facts.sites:
        if s.kind == "step" and s.order >= ev.site.order:
            return s
    return None


def chain_evidence(ctx, c: Classified, score_label: str | None = None) -> list[Evidence]:
    chain = c.event.chain()
    out: list[Evidence] = []
    src = val_source_evidence(ctx, chain[0])
    if src is not None:
        out.append(src)
    for e in chain[:-1]:
        out.append(evidence_line(ctx, e.path, e.site.line, f"passes val-derived data to `{e.site.name}`"))
    leaf = chain[-1]
    for lp in leaf.site.loops[-2:]:
        out.append(evidence_line(ctx, leaf.path, lp.line, "inside loop"))
    out.append(evidence_line(ctx, leaf.path, leaf.site.line, "gradient of a loss on val-derived tokens"))
    st = step_after(leaf)
    if st is not None:
        out.append(evidence_line(ctx, leaf.path, st.line, f"optimizer step `{st.name}.step()`"))
    if c.score is not None and score_label:
        out.append(evidence_line(ctx, c.score.path, c.score.site.line, score_label))
    return out


def primary(ctx, c: Classified) -> tuple[str, int | None, bool]:
    """Where the finding points: the update line of the leaf (path, line, decoded?)."""
    leaf = c.event.leaf
    shown, decoded = display(ctx, leaf.path)
    return shown, leaf.site.line, decoded


def where_note(decoded: bool) -> str:
    return (" Line numbers refer to the code decoded from the self-extracting wrapper "
            "(lzma/base85 blob in the file)." if decoded else "")


def call_name(ev: Event) -> str:
    top = ev.chain()[0]
    return top.site.name if top.site.kind == "call" else top.ref.facts.name


def labels_text(ev: Event) -> str:
    return "validation" if N.VAL in ev.labels else "val-derived (via parameters)"


def switched_off_message(what: str) -> str:
    return (f"{what} — but the flag guarding this code is off in the submitted runs (shown off in "
            "every seed log, or off by default and never set in the README, logs or submission.json), "
            "so it did not produce the reported results (noted, not counted). Remove dead code "
            "paths that train on validation data before reusing this script with other settings.")
