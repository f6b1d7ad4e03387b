"""Parse parameter-golf training logs into per-seed run records.

(Over 450 lines on purpose: the three log families share one line grammar, one score ranking and
one source-embedding convention, and a parser split per family would repeat all three.)

Three log families exist (REFERENCE.md 2.3), any of them possibly prefixed with unix timestamps or
wrapped in torchrun/NCCL noise:
- baseline: `step:S/N val_loss:… val_bpb:…`, `final_int8_zlib_roundtrip_exact …`;
- int6: `final_int6_sliding_window_exact`, `legal_ttt_exact`, and a compatibility echo of
  `final_int8_zlib_roundtrip_exact` that carries the *sliding* numbers;
- hparams: a `Hyperparameters:` dump, `S/N val_loss: …`, labels `quantized`, `quantized_ttt_phased`…

The canonical score of a log is chosen by label class, not by position (see `score_rank`):

    eval-time adaptation (phased TTT)        5   quantized_ttt_phased
    eval-time adaptation (TTT/SLOT/n-gram)   4   quantized_ttt*, legal_ttt_exact, final_*_ttt*, final_slot*, ngram*, ppm*, *etlb
    sliding-window eval of the artifact      3   quantized_sliding_window, final_int6_sliding_window[_s64]_exact, final_sliding*
    round-trip eval of the artifact          2   final_*_roundtrip_exact, quantized, final_*_roundtrip
    anything else that is not a diagnostic   1
    diagnostics (pre-quant, post-EMA, …)     0   never canonical while anything else exists

Within the best class the last line wins, except that a line with 8-digit precision is preferred
to a 4-digit one of the same label stem (`legal_ttt_exact` over `legal_ttt`). So the echo
`final_int8_zlib_roundtrip_exact` (class 2) never overrides the sliding or TTT line it echoes.
Every candidate line stays in `SeedRun.scores`, so a rule can tell which line a claim matches.

The reference train_gpt.py writes its own source at the top of its log file, then a line of 100
`=`, then `Running Python …`. `log0` appends one newline to each message, so the exact source is
the text before that separator line minus exactly one trailing "\n". On the corpus (103 embedded
sources in 60 records + 49 PRs) 67 hash-equal a shipped script; 3 differ only by a final newline
stripped after the run (see `compare_sources`); the rest are scripts edited after the run.
Scripts without a final newline round-trip exactly too. Later scripts log the
`Hyperparameters:` dump before the source (04-01) or frame it with `Source code:` (04-10); both
are handled. Newlines inside the source are "\n" (the script was read in text mode), so a script
shipped with CRLF endings only matches after newline normalisation.

A log file can hold several runs (append-mode reruns with the same RUN_ID, or a driver script that
ran three seeds into one file). `parse_log_runs` returns them all; `parse_log` reports the last
run that reached a final score, noting the count; `parse_submission_logs` keeps every scored run
when their seeds are distinct.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from audit.submission import Submission


@dataclass(frozen=True)
class ScoreLine:
    """One `<label> val_loss:… val_bpb:…` line of a log."""

    label: str
    val_loss: float | None
    val_bpb: float
    line: int  # 1-based
    eval_time_ms: float | None = None
    rank: int = 0
    digits: int = 0  # decimals printed for val_bpb (4 or 8 in the reference scripts)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


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
    # -- additions (LOGS engineer) --------------------------------------------------------
    scores: list[ScoreLine] = field(default_factory=list)  # every labelled score line, in order
    eval_times_ms: dict[str, float] = field(default_factory=dict)  # score label -> its eval_time
    artifact_label: str | None = None  # e.g. "int6+lzma", "quantized+brotli", "budget"
    # Every artifact total the run printed (bytes, line, label): a concatenated grep of several
    # logs, or a re-serialisation, prints more than one; the cap binds each.
    logged_totals: list[tuple[int, int, str]] = field(default_factory=list)
    # Timed phases after training that the score depends on, outside the scoring timer
    # (label, seconds, line): pre-quant TTT, precompute, eval-time calibration, eval compilation.
    eval_phases: list[tuple[str, float, int]] = field(default_factory=list)
    raw_total_bytes: int | None = None  # the informational "Total submission size: N bytes" (raw .pt)
    raw_model_bytes: int | None = None  # "Serialized model: N bytes" (raw torch.save)
    code_line: int | None = None
    step_line: int | None = None
    embedded_source_line: int | None = None  # first line of the embedded source
    timings_s: dict[str, float] = field(default_factory=dict)  # gptq_reserve, serialize_wallclock, …
    runs_in_log: int = 1  # runs found in this file (appended reruns, or several seeds in one file)
    run_index: int = 0  # which of them this record describes (0-based)
    run_start_line: int = 1
    timestamped: bool = False  # lines carried a unix-timestamp prefix

    @property
    def is_training_log(self) -> bool:
        """True if the file shows a training or evaluation run (not a summary or a notes file)."""
        return bool(self.scores or self.step is not None or self.train_time_ms is not None
                    or self.artifact_bytes is not None or self.hyperparameters)

    @property
    def eval_only(self) -> bool:
        """An evaluation-only log (re-scoring a saved artifact): a score but no training."""
        return bool(self.scores) and self.train_time_ms is None and self.step is None

    def score_matching(self, bpb: float, tolerance: float = 5e-5) -> ScoreLine | None:
        """The last non-diagnostic score line whose val_bpb equals `bpb` within `tolerance`
        (e.g. to tell that a claim quotes the sliding line rather than the canonical TTT line)."""
        hits = [s for s in self.scores if s.rank > 0 and abs(s.val_bpb - bpb) <= tolerance]
        return hits[-1] if hits else None

    def config_for_comparison(self) -> dict[str, str]:
        """The hyperparameters minus keys that legitimately differ between seeds of one config."""
        return {k: v for k, v in self.hyperparameters.items() if not _per_run_key(k)}

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d.pop("embedded_source", None)
        d["has_embedded_source"] = self.embedded_source is not None
        d["scores"] = [s.to_dict() for s in self.scores]
        d["notes"] = list(self.notes)
        return d


# Keys of a hyperparameter dump that name the run rather than configure it.
_PER_RUN_KEYS = {"seed", "run_id", "logfile", "rank", "local_rank", "is_main_process", "artifact_dir",
                 "model_path", "quantized_model_path", "checkpoint_dir", "out_dir", "s"}


def _per_run_key(key: str) -> bool:
    return key in _PER_RUN_KEYS or key.endswith(("_path", "_dir", "_files"))


# -- patterns ----------------------------------------------------------------------------------
_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?nan|[-+]?inf"
_SEPARATOR = "=" * 100
_TIMESTAMP = re.compile(r"^\d{9,11}(?:\.\d+)?[ \t]")
_PY_BANNER = re.compile(r"^(?:Running )?(?:Python|PyTorch) \d")
_STEP = re.compile(r"^(?:step:\s*)?(\d+)/(\d+)\b")
_TRAIN_TIME_MS = re.compile(r"\b(?:train_time|t):\s*(" + _NUM + r")\s*ms\b")
_TRAIN_TIME_MIN = re.compile(r"\btrain_time:\s*(" + _NUM + r")\s*m\b")
_STOPPING = re.compile(r"^stopping_early:\s*(\S+)?(?:.*?\btrain_time:\s*(" + _NUM + r")\s*ms)?(?:.*?\bstep:\s*(\d+)/(\d+))?")
_LOSS_IN_LINE = re.compile(r"\bval_loss\s*[:=]\s*(" + _NUM + r")")
_BPB_IN_LINE = re.compile(r"\bval_bpb\s*[:=]\s*(" + _NUM + r")")
_EVAL_MS = re.compile(r"\b(?:eval_time|time):\s*(" + _NUM + r")\s*ms\b")
_ELAPSED_S = re.compile(r"\belapsed=\s*(" + _NUM + r")\s*s\b")
_LABEL_OK = re.compile(r"^[A-Za-z][\w.+\-:= /]*$")
_SEED_LINE = re.compile(r"^\s*seed\s*[:=]\s*(-?\d+)\s*$", re.IGNORECASE)
_SEED_TOKEN = re.compile(r"(?:^|\s)seed[:=](-?\d+)(?=\s|$)")
# Size lines may stand anywhere in a line: concatenated `grep` output puts "path:" or "path:123:"
# before each, and some drivers prefix a rank or a tag. What follows the phrase is still exact.
_SIZE_PREFIX = r"(?:^|(?<=[\s:|>\]\)]))"
_TOTAL_SIZE = re.compile(_SIZE_PREFIX + r"Total submission size(?:\s*([^:]*?))?\s*:\s*(\d+)\s*bytes")
_SERIALIZED = re.compile(_SIZE_PREFIX + r"Serialized model(?:\s*([^:]*?))?\s*:\s*(\d+)\s*bytes")
_MLX_SERIALIZED = re.compile(r"^serialized_model_(\w+):\s*(\d+)\s*bytes")
_CODE_SIZE = re.compile(r"^Code size(?:\s*\((\w+)\))?\s*:\s*(\d+)\s*bytes(?:\s*\((\w+) compressed; raw (\d+) bytes\))?")
_CODE_IN_SERIALIZED = re.compile(r"\bCode:\s*(\d+)\s*bytes")
_BUDGET = re.compile(r"^budget:\s*(\d+)/(\d+)")
_ARTIFACT_KV = re.compile(r"^\s*artifact_bytes\s*[:=]\s*(\d+)\s*$")
_ARTIFACT_CODE = re.compile(r"^artifact:.*\bcode:(\d+)")
_TOTAL_EVAL = re.compile(r"\btotal_eval_time:\s*(" + _NUM + r")\s*s\b")
_VAL_TOKENS = re.compile(r"^(?:val_loader:.*\btokens:\s*(\d+)|val_tokens:\s*(\d+))")
_TRAIN_SHARDS = re.compile(r"\btrain_shards:\s*(\d+)")
_MAX_WALLCLOCK = re.compile(r"\bmax_wallclock_seconds\s*[:=]\s*(" + _NUM + r")")
_ITERATIONS = re.compile(r"\biterations\s*[:=]\s*(\d+)")
_HP_HEADER = re.compile(r"^-*\s*Hyperparameters:?\s*-*$")
_HP_ITEM = re.compile(r"^\s+([A-Za-z_][\w.]*):\s?(.*)$")
_KV_COLON = re.compile(r"^[A-Za-z_][\w.]*:\S*$")
_KV_EQUALS = re.compile(r"^([A-Za-z_][\w.]*)=(\S*)$")
_GPTQ_RESERVE = re.compile(r"^gptq:reserving\s+(" + _NUM + r")\s*(ms|s)\b")
_HESSIANS = re.compile(r"^GPTQ:collected \d+ Hessians in\s+(" + _NUM + r")s")
_WALLCLOCK_KV = re.compile(r"^(serialize_wallclock|artifact_production_wallclock):\s*(" + _NUM + r")s")
# Timed phases after training that the reported score depends on and that the scoring pass's own
# timer does not include: pre-quantisation TTT, n-gram / PPM precompute, eval-time calibration of a
# knob (temperature), compilation for evaluation. Progress lines (per epoch, chunk, batch) are not
# phases; score lines carry their own eval_time.
_EVAL_PHASE = re.compile(
    r"^(?!.*\b(?:epoch|chunk|step)\b)"
    r"(?P<label>(?:prequant_ttt|pre_quant_ttt|\w*precompute\w*|\w+:precompute|temp_scaling|eval_compile\w*|"
    r"compile_eval\w*)(?::\w+)?)\b.*?"
    r"(?:\b(?:elapsed|total_time|time|eval_time)[=:]\s*|\bin\s+)(?P<value>" + _NUM + r")\s*(?P<unit>ms|s)\b")
_HESSIANS_ALT = re.compile(r"^gptq:hessians collected\b.*?\btime[=:]\s*(" + _NUM + r")\s*s\b")
_CALIBRATION_START = re.compile(r"^(?:GPTQ:collecting Hessians|gptq:(?:collecting|calibrat)|calibrat\w*:start)",
                                re.IGNORECASE)
_PEAK_MEM = re.compile(r"^peak memory allocated:\s*(\d+)\s*MiB")
_NAME_SEED = (
    re.compile(r"seed[_\-]?(\d{1,10})(?!\d)", re.IGNORECASE),
    re.compile(r"(?:^|[_\-])s(\d{1,10})$"),
)
_DIAGNOSTIC_WORDS = ("diagnostic", "pre-quant", "prequant", "pre_quant", "post_ema", "post-ema", "post_swa",
                     "post-swa", "pre_ttt", "pre-ttt", "best_averaging", "unquantized")
_ADAPT_WORDS = ("ttt", "slot", "ngram", "n-gram", "ppm", "etlb", "lora", "cache", "mixture", "tilt")
_ARTIFACT_WORDS = ("roundtrip", "quantized", "quant", "final", "int8", "int6", "int5", "int4", "ternary",
                   "binary", "xnor", "zlib", "lzma", "brotli", "zstd")


def score_rank(label: str) -> int:
    """Class of a score label (higher = more final); see the module docstring."""
    low = label.lower()
    if any(w in low for w in _DIAGNOSTIC_WORDS):
        return 0
    if any(w in low for w in _ADAPT_WORDS):
        return 5 if "phased" in low else 4
    if "sliding" in low or "stride" in low:
        return 3
    if any(w in low for w in _ARTIFACT_WORDS):
        return 2
    return 1


def seed_from_filename(path: str) -> int | None:
    """42 from train_seed42.log, train_seed_42.txt, log_10mins_seed-42.txt, seed_42.log, run_s42.txt."""
    stem = PurePosixPath(path).name
    stem = re.sub(r"\.(log|txt|out)$", "", stem, flags=re.IGNORECASE)
    for pat in _NAME_SEED:
        m = pat.search(stem)
        if m:
            return int(m.group(1))
    return None


# -- parsing -----------------------------------------------------------------------------------
def parse_log(path: str, text: str) -> SeedRun:
    """Parse one log. Never raises on bad input: unknown content yields empty fields.

    A file holding several runs yields the last run that reached a final score (with a note);
    `parse_log_runs` returns all of them.
    """
    runs, chosen = _analyse(path, text)
    return runs[chosen]


def parse_log_runs(path: str, text: str) -> list[SeedRun]:
    """Every run of one log file, in file order (one element for an ordinary log)."""
    runs, _ = _analyse(path, text)
    return runs


def _analyse(path: str, text: str) -> tuple[list[SeedRun], int]:
    try:
        if not isinstance(text, str):
            text = text.decode("utf-8", "replace") if isinstance(text, (bytes, bytearray)) else str(text)
        return _analyse_text(path, text)
    except Exception as exc:  # noqa: BLE001 - a parser bug must become a note, not a crash
        run = SeedRun(log_path=path, seed_from_name=_safe_seed_from_name(path))
        run.notes.append(f"parser error: {type(exc).__name__}: {exc}")
        return [run], 0


def _safe_seed_from_name(path: object) -> int | None:
    try:
        return seed_from_filename(str(path))
    except Exception:  # noqa: BLE001
        return None


def _analyse_text(path: str, text: str) -> tuple[list[SeedRun], int]:
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in text.split("\n")]
    lines, timestamped = _strip_timestamps(lines)
    sources = _embedded_sources(lines)
    in_source = bytearray(len(lines))  # 1 for lines that belong to an embedded source block
    for start, end, _ in sources:
        for i in range(start, end):
            in_source[i] = 1
    segments = _split_runs(lines, sources, in_source)
    parsed = [_parse_segment(lines, seg, in_source) for seg in segments]
    chosen = _choose_run(parsed)
    starts = [start for start, _, _ in sources]
    runs: list[SeedRun] = []
    for index, (seg, facts) in enumerate(zip(segments, parsed)):
        run = SeedRun(log_path=path, seed_from_name=seed_from_filename(path), timestamped=timestamped,
                      runs_in_log=len(segments), run_index=index, run_start_line=seg[0] + 1)
        facts.apply(run)
        if len(segments) > 1:
            run.notes.append(f"log holds {len(segments)} runs; this is run {index + 1} (from line {seg[0] + 1})"
                             + ("; the one reported by parse_log" if index == chosen else ""))
        _attach_source(run, lines, seg, sources, starts)
        if run.truncated and run.is_training_log:
            run.notes.append("no final score line: the log ends before the final evaluation")
        runs.append(run)
    return runs, chosen


def _attach_source(run: SeedRun, lines: list[str], seg: tuple[int, int],
                   sources: list[tuple[int, int, bool]], starts: list[int]) -> None:
    """The embedded source that belongs to this run (see the module docstring for exactness)."""
    k = bisect.bisect_left(starts, seg[0])
    if k < len(sources):
        start, end, heuristic = sources[k]
        if start < seg[1]:
            run.embedded_source = "\n".join(lines[start:end])
            run.embedded_source_line = start + 1
            if run.timestamped:
                run.notes.append("embedded source rebuilt from timestamp-prefixed lines")
            if heuristic:
                run.notes.append("embedded source of an appended run located heuristically")
            return


def _strip_timestamps(lines: list[str]) -> tuple[list[str], bool]:
    nonempty = [ln for ln in lines[:5000] if ln.strip()]
    if not nonempty:
        return lines, False
    hits = sum(1 for ln in nonempty if _TIMESTAMP.match(ln))
    if hits * 2 < len(nonempty):
        return lines, False
    return [_TIMESTAMP.sub("", ln, count=1) for ln in lines], True


def _embedded_sources(lines: list[str]) -> list[tuple[int, int, bool]]:
    """[start, end) line ranges of embedded script sources (end = index of the closing separator),
    with a flag telling whether the start was located heuristically (an appended run).

    The closing separator is a line of 100 '=' followed by the `Running Python` / `Python 3.x`
    banner. The source starts after the previous separator (04-10 `Source code:` frame), after a
    `Hyperparameters:` dump that directly precedes it (04-01), or at the start of the file. The
    separator that closes a banner (after nvidia-smi) never opens a source.
    """
    seps = [i for i, ln in enumerate(lines) if ln == _SEPARATOR]
    out: list[tuple[int, int, bool]] = []
    first_line: str | None = None
    prev_end = -1
    frames: list[int] = []  # separators since the previous closing one that may open a source
    banner_end: int | None = None  # the separator that closes the previous banner
    after_close = False
    for i in seps:
        nxt = next((lines[j] for j in range(i + 1, min(i + 4, len(lines))) if lines[j].strip()), "")
        if not _PY_BANNER.match(nxt):
            if after_close:
                banner_end, after_close = i, False
            else:
                frames.append(i)
            continue
        heuristic = False
        if frames:
            start = frames[-1] + 1
        elif prev_end < 0:
            start = 0
        else:  # appended run: the previous run's log lines precede this source
            lo = (banner_end if banner_end is not None and banner_end > prev_end else prev_end) + 1
            start = _find_source_start(lines, lo, i, first_line)
            heuristic = True
        if start < i and lines[start].strip().rstrip(":") == "Hyperparameters":
            start += 1
            while start < i and (lines[start].startswith((" ", "\t")) or not lines[start].strip()):
                start += 1
        prev_end, frames, after_close = i, [], True
        if start >= i:
            continue
        if first_line is None:
            first_line = lines[start]
        out.append((start, i, heuristic))
    return out


_MODULE_START = re.compile(r'^(?:"""|\'\'\'|[rRuU]?"|#|import\s|from\s+[\w.]+\s+import\s|def\s|class\s|@)')


