"""Finding, signalling and checking every process of a run (Linux /proc).

torchrun starts each worker in a session of its own, so killing the launcher's process group
does not reach the workers. Without a PID namespace, the only way to be sure nothing survives is
to remember every descendant seen while the run was alive and signal each one. A process that
double-forks would be re-parented to init, out of our tree; the harness therefore makes itself a
child subreaper while a run is alive (prctl PR_SET_CHILD_SUBREAPER), so such orphans are
re-parented to the harness and stay in the tree whatever they do to their session, process group
or environment (no marker in the environment is trusted). A process is identified by (pid, start
time), so a recycled pid is never mistaken for ours.
"""

from __future__ import annotations

import ctypes
import os
import signal
from pathlib import Path

PR_SET_CHILD_SUBREAPER, PR_GET_CHILD_SUBREAPER = 36, 37
_libc = ctypes.CDLL(None, use_errno=True)

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


def set_subreaper(on: bool) -> bool:
    """Make this process the reaper of its orphaned descendants; returns the previous setting."""
    prev = ctypes.c_int(0)
    _libc.prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(prev), 0, 0, 0)
    _libc.prctl(PR_SET_CHILD_SUBREAPER, 1 if on else 0, 0, 0, 0)
    return bool(prev.value)


def children(pid: int) -> set[Ident]:
    """The direct children of pid."""
    out: set[Ident] = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st is not None and st[0] == pid:
                out.add((int(entry), st[1]))
    return out


def descendants(root: int, exclude: set[Ident] | frozenset[Ident] = frozenset()) -> set[Ident]:
    """Every live descendant of `root` (not root itself), leaving out `exclude` and their subtrees."""
    kids: dict[int, list[Ident]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        st = _stat(int(entry))
        if st is not None:
            kids.setdefault(st[0], []).append((int(entry), st[1]))
    out: set[Ident] = set()
    stack = [root]
    while stack:
        for child in kids.get(stack.pop(), []):
            if child not in out and child not in exclude:
                out.add(child)
                stack.append(child[0])
    return out


def reap(pids: set[Ident], keep: int) -> None:
    """Collect the exit status of orphans re-parented to us (a subreaper must), never of `keep`."""
    for pid, _ in pids:
        if pid == keep:
            continue
        st = _stat(pid)
        if st is not None and st[0] == os.getpid() and st[2] == "Z":
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass


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
