"""What one finished (or killed) run proves, measured from the files it left behind.

The produced log is parsed with the same parser as committed logs (audit.logs), so a re-run and
a claim are read the same way. The artifact is measured on disk, not taken from the log: the
compressed model file the run wrote plus the shipped script under both code conventions of
RULES.md R-ARTIFACT-CODE-COUNT (raw bytes; self-extracting wrapper or its compressed estimate).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from audit.codesize import code_sizes
from audit.harness.launch import RunOutcome
from audit.logs import SeedRun, parse_log

LOG_TAIL_LINES = 40
# Suffixes of a compressed model artifact across the records (REFERENCE.md 2.6); `.pt` is the raw
# state dict the baseline also writes, informational only.
MODEL_SUFFIXES = (".ptz", ".xz", ".lzma", ".br", ".brotli", ".zst", ".zstd", ".zlib", ".gz", ".bz2", ".bin", ".pkl")
NOT_MODEL_DIRS = ("logs/",)


@dataclass
class SeedResult:
    """Everything the harness knows about one seed's re-run (JSON-able via to_dict)."""

    seed: int
    run_id: str
    status: str  # ok | crashed | timeout | no-score | launch-error | sandbox-error | interrupted
    exit_code: int | None
    wall_s: float
    train_phase_wall_s: float | None  # launch -> end-of-training line (includes start-up)
    eval_phase_wall_s: float | None  # end-of-training line -> exit
    timed_out: str | None
    survivors: list[int]
    stragglers: list[int]
    log_file: str
    log_tail: list[str]
    parsed_log: str | None  # which produced log the numbers come from
    val_bpb: float | None = None
    val_loss: float | None = None
    score_label: str | None = None
    train_time_ms: float | None = None
    eval_time_ms: float | None = None
    total_eval_time_s: float | None = None
    log_artifact_bytes: int | None = None
    log_model_bytes: int | None = None
    log_code_bytes: int | None = None
    model_file: str | None = None
    model_file_bytes: int | None = None
    code_bytes_raw: int | None = None
    code_bytes_counted: int | None = None  # wrapper size, or the compressed estimate for readable code
    code_convention: str | None = None
    artifact_bytes_raw: int | None = None  # model file + raw code
    artifact_bytes_counted: int | None = None  # model file + counted code
    produced_files: dict[str, int] = field(default_factory=dict)
    outside_writes: list[str] = field(default_factory=list)
    network_cut: bool = False
    isolation_note: str = ""
    env_dropped: list[str] = field(default_factory=list)
    env_set: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    launch_error: str | None = None
    error_excerpt: list[str] = field(default_factory=list)  # the script's traceback, without torchrun's
    crash_reason: dict[str, Any] = field(default_factory=dict)  # exit code, signal, failed workers, last lines
    sandbox: dict[str, Any] = field(default_factory=dict)  # the in-sandbox proof (sandbox_init's report)
    env_refused: dict[str, str] = field(default_factory=dict)  # README/--env names refused, and why
    output_bytes: int = 0
    output_truncated: bool = False
    interrupted: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SeedResult:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def status_of(outcome: RunOutcome, run: SeedRun | None, sandbox_ok: bool = True) -> str:
    if outcome.launch_error:
        return "launch-error"
    if outcome.interrupted:
        return "interrupted"
    if not sandbox_ok:
        return "sandbox-error"
    if outcome.timed_out:
        return "timeout"
    if outcome.exit_code != 0:
        return "crashed"
    if run is None or run.val_bpb is None:
        return "no-score"
    return "ok"


def read_tail(path: Path, lines: int = LOG_TAIL_LINES, max_bytes: int = 64 * 1024) -> list[str]:
    try:
        with path.open("rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read()
    except OSError:
        return []
    return [ln.rstrip("\r") for ln in data.decode("utf-8", "replace").splitlines()[-lines:]]


# torchrun's agent reports a failed worker with its own traceback after the worker's one.
_TORCHRUN_FAILURE = re.compile(r"torch/distributed/elastic/multiprocessing/api\.py:\d+\] failed \(exitcode|"
                               r"torch\.distributed\.elastic\.multiprocessing\.errors\.ChildFailedError")
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt)\b")