def _find_source_start(lines: list[str], lo: int, hi: int, first_line: str | None) -> int:
    if first_line is not None:
        for j in range(lo, hi):
            if lines[j] == first_line:
                return j
    for j in range(lo, hi):
        if _MODULE_START.match(lines[j]):
            return j
    return hi


@dataclass
class _Segment:
    """Facts of one run inside a log (a file usually holds one)."""

    start: int = 0
    scores: list[ScoreLine] = field(default_factory=list)
    seeds: list[tuple[int, int]] = field(default_factory=list)  # (seed, line)
    artifact: tuple[int, int, str] | None = None  # bytes, line, label
    totals: list[tuple[int, int, str]] = field(default_factory=list)  # every labelled total, in order
    eval_phases: list[tuple[str, float, int]] = field(default_factory=list)  # label, seconds, line
    artifact_fallback: tuple[int, int, str] | None = None
    raw_total: int | None = None
    model: int | None = None
    model_label: str | None = None
    raw_model: int | None = None
    code: tuple[int, int] | None = None  # bytes, line
    code_compressed: int | None = None
    stop: tuple[str, float | None, int | None, int | None, int] | None = None  # reason, ms, step, N, line
    last_step: tuple[int, int, int] | None = None  # step, N, line
    last_ms: tuple[float, int] | None = None
    last_min: tuple[float, int] | None = None
    total_eval_s: float | None = None
    max_wallclock: float | None = None
    iterations: int | None = None
    val_tokens: int | None = None
    train_shards: int | None = None
    hparams: dict[str, str] = field(default_factory=dict)
    hparams_block: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    saw_int6: bool = False

    @property
    def has_content(self) -> bool:
        return bool(self.scores or self.last_step or self.stop or self.artifact)

    def apply(self, run: SeedRun) -> None:
        run.scores = list(self.scores)
        for s in self.scores:
            if s.eval_time_ms is not None:
                run.eval_times_ms[s.label] = s.eval_time_ms
        best = pick_canonical(self.scores)
        if best is not None:
            run.val_loss, run.val_bpb = best.val_loss, best.val_bpb
            run.score_label, run.score_line, run.eval_time_ms = best.label, best.line, best.eval_time_ms
            if run.eval_time_ms is None:  # "legal_ttt_exact" has no time; its "legal_ttt" twin does
                twins = [s for s in self.scores if _stem(s.label) == _stem(best.label) and s.eval_time_ms is not None]
                if twins:
                    run.eval_time_ms = twins[-1].eval_time_ms
        run.truncated = best is None
        if self.seeds:
            run.seed, run.seed_line = self.seeds[0][0], self.seeds[0][1]
            distinct = sorted({s for s, _ in self.seeds})
            if len(distinct) > 1:
                run.notes.append(f"several seeds printed in one run: {distinct}; using the first")
        if run.seed is not None and run.seed_from_name is not None and run.seed != run.seed_from_name:
            run.notes.append(f"seed {run.seed} in the log differs from seed {run.seed_from_name} in the file name")
        art = self.artifact or self.artifact_fallback
        if art is not None:
            run.artifact_bytes, run.artifact_line, run.artifact_label = art
        run.logged_totals = list(self.totals) or ([art] if art is not None else [])
        run.eval_phases = list(self.eval_phases)
        run.raw_total_bytes, run.model_bytes, run.raw_model_bytes = self.raw_total, self.model, self.raw_model
        if self.code is not None:
            run.code_bytes, run.code_line = self.code
        run.code_bytes_compressed = self.code_compressed
        if self.stop is not None:
            reason, ms, step, total, line = self.stop
            run.stop_reason = reason or "wallclock_cap"
            if ms is not None:
                run.train_time_ms, run.train_time_line = ms, line
            if step is not None:
                run.step, run.step_line = step, line
                run.iterations = total
        if run.train_time_ms is None and self.last_ms is not None:
            run.train_time_ms, run.train_time_line = self.last_ms
        if run.train_time_ms is None and self.last_min is not None:
            run.train_time_ms, run.train_time_line = self.last_min[0] * 60_000.0, self.last_min[1]
            run.notes.append("train time only printed in minutes (0.1 min precision)")
        if run.step is None and self.last_step is not None:
            run.step, run.iterations, run.step_line = self.last_step
        if self.iterations is not None:
            run.iterations = self.iterations if run.iterations is None else run.iterations
        if run.stop_reason is None and run.step is not None and run.iterations and run.step >= run.iterations:
            run.stop_reason = "iterations"
        run.total_eval_time_s = self.total_eval_s
        run.max_wallclock_seconds = self.max_wallclock
        run.val_tokens, run.train_shards = self.val_tokens, self.train_shards
        run.hyperparameters = dict(self.hparams)
        run.timings_s = dict(self.timings)
        run.family = ("hparams" if self.hparams_block else
                      "int6" if self.saw_int6 or any(s.rank >= 3 for s in self.scores) else
                      "baseline" if self.scores or self.last_step else "unknown")


