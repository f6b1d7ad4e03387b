"""What a submission claims, per seed, in the shape the re-run is compared against.

Two sources, both read the way the static audit reads them: the committed logs (audit.logs, the
evidence a reviewer reads) and submission.json (audit.claims, the headline numbers). A per-seed
value from submission.json wins over the log's, because it is what the leaderboard row would use;
the source of every value is kept so a finding can point at it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from audit.logs import parse_submission_logs
from audit.submission import Submission


@dataclass
class SeedClaim:
    seed: int
    val_bpb: float | None = None
    bpb_source: str | None = None
    bpb_line: int | None = None
    artifact_bytes: int | None = None
    bytes_source: str | None = None
    bytes_line: int | None = None
    train_time_ms: float | None = None
    eval_time_ms: float | None = None


@dataclass
class ClaimSet:
    per_seed: dict[int, SeedClaim] = field(default_factory=dict)
    mean_bpb: float | None = None  # the headline val_bpb of submission.json
    bytes_total: int | None = None
    json_path: str | None = None
    notes: list[str] = field(default_factory=list)

    def seeds(self) -> list[int]:
        return sorted(self.per_seed)


def collect_claims(sub: Submission) -> ClaimSet:
    out = ClaimSet(json_path=sub.json_path)
    for run in parse_submission_logs(sub):
        seed = run.seed if run.seed is not None else run.seed_from_name
        if seed is None:
            out.notes.append(f"{run.log_path}: no seed found; not compared")
            continue
        c = out.per_seed.setdefault(seed, SeedClaim(seed))
        if run.val_bpb is not None:
            c.val_bpb, c.bpb_source, c.bpb_line = run.val_bpb, run.log_path, run.score_line
        if run.artifact_bytes is not None:
            c.artifact_bytes, c.bytes_source, c.bytes_line = run.artifact_bytes, run.log_path, run.artifact_line
        c.train_time_ms = run.train_time_ms
        c.eval_time_ms = run.eval_time_ms
    if sub.json_data is not None:
        _from_json(out, sub.json_data, sub.json_path or "submission.json")
    return out


def _from_json(out: ClaimSet, data: dict[str, Any], path: str) -> None:
    """Headline and per-seed numbers of submission.json, normalised by audit.claims."""
    from audit.claims import Claims

    claims = Claims.from_json(data)
    out.mean_bpb = claims.val_bpb
    out.bytes_total = claims.bytes_total
    for seed in claims.seeds:
        out.per_seed.setdefault(seed, SeedClaim(seed))
    for seed, entry in claims.seed_claims().items():
        c = out.per_seed.setdefault(seed, SeedClaim(seed))
        if entry.val_bpb is not None:
            c.val_bpb, c.bpb_source, c.bpb_line = entry.val_bpb, path, None
        if entry.artifact_bytes is not None:
            c.artifact_bytes, c.bytes_source, c.bytes_line = entry.artifact_bytes, path, None
