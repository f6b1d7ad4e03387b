"""audit/enforcement.py: the date a folder is judged on, and severity by track and ruling date."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from audit.cli import main
from audit.context import AuditContext, Options
from audit.enforcement import RULINGS, adjust, binds, judged_on, landing_date, policy_for
from audit.findings import Finding, Severity
from audit.submission import Submission
from rules._meta_examples import folder

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")


def _write(root: Path, files: dict) -> Path:
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content if isinstance(content, bytes) else content.encode())
    return root


def _git(cwd: Path, *args: str, date: str | None = None) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@e"}
    if date:
        env.update(GIT_AUTHOR_DATE=f"{date}T12:00:00Z", GIT_COMMITTER_DATE=f"{date}T12:00:00Z")
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


def _repo_with(tmp_path: Path, rel: str, date: str) -> Path:
    repo = tmp_path / "parameter-golf"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    _write(repo, {"README.md": "challenge\n"})
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "start", date="2026-03-18")
    _write(repo / rel, folder())
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "record", date=date)
    return repo


@needs_git
def test_landing_date_from_first_parent_history(tmp_path: Path):
    rel = "records/track_10min_16mb/2026-03-19_Example"
    repo = _repo_with(tmp_path, rel, "2026-03-20")
    assert landing_date(repo / rel) == dt.date(2026, 3, 20)
    ctx = AuditContext(Submission.load(repo / rel))
    assert judged_on(ctx).how == "landed" and not binds(ctx, "three-seeds")


@needs_git
def test_folder_not_on_main_is_judged_today(tmp_path: Path):
    rel = "records/track_10min_16mb/2026-03-19_Example"
    repo = _repo_with(tmp_path, rel, "2026-03-20")
    new = repo / "records/track_10min_16mb/2026-05-09_Unmerged"
    _write(new, folder())
    assert landing_date(new) is None
    judged = judged_on(AuditContext(Submission.load(new)))
    assert judged.how == "today" and judged.date == dt.date.today()


@needs_git
def test_git_inside_the_submission_is_never_used(tmp_path: Path):
    """A submission that ships its own .git (with hooks or config) is not a checkout of the challenge."""
    sub = tmp_path / "records" / "track_10min_16mb" / "2026-03-19_Hostile"
    _write(sub, folder())
    _git(sub, "init", "-q", "-b", "main")
    _git(sub, "add", "-A")
    _git(sub, "commit", "-qm", "x", date="2026-03-01")
    assert landing_date(sub) is None


def test_as_of_overrides(tmp_path: Path):
    ctx = AuditContext(Submission.from_files(folder()), Options(as_of="2026-04-01"))
    assert judged_on(ctx).how == "as-of" and judged_on(ctx).date == dt.date(2026, 4, 1)
    assert not binds(ctx, "three-seeds") and binds(ctx, "readme")


def test_ruling_binds_only_folders_not_merged_by_its_date():
    day = RULINGS["three-seeds"].date
    on_the_day = AuditContext(Submission.from_files(folder()), Options(as_of=day.isoformat()))
    after = AuditContext(Submission.from_files(folder()), Options(as_of=(day + dt.timedelta(days=1)).isoformat()))
    assert not binds(on_the_day, "three-seeds") and binds(after, "three-seeds")


def test_track_policy():
    non_record = AuditContext(Submission.from_files(folder(json_extra={"track": "non-record-16mb"})),
                              Options(as_of="2026-06-01"))
    cap = Finding("R-ARTIFACT-CAP", Severity.ERROR, "over")
    time = Finding("R-TRAIN-TIME-600", Severity.ERROR, "slow")
    json_missing = Finding("R-SUB-FILES", Severity.ERROR, "no submission.json")
    assert adjust(non_record, cap) == cap  # the cap binds both tracks
    assert adjust(non_record, time) is None  # no time limit off the record track
    lowered = adjust(non_record, json_missing)
    assert lowered is not None and lowered.severity == Severity.WARNING and "non-record" in lowered.message
    assert policy_for("R-SUB-SEEDS-SAME-CONFIG.seed-count").ruling == "three-seeds"
    assert policy_for("R-SUB-JSON.claims-match-logs").ruling == "readme"


def test_cli_as_of(tmp_path: Path, capsys):
    sub = _write(tmp_path / "records" / "track_10min_16mb" / "2026-03-19_Two",
                 {k: v for k, v in folder().items() if k != "train_seed2025.log"})
    assert main(["check", str(sub), "--as-of", "2026-03-20", "--format", "json", "--fail-on", "error"]) == 0
    capsys.readouterr()
    assert main(["check", str(sub), "--as-of", "2026-05-02", "--format", "json", "--fail-on", "error"]) == 1
    capsys.readouterr()
    assert main(["check", str(sub), "--as-of", "yesterday"]) == 2