def pick_canonical(scores: Iterable[ScoreLine]) -> ScoreLine | None:
    """The canonical score among a run's score lines (see the module docstring)."""
    best: ScoreLine | None = None
    for s in scores:
        if best is None or s.rank > best.rank:
            best = s
        elif s.rank == best.rank:
            same_stem = _stem(s.label) == _stem(best.label)
            if same_stem and s.digits < best.digits:
                continue  # keep the more precise line of the same label
            best = s
    return best


def _stem(label: str) -> str:
    """The label without its `_exact` marker: "legal_ttt_exact" -> "legal_ttt"."""
    return re.sub(r"[_ ]exact(?=$|\s)", "", label.strip())


def _split_runs(lines: list[str], sources: list[tuple[int, int, bool]], in_source: bytearray) -> list[tuple[int, int]]:
    """[start, end) line ranges of the runs in a file: a new run starts at a source block,
    a `Hyperparameters:` header or a `val_bpb:enabled` line once the current run has results."""
    markers: list[int] = [s for s, _, _ in sources]
    for i, ln in enumerate(lines):
        if in_source[i]:
            continue
        if _HP_HEADER.match(ln) or ln.startswith("val_bpb:enabled") or ln.startswith("val_bpb:byte_sidecar"):
            markers.append(i)
    markers = sorted(set(markers))
    if not markers:
        return [(0, len(lines))]
    bounds: list[int] = [0]
    content = False
    marker_set = set(markers)
    for i in range(len(lines)):
        if i in marker_set and content:
            bounds.append(i)
            content = False
        if not in_source[i] and _is_content(lines[i]):
            content = True
    return [(b, e) for b, e in zip(bounds, bounds[1:] + [len(lines)])]


