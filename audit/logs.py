"""Parse parameter-golf training logs into per-seed run records.

INTERFACE FILE (the foundation helper fills in the parser). Three log families exist
(REFERENCE.md 2.3): the baseline `step:` family, the int6/sliding/TTT family, and the
"Hyperparameters:" family, any of them possibly timestamp-prefixed.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SeedRun:
    """What one log file proves about one training+evaluation run."""

    log_path: str
    family: str = "unknown"  # baseline | int6 | hparams | unknown
    seed: int | None = None
    seed_line: int | None = None
    seed_from_name: int | None = None  # e.g. 42 from train_seed42.log
    # The canonical final score of this family, and which line it came from.
    val_loss: float | None = None
    val_bpb: float | None = None
    score_label: str | None = None
    score_line: int | None = None
    # Size accounting.
    artifact_bytes: int | None = None  # "Total submission size <quantised...>: N bytes"
    artifact_line: int | None = None
    model_bytes: int | None = None  # "Serialized model <quantised...>: N bytes"
    code_bytes: int | None = None  # "Code size: N" or "Code size (uncompressed): N"
    code_bytes_compressed: int | None = None  # "Code size (compressed): N"
    # Time.
    train_time_ms: float | None = None
    train_time_line: int | None = None
    eval_time_ms: float | None = None  # eval_time of the score line
    total_eval_time_s: float | None = None  # "total_eval_time:<s>s" when printed
    step: int | None = None
    iterations: int | None = None
    stop_reason: str | None = None  # wallclock_cap | iterations | None (unknown)
    max_wallclock_seconds: float | None = None
    # Data.
    val_tokens: int | None = None
    train_shards: int | None = None
    # Configuration: the hyperparameter / env dump, for the same-config check across seeds.
    hyperparameters: dict[str, str] = field(default_factory=dict)
    # The script source that the reference train_gpt.py writes at the top of its log.
    embedded_source: str | None = None
    truncated: bool = False  # the log ends before a final score line
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d.pop("embedded_source", None)
        d["has_embedded_source"] = self.embedded_source is not None
        return d


def parse_log(path: str, text: str) -> SeedRun:
    """Parse one log. Never raises on bad input: unknown content yields empty fields."""
    return SeedRun(log_path=path)
