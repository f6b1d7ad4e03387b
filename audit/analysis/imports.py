"""Which code runs with the main script: train_gpt.py plus the local modules it imports.

Why: helper files shipped in a record folder are either code that runs at train/eval time
(imported by train_gpt.py: it must obey the evaluation rules and arguably counts as code) or
data-preparation scripts run beforehand (they may download the dataset). Rules that judge
evaluation-time behaviour look only at the first kind.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import PurePosixPath

from audit.analysis.code_functions import Function
from audit.analysis.eval_code import CodeUnit, code_units
from audit.analysis.syntax import walk_nodes
from audit.analysis.targets import TargetFlow, functions_of, target_flow


@dataclass(frozen=True)
class LocalImport:
    importer: str
    line: int
    module: str  # path of the imported unit
    how: str  # "import", "exec(open(...))", "importlib"


def module_name(path: str) -> str:
    p = PurePosixPath(path)
    return ".".join((*p.parts[:-1], p.stem))


def local_imports(ctx) -> list[LocalImport]:  # type: ignore[no-untyped-def]
    return ctx.memo("analysis.local_imports", lambda: _local_imports(code_units(ctx), target_flow(ctx)))


def runtime_units(ctx) -> list[CodeUnit]:  # type: ignore[no-untyped-def]
    """The main script and every local module reachable from it by imports."""
    def build() -> list[CodeUnit]:
        units = {u.path: u for u in code_units(ctx)}
        edges: dict[str, set[str]] = {}
        for imp in local_imports(ctx):
            edges.setdefault(imp.importer, set()).add(imp.module)
        todo = [u.path for u in units.values() if u.is_main]
        seen: set[str] = set()
        while todo:
            p = todo.pop()
            if p in seen:
                continue
            seen.add(p)
            todo.extend(edges.get(p, ()))
        return [units[p] for p in sorted(seen) if p in units]
    return ctx.memo("analysis.runtime_units", build)


def runtime_functions(ctx) -> list[tuple[CodeUnit, list[Function]]]:  # type: ignore[no-untyped-def]
    """Each parsed run-time unit with its functions: what the pattern questions walk."""
    flow = target_flow(ctx)
    return [(u, functions_of(flow, u.path)) for u in runtime_units(ctx) if u.parsed.tree is not None]


def _local_imports(units: list[CodeUnit], flow: TargetFlow) -> list[LocalImport]:
    by_module: dict[str, str] = {}
    by_file: dict[str, str] = {}
    for u in units:
        by_module.setdefault(module_name(u.path), u.path)
        by_file.setdefault(PurePosixPath(u.path).name, u.path)
    out: list[LocalImport] = []
    for u in units:
        tree = u.parsed.tree
        if tree is None:
            continue
        fns = functions_of(flow, u.path)
        nodes: list[ast.AST] = [n for f in fns for n in (*f.imports, *f.calls)]
        for node in nodes:
            names: list[str] = []
            how = "import"
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level:
                names = [a.name for a in node.names]
            elif isinstance(node, ast.Call):
                fname = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                if fname in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
                    names, how = [str(node.args[0].value)], "importlib"
                elif fname in ("exec", "run_path", "spec_from_file_location"):
                    for s in walk_nodes(node):
                        if isinstance(s, ast.Constant) and isinstance(s.value, str) and s.value.endswith(".py"):
                            target = by_file.get(PurePosixPath(s.value).name)
                            if target and target != u.path:
                                out.append(LocalImport(u.path, node.lineno, target, f"{fname}(... {s.value!r})"))
                    continue
            here = str(PurePosixPath(u.path.split("#")[0]).parent)
            for name in names:
                target = by_module.get(name)
                if target is None and here not in ("", "."):  # a sibling module of a nested script
                    target = by_module.get(f"{here.replace('/', '.')}.{name}")
                if target and target != u.path:
                    out.append(LocalImport(u.path, getattr(node, "lineno", 0), target, how))
                    break
    return out
