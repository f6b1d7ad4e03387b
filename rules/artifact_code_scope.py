"""R-ARTIFACT-CODE-SCOPE: counted code belongs in train_gpt.py.

README: code bytes are those of the script; helper modules that train_gpt.py imports at run time,
files it exec()s, and C/C++/CUDA sources it compiles (load_inline, cpp_extension, a cc call for a
ctypes library) are code too, yet records often ship them uncounted (e.g. #2135's
online_ngram_tilt.py and online_ngram_state.c). Accepted de facto, so this is a warning that
names the files a reviewer should add to the code size.
"""

from __future__ import annotations

from collections.abc import Iterable

from audit.analysis.api import local_imports, native_builds, runtime_units
from audit.context import AuditContext
from audit.findings import Evidence, Finding, Severity
from audit.rule import README_RULE_DATE, Invalid, Rule, RuleDoc, Valid

_SINGLE = '''
import torch


def main():
    model = torch.nn.Linear(4, 4)
    torch.save(model.state_dict(), "final_model.pt")
'''

_HELPER: dict[str, str | bytes] = {"train_gpt.py": "import torch\nfrom ngram_tilt import apply_tilt\n\n\ndef main():\n    apply_tilt()\n",
           "ngram_tilt.py": "def apply_tilt():\n    return 0\n"}

_INLINE_CPP = '''
from torch.utils.cpp_extension import load_inline

SRC = "int add(int a, int b) { return a + b; }"


def build():
    return load_inline(name="ext", cpp_sources=[SRC], functions=["add"])
'''

_SHIPPED_CPP = '''
from torch.utils import cpp_extension


def build():
    return cpp_extension.load(name="ngram_state", sources=["ngram_state.cpp"])
'''


class ArtifactCodeScope(Rule):
    ID = "R-ARTIFACT-CODE-SCOPE"
    TITLE = "Run-time code outside train_gpt.py (helper modules, exec, compiled extensions)"
    SEVERITY = Severity.WARNING
    KIND = "static"
    SOURCE = ("RULES.md A R-ARTIFACT-CODE-SCOPE (README FAQ 'What exactly counts toward the 16MB'): "
              "https://github.com/openai/parameter-golf/pull/2135 ; https://github.com/openai/parameter-golf/pull/1420")
    DOC = RuleDoc(
        why="Counted code should live in the single `train_gpt.py`; imported third-party "
            "libraries are free but must not be used to smuggle capability, compute or code size.",
        ruling="README (FAQ on artifact size; FAQ \"Can I import XYZ package?\").",
        date=README_RULE_DATE,
        sources=(
            "README FAQ 'What exactly counts toward the 16MB artifact size?'",
            "https://github.com/openai/parameter-golf/pull/2135",
            "https://github.com/openai/parameter-golf/pull/1420",
        ),
    )
    VALID = [
        Valid(_SINGLE, "everything in train_gpt.py"),
        Valid(_INLINE_CPP, "C++ source inline in train_gpt.py is already counted"),
        Valid({"train_gpt.py": _SINGLE, "prepare_data.py": "import train_gpt\n"},
              "a data-prep script importing the trainer is not run-time code of train_gpt.py"),
    ]
    INVALID = [
        Invalid(_HELPER, "train_gpt.py imports a local helper module", path="train_gpt.py", line=2),
        Invalid(_SHIPPED_CPP, "a shipped C++ file compiled at run time", line=5),
    ]

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        runtime = {u.path for u in runtime_units(ctx)}
        files = ctx.submission.files
        for imp in local_imports(ctx):
            if imp.importer not in runtime:
                continue
            size = files.get(imp.module)
            yield self.finding(
                f"R-ARTIFACT-CODE-SCOPE: {imp.importer} uses the local module {imp.module} at run time "
                f"({imp.how}){f', {size:,} bytes' if size is not None else ''}. Counted code belongs in "
                "train_gpt.py; helper code that runs during training or evaluation should be inlined or "
                "added to the reported code size.",
                path=imp.importer, line=imp.line,
                evidence=[Evidence("run-time use of a local module", imp.importer, imp.line, None)],
                key=f"scope:{imp.importer}:{imp.module}",
            )
        for nb in native_builds(ctx):
            unit, what = nb.unit, nb.what
            yield self.finding(
                f"R-ARTIFACT-CODE-SCOPE: {unit.path} compiles or loads native code at run time "
                f"({what}). Its source is code of the submission: count it with train_gpt.py "
                "(as #1420 did) or report the total with helpers.",
                path=unit.path, line=nb.line,
                evidence=[Evidence("native code built or loaded", unit.path, nb.line,
                                   unit.parsed.line_text(nb.line)[:200] or None)],
                key=f"native:{unit.path}:{what}",
            )