def _is_content(line: str) -> bool:
    return bool(_STEP.match(line) or line.startswith(("stopping_early", "Total submission size", "final_"))
                or ("val_bpb" in line and "val_loss" in line and not line.startswith((" ", "\t"))))


def _choose_run(parsed: list[_Segment]) -> int:
    for idx in range(len(parsed) - 1, -1, -1):
        if parsed[idx].scores:
            return idx
    for idx in range(len(parsed) - 1, -1, -1):
        if parsed[idx].has_content:
            return idx
    return max(len(parsed) - 1, 0)


def _parse_segment(lines: list[str], seg: tuple[int, int], in_source: bytearray) -> _Segment:
    out = _Segment(start=seg[0])
    in_hp = False
    before_training = True
    for i in range(seg[0], seg[1]):
        if in_source[i]:
            continue
        raw = lines[i]
        line = raw.strip()
        if not line:
            continue
        n = i + 1
        # Hyperparameters dump: "Hyperparameters:" then indented "  key: value" lines.
        if _HP_HEADER.match(line):
            in_hp = True
            out.hparams_block = out.hparams_block or line.startswith("Hyperparameters")
            continue
        if in_hp:
            m = _HP_ITEM.match(raw)
            if m:
                key, value = m.group(1), m.group(2).strip()
                out.hparams[key] = value
                _hp_side_facts(out, key, value, n)
                continue
            in_hp = False
            if _is_kv_equals_line(line):
                _kv_equals(out, line, n)
                continue
        if raw.startswith((" ", "\t")) and not _ARTIFACT_KV.match(raw):
            continue  # code, tables, indented dumps: never a log event
        _parse_line(out, line, n, before_training)
        if before_training and (_STEP.match(line) or line.startswith(("warmup_step", "warmup:"))):
            before_training = False
    return out


