"""The same folder gives the same report in every process: nothing in a verdict, a message or an
evidence line may depend on the order Python happens to iterate a set of names in (which changes
with PYTHONHASHSEED from one run to the next). A reviewer and a CI check must see the same lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = sorted(p for p in (ROOT / "fixtures" / "mutants").iterdir() if p.is_dir()) + sorted(
    p for p in (ROOT / "fixtures" / "submissions").iterdir() if p.is_dir())


def _report(seed: str) -> list[dict]:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    proc = subprocess.run([sys.executable, "-m", "audit", "check", "--format", "json", "--exit-zero", "-j", "2",
                           *map(str, FOLDERS)], capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)["results"]


@pytest.mark.slow
def test_reports_do_not_depend_on_the_hash_seed():
    assert len(FOLDERS) > 100
    first, second = _report("1"), _report("2")
    assert len(first) == len(second) == len(FOLDERS)
    for a, b in zip(first, second, strict=True):
        assert a == b, a.get("target")
