"""R-SUB-FILES.code-parses: the submitted code must be Python the evaluator can run (and we can read).

README: `train_gpt.py` must compile and run from inside the records folder. A script that does
not parse (a syntax error, Python 2, NUL bytes, a truncated paste) cannot be the one that
produced the logs, and it also blinds every static check. The other rules still run on whatever
did parse. Python 3.12 f-strings (PEP 701) are valid and are read, not reported.
"""

from __future__ import annotations

from collections.abc import Iterable

from audit.analysis.api import MAX_ANALYSED_CHARS, code_units
from audit.context import AuditContext
from audit.findings import Evidence, Finding, Severity
from audit.rule import FILE, README_RULE_DATE, Invalid, Rule, RuleDoc, Valid

_GOOD = "import torch\n\n\ndef main():\n    print(f\"{', '.join(['a', 'b'])}\")\n"


class CodeParses(Rule):
    ID = "R-SUB-FILES.code-parses"
    TITLE = "Submitted Python code parses"
    SEVERITY = Severity.ERROR
    KIND = "static"
    SOURCE = "RULES.md F R-SUB-FILES (README 'Submission Process': train_gpt.py must compile and run)"
    DOC = RuleDoc(
        why="`train_gpt.py` (and any other dependency) must compile and run from inside the records"
            " folder. Code that does not parse cannot be the code that produced the logs.",
        ruling="README; RULING (cocohearts #561: PRs without `submission.json` or without the "
               "logs backing a 3-seed claim are \"not leaderboard-ready\").",
        date=README_RULE_DATE,
        sources=(
            "README 'Submission Process'",
            "https://github.com/openai/parameter-golf/pull/561",
        ),
    )
    VALID = [
        Valid(_GOOD, "ordinary Python 3"),
        Valid('def log(cats):\n    for c in cats:\n        print(f"{c}: {", ".join(sorted(cats[c]))}")\n',
              "Python 3.12 nested f-string quotes (PEP 701)"),
        Valid({"train_gpt.py": _GOOD, "helpers/notes.md": "not code"}, "non-Python files are not parsed"),
    ]
    INVALID = [
        Invalid("def main(:\n    pass\n", "syntax error in train_gpt.py", line=1, severity=Severity.ERROR),
        Invalid('print "hello"\n', "Python 2 print statement", severity=Severity.ERROR, line='print "hello"'),
        Invalid({"train_gpt.py": b"import os\x00\nprint(1)\n"}, "NUL byte", severity=Severity.ERROR, path="train_gpt.py", line=FILE),
        Invalid({"train_gpt.py": _GOOD, "ngram_helper.py": "def f(:\n  pass\n"},
                "broken helper module: a warning", severity=Severity.WARNING, path="ngram_helper.py", line="def f(:"),
    ]

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        sub = ctx.submission
        main = sub.main_script
        main_path = main.path if main is not None else "train_gpt.py"
        for path, size in sub.files.items():
            if path.endswith(".py") and path not in sub.code:
                yield self._report(path, path == main_path, None,
                                   f"could not be read as text ({size:,} bytes)")
        for tf in sub.python_files():
            if len(tf.text or "") > MAX_ANALYSED_CHARS:
                yield self._report(tf.path, tf.path == main_path, None,
                                   f"is {len(tf.text or ''):,} characters, too large to analyse")
        for unit in code_units(ctx):
            pm = unit.parsed
            if pm.tree is not None:
                continue
            reason = pm.error or "cannot parse"
            if "print" in reason.lower() or "Missing parentheses" in reason:
                reason += " (Python 2 syntax?)"
            if "null" in reason.lower():
                reason += " (the file contains NUL bytes)"
            where = unit.path + (" (decoded self-extracting wrapper)" if unit.decoded_from else "")
            yield self._report(unit.path, unit.is_main, pm.error_line, f"{where}: {reason}",
                               pm.line_text(pm.error_line))

    def _report(self, path: str, is_main: bool, line: int | None, what: str, excerpt: str = "") -> Finding:
        severity = Severity.ERROR if is_main else Severity.WARNING
        role = "the main script" if is_main else "a helper module"
        return self.finding(
            f"R-SUB-FILES: {role} {path} does not parse as Python 3: {what}. The submitted code must "
            "compile and run from the records folder, and static checks cannot read code that does not "
            "parse (the other checks ran on the rest). Ship the exact script that produced the logs, "
            "as valid UTF-8 Python 3.",
            path=path, line=line, severity=severity,
            evidence=[Evidence("parse of the submitted code", path, line, excerpt[:200] or None)],
            key=f"parse:{path}",
        )