def _hp_side_facts(out: _Segment, key: str, value: str, n: int) -> None:
    if key == "seed" and re.fullmatch(r"-?\d+", value):
        out.seeds.append((int(value), n))
    elif key == "max_wallclock_seconds":
        out.max_wallclock = _float(value)
    elif key == "iterations" and value.isdigit():
        out.iterations = int(value)


def _is_kv_equals_line(line: str) -> bool:
    tokens = line.split()
    return len(tokens) >= 3 and all(_KV_EQUALS.match(t) for t in tokens)


def _kv_equals(out: _Segment, line: str, n: int) -> None:
    for tok in line.split():
        m = _KV_EQUALS.match(tok)
        if m:
            out.hparams[m.group(1)] = m.group(2)
            _hp_side_facts(out, m.group(1), m.group(2), n)


def _parse_line(out: _Segment, line: str, n: int, before_training: bool) -> None:
    if "val_loss" in line and "val_bpb" in line:
        score = _score_line(line, n)
        if score is not None:
            out.scores.append(score)
            return
    m = _STEP.match(line)
    if m:
        out.last_step = (int(m.group(1)), int(m.group(2)), n)
        t = _TRAIN_TIME_MS.search(line)
        if t:
            out.last_ms = (float(t.group(1)), n)
        else:
            t = _TRAIN_TIME_MIN.search(line)
            if t:
                out.last_min = (float(t.group(1)), n)
        return
    if line.startswith("stopping_early"):
        m = _STOPPING.match(line)
        if m:
            reason = m.group(1).rstrip(":") if m.group(1) and "train_time" not in m.group(1) else "wallclock_cap"
            ms = float(m.group(2)) if m.group(2) else None
            step = int(m.group(3)) if m.group(3) else None
            total = int(m.group(4)) if m.group(4) else None
            out.stop = (reason, ms, step, total, n)
        return
    if _size_line(out, line, n):
        return
    if _seed_line(out, line, n):
        return
    _misc_line(out, line, n, before_training)


