"""Live progress of a re-run: per seed, the phase, the step, and elapsed time against the limits.

On a terminal this is a rich progress bar whose length is the deadline of the current phase; in
a log file or CI (no terminal) it prints one plain line every `plain_every_s` seconds instead, so
an hour-long run neither floods the log nor goes silent.
"""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from audit.harness.launch import Deadlines, Tick


class ProgressView:
    def __init__(self, console: Console | None = None, enabled: bool = True, plain_every_s: float = 30.0):
        self.console = console or Console(stderr=True)
        self.enabled = enabled
        self.live = enabled and self.console.is_terminal
        self.plain_every_s = plain_every_s
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._label = ""
        self._deadlines: Deadlines | None = None
        self._last_plain = 0.0

    def __enter__(self) -> ProgressView:
        if self.live:
            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                TextColumn("{task.fields[limit]}"), TextColumn("{task.fields[line]}", style="dim"),
                console=self.console, transient=False,
            )
            self._progress.__enter__()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.__exit__(exc_type, exc, tb)

    def start_seed(self, label: str, deadlines: Deadlines) -> None:
        self._label, self._deadlines, self._last_plain = label, deadlines, time.monotonic()
        if self._progress is not None:
            self._task = self._progress.add_task(label, total=deadlines.train_s, limit="", line="")
        elif self.enabled:
            self.console.print(f"{label}: started (train phase limit {deadlines.train_s:.0f}s, "
                               f"total {deadlines.total_s:.0f}s)")

    def tick(self, t: Tick) -> None:
        d = self._deadlines
        if d is None:
            return
        limit = d.train_s if t.phase == "train" else d.total_s
        desc = f"{self._label} ({t.phase})" + (f" step {t.step}" if t.step else "")
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, description=desc, total=limit, completed=min(t.elapsed_s, limit),
                                  limit=f"{t.elapsed_s:6.0f}s / {limit:.0f}s", line=escape(t.last_line[:60]))
        elif self.enabled and time.monotonic() - self._last_plain >= self.plain_every_s:
            self._last_plain = time.monotonic()
            self.console.print(f"{desc}: {t.elapsed_s:.0f}s of {limit:.0f}s | {t.last_line[:80]}", markup=False)

    def note(self, text: str) -> None:
        if self.enabled:
            self.console.print(text, markup=False, highlight=False)

    def end_seed(self, summary: str) -> None:
        if self.enabled:
            self.console.print(f"{self._label}: {summary}", markup=False, highlight=False)
