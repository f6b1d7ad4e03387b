"""Import rules import-linter cannot state: what may be imported only inside a function.

`lint-imports` (in `make lint`) keeps the layers and forbids the torch extra in the static check.
The harness and the probes may use torch and reference_impl, but only lazily, inside the function
that needs them, so that `pgolf-audit --help` and the static check start without them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TORCH_EXTRA = ("torch", "sentencepiece", "zstandard", "numpy", "libcst", "reference_impl")


def module_level_imports(tree: ast.Module) -> list[tuple[int, str]]:
    """Imports that run when the module is imported (not in a def, not under `if TYPE_CHECKING`)."""
    out: list[tuple[int, str]] = []
    todo: list[ast.stmt] = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
        elif isinstance(node, ast.If):
            test = node.test
            if not (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING"):
                todo += node.body
            todo += node.orelse
        elif isinstance(node, (ast.Try, ast.With)):
            todo += node.body
            for part in getattr(node, "handlers", []):
                todo += part.body
            todo += getattr(node, "orelse", []) + getattr(node, "finalbody", [])
        elif isinstance(node, ast.ClassDef):
            todo += node.body
    return out


def _python_files() -> list[Path]:
    return sorted([*(ROOT / "audit").rglob("*.py"), *(ROOT / "rules").rglob("*.py")])


@pytest.mark.parametrize("path", _python_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_torch_extra_at_module_level(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    bad = [(line, name) for line, name in module_level_imports(tree) if name.split(".")[0] in TORCH_EXTRA]
    assert not bad, f"{path.relative_to(ROOT)} imports {bad} at module level; import it inside the function"


def test_the_checker_sees_module_level_imports():
    tree = ast.parse("import os\nif TYPE_CHECKING:\n    import torch\ntry:\n    import numpy\nexcept ImportError:\n"
                     "    pass\ndef f():\n    import libcst\n")
    assert sorted(name for _, name in module_level_imports(tree)) == ["numpy", "os"]
