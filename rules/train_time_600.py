"""R-TRAIN-TIME-600: every record-track seed trains within 600 s, under the wallclock cap."""

from __future__ import annotations

from collections.abc import Iterable

from audit.context import AuditContext
from audit.enforcement import applies, enforce
from audit.findings import Evidence, Finding, Severity
from audit.logs import SeedRun
from audit.rule import FILE, README_RULE_DATE, Invalid, Rule, RuleDoc, Valid
from audit.seeds import TIME_CAP_MS, excerpt, seed_runs, seed_table
from rules._meta_examples import SEEDS, folder, log

# The reference loop checks the clock after each step, so the last step overshoots the cap: the
# official baseline logged 600,038 ms (step_avg 43.5 ms) and merged records show 600,047-600,137 ms
# (the last step is often slower than the average, e.g. 137 ms at an 87 ms average). Accepted:
# two average steps, at least 250 ms, at most 1,000 ms. Rejected precedents are forced step counts
# 1.1-2 s over (#1908 at 601,153 ms, #1945 seed 42 at 602,048 ms), which stay outside.
MIN_TOLERANCE_MS = 250.0
MAX_TOLERANCE_MS = 1_000.0
# Calibration after the timed loop (GPTQ Hessians on training batches, or self-generated samples)
# builds the artifact, so it counts toward the 600 s (RULES.md R-TRAIN-TIME-SCOPE, R-GPTQ-CALIB).
# In practice the maintainers accepted rows whose loop plus calibration ran a few seconds over:
# #1855 (599.6 s + 4.7 s) and #2135 (599.7 s + 6.9 s = 606.6 s). So loop + calibration over 600 s is
# a warning up to the largest accepted overshoot, and an error beyond it.
ACCEPTED_CALIBRATION_OVERSHOOT_S = 6.6
# Knobs that end training on a step count instead of the clock.
FORCED_STOP_KEYS = ("force_stop_step", "stop_step", "force_steps")


def _step_tolerance_ms(run: SeedRun) -> float:
    step_ms = run.train_time_ms / run.step if run.train_time_ms and run.step else 0.0
    return min(MAX_TOLERANCE_MS, max(MIN_TOLERANCE_MS, 2.0 * step_ms))


REFERENCE_GPUS = 8


def _world_size(run: SeedRun) -> int | None:
    raw = _hparam(run, "world_size")
    try:
        return int(raw) if raw is not None and int(raw) > 0 else None
    except ValueError:
        return None


def _hparam(run: SeedRun, key: str) -> str | None:
    for k, v in run.hyperparameters.items():
        if k.lower() == key:
            return v
    return None


