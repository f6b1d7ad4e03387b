"""The files a branch changes (`--changed-since REF`) and the files pre-commit passes (`--from-files`)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from audit.layout import record_folder
from audit.report.output import UsageError


def changed_files(ref: str) -> tuple[Path, tuple[tuple[str, str], ...]]:
    """(repository root, (git status letter, path) of every file changed in REF...HEAD)."""
    root = Path(_git(["rev-parse", "--show-toplevel"], Path.cwd()).strip())
    raw = _git(["diff", "--name-status", "-z", "--no-renames", f"{ref}...HEAD"], root)
    return root, tuple(parse_name_status(raw))


def changed_folders(root: Path, changes: tuple[tuple[str, str], ...]) -> list[Path]:
    """The record folders among the changes that still exist (a deleted folder cannot be audited)."""
    folders = sorted({folder for _, path in changes if (folder := record_folder(path))})
    return [root / f for f in folders if (root / f).is_dir()]


def folders_of_files(paths: list[str]) -> list[Path]:
    """The records/<track>/<folder> of each file (paths as pre-commit passes them: from the repo root)."""
    folders = []
    for p in paths:
        folder = record_folder(Path(p).as_posix())
        if folder is not None and Path(folder).is_dir():
            folders.append(Path(folder))
    return sorted(set(folders))


def parse_name_status(raw: str) -> list[tuple[str, str]]:
    parts = raw.split("\0")
    out: list[tuple[str, str]] = []
    i = 0
    while i + 1 < len(parts) and parts[i]:
        out.append((parts[i][:1], parts[i + 1]))
        i += 2
    return out


def _git(args: list[str], cwd: Path) -> str:
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                              errors="surrogateescape")
    except FileNotFoundError:
        raise UsageError("--changed-since needs git on PATH") from None
    except subprocess.TimeoutExpired:
        raise UsageError(f"git {' '.join(args)} timed out") from None
    if proc.returncode != 0:
        raise UsageError(f"git {' '.join(args)} failed: {proc.stderr.strip() or proc.returncode}")
    return proc.stdout
