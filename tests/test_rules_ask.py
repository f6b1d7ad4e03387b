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


def test_same_tree_is_ast_dump_equality():
    from audit.analysis.same_code import same_tree

    pairs = [
        ("x = 1  # c\n", "x = (1)\n", True),
        ("x = 1\n", "x = 1.0\n", False),
        ("x = True\n", "x = 1\n", False),
        ("def f(a, b=2):\n    return a\n", "def f(a,b = 2): return a\n", True),
        ("def f(a, b=2):\n    return a\n", "def f(a, b=3):\n    return a\n", False),
        ("y = [1, 2]\n", "y = [1, 2, 3]\n", False),
        ("z = 'a'\n", 'z = "a"\n', True),
        ("import os\n", "import os as o\n", False),
    ]
    for left, right, same in pairs:
        a, b = ast.parse(left), ast.parse(right)
        assert same_tree(a, b) is same is (ast.dump(a) == ast.dump(b)), (left, right)
