"""The environment a submission's README says to run it with (`K=V ... torchrun ... train_gpt.py`).

Records set their configuration through environment variables, and most READMEs give the run
command with them (REFERENCE.md 1.2). A re-run without them would use the script's defaults and
could "fail to reproduce" a claim that is fine. We read the assignments on the first command line
that launches torchrun (with its backslash-continued lines); `--env-from-readme` applies them,
and otherwise the report notes which were left out.
"""

from __future__ import annotations

import re

_ASSIGN = re.compile(r"^([A-Z_][A-Z0-9_]*)=(\S*)$")


def declared_env(readme: str) -> dict[str, str]:
    """NAME=value assignments in front of the README's first `torchrun` command (empty if none)."""
    text = readme.replace("\\_", "_").replace("\\\\\n", "\\\n")  # Markdown-escaped underscores/backslashes
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if "torchrun" not in line:
            continue
        start = i
        while start > 0 and lines[start - 1].rstrip().endswith("\\"):
            start -= 1
        command = " ".join(ln.rstrip().rstrip("\\") for ln in lines[start:i + 1])
        env: dict[str, str] = {}
        for token in command.split():
            if "torchrun" in token:
                break
            if token in ("env", "export", "$", "sudo") or token.startswith("#"):
                continue
            m = _ASSIGN.match(token.strip("`"))
            if m:
                env[m.group(1)] = m.group(2).strip("'\"")
        if env:
            return env
    return {}


def applicable(declared: dict[str, str], owned: tuple[str, ...]) -> tuple[dict[str, str], dict[str, str]]:
    """(what can be applied as is, what cannot): the harness's own variables and relative paths,
    which would point into the scratch copy, are left for the verifier to pass with --env."""
    usable: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for name, value in declared.items():
        if name in owned or value.startswith(("./", "../", "~", "$")) or value in (".", ".."):
            skipped[name] = value
        else:
            usable[name] = value
    return usable, skipped
