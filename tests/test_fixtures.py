"""Every fixture submission under fixtures/submissions/ gets exactly the verdict it expects.

A fixture is a folder with an `expected.json` = {"verdict": "PASS|REVIEW|FAIL", "rule_ids": [...]}
listing the sorted rule IDs of its warning and error findings. Folders whose names start with `_`
are helpers, not fixtures. The audit goes through the CLI (`--format json`), as a user would run it;
each fixture is copied to a temporary folder first, so the test also proves the audit never writes
to the submission and that symlinks survive the copy.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
from pathlib import Path

import pytest

from audit.cli import main

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "submissions"


def _fixture_dirs() -> list[Path]:
    return sorted(p for p in FIXTURES.iterdir()
                  if p.is_dir() and not p.name.startswith((".", "_")) and (p / "expected.json").is_file())


def _tree_digest(root: Path) -> str:
    """Names, symlink targets and contents of every entry (symlinks are not followed)."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames + [d for d in dirnames if (Path(dirpath) / d).is_symlink()]):
            p = Path(dirpath) / name
            h.update(str(p.relative_to(root)).encode())
            if p.is_symlink():
                h.update(b"->" + os.readlink(p).encode())
            else:
                h.update(p.read_bytes())
    return h.hexdigest()


def _audit(folder: Path) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main([str(folder), "--format", "json"])
    doc = json.loads(out.getvalue())
    (result,) = doc["results"]
    assert not result["errors"], f"a rule crashed on {folder.name}: {result['errors']}"
    assert code == (0 if result["verdict"] == "PASS" else 1), (code, result["verdict"])
    return result


def test_fixtures_exist():
    names = {p.name for p in _fixture_dirs()}
    for needed in ("legal_baseline", "over_cap", "missing_seeds", "seed_mismatch_in_log", "claimed_bpb_mismatch",
                   "log_source_mismatch", "broken_json", "symlink_escape", "non_utf8_log"):
        assert needed in names


@pytest.mark.parametrize("fixture", _fixture_dirs(), ids=lambda p: p.name)
def test_fixture_verdict(fixture: Path, tmp_path: Path):
    expected = json.loads((fixture / "expected.json").read_text(encoding="utf-8"))
    copy = tmp_path / fixture.name
    shutil.copytree(fixture, copy, symlinks=True)
    before = _tree_digest(copy)
    result = _audit(copy)
    assert _tree_digest(copy) == before, "the audit modified the submission folder"
    loud = sorted({f["rule_id"] for f in result["findings"] if f["severity"] != "info"})
    detail = [(f["rule_id"], f["severity"], f["message"][:160]) for f in result["findings"] if f["severity"] != "info"]
    assert result["verdict"] == expected["verdict"], detail
    assert loud == sorted(expected["rule_ids"]), detail


def test_symlink_fixture_is_a_symlink():
    link = FIXTURES / "symlink_escape" / "train_seed7.log"
    assert link.is_symlink(), "symlink_escape must hold a symlink (regenerate with fixtures/submissions/_generate.py)"
    assert not link.resolve().is_relative_to(FIXTURES.resolve())


def test_legal_baseline_seed_table():
    """The report carries one row per seed log and the statistics of the three final scores."""
    result = _audit(FIXTURES / "legal_baseline")
    assert [r["seed"] for r in result["runs"]] == [1337, 2025, 42]
    stats = result["stats"]["seeds"]
    assert stats["n_scored"] == 3
    claimed = json.loads((FIXTURES / "legal_baseline" / "submission.json").read_text())["val_bpb"]
    assert abs(stats["val_bpb_mean"] - claimed) < 1e-8
    assert stats["val_bpb_std_ddof1"] > stats["val_bpb_std_ddof0"] > 0
