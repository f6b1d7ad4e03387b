"""`--select` / `--ignore`: which rule IDs a run reports (ID prefixes, like ruff's)."""

from __future__ import annotations

from collections.abc import Sequence


def prefixes(values: Sequence[str]) -> list[str]:
    """Comma lists, repeatable: ["R-TTT,R-EVAL", "R-SUB"] -> ["R-TTT", "R-EVAL", "R-SUB"]."""
    return [p.strip() for v in values for p in v.split(",") if p.strip()]


def wanted(rule_id: str, select: Sequence[str], ignore: Sequence[str]) -> bool:
    if select and not any(rule_id.startswith(p) for p in select):
        return False
    return not any(rule_id.startswith(p) for p in ignore)