class TrainTime600(Rule):
    ID = "R-TRAIN-TIME-600"
    TITLE = "Training fits in 600 s of wallclock on 8xH100 (record track)"
    SEVERITY = Severity.ERROR
    KIND = "meta"
    SOURCE = (
        "RULES.md R-TRAIN-TIME-600: README; https://github.com/openai/parameter-golf/pull/2146 ; "
        "https://github.com/openai/parameter-golf/pull/1945 ; https://github.com/openai/parameter-golf/pull/1956"
    )
    DOC = RuleDoc(
        why="Record-track training must finish within 10 minutes on 8×H100 (SXM variant).",
        ruling="README (intro; \"Submission Process\" criterion 3; Runpod note \"specifically the "
               "SXM variant\"). Enforcement: #1945 was counted only at commit `70067534`, after "
               "its seed-42 run at 602.048 s was redone strictly under 600 s; PR #1956 documents "
               "#1908's `FORCE_STOP_STEP` run at 601,153 ms as over cap.",
        date=README_RULE_DATE,
        sources=(
            "README",
            "https://github.com/openai/parameter-golf/pull/2146",
            "https://github.com/openai/parameter-golf/pull/1945",
            "https://github.com/openai/parameter-golf/pull/1956",
        ),
    )
    ALSO_REPORTS = ("R-TRAIN-TIME-600.clock-bypassed", "R-TRAIN-TIME-SCOPE")
    VALID = [
        Valid(folder(), "baseline-like: 600,038 ms, a sub-step overshoot of the cap"),
        Valid(
            folder({f"train_seed{s}.log": log(s, v, train_time_ms=512_000, step=20_000, stop_early=False,
                                              iterations=20_000) for s, v in SEEDS}),
            "finished its iterations before the clock ran out",
        ),
        Valid(
            {**folder({f"train_seed{s}.log": log(s, v, train_time_ms=3_600_000, max_wallclock="0.000")
                       for s, v in SEEDS}, json_extra={"track": "non-record-unlimited-compute-16mb"})},
            "non-record track: no time limit",
        ),
        Valid(
            folder({f"train_seed{s}.log": log(s, v, train_time_ms=588_050, extra=("gptq:reserving 12s, "
                                              "effective=588000ms",)).replace(
                "Code size:", "GPTQ:collected 67 Hessians in 11.3s\nCode size:") for s, v in SEEDS}),
            "12 s reserved from the loop for 11.3 s of Hessians: 599.4 s in all",
        ),
    ]
    INVALID = [
        Invalid(
            folder({**{f"train_seed{s}.log": log(s, v) for s, v in SEEDS[:2]},
                    "train_seed2025.log": log(2025, 2.0718, train_time_ms=602_048, step=4_550)}),
            "a forced step count overshot the cap by 2 s", path="train_seed2025.log", line="stopping_early",
        ),
        Invalid(
            folder({f"train_seed{s}.log": log(s, v, train_time_ms=598_000, max_wallclock="0.000", stop_early=False,
                                              step=4_500, iterations=4_500) for s, v in SEEDS}),
            "MAX_WALLCLOCK_SECONDS=0 disables the clock: the run length was fixed by ITERATIONS",
            rule_id="R-TRAIN-TIME-600.clock-bypassed",
            severity=Severity.WARNING, path="train_seed1337.log", line=FILE,
        ),
        Invalid(
            folder({f"train_seed{s}.log": log(s, v, train_time_ms=2_400_107, step=14_171, max_wallclock="2400.000",
                                              extra=("world_size:2 grad_accum_steps:4",)) for s, v in SEEDS}),
            "2,400 s on 2 GPUs: the same GPU-time, but not the 8xH100 timing the rule asks for",
            severity=Severity.WARNING, path="train_seed1337.log", line="stopping_early",
        ),
        Invalid(
            folder({f"train_seed{s}.log": log(s, v, train_time_ms=599_592, extra=()).replace(
                "Code size:", "GPTQ:collected 67 Hessians in 4.7s\nCode size:") for s, v in SEEDS}),
            "loop 599.6 s + 4.7 s of Hessians after it (#1855's shape, accepted): a warning",
            rule_id="R-TRAIN-TIME-SCOPE", severity=Severity.WARNING, path="train_seed1337.log", line="stopping_early",
        ),
        Invalid(
            folder({f"train_seed{s}.log": log(s, v, train_time_ms=599_700).replace(
                "Code size:", "GPTQ:collected 67 Hessians in 45.2s\nCode size:") for s, v in SEEDS}),
            "loop 599.7 s + 45.2 s of Hessians on training data after it: far over the budget",
            rule_id="R-TRAIN-TIME-SCOPE", severity=Severity.ERROR, path="train_seed1337.log", line="stopping_early",
        ),
    ]

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        yield from enforce(ctx, self._check(ctx))

    def _check(self, ctx: AuditContext) -> Iterable[Finding]:
        seed_table(ctx)
        if not applies(ctx, self.ID):
            return
        for run in seed_runs(ctx):
            yield from self._check_run(ctx, run)

    def _check_run(self, ctx: AuditContext, run: SeedRun) -> Iterable[Finding]:
        path = run.log_path
        gpus = _world_size(run)
        scaled_cap = TIME_CAP_MS * REFERENCE_GPUS / gpus if gpus and gpus < REFERENCE_GPUS else None
        if run.train_time_ms is not None:
            tol = _step_tolerance_ms(run)
            over = run.train_time_ms - TIME_CAP_MS
            if over > tol and scaled_cap is not None and run.train_time_ms - scaled_cap <= tol:
                yield self.finding(
                    f"{path}: training took {run.train_time_ms:,.0f} ms on {gpus} GPU(s), the GPU-time of 600 s on "
                    f"8xH100, but record timings must come from 8xH100 within 600 s (R-TRAIN-TIME-600, R-HARDWARE). "
                    "A reviewer has to accept a compute-equivalent run on fewer GPUs; re-run on 8xH100 to remove "
                    "the doubt.",
                    path=path, line=run.train_time_line, severity=Severity.WARNING, key=f"over:{path}",
                    evidence=[Evidence("logged train time", path, run.train_time_line,
                                       excerpt(ctx, path, run.train_time_line)),
                              Evidence(f"world_size: {gpus}", path)],
                )
            elif over > tol:
                yield self.finding(
                    f"{path}: training took {run.train_time_ms:,.0f} ms, {over:,.0f} ms over the 600,000 ms cap "
                    f"(R-TRAIN-TIME-600). The tolerated overshoot is {tol:,.0f} ms here (two average "
                    "steps, 250-1,000 ms), because the reference loop checks the clock after each step; a longer "
                    "overshoot means the run did not stop on the clock (#1908 at 601,153 ms was rejected). Re-run this seed with the wallclock cap in force.",
                    path=path, line=run.train_time_line,
                    evidence=[Evidence("logged train time", path, run.train_time_line,
                                       excerpt(ctx, path, run.train_time_line))],
                    key=f"over:{path}",
                )
        yield from self._calibration(ctx, run)
        bypass = self._clock_bypass(run)
        if bypass and scaled_cap is not None and (run.max_wallclock_seconds or 0) * 1000.0 <= scaled_cap:
            bypass = None  # the cap was scaled to the GPU count: reported above with the train time
        if bypass:
            yield self.finding(
                f"{path}: {bypass} (R-TRAIN-TIME-600). A record-track run must stop on the 600 s wallclock cap; "
                "a step-count stop is only acceptable if every seed's logged train time is under 600 s, which a "
                "reviewer has to confirm. Leave MAX_WALLCLOCK_SECONDS at 600 and do not force the step count.",
                path=path, rule_id="R-TRAIN-TIME-600.clock-bypassed", severity=Severity.WARNING,
                evidence=[Evidence("configuration in the log", path)],
                key=f"bypass:{path}",
            )

    def _calibration(self, ctx: AuditContext, run: SeedRun) -> Iterable[Finding]:
        """Loop time + calibration after the loop (the phases the log times), against 600 s."""
        if run.train_time_ms is None:
            return
        path = run.log_path
        hessians = run.timings_s.get("gptq_hessians")
        reserve = run.timings_s.get("gptq_reserve")
        started = run.timings_s.get("calibration_started_line")
        if hessians is None:
            if started is not None:
                yield self.finding(
                    f"{path}: calibration after the timed loop is logged but not timed, so the training budget "
                    f"(loop {run.train_time_ms / 1000.0:,.1f} s + calibration) cannot be summed from the log "
                    "(R-TRAIN-TIME-SCOPE). Print the calibration's duration.",
                    path=path, line=int(started), rule_id="R-TRAIN-TIME-SCOPE", severity=Severity.INFO,
                    key=f"calib-untimed:{path}",
                )
            return
        counted = run.train_time_ms / 1000.0 + hessians
        over = counted - TIME_CAP_MS / 1000.0
        if over <= _step_tolerance_ms(run) / 1000.0:
            return
        res = f"; the loop reserved {reserve:g} s for it (gptq_reserve_seconds)" if reserve else ""
        error = over > ACCEPTED_CALIBRATION_OVERSHOOT_S
        yield self.finding(
            f"{path}: training loop {run.train_time_ms / 1000.0:,.1f} s + calibration after it {hessians:,.1f} s = "
            f"{counted:,.1f} s, {over:,.1f} s over the 600 s training budget{res} (R-TRAIN-TIME-SCOPE, "
            "R-GPTQ-CALIB: work the artifact depends on counts as training). "
            + (f"That is beyond the largest overshoot maintainers accepted ({ACCEPTED_CALIBRATION_OVERSHOOT_S} s, "
               "#2135). " if error else "Maintainers accepted such overshoots (#1855 4.3 s, #2135 6.6 s), so a "
               "reviewer decides. ")
            + "Raise GPTQ_RESERVE_SECONDS so that loop and calibration end within 600 s.",
            path=path, line=run.train_time_line, rule_id="R-TRAIN-TIME-SCOPE",
            severity=Severity.ERROR if error else Severity.WARNING, key=f"calib:{path}",
            evidence=[Evidence("logged train time", path, run.train_time_line,
                               excerpt(ctx, path, run.train_time_line)),
                      Evidence(f"calibration: {hessians:,.1f} s")],
        )

    @staticmethod
    def _clock_bypass(run: SeedRun) -> str | None:
        mw = run.max_wallclock_seconds
        if mw is None:
            raw = _hparam(run, "max_wallclock_seconds")
            try:
                mw = float(raw) if raw is not None else None
            except ValueError:
                mw = None
        if mw is not None and mw <= 0:
            return "the wallclock cap is disabled (max_wallclock_seconds = 0)"
        if mw is not None and mw > TIME_CAP_MS / 1000.0:
            return f"the wallclock cap is set to {mw:g} s, above 600 s"
        for key in FORCED_STOP_KEYS:
            value = _hparam(run, key)
            if value not in (None, "", "0", "None", "none", "-1"):
                return f"{key.upper()}={value} forces the step count instead of the clock"
        return None
