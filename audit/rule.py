"""The shape of a rule: a stable ID, a severity, where RULES.md grounds it, and inline examples.

Each rule lives in its own module under `rules/` (the Fixit habit). Its `VALID` / `INVALID`
examples are real tests: `tests/test_rule_examples.py` runs every one through the engine.
An example is either a code string (it becomes the folder's `train_gpt.py`) or a mapping of
relative path -> file content (a small submission folder, for metadata rules).
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from audit.findings import Evidence, Finding, Severity

if TYPE_CHECKING:
    from audit.context import AuditContext

ExampleInput = str | dict[str, str | bytes]


@dataclass(frozen=True)
class Valid:
    """Input the rule must pass (no finding of warning or error from it)."""

    code: ExampleInput
    note: str = ""
    options: dict[str, Any] | None = None  # audit.context.Options fields, e.g. {"sota": path}


@dataclass(frozen=True)
class Invalid:
    """Input the rule must flag: at least one finding with `rule_id` (default: the rule's ID)."""

    code: ExampleInput
    note: str = ""
    rule_id: str | None = None
    line: int | None = None  # when given, some finding must point at this line of train_gpt.py
    severity: Severity | None = None  # when given, the finding must have this severity
    options: dict[str, Any] | None = None  # audit.context.Options fields, e.g. {"sota": path}


def example_files(example: Valid | Invalid) -> dict[str, str | bytes]:
    if isinstance(example.code, str):
        return {"train_gpt.py": textwrap.dedent(example.code).lstrip("\n")}
    return dict(example.code)


class Rule:
    """Base class. Subclasses set the class attributes and implement `check`."""

    ID: ClassVar[str] = ""
    TITLE: ClassVar[str] = ""
    SEVERITY: ClassVar[Severity] = Severity.ERROR
    KIND: ClassVar[str] = "static"  # static | meta | runtime
    SOURCE: ClassVar[str] = ""  # RULES.md section and the URLs it cites
    # Other IDs this rule may report under (a tight family in one module).
    ALSO_REPORTS: ClassVar[tuple[str, ...]] = ()
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
