"""R-SUB-JSON.claims-match-logs: the numbers in submission.json are the numbers in the logs."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from typing import Any

from audit.context import AuditContext
from audit.enforcement import adjust, enforce
from audit.findings import Evidence, Finding, Severity
from audit.logs import SeedRun
from audit.rule import FILE, Invalid, Rule, RuleDoc, Valid
from audit.seedconfig import odd_run_ids
from audit.seeds import (
    claimed_seeds,
    excerpt,
    mean_std,
    run_seed,
    scored_runs,
    seed_table,
    submission_claims,
)
from rules._meta_examples import SEEDS, bpb, folder, log

# Logs print the canonical score with 8 decimals; submissions round the claim to 3-8 decimals, some
# truncate instead of rounding (1.1427666 -> 1.14276), and some average per-seed values already
# rounded to the claim's decimals (1.08562480 -> 1.08563). So a claim written with d decimals may be
# up to one unit of its last decimal from the logs' mean, plus the logs' own rounding.
LOG_ROUNDING = 0.5e-8
MIN_DECIMALS = 3  # a claim written with fewer decimals is held to 3 (tolerance 1e-3)
MAX_COMBINATIONS = 256
# Naming the line or run a claim came from needs a claim precise enough not to match by chance.
PRECISE_DECIMALS = 4


def decimals(value: float) -> int:
    """Decimals of the shortest repr of a float (1.1194 -> 4; 1.22436570 was written 1.2243657 -> 7)."""
    text = repr(float(value))
    if "e" in text or "E" in text:
        return 8
    return len(text.split(".")[1]) if "." in text else 0


def tolerance(claimed: float) -> float:
    """One unit of the claim's last written decimal, plus the logs' own 8-decimal rounding."""
    d = max(MIN_DECIMALS, min(decimals(claimed), 8))
    return 10.0 ** -d + LOG_ROUNDING + 1e-12


def _one_run_per_seed(runs: Sequence[SeedRun]) -> list[list[SeedRun]]:
    """Every way of picking one run per seed (a seed logged twice: original and rerun, or a copy)."""
    groups: dict[Any, list[SeedRun]] = {}
    for i, r in enumerate(runs):
        groups.setdefault(run_seed(r) if run_seed(r) is not None else f"log{i}", []).append(r)
    sizes = math.prod(len(g) for g in groups.values())
    if sizes > MAX_COMBINATIONS:
        return [list(runs)]
    return [list(c) for c in itertools.product(*groups.values())]


def _logged_values(runs: Sequence[SeedRun]) -> list[float]:
    return [s.val_bpb for r in runs for s in r.scores] + [r.val_bpb for r in runs if r.val_bpb is not None]


def _label_means(runs: Sequence[SeedRun]) -> dict[str, float]:
    """Mean val_bpb per score label present in every run (to name the line a claim was taken from)."""
    per_label: dict[str, list[float]] = {}
    for r in runs:
        seen: dict[str, float] = {}
        for s in r.scores:
            seen[s.label] = s.val_bpb
        for label, v in seen.items():
            per_label.setdefault(label, []).append(v)
    return {k: math.fsum(v) / len(v) for k, v in per_label.items() if len(v) == len(runs)}


class ClaimsMatchLogs(Rule):
    ID = "R-SUB-JSON.claims-match-logs"
    TITLE = "submission.json val_bpb, per-seed results and bytes_total match the logs"
    SEVERITY = Severity.ERROR
    KIND = "meta"
    SOURCE = (
        "RULES.md R-SUB-JSON (numbers in submission.json must match the logs; #2124) and R-ARTIFACT-CAP: "
        "https://github.com/openai/parameter-golf/pull/2124 ; https://github.com/openai/parameter-golf/pull/1902"
    )
    DOC = RuleDoc(
        why="The numbers in submission.json (val_bpb, per-seed results, bytes_total) must be the "
            "numbers the logs show; reviewers rejected mismatches (#2124: a third seed from a "
            "different configuration).",
        ruling="RULES.md R-SUB-JSON edge case and R-ARTIFACT-CAP: the README asks for "
               "submission.json with the score; reviewers (#2124) and the leaderboard updates "
               "(#1902) compared it with the logs.",
        date="README rule (claims no log supports: always an error); a claim that is one seed's line is "
             "dated by audit/enforcement.py to #1902 (merged 2026-04-29), when the seed mean became the rule",
        sources=(
            "https://github.com/openai/parameter-golf/pull/2124",
            "https://github.com/openai/parameter-golf/pull/1902",
        ),
    )
    VALID = [
        Valid(folder(), "claimed val_bpb is the 8-decimal mean of the three final lines"),
        Valid(
            folder(json_extra={"val_bpb": round(sum(bpb(v) for _, v in SEEDS) / 3, 4)}),
            "claim rounded to 4 decimals",
        ),
        Valid(
            folder(json_extra={"seed_results": {str(s): {"val_bpb": bpb(v)} for s, v in SEEDS}}),
            "per-seed results equal their logs",
        ),
        Valid(
            folder({**{f"train_seed{s}.log": log(s, v) for s, v in SEEDS},
                    "train_seed7.log": log(7, 2.0600, iterations=9_000)}),
            "the claim is the mean of the three seeds of the submitted configuration; a fourth run of another "
            "configuration (iterations 9,000) is not part of it",
        ),
    ]
    INVALID = [
        Invalid(folder(json_extra={"val_bpb": 1.2101}), "claimed val_bpb better than every logged line: no log "
                "supports it", severity=Severity.ERROR, path="submission.json", line=FILE),
        Invalid(folder(json_extra={"val_bpb": bpb(2.0718)}), "the claim is the best seed's line while the other "
                "two seeds' logs are in the folder (cherry-pick)", severity=Severity.ERROR, path="submission.json",
                line=FILE),
        Invalid(folder(json_extra={"val_bpb": bpb(2.0718), "track": "non-record-16mb"}),
                "the same claim on the non-record track: a warning", severity=Severity.WARNING,
                path="submission.json", line=FILE),
        Invalid(folder(json_extra={"val_bpb": bpb(2.0718)}), "the same claim in a folder merged in March, before "
                "#1902 made the seed mean the rule: a warning", severity=Severity.WARNING,
                options={"as_of": "2026-03-20"}, path="submission.json", line=FILE),
        Invalid(
            folder(json_extra={"seed_results": {"1337": {"val_bpb": 1.2001}, "42": {"val_bpb": bpb(2.0739)},
                                                "2025": {"val_bpb": bpb(2.0718)}}}),
            "seed 1337's claimed result is not in its log", path="submission.json", line=FILE,
        ),
        Invalid(
            folder(json_extra={"seed_results": {str(s): {"val_bpb": bpb(v), "artifact_bytes": 15_815_847}
                                                for s, v in SEEDS}}),
            "per-seed artifact_bytes give the model alone, not model + code",
            severity=Severity.WARNING, path="submission.json", line=FILE,
        ),
        Invalid(
            folder(json_extra={"bytes_total": 15_100_000}),
            "bytes_total smaller than every logged artifact",
            severity=Severity.WARNING, path="submission.json", line=FILE,
        ),
        Invalid(
            folder({f"train_seed{s}.log": log(s, v) for s, v in SEEDS[:1]},
                   json_extra={"val_bpb": round((bpb(2.0727) + bpb(2.0600)) / 2, 8)}),
            "the claim is the mean over a seed whose log is not shipped (no per-seed list to say so)", path="submission.json", line=FILE,
        ),
    ]

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        yield from enforce(ctx, self._check(ctx))

    def _check(self, ctx: AuditContext) -> Iterable[Finding]:
        seed_table(ctx)
        claims = submission_claims(ctx)
        runs = scored_runs(ctx)
        if claims is None or not runs:
            return
        path = ctx.submission.json_path
        yield from self._mean(ctx, path, claims, runs)
        yield from self._per_seed(ctx, path, claims, runs)
        yield from self._bytes_total(ctx, path, claims, runs)
        yield from self._std(path, claims, runs)

    # -- claimed mean ------------------------------------------------------------------------
    def _mean(self, ctx: AuditContext, path: str | None, claims: Any, runs: list[SeedRun]) -> Iterable[Finding]:
        claimed = claims.val_bpb
        if claimed is None:
            return
        key = claims.val_bpb_key or "val_bpb"
        seeds = claimed_seeds(ctx)
        pool = [r for r in runs if run_seed(r) in seeds] if seeds else list(runs)
        if seeds and {run_seed(r) for r in pool} != set(seeds):
            return  # some claimed seed has no log under that seed: R-SUB-FILES.seed-logs says so
        # The mean is over the seeds of the submitted configuration: runs of another configuration
        # (R-SUB-SEEDS-SAME-CONFIG reports them) are left out when the claim names no seeds.
        odd = odd_run_ids(ctx)
        if not seeds and any(id(r) not in odd for r in pool):
            pool = [r for r in pool if id(r) not in odd]
        tol = tolerance(claimed)
        means = [math.fsum(r.val_bpb or 0.0 for r in c) / len(c) for c in _one_run_per_seed(pool)]
        best = min(means, key=lambda m: abs(m - claimed))
        if abs(best - claimed) <= tol:
            return
        explained = self._explained(ctx, path, key, claimed, best, pool, runs, len(seeds), tol)
        if explained is not None:
            # A claim that is one seed's line was how March records reported; the seed mean became
            # the rule with the #1902 leaderboard update, so the error is dated by that ruling.
            yield (adjust(ctx, explained, ruling="three-seeds") or explained) if explained.key == "cherry-pick" \
                else explained
            return
        inflated = claimed < best
        lines = [sl.val_bpb for r in runs for sl in r.scores if sl.rank > 0] or [best]
        unsupported = claimed < min(lines) - tol
        evidence = [Evidence(f"seed {run_seed(r)}: {r.score_label} val_bpb {r.val_bpb}", r.log_path, r.score_line,
                             excerpt(ctx, r.log_path, r.score_line)) for r in pool[:8]]
        if unsupported:
            yield self.finding(
                f"{path}: claimed {key} = {claimed} is better than every score line in the logs (best "
                f"{min(lines):.8f}; mean of the {len(pool)} final score(s) {best:.8f}): no log supports the claim "
                "(R-SUB-JSON). The claim must be the mean of the per-seed final lines of the shipped logs; ship "
                "the logs it came from or correct it.",
                path=path, key="unsupported", severity=Severity.ERROR, evidence=evidence,
            )
            return
        yield self.finding(
            f"{path}: claimed {key} = {claimed}, but the mean of the {len(pool)} logged final score(s) is "
            f"{best:.8f} (difference {claimed - best:+.8f}, tolerance {tol:.1e} for a claim written with "
            f"{decimals(claimed)} decimals), and no logged line or set of runs gives the claim (R-SUB-JSON). "
            + ("The claim is better than the logs' mean, though some logged line is as good; a reviewer must "
               "reconcile it. " if inflated else "The claim is worse than the logs show, so it does not overstate "
               "the result. ")
            + "The claim must be the mean of the per-seed final lines of the shipped logs: recompute it.",
            path=path, key="mean", severity=Severity.WARNING, evidence=evidence,
        )

    def _explained(self, ctx: AuditContext, path: str | None, key: str, claimed: float, best: float, pool: list[SeedRun],
                   runs: list[SeedRun], n_claimed_seeds: int, tol: float) -> Finding | None:
        """A claim that is in the logs, but not as the mean of the final lines of the claimed seeds."""
        for label, m in _label_means(pool).items():
            if abs(m - claimed) <= tol:
                return self.finding(
                    f"{path}: {key} = {claimed} is the mean of the logs' `{label}` lines, not of their final "
                    f"score lines ({best:.8f}). Make sure the claimed number is the score the submission is judged on.",
                    path=path, severity=Severity.INFO, key="other-label",
                    evidence=[Evidence(f"mean of {label} = {m:.8f}")],
                )
        if decimals(claimed) < PRECISE_DECIMALS:
            return None  # a short claim matches too many lines by chance to name one
        other_seeds = {run_seed(r) for r in pool}
        for r in runs:
            for sl in r.scores:
                if sl.rank > 0 and abs(sl.val_bpb - claimed) <= tol and len(other_seeds - {run_seed(r)}) >= 1:
                    return self.finding(
                        f"{path}: {key} = {claimed} is one run's `{sl.label}` line ({r.log_path}, seed {run_seed(r)}), "
                        f"while the logs of {len(other_seeds - {run_seed(r)})} other seed(s) are in the folder: the "
                        f"claim cherry-picks one seed instead of the mean over the seeds ({best:.8f}) (R-SUB-JSON). "
                        "The leaderboard compares seed means; report the mean and list the per-seed values.",
                        path=path, severity=Severity.ERROR, key="cherry-pick",
                        evidence=[Evidence("matching line", r.log_path, sl.line, excerpt(ctx, r.log_path, sl.line)),
                                  *(Evidence(f"seed {run_seed(o)}: {o.val_bpb}", o.log_path, o.score_line)
                                    for o in pool if o is not r)],
                    )
        k = n_claimed_seeds or 0
        if 1 < k < len(runs) and math.comb(len(runs), k) <= MAX_COMBINATIONS * 16:
            for combo in itertools.combinations(runs, k):
                m = math.fsum(r.val_bpb or 0.0 for r in combo) / k
                if abs(m - claimed) <= tol:
                    return self.finding(
                        f"{path}: {key} = {claimed} is the mean of {', '.join(r.log_path for r in combo)} (seeds "
                        f"{', '.join(str(run_seed(r)) for r in combo)}), which are not the claimed seeds' logs "
                        "(R-SUB-JSON). The seed labels in submission.json and the logs disagree; fix the labels so "
                        "a reviewer can match each claimed seed to its log.",
                        path=path, severity=Severity.WARNING, key="relabelled",
                        evidence=[Evidence(f"seed {run_seed(r)}: {r.val_bpb}", r.log_path, r.score_line) for r in combo],
                    )
        return None

    # -- per-seed claims ---------------------------------------------------------------------
    def _per_seed(self, ctx: AuditContext, path: str | None, claims: Any, runs: list[SeedRun]) -> Iterable[Finding]:
        for sc in claims.seed_claims().values():
            seed, value = sc.seed, sc.val_bpb
            if seed is None:
                continue
            if value is None:
                yield from self._seed_bytes(ctx, path, sc, [r for r in runs if run_seed(r) == seed])
                continue
            mine = [r for r in runs if run_seed(r) == seed or r.seed_from_name == seed]
            if not mine:
                continue
            yield from self._seed_bytes(ctx, path, sc, mine)
            tol = tolerance(value)
            if any(abs(v - value) <= tol for v in _logged_values(mine)):
                continue
            r = mine[0]
            elsewhere = [o for o in runs if o not in mine and any(abs(v - value) <= tol for v in _logged_values([o]))]
            if elsewhere:
                o = elsewhere[0]
                yield self.finding(
                    f"{path}: seed {seed}'s claimed val_bpb {value} is not in its log {r.log_path} but in "
                    f"{o.log_path}, which ran seed {run_seed(o)} (R-SUB-JSON). Fix the seed label.",
                    path=path, severity=Severity.WARNING, key=f"seed:{seed}",
                    evidence=[Evidence("the claimed value", o.log_path, o.score_line,
                                       excerpt(ctx, o.log_path, o.score_line))],
                )
                continue
            inflated = r.val_bpb is not None and value < r.val_bpb
            yield self.finding(
                f"{path}: seed {seed} is claimed at val_bpb {value}, but its log {r.log_path} shows {r.val_bpb} "
                f"({r.score_label}) and no score line of any log is within {tol:.1e} of the claim (R-SUB-JSON). "
                + ("The claim is better than the log, and no log supports it. " if inflated else "")
                + "Per-seed results must be copied from the logs.",
                path=path, key=f"unsupported:seed:{seed}" if inflated else f"seed:{seed}",
                severity=Severity.ERROR if inflated else Severity.WARNING,
                evidence=[Evidence(f"claimed seed {seed}: {value}", path),
                          Evidence("logged score", r.log_path, r.score_line, excerpt(ctx, r.log_path, r.score_line))],
            )

    def _seed_bytes(self, ctx: AuditContext, path: str | None, sc: Any, mine: list[SeedRun]) -> Iterable[Finding]:
        """A per-seed artifact claim smaller than every log of that seed understates the size."""
        logged = [r for r in mine if r.artifact_bytes is not None]
        if sc.artifact_bytes is None or not logged:
            return
        if any(sc.artifact_bytes >= (r.artifact_bytes or 0) for r in logged):
            return
        r = min(logged, key=lambda x: x.artifact_bytes or 0)
        yield self.finding(
            f"{path}: seed {sc.seed} claims an artifact of {sc.artifact_bytes:,} bytes, but its log {r.log_path} "
            f"reports {r.artifact_bytes:,} bytes (R-SUB-JSON, R-ARTIFACT-CAP). The per-seed size must be the logged "
            "total (code + compressed model), not the model alone.",
            path=path, severity=Severity.WARNING, key=f"seed-bytes:{sc.seed}",
            evidence=[Evidence("logged total", r.log_path, r.artifact_line, excerpt(ctx, r.log_path, r.artifact_line))],
        )

    # -- val_bpb_std ---------------------------------------------------------------------------
    def _std(self, path: str | None, claims: Any, runs: list[SeedRun]) -> Iterable[Finding]:
        """Which std the claim used: submissions print ddof=1 or ddof=0 (REFERENCE.md 2.1)."""
        claimed = claims.val_bpb_std
        values = [r.val_bpb for r in runs if r.val_bpb is not None]
        if claimed is None or len(values) < 2:
            return
        _, sd1, sd0 = mean_std(values)
        tol = tolerance(claimed)
        which = [name for name, v in (("ddof=1", sd1), ("ddof=0", sd0)) if v is not None and abs(v - claimed) <= tol]
        text = (f"matches the logs' {which[0]} standard deviation" if which else
                f"matches neither the logs' ddof=1 ({sd1:.8f}) nor ddof=0 ({sd0:.8f}) standard deviation")
        yield self.finding(
            f"{path}: val_bpb_std = {claimed} {text} over {len(values)} logged runs.",
            path=path, severity=Severity.INFO, key="std",
            evidence=[Evidence(f"ddof=1 {sd1:.8f}, ddof=0 {sd0:.8f}")],
        )

    # -- bytes_total -------------------------------------------------------------------------
    def _bytes_total(self, ctx: AuditContext, path: str | None, claims: Any, runs: list[SeedRun]) -> Iterable[Finding]:
        claimed = getattr(claims, "bytes_total", None)
        logged = [r for r in runs if r.artifact_bytes is not None]
        if not isinstance(claimed, int) or not logged:
            return
        sizes = [r.artifact_bytes for r in logged if r.artifact_bytes is not None]
        largest = max(sizes)
        mean = math.fsum(sizes) / len(sizes)
        key = claims.bytes_total_key or "bytes_total"
        seeds = claimed_seeds(ctx)
        if "mean" in key and seeds and not set(seeds) <= {run_seed(r) for r in logged}:
            return  # a mean over seeds whose logs are not all here cannot be recomputed
        if claimed in sizes or claimed >= largest or abs(claimed - mean) <= 1:
            return
        r = max(logged, key=lambda x: x.artifact_bytes or 0)
        yield self.finding(
            f"{path}: {key} = {claimed:,} is smaller than the largest logged artifact ({largest:,} bytes in "
            f"{r.log_path}) and matches no seed (R-SUB-JSON). bytes_total is conventionally the largest per-seed "
            "total, so that the claim covers every seed; use the logged value.",
            path=path, severity=Severity.WARNING, key="bytes-total",
            evidence=[Evidence("largest logged total", r.log_path, r.artifact_line,
                               excerpt(ctx, r.log_path, r.artifact_line))],
        )

