"""Results on disk: one JSON file per seed and a summary, each written atomically.

A three-seed re-run on 8xH100 takes the better part of an hour. Writing each seed's result the
moment it is known (to a temporary file, then renamed over the target) means an interrupted run
keeps every finished seed, and `--resume` can skip them, provided they were measured under the
same configuration (`config_key`).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

SCHEMA = "pgolf-audit/rerun/1"


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True, default=str)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def seed_path(out: Path, seed: int) -> Path:
    return out / f"seed-{seed}.json"


def seed_log_path(out: Path, seed: int) -> Path:
    return out / f"seed-{seed}.log"


def summary_path(out: Path) -> Path:
    return out / "summary.json"


def load_finished(out: Path, seed: int, config_key: str) -> dict[str, Any] | None:
    """A seed's stored result if it finished under the same configuration, else None."""
    path = seed_path(out, seed)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA or data.get("config_key") != config_key:
        return None
    return data
