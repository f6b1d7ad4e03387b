"""Run one command in its own process group, capture its output (capped), enforce the deadlines.

The output comes through a pipe that only we read, and we write the log file: the run never holds
a descriptor of anything in the results folder, and a flood is throttled by our reading and
capped (`max_output` bytes, the head and the tail kept, the middle dropped and counted). We
never wait for the pipe to close: a run that leaves orphans holding its stdout cannot block us.
Two deadlines apply: the training phase may last `train_deadline_s` from launch (the train limit
plus an allowance for start-up and compilation, which the rule does not count); the whole run may
last `total_deadline_s`. The training phase ends at the first line that only comes after training
(stopping_early, serialisation, a final score). On a deadline, SIGTERM goes to the group and to
every descendant seen, then SIGKILL after a grace period, and we check that nothing is left.
"""

from __future__ import annotations

import os
import re
import select
import subprocess
import time
from collections import deque
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
END_OF_TRAINING_BYTES = re.compile(END_OF_TRAINING.pattern.encode(), re.MULTILINE)
READ_CHUNK = 1 << 20
READS_PER_POLL = 64  # a flood cannot keep us from checking the deadlines
STEP = re.compile(_PREFIX + r"(?:step:)?(\d+)/(\d+)\s+(train_loss|val_loss)")
DEFAULT_MAX_OUTPUT = 200 * 1000 * 1000  # bytes of output kept per seed; real logs are a few MB


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
    output_bytes: int = 0  # everything the run printed
    output_truncated: bool = False  # more than max_output: the middle of the log was dropped
    interrupted: str | None = None  # the signal that stopped the harness during this run


class CappedLog:
    """The log file: the first half of the cap as it comes, the last half when the run ends."""

    def __init__(self, path: Path, cap: int) -> None:
        self.fh = path.open("wb")
        self.head_cap = cap // 2
        self.tail_cap = cap - self.head_cap
        self.head = 0
        self.total = 0
        self.tail: deque[bytes] = deque()
        self.tail_len = 0

    @property
    def in_head(self) -> bool:
        return self.total <= self.head_cap

    @property
    def truncated(self) -> bool:
        return self.total > self.head_cap + self.tail_cap

    def write(self, data: bytes) -> None:
        self.total += len(data)
        room = self.head_cap - self.head
        if room > 0:
            self.fh.write(data[:room])
            self.head += min(room, len(data))
            data = data[room:]
        if data:
            self.tail.append(data)
            self.tail_len += len(data)
            while self.tail and self.tail_len - len(self.tail[0]) >= self.tail_cap:
                self.tail_len -= len(self.tail.popleft())

    def close(self) -> None:
        tail = b"".join(self.tail)
        if self.truncated:
            tail = tail[-self.tail_cap:]
            dropped = self.total - self.head - len(tail)
            self.fh.write(f"\n[pgolf-audit: {dropped} bytes of output dropped here; the run printed {self.total} "
                          f"bytes, over the {self.head_cap + self.tail_cap}-byte cap]\n".encode())
        self.fh.write(tail)
        self.fh.close()


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

    def skim(self, chunk: bytes, elapsed: float) -> None:
        """A flood's chunk: one regex over the bytes instead of a Python loop over its lines."""
        if self.train_end_s is None and END_OF_TRAINING_BYTES.search(chunk):
            self.train_end_s = elapsed
        last = chunk.rstrip(b"\n").rsplit(b"\n", 1)[-1][-200:]
        if last.strip():
            self.last_line = last.decode("utf-8", "replace").strip()

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
    max_output: int = DEFAULT_MAX_OUTPUT,
    pass_fds: tuple[int, ...] = (),
) -> RunOutcome:
    """Run argv to completion or deadline; never raises for anything the child does.

    Anything raised while the run is alive (Ctrl-C, a signal turned into an exception, a bug of
    ours) first kills the run; the partial outcome rides on the exception as `.outcome`.
    """
    tracker = PhaseTracker()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    capture = CappedLog(log_path, max_output)
    before = procs.children(os.getpid())  # not ours to track: whatever this process started earlier
    was_reaper = procs.set_subreaper(True)
    read_fd, write_fd = os.pipe()
    start = time.monotonic()
    try:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=write_fd, stderr=write_fd,
                                stdin=subprocess.DEVNULL, start_new_session=True, pass_fds=pass_fds)
    except OSError as exc:
        os.close(read_fd)
        capture.close()
        procs.set_subreaper(was_reaper)
        return RunOutcome(None, 0.0, None, launch_error=f"{type(exc).__name__}: {exc}")
    finally:
        for fd in (write_fd, *pass_fds):  # handed over: only the child may hold them now
            os.close(fd)
    os.set_blocking(read_fd, False)
    pgid = proc.pid  # start_new_session: the child leads a new session and group
    seen: set[procs.Ident] = set()
    pending = [b""]

    def scan() -> set[procs.Ident]:
        found = procs.descendants(os.getpid(), before)
        procs.reap(found, keep=proc.pid)
        return found

    def outcome(timed_out: str | None, wall: float, stragglers: list[int], interrupted: str | None = None
                ) -> RunOutcome:
        return RunOutcome(
            exit_code=proc.returncode, wall_s=wall, train_end_s=tracker.train_end_s, timed_out=timed_out,
            pids_seen=sorted({proc.pid} | {p[0] for p in seen}), survivors=_survivors(pgid, seen),
            stragglers=stragglers, output_bytes=capture.total, output_truncated=capture.truncated,
            interrupted=interrupted)

    try:
        try:
            timed_out, wall = _follow(proc, pgid, seen, scan, tracker, read_fd, capture, pending, deadlines,
                                      on_tick, poll_s, start)
        except BaseException as exc:  # Ctrl-C, a signal, or a bug of ours: never leave the run behind
            seen |= scan()
            _terminate(proc, pgid, seen, deadlines.grace_s, scan)
            _drain(read_fd, capture, tracker, pending, time.monotonic() - start, 0.5)
            exc.outcome = outcome(None, time.monotonic() - start, [],  # type: ignore[attr-defined]
                                  interrupted=getattr(exc, "signal_name", type(exc).__name__))
            raise
        stragglers: list[int] = []
        seen |= scan()
        if not timed_out:
            left = {p for p in seen if procs.alive(p)}
            if left or procs.group_alive(pgid):
                stragglers = sorted(p[0] for p in left)
                _terminate(proc, pgid, seen, deadlines.grace_s, scan)
        _drain(read_fd, capture, tracker, pending, wall, 2.0)
        return outcome(timed_out, wall, stragglers)
    finally:
        os.close(read_fd)
        capture.close()
        procs.reap(procs.descendants(os.getpid(), before), keep=proc.pid)
        procs.set_subreaper(was_reaper)


