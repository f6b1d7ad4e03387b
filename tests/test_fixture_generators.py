"""The committed fixture folders are exactly what their generators write (no hand edits, no drift)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "submissions"
GENERATORS = ["_generate.py", "_generate_static_ttt.py", "_generate_static_eval.py"]


def _tree(root: Path) -> dict[str, bytes | str]:
    out: dict[str, bytes | str] = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            rel = p.relative_to(root).as_posix()
            if "__pycache__" in rel:
                continue
            out[rel] = f"-> {os.readlink(p)}" if p.is_symlink() else p.read_bytes()
    return out


@pytest.mark.parametrize("generator", GENERATORS)
def test_generator_reproduces_committed_fixtures(tmp_path, generator):
    copy = tmp_path / "fixtures" / "submissions"
    shutil.copytree(FIXTURES, copy, symlinks=True)
    before = _tree(copy)
    subprocess.run([sys.executable, str(copy / generator)], cwd=copy, check=True, capture_output=True, timeout=120)
    after = _tree(copy)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"{generator} no longer reproduces the committed fixtures: {changed[:10]}"
