"""What a submission.json claims, normalised over the variants seen in the records.

REFERENCE.md 2.2 lists the variants: the score under `val_bpb`, `mean_val_bpb` or (once) BPB
stored under `val_loss`; the artifact size under `bytes_total`, `artifact_bytes`,
`artifact_bytes_max`, `artifact_size_bytes` or `artifact_bytes_mean`; code bytes under
`bytes_code` or `code_bytes`; per-seed results under `seeds` (a list of seeds, or a dict seed ->
results), `seed_results` (dict seed-string -> results) or `seed_scores` (a list of BPBs aligned
with `seeds`). Numbers arrive as numbers, numeric strings or null. `Claims.from_json` reads all of
them, remembers which key each value came from, notes oddities in `problems`, and never raises.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

# A val_loss below this with no val_bpb anywhere is probably a BPB stored under the wrong key
# (nats/token of real submissions are >= ~1.85 at 1024 tokens and higher for larger vocabularies).
VAL_LOSS_AS_BPB_BELOW = 2.0

_BPB_KEYS = ("val_bpb", "mean_val_bpb", "mean_bpb", "val_bpb_mean", "three_seed_mean_bpb", "mean_sliding_bpb")
_BYTES_TOTAL_KEYS = ("bytes_total", "artifact_bytes", "artifact_bytes_max", "max_artifact_bytes",
                     "artifact_size_bytes", "artifact_bytes_mean")
_BYTES_CODE_KEYS = ("bytes_code", "code_bytes")
_STD_KEYS = ("val_bpb_std", "std_val_bpb", "std_bpb", "three_seed_std_bpb")
_SEED_BPB_KEYS = ("val_bpb", "bpb", "mean_val_bpb", "post_ttt_val_bpb", "sliding_bpb", "sliding_window_bpb",
                  "roundtrip_bpb")
_SEED_LOSS_KEYS = ("val_loss", "val_loss_nats")
_SEED_BYTES_KEYS = ("artifact_bytes", "bytes_total", "artifact_size_bytes", "total_bytes")
_SEED_STEPS_KEYS = ("steps", "stop_step", "step_stop", "train_steps")
# (key, factor to seconds)
_SEED_TRAIN_TIME_KEYS = (("train_time_s", 1.0), ("train_time_seconds", 1.0), ("train_time_ms", 1e-3),
                         ("train_wallclock_ms", 1e-3), ("train_wallclock_s", 1.0))
_SEED_EVAL_TIME_KEYS = (("eval_time_s", 1.0), ("eval_time_seconds", 1.0), ("eval_time_ms", 1e-3),
                        ("ttt_eval_time_s", 1.0), ("ttt_time_ms", 1e-3), ("total_eval_time_s", 1.0))


@dataclass(frozen=True)
class SeedClaim:
    """One seed's results as submission.json states them."""

    key: str  # as written: "1337", "1337_conservative", or "#0" for a positional score
    seed: int | None
    source: str  # "seeds" | "seed_results" | "seed_scores"
    val_bpb: float | None = None
    val_loss: float | None = None
    artifact_bytes: int | None = None
    train_time_s: float | None = None
    eval_time_s: float | None = None
    steps: int | None = None