def error_excerpt(path: Path, max_lines: int = 15) -> list[str]:
    """The submission's last traceback (or its last lines), cut before torchrun's failure report."""
    lines = read_tail(path, lines=400, max_bytes=256 * 1024)
    cut = next((i for i, ln in enumerate(lines) if _TORCHRUN_FAILURE.search(ln)), len(lines))
    own = lines[:cut]
    start = max((i for i, ln in enumerate(own) if ln.startswith("Traceback (most recent call last)")), default=None)
    if start is None:
        return [ln for ln in own if ln.strip()][-max_lines:]
    block = own[start:]
    end = next((i + 1 for i, ln in enumerate(block) if i and _EXCEPTION_LINE.match(ln)), len(block))
    block = block[:end]
    return block if len(block) <= max_lines else block[:3] + ["..."] + block[-(max_lines - 4):]


_WORKER_FIELD = re.compile(r"^\s*(rank|exitcode|traceback)\s*:\s*(.*)$")
_SIGNAL_TEXT = re.compile(r"Signal (\d+) \((SIG\w+)\)")


def crash_reason(exit_code: int | None, path: Path, last: int = 12) -> dict[str, Any]:
    """Why a run ended badly: its exit status or signal, the workers torchrun reports, the last lines."""
    import signal as _signal

    reason: dict[str, Any] = {"exit_code": exit_code, "signal": None, "workers": [], "last_lines": []}
    if exit_code is not None and exit_code < 0:
        try:
            reason["signal"] = _signal.Signals(-exit_code).name
        except ValueError:
            reason["signal"] = f"signal {-exit_code}"
    lines = read_tail(path, lines=400, max_bytes=256 * 1024)
    worker: dict[str, Any] = {}
    for ln in lines:
        m = _WORKER_FIELD.match(ln)
        if not m:
            continue
        key, value = m.group(1), m.group(2).strip()
        if key == "rank":
            worker = {"rank": value.split()[0] if value else value}
            reason["workers"].append(worker)
        elif key == "exitcode" and worker:
            code = value.split()[0]
            worker["exitcode"] = int(code) if code.lstrip("-").isdigit() else code
            if isinstance(worker["exitcode"], int) and worker["exitcode"] < 0:
                try:
                    worker["signal"] = _signal.Signals(-worker["exitcode"]).name
                except ValueError:
                    pass
        elif key == "traceback" and worker:
            sig = _SIGNAL_TEXT.search(value)
            if sig:
                worker["signal"] = sig.group(2)
    reason["last_lines"] = [ln for ln in lines if ln.strip()][-last:]
    return reason


def describe_crash(reason: dict[str, Any]) -> str:
    """One line: 'exit status 1; worker rank 1 exitcode -9 (SIGKILL)'."""
    parts = []
    if reason.get("signal"):
        parts.append(f"killed by {reason['signal']}")
    elif reason.get("exit_code") is not None:
        parts.append(f"exit status {reason['exit_code']}")
    for w in reason.get("workers", [])[:4]:
        parts.append(f"worker rank {w.get('rank')} exitcode {w.get('exitcode')}"
                     + (f" ({w['signal']})" if w.get("signal") else ""))
    return "; ".join(parts) or "no exit status"


_READ_ONLY = re.compile(r"Read-only file system(?::\s*'([^']+)')?")


def refused_writes(path: Path, limit: int = 20) -> list[str]:
    """Paths the run tried to write outside its writable folders (the sandbox's read-only view refused)."""
    found: list[str] = []
    for ln in read_tail(path, lines=2000, max_bytes=1 << 20):
        m = _READ_ONLY.search(ln)
        if m:
            target = m.group(1) or ln.strip()[:200]
            if target not in found:
                found.append(target)
    return [f"refused (read-only): {t}" for t in found[:limit]]


