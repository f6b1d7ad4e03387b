"""Time the full static analysis of a script against `ast.parse` of the same file (the floor).

    python bench/static_speed.py [FILE.py ...]

For each file: the time of `ast.parse` alone, the time to build the shared substrate (program
walk + val-flow) and the time to run every static rule on a one-file submission holding it, each
the best of a few repeats, with the ratio to `ast.parse`. Without arguments it measures the
largest `train_gpt.py` files of the corpus found on this machine (or our fixtures). Prints
numbers; asserts nothing (wall-clock limits do not belong in tests).
"""

from __future__ import annotations

import ast
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from audit.analysis.parse import parse_source  # noqa: E402
from audit.analysis.program import build_program  # noqa: E402
from audit.analysis.valflow import analyse  # noqa: E402
from audit.engine import audit_submission  # noqa: E402
from audit.registry import all_rules  # noqa: E402
from audit.submission import Submission  # noqa: E402

REPEATS = 3
CORPUS_DIRS = [Path("/work/corpus/dev"), Path("/work/corpus/head/records")]


def best(fn, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def default_files(limit: int = 6) -> list[Path]:
    found = [p for d in CORPUS_DIRS if d.is_dir() for p in d.rglob("train_gpt.py")]
    if not found:
        found = list((ROOT / "fixtures" / "submissions").rglob("train_gpt.py"))
    return sorted(found, key=lambda p: p.stat().st_size, reverse=True)[:limit]


def measure(path: Path) -> tuple[int, int, float, float, float]:
    text = path.read_text(encoding="utf-8", errors="replace")

    def parse_only() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                ast.parse(text)
            except SyntaxError:
                pass

    def substrate() -> None:
        analyse(build_program([parse_source("train_gpt.py", text)]))

    static_rules = [r for r in all_rules() if r.KIND == "static"]

    def full() -> None:
        audit_submission(Submission.from_files({"train_gpt.py": text}), rules=static_rules, kinds=("static",))

    return len(text.encode("utf-8")), text.count("\n") + 1, best(parse_only), best(substrate), best(full)


def main(argv: list[str]) -> None:
    files = [Path(a) for a in argv] or default_files()
    print(f"{'file':60} {'KB':>6} {'lines':>6} {'ast.parse':>10} {'substrate':>10} {'all static':>11} {'ratio':>6}")
    for f in files:
        size, lines, t_parse, t_sub, t_full = measure(f)
        name = str(f)[-60:]
        print(f"{name:60} {size / 1024:6.0f} {lines:6d} {t_parse:9.3f}s {t_sub:9.3f}s {t_full:10.3f}s "
              f"{t_full / max(t_parse, 1e-9):5.1f}x")


if __name__ == "__main__":
    main(sys.argv[1:])
