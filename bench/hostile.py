"""Every hostile case of issue 10 for the static check, in one table: CPU time and peak RSS.

Builds each case in a temporary directory (on top of an ordinary example folder), runs
`pgolf-audit check DIR --format json` on it in a child process and prints the child's CPU time,
peak RSS and exit code, against the bounds every case must stay under (30 s CPU, 1.5 GB) and as
a ratio to the ordinary folder measured first in the same run. The reader's own cases come from
bench/hostile_reader.py; the code cases (large scripts, decompression bombs, quadratic and deep
trees, escape sequences in names) are here.

    python bench/hostile.py [--exe PATH] [CASE ...]
"""

from __future__ import annotations

import argparse
import base64
import lzma
import sys
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hostile_reader import CASES as READER_CASES  # noqa: E402
from hostile_reader import _write, measure  # noqa: E402

from rules._meta_examples import folder  # noqa: E402

CPU_BOUND_S = 30.0
RSS_BOUND_MB = 1536.0
_LINE = "def f{i}(x):\n    y = x * {i} + 1\n    return y - {i}\n"


def _script(nbytes: int) -> str:
    out, i, size = [], 0, 0
    while size < nbytes:
        s = _LINE.format(i=i)
        out.append(s)
        size += len(s)
        i += 1
    return "".join(out)


def script_4mb(root: Path) -> None:
    """A 4 MB ordinary script (114 s CPU and 2.2 GB before issue 10)."""
    (root / "train_gpt.py").write_text(_script(4_000_000))


def script_8mb(root: Path) -> None:
    """An 8 MB script, over the analysis limit (132 s CPU before issue 10)."""
    (root / "train_gpt.py").write_text(_script(8_000_000))


def sum_line(root: Path) -> None:
    """One line `x = 1+1+...+1` of 2,500 terms (20 s CPU: quadratic walks)."""
    (root / "train_gpt.py").write_text("x = " + "+".join(["1"] * 2500) + "\n")


def deep_chain(root: Path) -> None:
    """A 2,500-deep attribute chain (RecursionError in three rules: exit 2)."""
    (root / "train_gpt.py").write_text("y = a" + ".b" * 2500 + "\n")


def bomb_appended(root: Path) -> None:
    """A ~2 KB zlib blob of 1 GB of zeros in an ordinary script, no exec (7.4 GB and 30 s)."""
    z = zlib.compressobj(9)
    chunk = b"\0" * (1 << 20)
    blob = base64.b85encode(b"".join([*(z.compress(chunk) for _ in range(1024)), z.flush()])).decode()
    (root / "train_gpt.py").write_text(f'import zlib, base64\nW = zlib.decompress(base64.b85decode("{blob}"))\n')


def wrapper_8mib(root: Path) -> None:
    """A small lzma wrapper whose inner code is just under 8 MiB (171 s CPU and 5 GB)."""
    inner = ("x = 1\n" * ((8 * 1024 * 1024 - 64) // 6)).encode()
    blob = base64.b85encode(lzma.compress(inner, preset=9)).decode()
    (root / "train_gpt.py").write_text(f'import lzma as L,base64 as B\nexec(L.decompress(B.b85decode("{blob}")))\n')


def escape_names(root: Path) -> None:
    """A log named with ANSI escapes and a newline (cleared the terminal, drew a fake PASS)."""
    (root / "\x1b[2J\x1b[H\x1b[32mPASS\x1b[0m\n.log").write_text("step:1/1 val_loss:1.0 val_bpb:1.0\n")
    (root / "x\udcff.log".encode("utf-8", "surrogateescape").decode("utf-8", "surrogateescape")).write_text("hi\n")


CODE_CASES: dict[str, Callable[[Path], None]] = {
    f.__name__: f for f in (script_4mb, script_8mb, sum_line, deep_chain, bomb_appended, wrapper_8mib, escape_names)
}
CASES: dict[str, Callable[[Path], None]] = {**READER_CASES, **CODE_CASES}


def _remove_chain(root: Path) -> None:
    """shutil.rmtree recurses; remove a 1,000-deep chain bottom-up."""
    chain = [root / "d"]
    while (chain[-1] / "d").is_dir():
        chain.append(chain[-1] / "d")
    for d in reversed(chain):
        if d.is_dir():
            d.rmdir()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--exe", default=str(Path(sys.executable).with_name("pgolf-audit")))
    ap.add_argument("cases", nargs="*", default=[], help=f"any of: {', '.join(CASES)}")
    args = ap.parse_args(argv)
    unknown = [c for c in args.cases if c not in CASES]
    if unknown:
        ap.error(f"unknown case(s): {', '.join(unknown)}")
    names = ["ordinary", *[c for c in (args.cases or CASES) if c != "ordinary"]]
    base, over = None, 0
    print(f"{'case':14s} exit  {'cpu s':>7s}  {'x ordinary':>10s}  {'peak MB':>8s}  within 30 s / 1.5 GB")
    for name in names:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "sub"
            root.mkdir()
            _write(root, folder())
            CASES[name](root)
            cpu, rss, code, _ = measure(args.exe, root)
            if (root / "d").is_dir():
                _remove_chain(root)
        base = base if base is not None else cpu
        ok = cpu <= CPU_BOUND_S and rss <= RSS_BOUND_MB and code in (0, 1)
        over += not ok
        print(f"{name:14s} {code:4d}  {cpu:7.2f}  {cpu / base:10.1f}  {rss:8.0f}  {'yes' if ok else 'NO'}")
    print(f"{len(names)} cases, {over} over the bounds or exiting 2")
    return 1 if over else 0


if __name__ == "__main__":
    raise SystemExit(main())