def _score_line(line: str, n: int) -> ScoreLine | None:
    if _STEP.match(line):
        return None
    cut = line.find("val_loss")
    bpb_m = _BPB_IN_LINE.search(line, cut)
    loss_m = _LOSS_IN_LINE.search(line)
    if cut <= 0 or bpb_m is None:
        return None
    tokens = line[:cut].split()
    while len(tokens) > 1 and (":" in tokens[-1] or "=" in tokens[-1]):
        tokens.pop()
    label = " ".join(tokens).rstrip(":,")
    if not label or not _LABEL_OK.match(label):
        return None
    bpb = _float(bpb_m.group(1))
    if bpb is None:
        return None
    eval_ms: float | None = None
    em = _EVAL_MS.search(line)
    if em:
        eval_ms = _float(em.group(1))
    else:
        es = _ELAPSED_S.search(line)
        if es:
            v = _float(es.group(1))
            eval_ms = v * 1000.0 if v is not None else None
    digits = len(bpb_m.group(1).split(".")[1]) if "." in bpb_m.group(1) else 0
    return ScoreLine(label=label, val_loss=_float(loss_m.group(1)) if loss_m else None, val_bpb=bpb, line=n,
                     eval_time_ms=eval_ms, rank=score_rank(label), digits=digits)


