"""The train and eval overshoot tolerances, calibrated on what the maintainers accepted and rejected.

    python bench/time_margins.py [CORPUS]      # CORPUS: argument, else $PGOLF_CORPUS, else /work/corpus

For every record-track folder merged on main (`head/records/track_10min_16mb/*`, each accepted)
and every seed log in it, prints the training loop's overshoot of 600 s, the loop plus the
calibration after it (R-TRAIN-TIME-SCOPE), and the evaluation the score depends on (R-EVAL-TIME-600).
Then it sets the largest accepted overshoots against the rejected precedents (#1908 at 601,153 ms,
#1945 seed 42 at 602,048 ms, #1972 at ~688 s of eval) and the tolerances the rules use, and says
whether each tolerance separates the two.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from audit.logs import parse_submission_logs  # noqa: E402
from audit.seeds import score_eval_ms  # noqa: E402
from audit.submission import Submission  # noqa: E402
from rules.train_time_600 import (  # noqa: E402
    ACCEPTED_CALIBRATION_OVERSHOOT_S,
    MAX_TOLERANCE_MS,
    MIN_TOLERANCE_MS,
    _step_tolerance_ms,
)

CAP_MS = 600_000.0
REJECTED_TRAIN_MS = {"#1908 (FORCE_STOP_STEP, per #1956)": 601_153.0, "#1945 seed 42 (redone, per #2146)": 602_048.0}
REJECTED_EVAL_S = {"#1972 (cocohearts: eval ~688 s)": 688.0}


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    corpus = Path(args[0] if args else os.environ.get("PGOLF_CORPUS", "/work/corpus"))
    folders = sorted((corpus / "head" / "records" / "track_10min_16mb").glob("*"))
    if not folders:
        print(f"no merged record folders under {corpus}/head (give a path or set PGOLF_CORPUS); skipped", file=sys.stderr)
        return 0  # nothing to measure here (the corpus is never in the repository)
    loop, counted, evals, tol_used = [], [], [], []
    print(f"{'folder':58s} {'log':30s} {'loop over':>10s} {'+calib over':>11s} {'eval s':>8s} {'tol ms':>7s}")
    for folder in folders:
        for run in parse_submission_logs(Submission.load(folder)):
            if run.train_time_ms is None or run.train_time_ms > 2 * CAP_MS:
                continue  # no timing, or a declared long/unlimited variant (e.g. 2,400 s on 2 GPUs)
            over = (run.train_time_ms - CAP_MS) / 1000.0
            calib = run.timings_s.get("gptq_hessians")
            total_over = over + calib if calib is not None else None
            ev = [v for v in (run.total_eval_time_s, (score_eval_ms(run) or 0) / 1000.0 or None) if v is not None]
            ev_s = max(ev) if ev else None
            tol = _step_tolerance_ms(run)
            loop.append((over, folder.name, run.log_path))
            tol_used.append(tol)
            if total_over is not None:
                counted.append((total_over, folder.name, run.log_path))
            if ev_s is not None:
                evals.append((ev_s, folder.name, run.log_path))
            print(f"{folder.name[:58]:58s} {run.log_path[:30]:30s} {over:>+10.3f} "
                  f"{'' if total_over is None else f'{total_over:+.3f}':>11s} "
                  f"{'' if ev_s is None else f'{ev_s:.1f}':>8s} {tol:>7.0f}")
    worst_loop = max(loop)
    worst_counted = max(counted) if counted else None
    worst_eval = max(evals) if evals else None
    least_rejected = min(REJECTED_TRAIN_MS.values())
    print("\n## margins")
    print(f"largest accepted loop overshoot: {worst_loop[0]:+.3f} s ({worst_loop[1]}, {worst_loop[2]})")
    for name, ms in REJECTED_TRAIN_MS.items():
        print(f"rejected: {name}: {(ms - CAP_MS) / 1000.0:+.3f} s")
    print(f"loop tolerance in use: 2 average steps, clamped to {MIN_TOLERANCE_MS:.0f}-{MAX_TOLERANCE_MS:.0f} ms "
          f"(on these logs {min(tol_used):.0f}-{max(tol_used):.0f} ms)")
    separates = worst_loop[0] * 1000.0 <= min(tol_used) and MAX_TOLERANCE_MS < least_rejected - CAP_MS
    print(f"  accepted max {worst_loop[0] * 1000.0:.0f} ms <= smallest tolerance {min(tol_used):.0f} ms, and largest "
          f"tolerance {MAX_TOLERANCE_MS:.0f} ms < least rejected {least_rejected - CAP_MS:.0f} ms: "
          f"{'separates' if separates else 'DOES NOT separate'}")
    if worst_counted is not None:
        print(f"largest accepted loop + calibration overshoot: {worst_counted[0]:+.3f} s ({worst_counted[1]}); "
              f"warning up to {ACCEPTED_CALIBRATION_OVERSHOOT_S} s (#2135, 606.6 s), error beyond: "
              f"{'consistent' if worst_counted[0] <= ACCEPTED_CALIBRATION_OVERSHOOT_S else 'INCONSISTENT'}")
    if worst_eval is not None:
        print(f"longest accepted evaluation: {worst_eval[0]:.1f} s ({worst_eval[1]}); margin to 600 s "
              f"{600.0 - worst_eval[0]:.1f} s; rejected: "
              + ", ".join(f"{k} {v:.0f} s" for k, v in REJECTED_EVAL_S.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
