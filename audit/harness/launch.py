"""Run one command in its own process group, stream its output to a file, enforce the deadlines.

The output goes straight to the log file (not through a pipe we must drain), and we follow the
file: a run that leaves orphans holding its stdout cannot block us, and the log on disk is
complete even if the harness itself is killed. Two deadlines apply: the training phase may last
`train_deadline_s` from launch (the train limit plus an allowance for start-up and compilation,
which the rule does not count); the whole run may last `total_deadline_s`. The training phase
ends at the first line that only comes after training (stopping_early, serialisation, a final
score). On a deadline, SIGTERM goes to the group and to every descendant seen, then SIGKILL after
a grace period, and we check that nothing is left.
"""

from __future__ import annotations

import re
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from audit.harness import procs

# Lines printed only after the training loop has finished, in every log family (REFERENCE.md 2.3).
_PREFIX = r"^(?:\[(?:rank|default)\d+\]:\s*)?(?:\d{9,}\.\d+\s+)?"
END_OF_TRAINING = re.compile(
    _PREFIX + r"(?:stopping_early|peak memory|Serialized model|Total submission size|final_\w+ |"
    r"pre-quantization|diagnostic |quantized\w* val_|legal_ttt|ttt_sliding:start|beginning TTT)"
)
READ_CHUNK = 1 << 20  # per poll: a script that floods its output cannot make us read gigabytes at once
STEP = re.compile(_PREFIX + r"(?:step:)?(\d+)/(\d+)\s+(train_loss|val_loss)")


@dataclass(frozen=True)
class Deadlines:
    train_s: float  # seconds from launch until the end-of-training marker must have appeared
    total_s: float  # seconds from launch until exit
    grace_s: float = 10.0  # between SIGTERM and SIGKILL


@dataclass
class Tick:
    """What the progress display shows, once per poll."""

    elapsed_s: float
    phase: str  # "train" | "eval"
    step: str | None
    last_line: str


@dataclass
class RunOutcome:
    exit_code: int | None  # negative = killed by that signal; None = could not launch
    wall_s: float
    train_end_s: float | None  # seconds from launch to the end-of-training marker
    timed_out: str | None = None  # killed by a deadline: "train" (training unfinished) | "total"
    pids_seen: list[int] = field(default_factory=list)
    survivors: list[int] = field(default_factory=list)  # processes still alive after our kill
    stragglers: list[int] = field(default_factory=list)  # left running after a normal exit; killed
    launch_error: str | None = None


class PhaseTracker:
    """Follows the streamed lines: which phase the run is in, and its latest step."""

    def __init__(self) -> None:
        self.train_end_s: float | None = None
        self.step: str | None = None
        self.last_line = ""

    def feed(self, line: str, elapsed: float) -> None:
        text = line.strip()
        if not text:
            return
        self.last_line = text
        m = STEP.match(text)
        if m:
            self.step = f"{m.group(1)}/{m.group(2)}"
            if m.group(3) == "val_loss" and m.group(1) == m.group(2) and self.train_end_s is None:
                self.train_end_s = elapsed
        if self.train_end_s is None and END_OF_TRAINING.match(text):
            self.train_end_s = elapsed

    @property
    def phase(self) -> str:
        return "train" if self.train_end_s is None else "eval"


