"""R-SUB-SEEDS-SAME-CONFIG: three or more seeds, each log the seed it says, all one configuration."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from audit.context import AuditContext
from audit.findings import Evidence, Finding, Severity
from audit.logs import SeedRun
from audit.rule import FILE, FOLDER, Invalid, Rule, RuleDoc, Valid
from audit.seeds import claimed_seeds, excerpt, is_non_record, run_seed, scored_runs, seed_runs, seed_table
from rules._meta_examples import SEEDS, folder, log

MIN_SEEDS = 3
# Keys that legitimately differ between the seeds of one configuration.
_IGNORED_KEY = re.compile(
    r"seed|run_id|run_name|path|dir|file|log|output|out_|artifact_name|timestamp|date|time_stamp|host|"
    r"rank|job|uuid|wandb|checkpoint|save",
    re.IGNORECASE,
)


class SeedsSameConfig(Rule):
    ID = "R-SUB-SEEDS-SAME-CONFIG"
    TITLE = "Record claims rest on >= 3 seeds of one configuration, each log the seed it names"
    SEVERITY = Severity.WARNING
    KIND = "meta"
    SOURCE = (
        "RULES.md R-SUB-SEEDS-SAME-CONFIG / R-SUB-FILES: https://github.com/openai/parameter-golf/pull/2124 ; "
        "https://github.com/openai/parameter-golf/pull/1902 ; https://github.com/openai/parameter-golf/pull/561"
    )
    DOC = RuleDoc(
        why="A leaderboard row needs a 3-seed mean from the same submitted configuration, with "
            "consistent timing and artifact evidence for each seed.",
        ruling="RULING (cocohearts on #2124); #1902 excluded \"single-seed tiny-margin rows\" and "
               "\"missing-evidence submissions\".",
        date="RULES.md gives no date for this ruling",
        sources=(
            "https://github.com/openai/parameter-golf/pull/561",
            "https://github.com/openai/parameter-golf/pull/2124",
            "https://github.com/openai/parameter-golf/pull/1902",
        ),
    )
    ALSO_REPORTS = ("R-SUB-SEEDS-SAME-CONFIG.seed-count", "R-SUB-SEEDS-SAME-CONFIG.seed-name")
    VALID = [
        Valid(folder(), "three seeds, same configuration"),
        Valid(
            folder({"train.log": log(1337, 2.0727), **{f"train_seed{s}.log": log(s, v) for s, v in SEEDS}}),
            "train.log duplicates the seed-1337 run (the same seed twice is not a mismatch)",
        ),
        Valid(
            folder({"train_seed1337.log": log(1337, 2.0727)}, json_extra={"track": "non-record-16mb"}),
            "non-record track: one seed is enough",
        ),
    ]
    INVALID = [
        Invalid(
            folder({"train_seed1337.log": log(1337, 2.0727), "train_seed42.log": log(42, 2.0739)}),
            "only two seeds for a record claim",
            rule_id="R-SUB-SEEDS-SAME-CONFIG.seed-count", path=FOLDER,
        ),
        Invalid(
            folder({"train_seed1337.log": log(1337, 2.0727), "train_seed42.log": log(1337, 2.0739),
                    "train_seed2025.log": log(2025, 2.0718)}),
            "train_seed42.log was run with seed 1337",
            rule_id="R-SUB-SEEDS-SAME-CONFIG.seed-name", path="train_seed42.log", line="seed:1337",
        ),
        Invalid(
            folder({**{f"train_seed{s}.log": log(s, v) for s, v in SEEDS[:2]},
                    "train_seed2025.log": log(2025, 2.0718, iterations=9_000)}),
            "the third seed ran with a different iteration count", path="train_seed2025.log", line=FILE,
        ),
    ]

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        seed_table(ctx)
        runs = seed_runs(ctx)
        for run in runs:
            yield from self._seed_name(ctx, run)
        scored = scored_runs(ctx)
        if not is_non_record(ctx) and scored:
            yield from self._seed_count(scored)
        yield from self._same_config(ctx, scored)

    def _seed_name(self, ctx: AuditContext, run: SeedRun) -> Iterable[Finding]:
        if run.seed is None or run.seed_from_name is None or run.seed == run.seed_from_name:
            return
        path = run.log_path
        yield self.finding(
            f"{path}: the file name says seed {run.seed_from_name} but the log was run with seed {run.seed} "
            "(R-SUB-SEEDS-SAME-CONFIG). Reviewers count seeds from the logs; a mislabelled log can hide that "
            "two 'seeds' are the same run. Rename the file or include the run for the named seed.",
            path=path, line=run.seed_line, rule_id="R-SUB-SEEDS-SAME-CONFIG.seed-name", key=f"name:{path}",
            evidence=[Evidence("seed logged inside", path, run.seed_line, excerpt(ctx, path, run.seed_line)),
                      Evidence(f"seed in the file name: {run.seed_from_name}", path)],
        )

    def _seed_count(self, scored: list[SeedRun]) -> Iterable[Finding]:
        seeds = {run_seed(r) for r in scored}
        seeds.discard(None)
        n = len(seeds)
        if n >= MIN_SEEDS:
            return
        listed = ", ".join(str(s) for s in sorted(s for s in seeds if s is not None)) or "none logged"
        yield self.finding(
            f"The logs show {n} distinct seed(s) ({listed}) with a final score; a record-track row needs a "
            f"mean over at least {MIN_SEEDS} seeds of the submitted configuration (R-SUB-SEEDS-SAME-CONFIG; "
            "single-seed rows were excluded in #1902, and #561 asks for the logs backing each claimed seed). "
            "Add the logs of the missing seeds.",
            rule_id="R-SUB-SEEDS-SAME-CONFIG.seed-count", key="count",
            evidence=[Evidence(f"seed {run_seed(r)}: val_bpb {r.val_bpb}", r.log_path, r.score_line) for r in scored],
        )

    def _same_config(self, ctx: AuditContext, scored: list[SeedRun]) -> Iterable[Finding]:
        """Each claimed seed must have a run with the configuration most of the claim's runs share.

        Only the runs behind the claim are compared: those of the claimed seeds, else (record track)
        every scored run. Ablation logs of a non-record study without a seed claim are not a claim.
        """
        seeds = set(claimed_seeds(ctx))
        if seeds:
            runs = [r for r in scored if run_seed(r) in seeds]
        elif not is_non_record(ctx):
            runs = list(scored)
        else:
            return
        configs = [(r, _config(r)) for r in runs if r.hyperparameters]
        if len({run_seed(r) for r, _ in configs}) < 2:
            return
        frozen = Counter(frozenset(c.items()) for _, c in configs)
        reference = dict(frozen.most_common(1)[0][0])
        ref_run = next(r for r, c in configs if c == reference)
        by_seed: dict[object, list[tuple[SeedRun, dict[str, str]]]] = {}
        for r, c in configs:
            by_seed.setdefault(run_seed(r), []).append((r, c))
        for seed_runs_ in by_seed.values():
            if any(_agrees(c, reference) for _, c in seed_runs_):
                continue
            run, cfg = seed_runs_[0]
            diff = sorted(k for k in set(reference) & set(cfg) if reference[k] != cfg[k])
            shown = "; ".join(f"{k}: {reference[k]} vs {cfg[k]}" for k in diff[:6])
            more = f" (+{len(diff) - 6} more)" if len(diff) > 6 else ""
            yield self.finding(
                f"{run.log_path} (seed {run_seed(run)}) was run with a different configuration from "
                f"{ref_run.log_path}: {shown}{more} (R-SUB-SEEDS-SAME-CONFIG). The claimed mean must come from "
                "seeds of the one submitted configuration (a third seed from another config was rejected on "
                "#2124). Re-run the odd seed with the submitted settings, or explain the difference in the README.",
                path=run.log_path, key=f"config:{run.log_path}",
                evidence=[Evidence(f"{k}: {reference[k]} in {ref_run.log_path}, {cfg[k]} in {run.log_path}",
                                   run.log_path) for k in diff[:6]],
            )


def _agrees(cfg: dict[str, str], reference: dict[str, str]) -> bool:
    """Same values on every key both dumps have (a key dumped by one only is a code-version change)."""
    return all(cfg[k] == reference[k] for k in set(cfg) & set(reference))


def _config(run: SeedRun) -> dict[str, str]:
    cfg = run.config_for_comparison()
    return {k.lower(): str(v).strip() for k, v in cfg.items() if not _IGNORED_KEY.search(k)}