@dataclass
class Claims:
    """The normalised claims of one submission.json."""

    val_bpb: float | None = None
    val_bpb_key: str | None = None  # which key val_bpb came from
    val_bpb_from_val_loss: bool = False  # no val_bpb key; a BPB-sized value sat under val_loss
    val_loss: float | None = None
    val_bpb_std: float | None = None
    bytes_total: int | None = None
    bytes_total_key: str | None = None
    bytes_code: int | None = None
    bytes_code_key: str | None = None
    seeds: list[int] = field(default_factory=list)  # the declared seed list, in order
    per_seed: list[SeedClaim] = field(default_factory=list)
    name: str | None = None
    author: str | None = None
    github_id: str | None = None
    track: str | None = None
    date: str | None = None
    blurb: str | None = None
    problems: list[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: Any) -> Claims:
        """Normalise a parsed submission.json (any JSON value). Never raises."""
        claims = cls()
        if not isinstance(data, dict):
            claims.problems.append(f"submission.json is a {type(data).__name__}, not an object")
            return claims
        try:
            claims._read(data)
        except Exception as exc:  # noqa: BLE001 - malformed input must never crash the audit
            claims.problems.append(f"could not read submission.json fully: {type(exc).__name__}: {exc}")
        return claims

    # -- reading --------------------------------------------------------------------------
    def _read(self, data: dict[Any, Any]) -> None:
        nested = data.get("results")
        if isinstance(nested, dict):  # {"results": {"seeds": {...}, "mean_val_bpb": ...}}
            data = {**nested, **{k: v for k, v in data.items() if k != "results"}}
        self.name = (_text(data.get("name")) or _text(data.get("run_name")) or _text(data.get("submission_name"))
                     or _text(data.get("title")))
        self.author = _text(data.get("author"))
        self.github_id = _text(data.get("github_id"))
        self.track = _text(data.get("track"))
        self.date = _text(data.get("date"))
        self.blurb = _text(data.get("blurb"))
        self.val_loss = self._number(data, "val_loss")
        for key in _BPB_KEYS:
            value = self._number(data, key)
            if value is not None:
                self.val_bpb, self.val_bpb_key = value, key
                break
        metric = data.get("score_metric")
        if self.val_bpb is None and (metric is None or "bpb" in str(metric).lower()):
            value = self._number(data, "score")
            if value is not None:
                self.val_bpb, self.val_bpb_key = value, "score"
        if self.val_bpb is None and self.val_loss is not None and self.val_loss < VAL_LOSS_AS_BPB_BELOW:
            self.val_bpb, self.val_bpb_key, self.val_bpb_from_val_loss = self.val_loss, "val_loss", True
            self.problems.append(f"no val_bpb key; val_loss = {self.val_loss} looks like a BPB")
        for key in _STD_KEYS:
            value = self._number(data, key)
            if value is not None:
                self.val_bpb_std = value
                break
        for key in _BYTES_TOTAL_KEYS:
            value = self._integer(data, key)
            if value is not None:
                self.bytes_total, self.bytes_total_key = value, key
                break
        for key in _BYTES_CODE_KEYS:
            value = self._integer(data, key)
            if value is not None:
                self.bytes_code, self.bytes_code_key = value, key
                break
        self._read_seeds(data)

    def _read_seeds(self, data: dict[Any, Any]) -> None:
        seeds = data.get("seeds")
        if isinstance(seeds, list):
            for item in seeds:
                seed = _as_int(item)
                if seed is None:
                    self.problems.append(f"seeds: {str(item)[:40]!r} is not a seed number")
                else:
                    self.seeds.append(seed)
        elif isinstance(seeds, dict):
            self.per_seed.extend(_seed_map(seeds, "seeds", self.problems))
        elif seeds is not None:
            seed = _as_int(seeds)
            if seed is not None:
                self.seeds.append(seed)
            else:
                self.problems.append(f"seeds is a {type(seeds).__name__}")
        results = data.get("seed_results")
        if isinstance(results, dict):
            self.per_seed.extend(_seed_map(results, "seed_results", self.problems))
        elif isinstance(results, list):
            for index, item in enumerate(results):
                if isinstance(item, dict):
                    key = str(item.get("seed", f"#{index}"))
                    self.per_seed.append(_seed_claim(key, item, "seed_results"))
        elif results is not None:
            self.problems.append(f"seed_results is a {type(results).__name__}, not an object")
        scores = data.get("seed_scores")
        if isinstance(scores, list):
            aligned = len(self.seeds) == len(scores)
            for index, item in enumerate(scores):
                bpb = _as_float(item)
                seed = self.seeds[index] if aligned else None
                key = str(seed) if seed is not None else f"#{index}"
                self.per_seed.append(SeedClaim(key=key, seed=seed, source="seed_scores", val_bpb=bpb))
            if not aligned:
                self.problems.append("seed_scores and seeds have different lengths; scores not matched to seeds")
        if not self.seeds and self.per_seed:
            self.seeds = [c.seed for c in self.per_seed if c.seed is not None and c.source != "seed_scores"]
            self.seeds = list(dict.fromkeys(self.seeds))
        single = _as_int(data.get("seed"))
        if not self.seeds and single is not None:
            self.seeds = [single]

    def _number(self, data: dict[Any, Any], key: str) -> float | None:
        if key not in data or data[key] is None:
            return None
        value = _as_float(data[key])
        if value is None:
            self.problems.append(f"{key} = {str(data[key])[:40]!r} is not a number")
        return value

    def _integer(self, data: dict[Any, Any], key: str) -> int | None:
        if key not in data or data[key] is None:
            return None
        value = _as_int(data[key])
        if value is None:
            self.problems.append(f"{key} = {str(data[key])[:40]!r} is not a whole number")
        return value

    # -- queries --------------------------------------------------------------------------
    def seed_claims(self) -> dict[int, SeedClaim]:
        """Per-seed claims by seed number; `seed_results` wins over `seeds` over `seed_scores`."""
        order = {"seed_scores": 0, "seeds": 1, "seed_results": 2}
        out: dict[int, SeedClaim] = {}
        for claim in sorted(self.per_seed, key=lambda c: order.get(c.source, 0)):
            if claim.seed is not None:
                out[claim.seed] = claim
        return out

    def per_seed_bpbs(self) -> list[float]:
        return [c.val_bpb for c in self.seed_claims().values() if c.val_bpb is not None]


