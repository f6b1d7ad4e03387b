"""Native code a submission builds or loads at run time (asked by R-ARTIFACT-CODE-SCOPE):
`torch.utils.cpp_extension.load` of source files, a ctypes library, a C/C++ compiler call.
Its source is code of the submission and counts with it."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from audit.analysis.eval_code import CodeUnit
from audit.analysis.imports import runtime_functions
from audit.analysis.syntax import call_name, walk_nodes

NATIVE_SRC = re.compile(r"\.(c|cc|cpp|cu|cuh|h|hpp|so)\b")


@dataclass(frozen=True)
class NativeBuild:
    unit: CodeUnit
    line: int
    what: str  # e.g. "a C/C++ compiler call"


def native_builds(ctx) -> list[NativeBuild]:  # type: ignore[no-untyped-def]
    """Every call of the run-time code that compiles or loads native code, in source order."""
    def build() -> list[NativeBuild]:
        out = []
        for unit, fns in runtime_functions(ctx):
            for fn in fns:
                for call in fn.calls:
                    what = _native_build(call)
                    if what is not None:
                        out.append(NativeBuild(unit, call.lineno, what))
        return out
    return ctx.memo("patterns.native_builds", build)


def _native_build(call: ast.Call) -> str | None:
    name = call_name(call)
    if name == "load" and (any(k.arg == "sources" for k in call.keywords)
                           or (isinstance(call.func, ast.Attribute) and "cpp_extension" in ast.unparse(call.func))):
        return "torch.utils.cpp_extension.load of source files"
    if name in ("CDLL", "LoadLibrary"):
        return "ctypes library"
    if name not in ("run", "check_call", "check_output", "Popen", "system"):
        return None
    consts = " ".join(str(n.value) for n in walk_nodes(call) if isinstance(n, ast.Constant) and isinstance(n.value, str))
    if re.search(r"\b(gcc|g\+\+|cc|clang|nvcc)\b", consts) and NATIVE_SRC.search(consts):
        return "a C/C++ compiler call"
    return None
