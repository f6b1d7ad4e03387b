"""Hostile folders for the reader (issue 10 §9, §12, §14): CPU time and peak memory of a whole check.

Builds each case in a temporary directory, runs `pgolf-audit check DIR --format json` on it in a
child process, and prints the child's CPU time, peak RSS, exit code and the reader findings. The
issue's bound is 30 s CPU and 1.5 GB per case; an ordinary example folder is measured first, as
the baseline of the same run.

    python bench/hostile_reader.py [--exe PATH] [CASE ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rules._meta_examples import folder, log  # noqa: E402

LOG_BYTES = 7_900_000


def _write(root: Path, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))


def _big_log() -> bytes:
    one = log(1337).encode()
    return one * (LOG_BYTES // len(one))


def ordinary(root: Path) -> None:
    """The example folder of the metadata rules: the baseline."""


def nested_1000(root: Path) -> None:
    """1,000 nested folders (os.walk raised RecursionError: exit 2)."""
    deep = root
    for _ in range(1000):
        deep = deep / "d"
        deep.mkdir()


def hardlinks_100(root: Path) -> None:
    """100 hard links to one 7.9 MB log (2.5 GB before the budget)."""
    big = root / "big.log"
    big.write_bytes(_big_log())
    for i in range(100):
        os.link(big, root / f"link{i:03d}.log")


def copies_12(root: Path) -> None:
    """12 distinct copies of a 7.9 MB log: past the per-folder read budget."""
    data = _big_log()
    for i in range(12):
        (root / f"copy{i:02d}.log").write_bytes(data)


def entries_30000(root: Path) -> None:
    """30,000 empty files in one folder: past the listing limit."""
    for i in range(30_000):
        (root / f"f{i:05d}.bin").touch()


def json_numbers(root: Path) -> None:
    """submission.json with NaN, a 401-digit integer, 1e400 and a duplicate key."""
    (root / "submission.json").write_text(
        '{"author": "A", "github_id": "a", "name": "n", "val_bpb": NaN, "bytes_total": 1' + "0" * 400
        + ', "x": 1e400, "x": 2}')


CASES: dict[str, Callable[[Path], None]] = {
    f.__name__: f for f in (ordinary, nested_1000, hardlinks_100, copies_12, entries_30000, json_numbers)
}


def measure(exe: str, root: Path) -> tuple[float, float, int, list[str]]:
    """(CPU seconds, peak RSS in MB, exit code, reader findings) of one check in a child process."""
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen([exe, "check", str(root), "--format", "json"], stdout=out, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        raw = out.read().decode("utf-8", "replace")
    found: list[str] = []
    try:
        for f in json.loads(raw)["results"][0]["findings"]:
            if f["rule_id"] in ("R-SUB-FILES", "R-SUB-JSON") and f["severity"] != "info":
                found.append(f"{f['rule_id']} {f['severity']}: {f['message'][:100]}")
    except (ValueError, KeyError, IndexError):
        found.append(f"(no JSON report) {raw[:200]}")
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode, found


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--exe", default=str(Path(sys.executable).with_name("pgolf-audit")))
    ap.add_argument("cases", nargs="*", choices=[[], *CASES], default=[])
    args = ap.parse_args()
    names = args.cases or list(CASES)
    if "ordinary" not in names:
        names.insert(0, "ordinary")
    base = None
    for name in names:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "sub"
            root.mkdir()
            _write(root, folder())
            CASES[name](root)
            cpu, rss, code, found = measure(args.exe, root)
            if name == "nested_1000":  # shutil.rmtree recurses; remove the chain bottom-up
                chain = [root / "d"]
                while (chain[-1] / "d").is_dir():
                    chain.append(chain[-1] / "d")
                for d in reversed(chain):
                    d.rmdir()
        base = base if base is not None else cpu
        kinds = len(found)
        print(f"{name:14s} exit {code}  cpu {cpu:6.2f} s ({cpu / base:5.1f}x ordinary)  peak {rss:7.0f} MB  "
              f"{kinds} reader finding(s)")
        for line in found[:3]:
            print(f"    {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
