"""Fewer garbage-collector passes while a folder is checked.

The check allocates millions of small, long-lived objects (AST nodes, memoised facts) and makes
few reference cycles (none that outlive the check: `AuditContext.release`). At CPython's default
first threshold (700 allocations) the collector runs thousands of times per folder and its
older generations re-scan every live tree: 20-30% of the CPU of a 180 KB script. mypy raises the
threshold for the same reason. Cycles are still collected, only in larger batches, so memory
stays bounded; the old thresholds come back after.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

FIRST_GENERATION_THRESHOLD = 50_000


@contextmanager
def fewer_collections() -> Iterator[None]:
    old = gc.get_threshold()
    gc.set_threshold(max(old[0], FIRST_GENERATION_THRESHOLD), *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)
