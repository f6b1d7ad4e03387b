"""TERM, HUP and INT stop a re-run the way Ctrl-C does: kill the run, keep what was measured, exit 128+N.

A CI cancel or a node preemption sends SIGTERM, a closed terminal SIGHUP. Python's default for
both is to die on the spot, which left unshare, torchrun and the workers running with no deadline
and the scratch folder on disk. While a re-run is in progress each of them raises `Interrupted`
in the main thread; the launcher kills the whole run on the way out (launch.run_group), the seed
is recorded as interrupted, the scratch folder is removed, and the command exits 128 + the signal
number (143 for TERM, 129 for HUP, 130 for INT). A second signal during that cleanup is ignored,
so the cleanup itself cannot be cut short by an impatient sender.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

HANDLED = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


class Interrupted(KeyboardInterrupt):
    """The harness was asked to stop by a signal."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.signal_name = signal.Signals(signum).name
        super().__init__(self.signal_name)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


@contextmanager
def interrupt_on_signals() -> Iterator[None]:
    """Within the block, TERM/HUP/INT raise Interrupted once (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        if fired:
            return  # already stopping: let the cleanup finish
        fired.append(signum)
        raise Interrupted(signum)

    previous = {s: signal.signal(s, handler) for s in HANDLED}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
