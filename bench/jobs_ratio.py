"""`-j N` over many folders against separate runs: wall-time ratio and memory, measured in one go.

    python bench/jobs_ratio.py [--corpus DIR] [-n 20] [-j 2]

Target (issue 8 §5): on 2 cores, `pgolf-audit check F1..F20 -j 2` takes at most 0.6x the wall time
of 20 separate `pgolf-audit check Fi` runs, and the peak memory of one worker does not grow with
the number of folders (compare the peak RSS printed for n/4 and n folders). The folders are the
corpus's (--corpus or $PGOLF_CORPUS; its dev/ and head/ layout from bench/corpus.py), else our
fixtures. Both sides are timed here, in the same run, so the ratio holds on any machine.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def folders(corpus: Path | None, n: int) -> list[Path]:
    found: list[Path] = []
    if corpus is not None and corpus.is_dir():
        found = sorted(p for p in (*corpus.glob("dev/pr*/records/*/*"), *corpus.glob("head/records/*/*")) if p.is_dir())
    if not found:
        found = sorted(p for p in (ROOT / "fixtures" / "submissions").iterdir() if p.is_dir() and not p.name.startswith("_"))
    return found[:n]


def exe() -> list[str]:
    script = Path(sys.executable).with_name("pgolf-audit")
    return [str(script)] if script.exists() else [sys.executable, "-m", "audit"]


def timed(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS MB of the largest process it waited for, workers included)."""
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    wall = time.perf_counter() - start
    return wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def _size(folder: str) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file() and not p.is_symlink())


def rss_of(argv: list[str]) -> float:
    """Peak RSS (MB) of one command, measured in a fresh helper so earlier runs do not mask it."""
    code = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, "
            "stderr=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)")
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=os.environ.get("PGOLF_CORPUS", "/work/corpus"))
    ap.add_argument("-n", type=int, default=20, help="number of folders (default 20)")
    ap.add_argument("-j", type=int, default=2, help="jobs for the batched run (default 2)")
    args = ap.parse_args()
    targets = [str(p) for p in folders(args.corpus, args.n)]
    base = [*exe(), "check", "--format", "json", "--exit-zero"]
    separate = 0.0
    for t in targets:
        separate += timed([*base, t])[0]
    batched, _ = timed([*base, "-j", str(args.j), *targets])
    ratio = batched / separate
    print(f"folders: {len(targets)}  cores: {os.cpu_count()}")
    print(f"separate runs: {separate:.2f} s wall   -j {args.j}: {batched:.2f} s wall   ratio {ratio:.2f} (target <= 0.60)")
    # Memory: the same folder copied n/4 and n times, so only the number of folders changes.
    largest = max(targets, key=_size)
    with tempfile.TemporaryDirectory() as tmp:
        copies = [shutil.copytree(largest, Path(tmp) / f"copy{i}" / Path(largest).name, symlinks=True)
                  for i in range(len(targets))]
        quarter = copies[: max(1, len(copies) // 4)]
        rss_small = rss_of([*base, "-j", str(args.j), *map(str, quarter)])
        rss_all = rss_of([*base, "-j", str(args.j), *map(str, copies)])
    print(f"peak RSS of one process, {Path(largest).name} copied: {rss_small:.0f} MB for {len(quarter)} folders, "
          f"{rss_all:.0f} MB for {len(copies)} folders (flat: ratio {rss_all / rss_small:.2f})")
    return 0 if ratio <= 0.6 else 1


if __name__ == "__main__":
    sys.exit(main())
