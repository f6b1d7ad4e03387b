"""The re-run part of a report (`report.stats["rerun"]`, written by audit.harness.rerun) as display data.

The harness stores a per-seed table (`runs`, one dict per seed) and a Welch test of the claims
against the re-run (`claim_vs_rerun`). Terminal and HTML show them the same way: a table with a
fixed column order and one line of statistics each, built here from plain data so that a saved
JSON report renders exactly like a fresh one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

Formatter = Callable[[Any], str]


def _ms(v: Any) -> str:
    return f"{float(v):,.0f}"


def _s(v: Any) -> str:
    return f"{float(v):.1f}"


def _bpb(v: Any) -> str:
    return f"{float(v):.8f}"


def _delta(v: Any) -> str:
    return f"{float(v):+.6f}"


def _bytes(v: Any) -> str:
    return f"{int(v):,}"


# (key in a harness row, header, formatter), in display order.
RERUN_COLUMNS: list[tuple[str, str, Formatter]] = [
    ("seed", "seed", str),
    ("status", "status", str),
    ("exit_code", "exit", str),
    ("wall_s", "wall s", _s),
    ("train_time_ms", "train ms", _ms),
    ("eval_time_ms", "eval ms", _ms),
    ("total_eval_time_s", "eval total s", _s),
    ("eval_phase_wall_s", "after-train wall s", _s),
    ("val_bpb", "val_bpb", _bpb),
    ("claimed_val_bpb", "claimed val_bpb", _bpb),
    ("delta_bpb", "Δ bpb", _delta),
    ("val_loss", "val_loss", _bpb),
    ("artifact_bytes_raw", "artifact B", _bytes),
    ("artifact_bytes_counted", "counted B", _bytes),
    ("claimed_artifact_bytes", "claimed B", _bytes),
    ("log_artifact_bytes", "log B", _bytes),
    ("model_file_bytes", "model B", _bytes),
    ("score_label", "score line", str),
    ("log_file", "log", str),
]
# Given up first when the terminal is too narrow (JSON and HTML keep every column).
RERUN_DROP_ORDER = ("log_file", "score_label", "log_artifact_bytes", "model_file_bytes", "val_loss",
                    "total_eval_time_s", "eval_phase_wall_s", "exit_code", "artifact_bytes_counted", "wall_s",
                    "claimed_artifact_bytes", "eval_time_ms", "claimed_val_bpb")
# Keys of stats["rerun"] shown by the table and the summary lines, not repeated in the flat listing.
SHOWN_KEYS = frozenset({"runs", "statuses", "claim_vs_rerun", "n_seeds", "n_scored", "val_bpb_mean", "val_bpb_sd",
                        "claimed_val_bpb_mean", "claimed_headline_val_bpb"})


def rerun_stats(stats: dict[str, Any]) -> dict[str, Any] | None:
    rerun = stats.get("rerun")
    return rerun if isinstance(rerun, dict) else None


def rows(rerun: dict[str, Any]) -> list[dict[str, Any]]:
    runs = rerun.get("runs")
    return [r for r in runs if isinstance(r, dict)] if isinstance(runs, list) else []


def value(row: dict[str, Any], key: str) -> Any:
    val = row.get(key)
    if isinstance(val, float) and not math.isfinite(val):
        return None
    return val


def columns(table: list[dict[str, Any]]) -> list[tuple[str, str, Formatter]]:
    """The columns at least one row has a value for."""
    return [c for c in RERUN_COLUMNS if any(value(r, c[0]) is not None for r in table)]


def cell(row: dict[str, Any], key: str, fmt: Formatter) -> str:
    val = value(row, key)
    if val is None:
        return "-"
    try:
        return fmt(val)
    except (TypeError, ValueError):
        return str(val)


def summary_line(rerun: dict[str, Any]) -> str | None:
    """'3 of 3 seeds scored; re-run mean val_bpb 1.08050000 (sd 0.00040000); claimed mean ...'."""
    parts = []
    n_seeds, n_scored = rerun.get("n_seeds"), rerun.get("n_scored")
    if n_seeds is not None:
        parts.append(f"{n_scored if n_scored is not None else '?'} of {n_seeds} seed(s) scored")
    mean = _number(rerun.get("val_bpb_mean"))
    if mean is not None:
        sd = _number(rerun.get("val_bpb_sd"))
        parts.append(f"re-run mean val_bpb {mean:.8f}" + (f" (sd {sd:.8f})" if sd is not None else ""))
    claimed = _number(rerun.get("claimed_val_bpb_mean"))
    if claimed is not None:
        parts.append(f"claimed per-seed mean {claimed:.8f}")
        if mean is not None:
            parts.append(f"re-run − claimed {mean - claimed:+.6f}")
    headline = _number(rerun.get("claimed_headline_val_bpb"))
    if headline is not None:
        parts.append(f"headline claim {headline:.8f}")
    return "; ".join(parts) if parts else None


def welch_line(rerun: dict[str, Any]) -> str | None:
    """The claim-vs-re-run Welch test in one line (small p: the claims beat what re-runs give)."""
    w = rerun.get("claim_vs_rerun")
    if not isinstance(w, dict):
        return None
    p, t, df = _number(w.get("p")), _number(w.get("t")), _number(w.get("df"))
    head = "claim vs re-run (one-sided Welch, H1: claimed mean < re-run mean): "
    head += f"p = {p:.4f}" if p is not None else "p = -"
    if t is not None:
        head += f", t = {t:.3f}"
    if df is not None:
        head += f", df = {df:.1f}"
    sides = []
    for label, key in (("claimed", "new"), ("re-run", "ref")):
        mean, sd = _number(w.get(f"mean_{key}")), _number(w.get(f"sd_{key}"))
        if mean is None:
            continue
        detail = ", ".join(x for x in (f"sd {sd:.6f}" if sd is not None else "",
                                        f"n {w.get(f'n_{key}')}" if w.get(f"n_{key}") is not None else "") if x)
        sides.append(f"{label} mean {mean:.6f}" + (f" ({detail})" if detail else ""))
    if sides:
        head += "; " + " vs ".join(sides)
    better = _number(w.get("improvement"))
    if better is not None:
        head += f"; claims better by {better:+.6f} bpb"
    return head


def other_stats(rerun: dict[str, Any]) -> dict[str, Any]:
    """What the table and the summary lines leave out (kept so that nothing is hidden)."""
    shown = SHOWN_KEYS if rows(rerun) else SHOWN_KEYS - {"statuses"}
    return {k: v for k, v in rerun.items() if k not in shown}


def _number(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return float(x) if math.isfinite(x) else None