def parse_produced_logs(captured: Path, workdir: Path, run_id: str) -> tuple[SeedRun | None, str | None]:
    """Parse the captured stdout; fall back to the script's own `logs/<RUN_ID>.txt` when the
    capture holds no score line (some scripts only print the log path on stdout)."""
    candidates = [captured, workdir / "logs" / f"{run_id}.txt"]
    first: tuple[SeedRun | None, str | None] = (None, None)
    for path in candidates:
        if not path.is_file():
            continue
        if path != captured and not _regular_inside(path, workdir):
            continue  # a link the run made to something of the host's: never read it
        text = _bounded_text(path)
        run = parse_log(path.name if path == captured else f"logs/{run_id}.txt", text)
        if first[0] is None:
            first = (run, str(path))
        if run.val_bpb is not None:
            return run, str(path)
    return first


def _regular_inside(path: Path, root: Path) -> bool:
    """A regular file that really is under root (no symlink anywhere leading out)."""
    try:
        path.resolve().relative_to(root.resolve())
    except (OSError, ValueError):
        return False
    return not path.is_symlink() and path.is_file()


MAX_LOG_READ = 64 * 1024 * 1024  # real logs are a few MB; a flood is read head + tail


def _bounded_text(path: Path) -> str:
    size = path.stat().st_size
    with path.open("rb") as fh:
        if size <= MAX_LOG_READ:
            data = fh.read()
        else:
            head = fh.read(MAX_LOG_READ // 4)
            fh.seek(size - 3 * MAX_LOG_READ // 4)
            data = head + b"\n" + fh.read()
    return data.decode("utf-8", "replace")


def produced_files(before: dict[str, tuple[int, str]], after: dict[str, tuple[int, str]]) -> dict[str, int]:
    """Files the run created or changed in its working copy -> size in bytes."""
    return {rel: size for rel, (size, digest) in sorted(after.items()) if before.get(rel, (None, None))[1] != digest}


def pick_model_file(produced: dict[str, int], log_model_bytes: int | None) -> tuple[str | None, str]:
    """The compressed model artifact among the produced files, and how it was chosen."""
    pool = {rel: size for rel, size in produced.items() if not rel.startswith(NOT_MODEL_DIRS)}
    if log_model_bytes is not None:
        exact = [rel for rel, size in pool.items() if size == log_model_bytes]
        if len(exact) == 1:
            return exact[0], "the produced file whose size the log reports as the serialized model"
    by_suffix = [rel for rel in pool if PurePosixPath(rel).name.lower().endswith(MODEL_SUFFIXES)]
    if len(by_suffix) == 1:
        return by_suffix[0], "the only produced file with a compressed-model suffix"
    if by_suffix:
        best = max(by_suffix, key=lambda r: pool[r])
        return best, f"the largest of {len(by_suffix)} produced files with a compressed-model suffix"
    return None, "no produced file looks like a compressed model (" + ", ".join(MODEL_SUFFIXES) + ")"


def fill_measurements(result: SeedResult, run: SeedRun | None, produced: dict[str, int], script_source: str | None) -> None:
    """Copy the log's numbers into the result and measure the artifact on disk."""
    if run is not None:
        result.val_bpb, result.val_loss, result.score_label = run.val_bpb, run.val_loss, run.score_label
        result.train_time_ms, result.eval_time_ms = run.train_time_ms, run.eval_time_ms
        result.total_eval_time_s = run.total_eval_time_s
        result.log_artifact_bytes, result.log_model_bytes = run.artifact_bytes, run.model_bytes
        result.log_code_bytes = run.code_bytes
    result.produced_files = produced
    model, why = pick_model_file(produced, result.log_model_bytes)
    result.notes.append(f"model file: {model or 'none'} ({why})")
    if model is not None:
        result.model_file, result.model_file_bytes = model, produced[model]
    if script_source is not None:
        sizes = code_sizes(script_source)
        result.code_bytes_raw = sizes.raw
        result.code_bytes_counted = sizes.compressed_estimate if sizes.compressed_estimate is not None else sizes.raw
        result.code_convention = ("self-extracting wrapper (file size)" if sizes.wrapper
                                  else f"minified + {sizes.estimate_codec or 'compressed'} wrapper estimate")
    if result.model_file_bytes is not None and result.code_bytes_raw is not None:
        result.artifact_bytes_raw = result.model_file_bytes + result.code_bytes_raw
        if result.code_bytes_counted is not None:
            result.artifact_bytes_counted = result.model_file_bytes + result.code_bytes_counted