def _size_line(out: _Segment, line: str, n: int) -> bool:
    m = _TOTAL_SIZE.search(line) if "Total submission size" in line else None
    if m:
        label, value = (m.group(1) or "").strip(), int(m.group(2))
        if label:
            out.artifact = (value, n, label)
            out.totals.append((value, n, label))
            out.saw_int6 = out.saw_int6 or "int6" in label
        elif out.model_label is not None and out.artifact is None:
            # An unlabelled total printed after the quantised model line is the quantised total.
            out.artifact = (value, n, out.model_label)
            out.totals.append((value, n, out.model_label))
        else:
            out.raw_total = value
        return True
    m = _SERIALIZED.search(line) if "Serialized model" in line else None
    if m:
        label, value = (m.group(1) or "").strip(), int(m.group(2))
        if label:
            out.model = value
            out.model_label = label
        else:
            out.raw_model = value
            c = _CODE_IN_SERIALIZED.search(line)
            if c and out.code is None:
                out.code = (int(c.group(1)), n)
        return True
    m = _MLX_SERIALIZED.match(line)
    if m:
        out.model = int(m.group(2))
        return True
    m = _CODE_SIZE.match(line)
    if m:
        kind, value = m.group(1), int(m.group(2))
        if m.group(4):  # "Code size: N bytes (lzma compressed; raw M bytes)"
            out.code_compressed = value
            out.code = (int(m.group(4)), n)
        elif kind == "compressed":
            out.code_compressed = value
        else:
            out.code = (value, n)
        return True
    m = _BUDGET.match(line)
    if m:
        if out.artifact is None:
            out.artifact_fallback = (int(m.group(1)), n, "budget")
        return True
    m = _ARTIFACT_KV.match(line)
    if m:
        if out.artifact is None and out.artifact_fallback is None:
            out.artifact_fallback = (int(m.group(1)), n, "artifact_bytes")
        return True
    m = _ARTIFACT_CODE.match(line)
    if m:
        if out.code is None:
            out.code = (int(m.group(1)), n)
        return True
    return False


