"""Every rule, by stable ID. Rules are found by walking the `rules` package, one module each."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from functools import lru_cache

from audit.rule import Rule


@lru_cache(maxsize=1)
def all_rules() -> tuple[type[Rule], ...]:
    import rules as rules_pkg

    found: dict[str, type[Rule]] = {}
    for info in sorted(pkgutil.iter_modules(rules_pkg.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"rules.{info.name}")
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, Rule) and obj is not Rule and obj.__module__ == module.__name__ and obj.ID:
                if obj.ID in found and found[obj.ID] is not obj:
                    raise RuntimeError(f"rule ID {obj.ID} is declared twice: {found[obj.ID]} and {obj}")
                found[obj.ID] = obj
    return tuple(found[k] for k in sorted(found))


def rule_by_id(rule_id: str) -> type[Rule]:
    for rule in all_rules():
        if rule.ID == rule_id:
            return rule
    raise KeyError(rule_id)
