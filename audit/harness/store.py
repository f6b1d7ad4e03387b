"""Results on disk: one JSON file per seed and a summary, each written atomically.

A three-seed re-run on 8xH100 takes the better part of an hour. Writing each seed's result the
moment it is known (to a temporary file, then renamed over the target) means an interrupted run
keeps every finished seed, and `--resume` can skip them, provided they were measured under the
same configuration (`config_key`).

A stored seed carries the sha256 of its own content and of its log. `--resume` reuses it only
when both still match, the seed finished (ok, crashed, timeout, no-score: never an interrupted
or unproven run) and the configuration is the same; anything else is re-run. The folder itself
is outside the sandbox's view (hidden, and read-only if not), so a run cannot write there.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

SCHEMA = "pgolf-audit/rerun/2"
REUSABLE = ("ok", "crashed", "timeout", "no-score")


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


def _digest(config_key: str, result: dict[str, Any], log_sha256: str | None) -> str:
    basis = json.dumps({"config_key": config_key, "result": result, "log_sha256": log_sha256}, sort_keys=True,
                       default=str)
    return hashlib.sha256(basis.encode()).hexdigest()


def file_sha256(path: Path) -> str | None:
    h = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return None
    return h.hexdigest()


def write_seed(out: Path, seed: int, config_key: str, result: dict[str, Any]) -> None:
    """The seed's result with the digests --resume checks."""
    result = json.loads(json.dumps(result, default=str))  # exactly what will be read back
    log_sha = file_sha256(seed_log_path(out, seed))
    write_json_atomic(seed_path(out, seed), {"schema": SCHEMA, "config_key": config_key, "result": result,
                                             "log_sha256": log_sha, "digest": _digest(config_key, result, log_sha)})


def load_finished(out: Path, seed: int, config_key: str) -> dict[str, Any] | None:
    """A seed's stored result if it finished under the same configuration and is intact, else None."""
    path = seed_path(out, seed)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA or data.get("config_key") != config_key:
        return None
    result = data.get("result")
    if not isinstance(result, dict) or result.get("seed") != seed or result.get("status") not in REUSABLE:
        return None
    if data.get("digest") != _digest(config_key, result, data.get("log_sha256")):
        return None
    if data.get("log_sha256") != file_sha256(seed_log_path(out, seed)):
        return None
    return data