def _seed_line(out: _Segment, line: str, n: int) -> bool:
    m = _SEED_LINE.match(line)
    if m:
        out.seeds.append((int(m.group(1)), n))
        out.hparams.setdefault("seed", m.group(1))
        return True
    return False


def _misc_line(out: _Segment, line: str, n: int, before_training: bool) -> None:
    m = _TOTAL_EVAL.search(line)
    if m:
        out.total_eval_s = _float(m.group(1))
    m = _VAL_TOKENS.match(line)
    if m:
        out.val_tokens = int(m.group(1) or m.group(2))
    m = _TRAIN_SHARDS.search(line)
    if m and out.train_shards is None:
        out.train_shards = int(m.group(1))
    m = _GPTQ_RESERVE.match(line)
    if m:
        v = _float(m.group(1))
        if v is not None:
            out.timings["gptq_reserve"] = v / 1000.0 if m.group(2) == "ms" else v
    m = _HESSIANS.match(line) or _HESSIANS_ALT.match(line)
    if m:
        v = _float(m.group(1))
        if v is not None:
            out.timings["gptq_hessians"] = v
    if _CALIBRATION_START.match(line):
        out.timings.setdefault("calibration_started_line", float(n))
    m = _EVAL_PHASE.match(line)
    if m and "val_bpb" not in line:
        v = _float(m.group("value"))
        if v is not None:
            out.eval_phases.append((m.group("label"), v / 1000.0 if m.group("unit") == "ms" else v, n))
    m = _WALLCLOCK_KV.match(line)
    if m:
        v = _float(m.group(2))
        if v is not None:
            out.timings[m.group(1)] = v
    m = _PEAK_MEM.match(line)
    if m:
        out.timings["peak_memory_mib"] = float(m.group(1))
    if "int6" in line and line.startswith(("Serialized", "final_int6")):
        out.saw_int6 = True
    if _is_kv_equals_line(line):
        _kv_equals(out, line, n)
        return
    tokens = line.split()
    if before_training and tokens and all(_KV_COLON.match(t) for t in tokens) and not line.startswith("warmup"):
        for tok in tokens:
            key, _, value = tok.partition(":")
            out.hparams.setdefault(key, value)
            if key == "seed" and re.fullmatch(r"-?\d+", value):
                out.seeds.append((int(value), n))
    else:
        m = _SEED_TOKEN.search(line)
        if m and before_training:
            out.seeds.append((int(m.group(1)), n))
    m = _MAX_WALLCLOCK.search(line)
    if m and out.max_wallclock is None:
        out.max_wallclock = _float(m.group(1))
    m = _ITERATIONS.search(line)
    if m and out.iterations is None and before_training:
        out.iterations = int(m.group(1))


def _float(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value  # nan / inf are kept: a diverged run is a fact worth reporting


def compare_sources(embedded: str, shipped: str) -> str | None:
    """How the source embedded in a log relates to a shipped script.

    "exact" (same bytes, so same sha256), "trailing-newline" (differ only in final newlines: on
    the corpus this is a script edited after the run, e.g. a stripped final newline),
    "line-endings" (CRLF vs LF, the log being written in text mode), or None (different code).
    """
    if embedded == shipped:
        return "exact"
    if embedded.rstrip("\n") == shipped.rstrip("\n"):
        return "trailing-newline"
    if embedded.replace("\r\n", "\n") == shipped.replace("\r\n", "\n"):
        return "line-endings"
    return None


# -- submissions -------------------------------------------------------------------------------
def parse_submission_logs(sub: Submission) -> list[SeedRun]:
    """One SeedRun per training log of the submission (sorted by path).

    A file that holds several scored runs with distinct seeds (a multi-seed log) yields one
    SeedRun per run; appended reruns of one seed yield the last scored run. Files that are not
    training logs (summary files, notes) are skipped; a note on the first kept run names them.
    Rules call this through `ctx.memo("runs", lambda: parse_submission_logs(ctx.submission))`.
    """
    runs: list[SeedRun] = []
    skipped: list[str] = []
    for rel in sorted(sub.logs):
        tf = sub.logs[rel]
        if tf.text is None:
            skipped.append(f"{rel} (unreadable)")
            continue
        all_runs, chosen = _analyse(rel, tf.text)
        kept = [all_runs[chosen]]
        scored = [r for r in all_runs if r.val_bpb is not None]
        seeds = [r.seed for r in scored]
        if len(scored) > 1 and None not in seeds and len(set(seeds)) == len(seeds):
            kept = scored
        kept = [r for r in kept if r.is_training_log]
        if not kept:
            skipped.append(rel)
            continue
        for run in kept:
            if tf.lossy:
                run.notes.append("log is not valid UTF-8; read with replacement characters")
        runs.extend(kept)
    if skipped and runs:
        runs[0].notes.append("not training logs, skipped: " + ", ".join(skipped))
    return runs