def _seed_map(mapping: dict[Any, Any], source: str, problems: list[str]) -> list[SeedClaim]:
    out: list[SeedClaim] = []
    for key, value in mapping.items():
        if isinstance(value, dict):
            out.append(_seed_claim(str(key), value, source))
        elif _as_float(value) is not None:  # {"1337": 1.1148}
            out.append(SeedClaim(key=str(key), seed=_seed_of_key(key), source=source, val_bpb=_as_float(value)))
        else:
            problems.append(f"{source}[{str(key)[:20]!r}] is a {type(value).__name__}, not an object")
    return out


def _seed_claim(key: str, item: dict[Any, Any], source: str) -> SeedClaim:
    seed = _seed_of_key(key)
    if seed is None:
        seed = _as_int(item.get("seed"))
    return SeedClaim(
        key=key,
        seed=seed,
        source=source,
        val_bpb=_first_float(item, _SEED_BPB_KEYS),
        val_loss=_first_float(item, _SEED_LOSS_KEYS),
        artifact_bytes=_first_int(item, _SEED_BYTES_KEYS),
        train_time_s=_first_scaled(item, _SEED_TRAIN_TIME_KEYS),
        eval_time_s=_first_scaled(item, _SEED_EVAL_TIME_KEYS),
        steps=_first_int(item, _SEED_STEPS_KEYS),
    )


def _seed_of_key(key: Any) -> int | None:
    """1337 from "1337", "seed_1337", "1337_conservative"; None from "#0" or "best"."""
    if isinstance(key, int) and not isinstance(key, bool):
        return key
    m = re.match(r"^\s*(?:seed[_\- ]?)?(-?\d{1,12})(?:\D.*)?$", str(key), flags=re.IGNORECASE)
    return int(m.group(1)) if m else None


def _first_float(item: dict[Any, Any], keys: tuple[str, ...]) -> float | None:
    for key in keys:
        value = _as_float(item.get(key))
        if value is not None:
            return value
    return None


def _first_int(item: dict[Any, Any], keys: tuple[str, ...]) -> int | None:
    for key in keys:
        value = _as_int(item.get(key))
        if value is not None:
            return value
    return None


def _first_scaled(item: dict[Any, Any], keys: tuple[tuple[str, float], ...]) -> float | None:
    for key, factor in keys:
        value = _as_float(item.get(key))
        if value is not None:
            return value * factor
    return None


def _as_float(value: Any) -> float | None:
    """A number from a JSON value: int/float, or a numeric string ("1.08", "15,990,006")."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:  # an int too large for a float
            return None
    if isinstance(value, str):
        text = value.strip().replace(",", "").replace("_", "")
        if not text or len(text) > 64:
            return None
        try:
            return float(text)
        except ValueError:
            return None
    return None


def _as_int(value: Any) -> int | None:
    number = _as_float(value)
    if number is None or math.isnan(number) or math.isinf(number) or number != int(number):
        return None
    return int(number)


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None
