"""Finding, signalling and checking every process of a run (Linux /proc).

torchrun starts each worker in a session of its own, so killing the launcher's process group
does not reach the workers. Without a PID namespace, the only way to be sure nothing survives is
to remember every descendant seen while the run was alive and signal each one. A process that
double-forks is re-parented away from our tree, so the run's environment also carries a unique
marker variable, inherited by everything it starts: a process carrying it is ours wherever it
sits. A process is identified by (pid, start time), so a recycled pid is never mistaken for ours.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

Ident = tuple[int, int]  # (pid, start time in clock ticks since boot)


def _stat(pid: int) -> tuple[int, int, str] | None:
    """(ppid, start time, state) of a live process, or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    # The command name is in parentheses and may itself contain ') ': split after the last one.
    fields = raw[raw.rfind(")") + 2:].split()
    try:
        return int(fields[1]), int(fields[19]), fields[0]
    except (IndexError, ValueError):
        return None


MARKER_VAR = "PGOLF_RERUN_MARKER"


def descendants(root: int | None, marker: str | None = None) -> set[Ident]:
    """Every live descendant of `root` (not root itself), plus every process carrying `marker`."""
    children: dict[int, list[int]] = {}
    starts: dict[int, int] = {}
    out: set[Ident] = set()
    needle = f"{MARKER_VAR}={marker}".encode() if marker else None
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        st = _stat(int(entry))
        if st is None:
            continue
        children.setdefault(st[0], []).append(int(entry))
        starts[int(entry)] = st[1]
        if needle is not None and int(entry) != root and _has_marker(int(entry), needle):
            out.add((int(entry), st[1]))
    stack = [root] if root is not None else []
    while stack:
        for child in children.get(stack.pop(), []):
            if child in starts and (child, starts[child]) not in out:
                out.add((child, starts[child]))
                stack.append(child)
    return out


def _has_marker(pid: int, needle: bytes) -> bool:
    try:
        return needle in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


def ident(pid: int) -> Ident | None:
    st = _stat(pid)
    return (pid, st[1]) if st is not None else None


def alive(proc: Ident) -> bool:
    """Still running (a zombie is dead: it holds no resources and runs no code)."""
    st = _stat(proc[0])
    return st is not None and st[1] == proc[1] and st[2] != "Z"


def group_alive(pgid: int) -> bool:
    """Whether any non-zombie process is left in the process group."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            in_group = os.getpgid(int(entry)) == pgid
        except OSError:
            continue
        st = _stat(int(entry))
        if in_group and st is not None and st[2] != "Z":
            return True
    return False


def signal_all(pgid: int, procs: set[Ident], sig: int) -> None:
    """Send `sig` to the group and to every remembered process that is still the same process."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
    for p in procs:
        if alive(p):
            try:
                os.kill(p[0], sig)
            except (ProcessLookupError, PermissionError):
                pass


TERM, KILL = signal.SIGTERM, signal.SIGKILL
