"""CPU time and peak memory of the static check on hostile code shapes (issue 10 item 9).

Each case is a tiny submission folder whose train_gpt.py holds one hostile shape; each runs in a
fresh process (the whole static check, as `pgolf-audit check` runs it) and reports its CPU time,
peak RSS and whether any rule crashed. A plain script is measured in the same run as the
baseline, so the ratios do not depend on the machine's load.

    python bench/hostile_walks.py [--terms 2500] [--depth 2500]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

_RUN = r"""
import json, resource, sys, time
from audit.engine import audit_submission
from audit.submission import Submission
t0 = time.process_time()
report = audit_submission(Submission.load(sys.argv[1]), kinds=("static",))
cpu = time.process_time() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"cpu": cpu, "peak_mb": peak, "errors": [e.message for e in report.errors],
                  "findings": len(report.findings)}))
"""


def cases(terms: int, depth: int) -> dict[str, str]:
    return {
        "baseline (plain script)": "import torch\n\ndef f(x):\n    return x + 1\n",
        f"one line x = 1+1+...+1 ({terms} terms)": "x = " + "+".join(["1"] * terms) + "\n",
        f"attribute chain a.b.b... ({depth} deep)": "y = a" + ".b" * depth + "\n",
        f"subscript chain a[0][0]... ({depth} deep)": "def f(a):\n    return a" + "[0]" * depth + "\n",
        f"wide list of {terms} products": "def f(x, y):\n    return sum([" + ", ".join(
            f"x[{i}] * y[{i}] ^ x[{i} - 1]" for i in range(1, terms)) + "])\n",
    }


def run_case(code: str, tmp: Path, i: int) -> dict:
    d = tmp / f"case{i}"
    d.mkdir()
    (d / "train_gpt.py").write_text(code)
    (d / "README.md").write_text("# hostile walk\n")
    (d / "submission.json").write_text(json.dumps({"name": f"case{i}", "val_bpb": 1.2}))
    proc = subprocess.run([sys.executable, "-c", _RUN, str(d)], capture_output=True, text=True)
    if proc.returncode != 0:
        return {"cpu": float("nan"), "peak_mb": float("nan"), "errors": [proc.stderr[-300:]], "findings": 0}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--terms", type=int, default=2500)
    ap.add_argument("--depth", type=int, default=2500)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as t:
        results = [(name, run_case(code, Path(t), i)) for i, (name, code) in enumerate(cases(args.terms, args.depth).items())]
    base = results[0][1]["cpu"] or 1e-9
    print(f"{'case':48} {'cpu s':>8} {'x base':>8} {'peak MB':>8}  rule errors")
    bad = 0
    for name, r in results:
        bad += bool(r["errors"])
        print(f"{name:48} {r['cpu']:8.2f} {r['cpu'] / base:8.1f} {r['peak_mb']:8.0f}  {len(r['errors'])}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
