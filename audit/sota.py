"""Load the reference run set that `--sota FILE|DIR` names, for the significance tests.

Accepted forms (all give per-seed val_bpb, and val_loss when known):

* a submission folder: its logs are parsed like any audited folder's (final score line per seed);
  when no log has a score, its submission.json per-seed results are used;
* a JSON file with per-seed lists: ``{"name": "...", "val_bpb": [...], "val_loss": [...]}``;
* a JSON file with runs: ``{"runs": [{"seed": 42, "val_bpb": ..., "val_loss": ...}, ...]}``
  (or a bare list of such objects, or a bare list of val_bpb numbers);
* a JSON file with summary statistics only (pooled evidence):
  ``{"val_bpb": {"mean": ..., "sd": ..., "n": ...}, "val_loss": {...}}``;
* a submission.json: ``seed_results`` / ``seeds`` mapping seed -> {val_bpb, val_loss}.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from audit.stats import RunSet, Summary

if TYPE_CHECKING:
    from audit.logs import SeedRun


class SotaError(ValueError):
    """The reference run set cannot be used; the message says why, for the command line."""


_CACHE: dict[tuple[str, float], RunSet] = {}


def load_reference(path: str) -> RunSet:
    """The reference run set at `path` (a JSON file or a submission folder), read once per mtime."""
    p = Path(path)
    if not p.exists():
        raise SotaError(f"--sota {path}: no such file or directory")
    key = (str(p.resolve()), p.stat().st_mtime)
    if key not in _CACHE:
        _CACHE[key] = _load_dir(p) if p.is_dir() else _load_file(p)
    return _CACHE[key]


def _load_file(p: Path) -> RunSet:
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise SotaError(f"--sota {p}: not a readable JSON file ({exc})") from None
    runset = runset_from_json(data, default_name=p.stem if p.name != "submission.json" else p.parent.name)
    if runset is None:
        raise SotaError(
            f"--sota {p}: no per-seed val_bpb found; expected {{\"val_bpb\": [..], \"val_loss\": [..]}}, "
            "{\"runs\": [{\"val_bpb\": ..}, ..]}, {\"val_bpb\": {\"mean\", \"sd\", \"n\"}} or a submission.json "
            "with seed_results"
        )
    return runset


def _load_dir(p: Path) -> RunSet:
    from audit.context import AuditContext
    from audit.seeds import scored_runs
    from audit.submission import Submission

    sub = Submission.load(p)
    runs = distinct_runs(scored_runs(AuditContext(sub)))
    bpb = [r.val_bpb for r in runs if r.val_bpb is not None]
    if bpb:
        losses = [r.val_loss for r in runs if r.val_loss is not None]
        return RunSet(
            sub.name,
            val_bpb=tuple(bpb),
            val_loss=tuple(losses) if len(losses) == len(bpb) else (),
        )
    if sub.json_data is not None:
        runset = runset_from_json(sub.json_data, default_name=sub.name)
        if runset is not None:
            return runset
    raise SotaError(f"--sota {p}: no log with a final score line and no per-seed results in submission.json")


def distinct_runs(runs: list[SeedRun]) -> list[SeedRun]:
    """One run per (seed, score): a folder often ships the same run twice (train.log and
    train_seed42.log); counting it twice would shrink the variance and the p-value."""
    from audit.seeds import run_seed

    seen: set[tuple[Any, ...]] = set()
    out = []
    for r in runs:
        seed = run_seed(r)
        key: tuple[Any, ...] = (seed, r.val_bpb, r.val_loss) if seed is not None else (r.log_path,)
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def runset_from_json(data: Any, default_name: str = "reference") -> RunSet | None:
    """A run set from any accepted JSON shape, or None when none of them matches."""
    name = str(data.get("name") or default_name) if isinstance(data, dict) else default_name
    if isinstance(data, list):
        if data and all(_num(v) is not None for v in data):
            return _checked(RunSet(name, val_bpb=tuple(float(v) for v in data)))
        return _from_rows(name, data)
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("runs"), list):
        return _from_rows(name, data["runs"])
    bpb, loss = data.get("val_bpb"), data.get("val_loss")
    if isinstance(bpb, list):
        return _checked(RunSet(name, val_bpb=_numbers(bpb, "val_bpb"),
                               val_loss=_numbers(loss, "val_loss") if isinstance(loss, list) else ()))
    if isinstance(bpb, dict):
        return _checked(RunSet(name, bpb_summary=_summary(bpb, "val_bpb"),
                               loss_summary=_summary(loss, "val_loss") if isinstance(loss, dict) else None))
    for key in ("seed_results", "seeds"):
        per_seed = data.get(key)
        if isinstance(per_seed, dict) and per_seed and all(isinstance(v, dict) for v in per_seed.values()):
            return _from_rows(name, list(per_seed.values()))
    return None


def _from_rows(name: str, rows: list[Any]) -> RunSet | None:
    dicts = [r for r in rows if isinstance(r, dict)]
    bpb = [_num(r.get("val_bpb")) for r in dicts]
    loss = [_num(r.get("val_loss")) for r in dicts]
    if not dicts or any(v is None for v in bpb):
        return None
    return _checked(RunSet(
        name,
        val_bpb=tuple(v for v in bpb if v is not None),
        val_loss=tuple(v for v in loss if v is not None) if all(v is not None for v in loss) else (),
    ))


def _checked(rs: RunSet) -> RunSet:
    """Scores are positive, and per-seed val_loss (when given) pairs with val_bpb seed by seed."""
    for label, vals in (("val_bpb", rs.val_bpb), ("val_loss", rs.val_loss)):
        if any(v <= 0 for v in vals):
            raise SotaError(f"reference {rs.name}: {label} values must be positive, got {list(vals)}")
    if rs.val_loss and len(rs.val_loss) != len(rs.val_bpb):
        raise SotaError(f"reference {rs.name}: {len(rs.val_bpb)} val_bpb values but {len(rs.val_loss)} val_loss")
    return rs


def _numbers(values: list[Any], label: str) -> tuple[float, ...]:
    out = []
    for v in values:
        x = _num(v)
        if x is None:
            raise SotaError(f"reference {label}: {v!r} is not a finite number")
        out.append(x)
    if not out:
        raise SotaError(f"reference {label}: empty list")
    return tuple(out)


def _summary(d: Any, label: str) -> Summary:
    mean, sd, n = _num(d.get("mean")), _num(d.get("sd", d.get("std"))), d.get("n")
    if mean is None or sd is None or not isinstance(n, int) or isinstance(n, bool) or n < 1 or sd < 0:
        raise SotaError(f"reference {label}: a summary needs a number 'mean', 'sd' >= 0 and an integer 'n' >= 1")
    return Summary(mean, sd, n)


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(v) else None