def _consume(chunk: bytes, capture: CappedLog, tracker: PhaseTracker, pending: list[bytes], elapsed: float) -> None:
    if capture.in_head:
        data = pending[0] + chunk
        *lines, pending[0] = data.split(b"\n")
        for raw in lines:
            tracker.feed(raw.decode("utf-8", "replace"), elapsed)
        if len(pending[0]) > READ_CHUNK:  # one endless line
            tracker.skim(pending[0], elapsed)
            pending[0] = b""
    else:
        pending[0] = b""
        tracker.skim(chunk, elapsed)
    capture.write(chunk)


def _read_available(fd: int, capture: CappedLog, tracker: PhaseTracker, pending: list[bytes], elapsed: float,
                    max_reads: int) -> bool:
    """Read what is there (at most max_reads chunks); False once the pipe is closed on every end."""
    for _ in range(max_reads):
        try:
            chunk = os.read(fd, READ_CHUNK)
        except BlockingIOError:
            return True
        if not chunk:
            return False
        _consume(chunk, capture, tracker, pending, elapsed)
    return True


def _drain(fd: int, capture: CappedLog, tracker: PhaseTracker, pending: list[bytes], elapsed: float,
           limit_s: float) -> None:
    """What the run printed before it ended; orphans holding the pipe cannot make us wait past limit_s."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready and not _read_available(fd, capture, tracker, pending, elapsed, READS_PER_POLL):
            break
        if not ready:
            break
    if pending[0]:
        tracker.feed(pending[0].decode("utf-8", "replace"), elapsed)
        pending[0] = b""
    capture.fh.flush()


def _follow(proc: subprocess.Popen, pgid: int, seen: set[procs.Ident], scan: Callable[[], set[procs.Ident]],
            tracker: PhaseTracker, fd: int, capture: CappedLog, pending: list[bytes], deadlines: Deadlines,
            on_tick: Callable[[Tick], None] | None, poll_s: float, start: float) -> tuple[str | None, float]:
    """Follow the output until exit or a deadline (then kill); returns (which deadline, wall time)."""
    timed_out: str | None = None
    last_scan = 0.0
    open_pipe = True
    while True:
        elapsed = time.monotonic() - start
        if open_pipe:
            ready, _, _ = select.select([fd], [], [], poll_s)
            if ready:
                open_pipe = _read_available(fd, capture, tracker, pending, elapsed, READS_PER_POLL)
                capture.fh.flush()
        else:
            time.sleep(poll_s)
        elapsed = time.monotonic() - start
        if elapsed - last_scan >= 1.0:
            seen |= scan()
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
            seen |= scan()
            _terminate(proc, pgid, seen, deadlines.grace_s, scan)
            break
    return timed_out, time.monotonic() - start


def _terminate(proc: subprocess.Popen, pgid: int, seen: set[procs.Ident], grace_s: float,
               scan: Callable[[], set[procs.Ident]]) -> None:
    """SIGTERM everything, wait up to grace_s, SIGKILL what is left, reap the launcher."""
    procs.signal_all(pgid, seen, procs.TERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        seen |= scan()
        if proc.poll() is not None and not any(procs.alive(p) for p in seen) and not procs.group_alive(pgid):
            break
        time.sleep(0.1)
    seen |= scan()
    procs.signal_all(pgid, seen, procs.KILL)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:  # pragma: no cover - a process that survives SIGKILL
        pass
    seen |= scan()


def _survivors(pgid: int, seen: set[procs.Ident], settle_s: float = 5.0) -> list[int]:
    """Processes of the run still alive; killed processes may take a moment to disappear."""
    deadline = time.monotonic() + settle_s
    while True:
        left = sorted(p[0] for p in seen if procs.alive(p))
        group = procs.group_alive(pgid)
        if (not left and not group) or time.monotonic() > deadline:
            return left + ([pgid] if group and pgid not in left else [])
        time.sleep(0.1)
