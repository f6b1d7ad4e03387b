"""Rules ask the analysis substrate questions: `audit.analysis.api` is the only analysis module a
rule imports, and no rule walks syntax trees itself (no rule imports `ast`)."""

from __future__ import annotations

import ast
from pathlib import Path

RULES = sorted((Path(__file__).resolve().parent.parent / "rules").glob("*.py"))


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.append(node.module)
            out += [f"{node.module}.{a.name}" for a in node.names if node.module == "audit.analysis"]
    return out


def test_rules_import_only_the_analysis_api():
    assert RULES
    offenders = {p.name: m for p in RULES for m in _imports(p)
                 if (m == "audit.analysis" or m.startswith("audit.analysis.")) and m != "audit.analysis.api"}
    assert offenders == {}


def test_no_rule_imports_ast():
    offenders = [p.name for p in RULES if any(m == "ast" or m.startswith("ast.") for m in _imports(p))]
    assert offenders == []


def test_the_scan_sees_imports_inside_functions(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    import ast\n    from audit.analysis.targets import walk_nodes\n")
    assert {"ast", "audit.analysis.targets"} <= set(_imports(probe))
