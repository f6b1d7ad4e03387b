"""Title, severity, kind and source of every rule ID a report can carry.

Most IDs belong to a registered rule. A few findings are made outside the registry: the folder
reader's R-SUB-FILES findings and the CLI's PR-diff check (R-SUB-FOLDER), described here, and the
re-run harness's `R-...rerun-*` checks, described by `audit.harness.checks.CHECKS` (read lazily;
that module needs no torch, and an installation without the harness simply lacks those rows).
All of them appear in SARIF rule tables, the HTML report and the `rules` listing.
"""

from __future__ import annotations

from dataclasses import dataclass

from audit.findings import Finding, Severity


@dataclass(frozen=True)
class RuleInfo:
    id: str
    title: str
    severity: Severity
    kind: str
    source: str
    doc: str = ""


BUILTIN = {
    "R-SUB-FILES": RuleInfo(
        "R-SUB-FILES", "Submission folder can be read and has the required files", Severity.ERROR, "meta",
        "RULES.md R-SUB-FILES (README 'Submission Process'; https://github.com/openai/parameter-golf/pull/561)",
    ),
    "R-SUB-FOLDER": RuleInfo(
        "R-SUB-FOLDER", "A submission PR adds exactly one new folder under records/<track>/", Severity.ERROR, "meta",
        "RULES.md R-SUB-FOLDER (README; https://github.com/openai/parameter-golf/pull/1143 ; "
        "https://github.com/openai/parameter-golf/pull/561)",
    ),
}


def registered() -> list[RuleInfo]:
    """Every registered rule (and the IDs it also reports under), plus the built-in IDs."""
    from audit.registry import all_rules

    out: dict[str, RuleInfo] = {}
    for rule in all_rules():
        doc = (rule.__doc__ or "").strip()
        for rid in (rule.ID, *rule.ALSO_REPORTS):
            if rid not in out:
                title = rule.TITLE if rid == rule.ID else f"{rule.TITLE} (reported as {rid})"
                out[rid] = RuleInfo(rid, title, rule.SEVERITY, rule.KIND, rule.SOURCE, doc)
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
        return RuleInfo(rule_id, b.title, b.severity, b.kind, b.source, b.doc)
    sev = finding.severity if finding is not None else Severity.WARNING
    src = (finding.source if finding is not None else None) or "RULES.md"
    return RuleInfo(rule_id, rule_id, sev, "meta", src)
