"""Title, severity, kind, source and documentation of every rule ID a report can carry.

Most IDs belong to a registered rule; its documentation is the rule's `DOC` (audit.rule.RuleDoc)
rendered here under fixed headings (What it checks / Why / Legal example / Illegal example /
Sources), once, for `pgolf-audit rules --markdown`, SARIF `fullDescription` / `help` and the
HTML report. A few IDs are not a registered rule: the re-run harness's `R-...rerun-*` checks, described by
`audit.harness.checks.CHECKS` (read lazily; that module needs no torch, and an installation
without the harness simply lacks those rows).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from audit.findings import Finding, Severity
from audit.rule import Invalid, RuleDoc, Valid, Where, example_files, expected_location

if TYPE_CHECKING:
    from markupsafe import Markup

    from audit.rule import Rule

HEADINGS = ("What it checks", "Why", "Legal example", "Illegal example", "Sources")
EXCERPT_LINES = 60  # an example longer than this is shown as a window around the reported line
WINDOW = 8


@dataclass(frozen=True)
class RuleInfo:
    id: str
    title: str
    severity: Severity
    kind: str
    source: str
    doc: str = ""  # plain text: What it checks + Why (SARIF fullDescription)
    markdown: str = ""  # the whole documentation (rules --markdown, SARIF help, HTML)


def registered() -> list[RuleInfo]:
    """Every registered rule (and the IDs it also reports under), plus the built-in IDs."""
    from audit.registry import all_rules

    out: dict[str, RuleInfo] = {}
    for rule in all_rules():
        sections = doc_sections(rule)
        plain = _plain(sections)
        markdown = doc_markdown(rule, sections)
        for rid in (rule.ID, *rule.ALSO_REPORTS):
            if rid not in out:
                title = rule.TITLE if rid == rule.ID else f"{rule.TITLE} (reported as {rid})"
                out[rid] = RuleInfo(rid, title, rule.SEVERITY, rule.KIND, rule.SOURCE, plain, markdown)
    for rid, info in {**BUILTIN, **harness_checks(), **probe_checks()}.items():
        out.setdefault(rid, info)
    return [out[k] for k in sorted(out)]


def harness_checks() -> dict[str, RuleInfo]:
    """The harness's finding IDs (kind "runtime"); empty when audit.harness is not installed."""
    try:
        from audit.harness.checks import CHECKS
    except ImportError:
        return {}
    return {c.id: RuleInfo(c.id, c.title, c.severity, "runtime", c.source) for c in CHECKS.values()}


def probe_checks() -> dict[str, RuleInfo]:
    """The probes' rule IDs (kind "runtime", issue 11); audit.probes.findings needs no torch."""
    try:
        from audit.probes.findings import CHECKS
    except ImportError:
        return {}
    return {c.id: RuleInfo(c.id, c.title, c.severity, "runtime", c.source) for c in CHECKS.values()}


def describe(rule_id: str, known: dict[str, RuleInfo] | None = None, finding: Finding | None = None) -> RuleInfo:
    """The best description of an ID: exact, then its RULES.md base ID (before the '.'), then the finding."""
    table = known if known is not None else {r.id: r for r in registered()}
    if rule_id in table:
        return table[rule_id]
    base = rule_id.split(".", 1)[0]
    if base in table:
        b = table[base]
        return RuleInfo(rule_id, b.title, b.severity, b.kind, b.source, b.doc, b.markdown)
    sev = finding.severity if finding is not None else Severity.WARNING
    src = (finding.source if finding is not None else None) or "RULES.md"
    return RuleInfo(rule_id, rule_id, sev, "meta", src)


# -- rendering --------------------------------------------------------------------------------
def doc_sections(rule: type[Rule]) -> dict[str, str]:
    """The five headings' Markdown bodies for one rule (empty strings where the rule lacks one)."""
    return _sections(rule.DOC, _module_doc(rule), rule.VALID, rule.INVALID, rule.SOURCE)


def doc_markdown(rule: type[Rule], sections: dict[str, str] | None = None) -> str:
    sections = sections if sections is not None else doc_sections(rule)
    return _markdown(rule.ID, rule.TITLE, rule.SEVERITY, rule.KIND, rule.ALSO_REPORTS, sections)


def _sections(doc: RuleDoc | None, module_doc: str, valid: list[Valid], invalid: list[Invalid],
              source: str) -> dict[str, str]:
    checks = doc.checks if doc is not None and doc.checks else module_doc
    why = sources = legal = illegal = ""
    if doc is not None:
        why = f"{doc.why}\n\n**Ruling:** {doc.ruling}\n\n**Date:** {doc.date}" if doc.why and doc.ruling else ""
        sources = "\n".join(f"- {s}" for s in doc.sources)
    elif source:
        sources = f"- {source}"
    if doc is not None and valid and invalid:
        bad = invalid[doc.illegal]
        illegal = _example(bad, bad)
        legal = _example(valid[doc.legal], bad)
    return dict(zip(HEADINGS, (checks, why, legal, illegal, sources), strict=True))


def _markdown(rid: str, title: str, severity: Severity, kind: str, also: tuple[str, ...],
              sections: dict[str, str]) -> str:
    head = f"## {rid}: {title}\n\nSeverity: {severity.value} · kind: {kind}"
    also_text = f" · also reports {', '.join(f'`{a}`' for a in also)}" if also else ""
    body = "\n\n".join(f"### {h}\n\n{sections[h] or '(none)'}" for h in HEADINGS)
    return f"{head}{also_text}\n\n{body}\n"


