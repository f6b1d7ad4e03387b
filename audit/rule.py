"""The shape of a rule: a stable ID, a severity, where RULES.md grounds it, and inline examples.

Each rule lives in its own module under `rules/` (the Fixit habit). Its `VALID` / `INVALID`
examples are real tests: `tests/test_rule_examples.py` runs every one through the engine.
An example is either a code string (it becomes the folder's `train_gpt.py`) or a mapping of
relative path -> file content (a small submission folder, for metadata rules).

Every INVALID example states where the finding must point (the semgrep habit of line-exact
expectations): `line=12`, or `line="text on that line"` (found on exactly one line of the file,
so the example survives edits above it), in `path=` for folder examples (default train_gpt.py);
`line=FILE` for a finding about a whole file, `path=FOLDER` for one about the folder itself.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar

from audit.findings import Evidence, Finding, Severity

if TYPE_CHECKING:
    from audit.context import AuditContext
    from audit.read_problems import ReadProblem

ExampleInput = str | dict[str, str | bytes]


@dataclass(frozen=True)
class Valid:
    """Input the rule must pass (no finding of warning or error from it)."""

    code: ExampleInput
    note: str = ""
    options: dict[str, Any] | None = None  # audit.context.Options fields, e.g. {"sota": path}


class Where(Enum):
    """Locations that are not a line: the whole file, or the folder (no file at all)."""

    FILE = "file"
    FOLDER = "folder"


FILE = Where.FILE
FOLDER = Where.FOLDER
MAIN_SCRIPT = "train_gpt.py"  # the file a code example becomes


@dataclass(frozen=True)
class Invalid:
    """Input the rule must flag: a finding with `rule_id` (default: the rule's ID) at `path`:`line`."""

    code: ExampleInput
    note: str = ""
    rule_id: str | None = None
    # Where some finding must point: a line number, or text that occurs on exactly one line of
    # `path`; FILE for the file as a whole (no line). Required (the example test checks it).
    line: int | str | Where | None = None
    severity: Severity | None = None  # when given, the finding must have this severity
    options: dict[str, Any] | None = None  # audit.context.Options fields, e.g. {"sota": path}
    # The file of the finding: train_gpt.py for a code example; required for a folder example
    # (FOLDER: a finding about the folder, with no file and no line).
    path: str | Where | None = None


def example_files(example: Valid | Invalid) -> dict[str, str | bytes]:
    if isinstance(example.code, str):
        return {MAIN_SCRIPT: textwrap.dedent(example.code).lstrip("\n")}
    return dict(example.code)


def expected_location(example: Invalid) -> tuple[str | None, int | None]:
    """The (path, line) a finding of an INVALID example must carry. ValueError when the example
    does not say, or when its `line` text is not on exactly one line of the file."""
    if example.path is FOLDER:
        return None, None
    path = example.path if isinstance(example.path, str) else MAIN_SCRIPT if isinstance(example.code, str) else None
    if path is None:
        raise ValueError("a folder example must name the file its finding points at: path=... (or path=FOLDER)")
    if example.line is None:
        raise ValueError(f"the example must state the line in {path} its finding points at: line=N, "
                         "line='text on that line', or line=FILE")
    if example.line is FILE:
        return path, None
    if isinstance(example.line, int):
        return path, example.line
    assert isinstance(example.line, str)
    return path, line_of(example_files(example).get(path), example.line, path)


def line_of(content: str | bytes | None, needle: str, path: str = MAIN_SCRIPT) -> int:
    """1-based number of the one line of `content` that contains `needle`."""
    if content is None:
        raise ValueError(f"the example has no file {path}")
    text = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
    hits = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    if len(hits) != 1:
        raise ValueError(f"{needle!r} is on {len(hits)} lines of {path} ({hits[:5]}); it must be on exactly one")
    return hits[0]


# The date line of every rule that rests on the challenge README alone (RULES.md gives none).
README_RULE_DATE = (
    "README rule, as RULES.md quotes it from the README at HEAD (4908dc46f, 2026-05-02; the "
    "challenge ran 2026-03-18 to 2026-04-30); RULES.md gives no date for when it was written "
    "or for the rulings that enforce it"
)


@dataclass(frozen=True)
class RuleDoc:
    """A rule's documentation under fixed headings, as ruff's are: What it checks / Why (the
    ruling, its date and source) / Legal example / Illegal example / Sources. The examples are the
    rule's own VALID / INVALID entries, which the test-suite runs, so the docs cannot drift from
    what the rule does. `audit.report.rulemeta` renders this one text for `pgolf-audit rules
    --markdown`, SARIF `fullDescription` / `help` and the HTML report."""

    why: str  # what RULES.md says the rule is, in our words
    ruling: str  # who ruled it and where (RULES.md "Basis"); say so when there is no ruling
    date: str  # the ruling's date, or the plain statement that RULES.md gives none
    sources: tuple[str, ...]  # URLs and README sections, as RULES.md cites them
    checks: str = ""  # "What it checks"; empty: the rule module's docstring
    legal: int = 0  # which VALID example to show
    illegal: int = 0  # which INVALID example to show


class Rule:
    """Base class. Subclasses set the class attributes and implement `check`."""

    ID: ClassVar[str] = ""
    TITLE: ClassVar[str] = ""
    SEVERITY: ClassVar[Severity] = Severity.ERROR
    KIND: ClassVar[str] = "static"  # static | meta | runtime
    SOURCE: ClassVar[str] = ""  # RULES.md section and the URLs it cites
    # Other IDs this rule may report under (a tight family in one module).
    ALSO_REPORTS: ClassVar[tuple[str, ...]] = ()
    DOC: ClassVar[RuleDoc | None] = None  # required for registered rules (tests/test_rule_docs.py)
    VALID: ClassVar[list[Valid]] = []
    INVALID: ClassVar[list[Invalid]] = []

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        raise NotImplementedError

    # Convenience for subclasses: a finding with this rule's defaults.
    def finding(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        end_line: int | None = None,
        evidence: Iterable[Evidence] = (),
        severity: Severity | None = None,
        rule_id: str | None = None,
        key: str | None = None,
    ) -> Finding:
        return Finding(
            rule_id=rule_id or self.ID,
            severity=severity or self.SEVERITY,
            message=message,
            path=path,
            line=line,
            end_line=end_line,
            evidence=tuple(evidence),
            key=key,
            source=self.SOURCE or None,
        )

    def read_problem_finding(self, problem: ReadProblem, severity: Severity) -> Finding:
        """A fact the folder reader recorded (audit.read_problems), as a finding of this rule."""
        return self.finding(
            problem.describe(), path=problem.path, line=problem.line, severity=severity,
            evidence=[Evidence("read of the submission folder", problem.path, problem.line)],
        )
