"""R-LIBRARIES: third-party packages beyond the baseline's are disclosed in requirements.txt."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import PurePosixPath

from audit.analysis.api import imported_packages
from audit.context import AuditContext
from audit.findings import Evidence, Finding, Severity
from audit.rule import README_RULE_DATE, Invalid, Rule, RuleDoc, Valid
from rules._meta_examples import SCRIPT, folder

# The repository's requirements.txt at HEAD (import names), plus triton which ships with torch.
BASELINE_PACKAGES = frozenset({
    "torch", "numpy", "tqdm", "huggingface_hub", "kernels", "setuptools", "typing_extensions",
    "datasets", "tiktoken", "sentencepiece", "triton",
})

WITH_ZSTD = SCRIPT.replace("import torch\n", "import torch\nimport zstandard\n")
WITH_OPTIONAL = SCRIPT.replace(
    "import torch\n", "import torch\ntry:\n    import zstandard\nexcept ImportError:\n    zstandard = None\n")


class Libraries(Rule):
    ID = "R-LIBRARIES"
    TITLE = "Non-baseline packages come with requirements.txt"
    SEVERITY = Severity.WARNING
    KIND = "meta"
    SOURCE = "RULES.md R-LIBRARIES: README FAQ 'Can I import XYZ package?'"
    DOC = RuleDoc(
        why="Any package may be imported; include `requirements.txt` in the record folder and "
            "setup notes in the README.",
        ruling="README (FAQ imports).",
        date=README_RULE_DATE,
        sources=(
            "README FAQ 'Can I import XYZ package?'",
        ),
    )
    VALID = [
        Valid(folder(), "only torch"),
        Valid(folder(script=WITH_ZSTD, extra_files={"requirements.txt": "zstandard\n"}), "disclosed"),
        Valid(folder(script=WITH_OPTIONAL), "optional import with a fallback (info only)"),
        Valid(folder(script=SCRIPT.replace("import torch\n", "import torch\nimport helpers\n"),
                     extra_files={"helpers.py": "X = 1\n"}), "a local helper module is not a package"),
    ]
    INVALID = [
        Invalid(folder(script=WITH_ZSTD), "zstandard imported, no requirements.txt", path="train_gpt.py", line="import zstandard"),
    ]

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        sub = ctx.submission
        if any(PurePosixPath(p).name.lower().startswith("requirements") for p in sub.files):
            return
        local = {PurePosixPath(p).parts[0].removesuffix(".py") for p in sub.code}
        local |= {PurePosixPath(p).stem for p in sub.code}
        required: dict[str, tuple[str, int]] = {}
        optional: dict[str, tuple[str, int]] = {}
        for imp in imported_packages(ctx):
            top = imp.top
            if top in BASELINE_PACKAGES or top in sys.stdlib_module_names or top in local or top == "__future__":
                continue
            target = optional if imp.optional else required
            target.setdefault(top, (imp.path, imp.line))
        readme = (sub.readme.text or "").lower() if sub.readme is not None else ""
        for pkg, (rel, line) in sorted(required.items()):
            mentioned = pkg.lower() in readme or pkg.replace("_", "-").lower() in readme
            yield self.finding(
                f"{rel}:{line} imports `{pkg}`, which is not in the baseline environment, and the folder has no "
                "requirements.txt (R-LIBRARIES: include requirements.txt and setup notes when importing extra "
                "packages)." + (" The README mentions it; add the requirements file too." if mentioned else
                                " Add a requirements.txt naming it."),
                path=rel, line=line, severity=Severity.INFO if mentioned else Severity.WARNING, key=f"pkg:{pkg}",
                evidence=[Evidence("import", rel, line, ctx.parsed(rel).line_text(line))],
            )
        for pkg, (rel, line) in sorted(optional.items()):
            if pkg in required:
                continue
            yield self.finding(
                f"{rel}:{line} optionally imports `{pkg}` (with a fallback); list it in requirements.txt so "
                "that a re-run uses the same code path as the logged runs.",
                path=rel, line=line, severity=Severity.INFO, key=f"opt:{pkg}",
                evidence=[Evidence("guarded import", rel, line, ctx.parsed(rel).line_text(line))],
            )
