"""R-REC-SIGNIFICANCE and R-REC-PROGRESSION: does a record beat the reference run set, and how surely?

Both tests of RULES.md §G are computed by the engine (audit/run_stats.py, audit/stats.py) into
`ctx.stats["significance"]`, so every report has them; this rule turns them into findings:
the README criterion (0.005 nats at p < 0.01; verdict per byte, see stats.py for why) and the
leaderboard practice (one-sided Welch p < 0.25 vs the previous frontier row). Both are warnings:
the practice diverged from the README, so neither result alone is a maintainer's ruling.
Without `--sota` nothing is compared and an info note says so (the seed count itself is
R-SUB-SEEDS-SAME-CONFIG's business).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from audit.context import AuditContext
from audit.enforcement import applies, enforce
from audit.findings import Evidence, Finding, Severity
from audit.rule import FILE, Invalid, Rule, RuleDoc, Valid
from audit.run_stats import new_runset, significance_of
from audit.sota import load_reference
from audit.stats import README_ALPHA, README_MARGIN_NATS, RunSet
from rules._meta_examples import folder, log

SOURCE = (
    "RULES.md R-REC-SIGNIFICANCE (README 'Submission Process') and R-REC-PROGRESSION: "
    "https://github.com/openai/parameter-golf/pull/1902 ; https://github.com/openai/parameter-golf/pull/2146 ; "
    "https://github.com/openai/parameter-golf/issues/2148"
)


@dataclass(frozen=True)
class _Where:
    """Where the significance findings point: the claims file, with each seed's score line as evidence."""

    path: str | None
    evidence: list[Evidence]


class RecSignificance(Rule):
    """A record must show its improvement over SOTA is real: README test and leaderboard practice."""

    ID = "R-REC-SIGNIFICANCE"
    TITLE = "Record beats the reference run set significantly (README 0.005 nats at p<0.01; practice p<0.25)"
    SEVERITY = Severity.WARNING
    KIND = "meta"
    SOURCE = SOURCE
    DOC = RuleDoc(
        why="A new record must beat the existing SOTA by at least 0.005 nats and provide enough "
            "run logs to show at p < 0.01 that the 0.005-nat improvement was achieved. Waived for"
            " pure systems (speed) optimizations that do not change the ML.",
        ruling="README (unchanged at HEAD and in the #1902/#2146 heads). In practice "
               "(R-REC-PROGRESSION) cocohearts' leaderboard updates (#1899/#1900, #1902, #2146) "
               "accepted a row whose evidence beats the previous chronological frontier row at "
               "one-sided Welch p < 0.25, with no 0.005-nat margin.",
        date="README rule, as RULES.md quotes it from the README at HEAD (4908dc46f, 2026-05-02; the "
             "challenge ran 2026-03-18 to 2026-04-30); RULES.md gives no date for when it was written. "
             "The practice's grace cutoff is 2026-05-01 17:00 PT (#2146); the leaderboard updates "
             "that applied it are not dated in RULES.md",
        sources=(
            "README 'Submission Process'",
            "https://github.com/openai/parameter-golf/pull/1899",
            "https://github.com/openai/parameter-golf/pull/1900",
            "https://github.com/openai/parameter-golf/pull/1902",
            "https://github.com/openai/parameter-golf/pull/2146",
            "https://github.com/openai/parameter-golf/issues/2148",
            "https://github.com/openai/parameter-golf/pull/1967",
        ),
    )
    ALSO_REPORTS = ("R-REC-PROGRESSION",)
    VALID = [
        Valid(folder(), "three seeds and no --sota: nothing to compare, so no warning (only a note)"),
        Valid(folder({"train.log": log(1337, 2.07)}, json_extra={"track": "non_record_16mb"}),
              "a single-run non-record submission needs no significance"),
    ]
    # The examples run without --sota, so they can only show the "not tested" note; the comparison
    # itself (both tests, both warnings) is exercised in tests/test_stats.py with a reference file.
    INVALID = [
        Invalid(folder(), "a record audited without --sota: significance is reported as not tested",
                severity=Severity.INFO, path="submission.json", line=FILE),
    ]

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        yield from enforce(ctx, self._check(ctx))

    def _check(self, ctx: AuditContext) -> Iterable[Finding]:
        sig = significance_of(ctx)  # computed by the engine (audit.run_stats) for the report
        if sig is None or not applies(ctx, self.ID):
            return
        new, evidence = new_runset(ctx)
        where = _Where(ctx.submission.json_path, evidence)
        if ctx.options.sota is None:
            if new.val_bpb:
                yield self.finding(
                    "Significance against the current SOTA was not tested: no reference run set was given "
                    "(R-REC-SIGNIFICANCE, R-REC-PROGRESSION). "
                    "Re-run with --sota pointing at the previous record's folder or per-seed results to get the "
                    "README test (0.005 nats at p < 0.01) and the leaderboard practice (Welch p < 0.25).",
                    severity=Severity.INFO, key="not-tested", path=where.path, evidence=where.evidence,
                )
            return
        if "practice" not in sig:
            return
        ref = load_reference(ctx.options.sota)
        if sig["practice"] is None:
            yield self.finding(
                f"Both this submission and the reference {ref.name!r} have a single run, so no t-test is "
                "possible (R-REC-SIGNIFICANCE). Add the logs of more seeds.",
                key="no-test", path=where.path, evidence=where.evidence,
            )
            return
        yield from self._practice(sig["practice"], ref, where)
        yield from self._readme(sig["readme"], ref, where)

    def _practice(self, res: dict, ref: RunSet, where: _Where) -> Iterable[Finding]:
        if res["passed"]:
            return
        yield self.finding(
            f"Against {ref.name!r} the one-sided Welch test on per-seed val_bpb gives p = {res['p']:.4f} "
            f"(mean {res['mean_new']:.6f}, n={res['n_new']} vs {res['mean_ref']:.6f}, n={res['n_ref']}), not "
            f"below the {res['alpha']} the maintainers applied to the chronological frontier (R-REC-PROGRESSION). "
            "The leaderboard would not add this row; more seeds or a larger improvement are needed.",
            rule_id="R-REC-PROGRESSION", key="practice", path=where.path, evidence=where.evidence,
        )

    def _readme(self, res: dict | None, ref: RunSet, where: _Where) -> Iterable[Finding]:
        if res is None or res["passed"]:
            return
        part = res["per_byte"] if res["verdict_unit"] == "nats/byte" else res["per_token"]
        other = res["per_token"] if part is res["per_byte"] else None
        also = ""
        if other is not None:
            also = (f" Per token the improvement is {other['improvement']:.5f} nats/token (p = {other['p']:.4f}"
                    f"{'' if other.get('comparable') else '; different tokenizers, not comparable'}).")
        yield self.finding(
            f"Against {ref.name!r} the improvement is {part['improvement']:.5f} {part['unit']}; the README "
            f"criterion needs at least {README_MARGIN_NATS} nats shown at p < {README_ALPHA}, and the one-sided "
            f"test of that margin gives p = {part['p']:.4f} (R-REC-SIGNIFICANCE). The verdict is in "
            f"{res['verdict_unit']} ({res['why_unit']}).{also} Maintainers applied a weaker test in practice "
            "(R-REC-PROGRESSION), so a reviewer decides.",
            key="readme", path=where.path, evidence=where.evidence,
        )
