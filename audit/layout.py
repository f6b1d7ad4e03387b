"""Where a path sits in the challenge repository: records/<track>/<folder>/... is a submission folder."""

from __future__ import annotations

from pathlib import PurePosixPath

# git's status letters (diff --name-status) as words
CHANGE_STATUS = {"A": "added", "M": "modified", "D": "deleted", "T": "type changed", "C": "copied", "R": "renamed"}


def record_folder(path: str) -> str | None:
    """records/<track>/<folder> of a repository-relative POSIX path to a file inside one, else None."""
    parts = PurePosixPath(path).parts
    if len(parts) >= 4 and parts[0] == "records":
        return "/".join(parts[:3])
    return None