def _plain(sections: dict[str, str]) -> str:
    """What it checks + Why as plain paragraphs (SARIF fullDescription)."""
    return "\n\n".join(f"{h}: {sections[h]}" for h in HEADINGS[:2] if sections[h])


def info_markdown(info: RuleInfo) -> str:
    """A rule's documentation, or for an ID without one (harness checks) its title and source."""
    return info.markdown or f"## {info.id}: {info.title}\n\nSeverity: {info.severity.value} · kind: {info.kind}\n\n" \
                            f"### Sources\n\n- {info.source or 'RULES.md'}\n"


def catalogue_markdown(infos: list[RuleInfo]) -> str:
    """`pgolf-audit rules --markdown`: an index table, then every rule's documentation."""
    lines = ["| ID | severity | kind | title | source |", "|---|---|---|---|---|"]
    for r in infos:
        cells = [f"`{r.id}`", r.severity.value, r.kind, r.title, r.source]
        lines.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
    seen: set[str] = set()
    docs = []
    for r in infos:
        text = info_markdown(r)
        if text not in seen:  # an ID a rule also reports under shares its rule's documentation
            seen.add(text)
            docs.append(text)
    return "\n".join(lines) + "\n\n" + "\n".join(docs)


def info_html(info: RuleInfo) -> Markup:
    """The documentation as HTML for the report (Markdown rendered with raw HTML disabled).
    markdown-it-py comes with rich; without it the Markdown is shown as escaped text."""
    from markupsafe import Markup, escape

    try:
        from markdown_it import MarkdownIt
    except ImportError:
        return Markup("<pre>") + escape(info_markdown(info)) + Markup("</pre>")
    return Markup(MarkdownIt("commonmark", {"html": False}).render(info_markdown(info)))


def _module_doc(rule: type[Rule]) -> str:
    text = (sys.modules[rule.__module__].__doc__ or rule.__doc__ or "").strip()
    first, _, rest = text.partition(":")
    if first.strip().startswith("R-") and rest:  # "R-XXX: what it checks" -> "What it checks"
        text = rest.strip()
        text = text[:1].upper() + text[1:]
    return text


def _example(example: Valid | Invalid, anchor: Invalid) -> str:
    """An example as Markdown: its note, where the finding is reported, and the relevant file."""
    files = example_files(example)
    try:
        where = expected_location(anchor)
    except ValueError:
        where = (None, None)
    path, line = where
    if isinstance(example, Invalid):
        if anchor.path is Where.FOLDER:
            said = "Reported on the folder itself."
        else:
            said = f"Reported at `{path}:{line}`." if line else f"Reported on `{path}` as a whole."
    else:
        said = "Passes (no warning or error)."
        line = _same_place(files.get(path or ""), anchor) or line
    text = f"{example.note}. {said}" if example.note else said
    if not isinstance(example.code, str) and files:
        text += "\n\nFiles: " + ", ".join(f"`{p}`" for p in sorted(files))
    changed = (example.options or {}).get("changed_files")  # a "diff" rule's example: the PR's changes
    if changed:
        text += "\n\nChanged files: " + ", ".join(f"`{status} {p}`" for status, p in changed)
    shown = path if path in files else None
    if shown is None and not isinstance(example.code, str):
        return text
    shown = shown or next(iter(files))
    return text + "\n\n" + _excerpt(shown, files[shown], line, mark=isinstance(example, Invalid))


def _same_place(content: str | bytes | None, anchor: Invalid) -> int | None:
    """The line of a VALID example matching the INVALID one's `line="text"`, when it is there once."""
    if content is None or not isinstance(anchor.line, str):
        return None
    text = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
    hits = [i for i, ln in enumerate(text.splitlines(), 1) if anchor.line in ln]
    return hits[0] if len(hits) == 1 else None


def _excerpt(path: str, content: str | bytes, line: int | None, mark: bool) -> str:
    text = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
    lines = [ln.replace("\x00", "\\x00") for ln in text.splitlines()]
    start, end = 0, len(lines)
    if len(lines) > EXCERPT_LINES:
        if line:
            start, end = max(0, line - 1 - WINDOW), min(len(lines), line + WINDOW)
        else:
            end = min(len(lines), 15)
    shown = []
    for i in range(start, end):
        ln = lines[i]
        if mark and line == i + 1:
            ln += "  # <- reported here" if path.endswith(".py") else "  <- reported here"
        shown.append(ln)
    if start > 0:
        shown.insert(0, f"… (lines 1-{start} not shown)")
    if end < len(lines):
        shown.append(f"… ({len(lines) - end} more lines)")
    suffix = PurePosixPath(path).suffix
    lang = {".py": "python", ".json": "json"}.get(suffix, "text")
    fence = "```"
    while fence in text:
        fence += "`"
    return f"`{path}`:\n\n{fence}{lang}\n" + "\n".join(shown) + f"\n{fence}"


# IDs reported outside the registry, with their documentation: none today (R-SUB-FOLDER, once the
# CLI's own check, is the rule rules/sub_folder.py); kept as the place for such an ID.
BUILTIN: dict[str, RuleInfo] = {}