def run_group(
    argv: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    log_path: Path,
    deadlines: Deadlines,
    on_tick: Callable[[Tick], None] | None = None,
    poll_s: float = 0.2,
) -> RunOutcome:
    """Run argv to completion or deadline; never raises for anything the child does."""
    tracker = PhaseTracker()
    marker = uuid.uuid4().hex
    env = {**env, procs.MARKER_VAR: marker}
    seen: set[procs.Ident] = set()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with log_path.open("wb") as out:
        try:
            proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        except OSError as exc:
            return RunOutcome(None, 0.0, None, launch_error=f"{type(exc).__name__}: {exc}")
    pgid = proc.pid  # start_new_session: the child leads a new session and group
    try:
        timed_out, wall = _follow(proc, pgid, marker, seen, tracker, log_path, deadlines, on_tick, poll_s, start)
    except BaseException:  # Ctrl-C or a bug of ours: never leave the run behind
        seen |= _scan(proc, marker)
        _terminate(proc, pgid, seen, deadlines.grace_s, marker)
        raise
    stragglers: list[int] = []
    seen |= _scan(proc, marker)
    if not timed_out:
        left = {p for p in seen if procs.alive(p)}
        if left or procs.group_alive(pgid):
            stragglers = sorted(p[0] for p in left)
            _terminate(proc, pgid, seen, deadlines.grace_s, marker)
    survivors = _survivors(pgid, seen)
    return RunOutcome(
        exit_code=proc.returncode,
        wall_s=wall,
        train_end_s=tracker.train_end_s,
        timed_out=timed_out,
        pids_seen=sorted({proc.pid} | {p[0] for p in seen}),
        survivors=survivors,
        stragglers=stragglers,
    )


def _follow(proc: subprocess.Popen, pgid: int, marker: str, seen: set[procs.Ident], tracker: PhaseTracker,
            log_path: Path, deadlines: Deadlines, on_tick: Callable[[Tick], None] | None, poll_s: float,
            start: float) -> tuple[str | None, float]:
    """Follow the log until exit or a deadline (then kill); returns (which deadline, wall time)."""
    timed_out: str | None = None
    last_scan = 0.0
    with log_path.open("rb") as follow:
        pending = b""
        while True:
            elapsed = time.monotonic() - start
            chunk = follow.read(READ_CHUNK)
            if chunk:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for raw in lines:
                    tracker.feed(raw.decode("utf-8", "replace"), elapsed)
            if elapsed - last_scan >= 1.0:
                seen |= _scan(proc, marker)
                last_scan = elapsed
            if on_tick is not None:
                on_tick(Tick(elapsed, tracker.phase, tracker.step, tracker.last_line))
            if proc.poll() is not None:
                break
            if tracker.train_end_s is None and elapsed > deadlines.train_s:
                timed_out = "train"
            elif elapsed > deadlines.total_s:  # named after the phase it interrupted
                timed_out = "train" if tracker.train_end_s is None else "total"
            if timed_out:
                seen |= _scan(proc, marker)
                _terminate(proc, pgid, seen, deadlines.grace_s, marker)
                break
            time.sleep(poll_s)
        wall = time.monotonic() - start
        follow.seek(max(follow.tell(), log_path.stat().st_size - READ_CHUNK))  # a flood is not re-read
        tail = follow.read()
        if tail or pending:
            for raw in (pending + tail).split(b"\n"):
                tracker.feed(raw.decode("utf-8", "replace"), wall)
    return timed_out, wall


def _scan(proc: subprocess.Popen, marker: str) -> set[procs.Ident]:
    """The run's processes: the launcher's tree while its pid is still ours, plus marked ones.

    Once the launcher has been reaped its pid may be recycled, so only the marker is trusted.
    """
    return procs.descendants(proc.pid if proc.returncode is None else None, marker)


def _terminate(proc: subprocess.Popen, pgid: int, seen: set[procs.Ident], grace_s: float, marker: str) -> None:
    """SIGTERM everything, wait up to grace_s, SIGKILL what is left, reap the launcher."""
    procs.signal_all(pgid, seen, procs.TERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if proc.poll() is not None and not any(procs.alive(p) for p in seen) and not procs.group_alive(pgid):
            break
        time.sleep(0.1)
    seen |= _scan(proc, marker)
    procs.signal_all(pgid, seen, procs.KILL)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:  # pragma: no cover - a process that survives SIGKILL
        pass


def _survivors(pgid: int, seen: set[procs.Ident], settle_s: float = 5.0) -> list[int]:
    """Processes of the run still alive; killed processes may take a moment to disappear."""
    deadline = time.monotonic() + settle_s
    while True:
        left = sorted(p[0] for p in seen if procs.alive(p))
        group = procs.group_alive(pgid)
        if (not left and not group) or time.monotonic() > deadline:
            return left + ([pgid] if group and pgid not in left else [])
        time.sleep(0.1)
