"""R-SUB-SEEDS-SAME-CONFIG: three or more seeds, each log the seed it says, all one configuration."""

from __future__ import annotations

from collections.abc import Iterable

from audit.context import AuditContext
from audit.enforcement import applies, enforce
from audit.findings import Evidence, Finding, Severity
from audit.logs import SeedRun
from audit.rule import FILE, FOLDER, Invalid, Rule, RuleDoc, Valid
from audit.seedconfig import ConfigGroups, config_groups, differing, key_kind, odd_run_ids
from audit.seeds import excerpt, run_seed, scored_runs, seed_runs, seed_table
from rules._meta_examples import SCRIPT, SEEDS, folder, log

# A script that derives a logged value from the seed under a name that does not say "seed".
_DERIVING = SCRIPT.replace("SEED = int(", "SHUFFLE_OFFSET = 0\nSEED = int(") + "SHUFFLE_OFFSET = SEED * 7\n"
_THIRD_OTHER_CONFIG = folder({**{f"train_seed{s}.log": log(s, v) for s, v in SEEDS[:2]},
                              "train_seed2025.log": log(2025, 2.0718, iterations=9_000)})

MIN_SEEDS = 3


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
        date="RULES.md gives no date; audit/enforcement.py dates the seed count to #1902 (merged "
             "2026-04-29) and one configuration to #2124 (2026-05-01): folders merged by then get a warning",
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
        Valid(
            folder({f"train_seed{s}.log": log(s, v, extra=(f"run_id:r{s} logfile:logs/r{s}.txt val_loss_every:"
                                                           f"{100 if s == 42 else 200}",)) for s, v in SEEDS}),
            "seeds differ only in identity and logging keys (run_id, logfile, val interval): a note",
        ),
        Valid(
            folder({f"train_seed{s}.log": log(s, v, source=_DERIVING, extra=(f"shuffle_offset:{s * 7}",))
                    for s, v in SEEDS}, script=_DERIVING),
            "a value the script derives from the seed (SHUFFLE_OFFSET = SEED * 7) differs with the seed",
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
            folder({"train_seed1337.log": log(1337, 2.0727), "train_seed42.log": log(42, 2.0739)}),
            "two seeds in a folder merged before #1902 (2026-04-29): a warning",
            rule_id="R-SUB-SEEDS-SAME-CONFIG.seed-count", severity=Severity.WARNING,
            options={"as_of": "2026-04-09"}, path=FOLDER,
        ),
        Invalid(_THIRD_OTHER_CONFIG, "the third seed ran with a different iteration count (#2124)",
                severity=Severity.ERROR, path="train_seed2025.log", line=FILE),
        Invalid(_THIRD_OTHER_CONFIG, "so only two seeds of the submitted configuration remain",
                rule_id="R-SUB-SEEDS-SAME-CONFIG.seed-count", severity=Severity.ERROR, path=FOLDER),
        Invalid(_THIRD_OTHER_CONFIG, "the same folder merged before the #2124 ruling: a warning",
                severity=Severity.WARNING, options={"as_of": "2026-04-20"}, path="train_seed2025.log", line=FILE),
        Invalid(
            folder({**{f"train_seed{s}.log": log(s, v) for s, v in SEEDS[:2]},
                    "train_seed2025.log": log(2025, 2.0718, source=SCRIPT + "LR_BOOST = 2.0\n")}),
            "the third seed's log embeds different code (the code hash differs)",
            severity=Severity.ERROR, path="train_seed2025.log", line=FILE,
        ),
    ]

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        yield from enforce(ctx, self._check(ctx))

    def _check(self, ctx: AuditContext) -> Iterable[Finding]:
        seed_table(ctx)
        for run in seed_runs(ctx):
            yield from self._seed_name(ctx, run)
        groups = config_groups(ctx)
        if groups is not None:
            yield from self._same_config(groups)
        scored = scored_runs(ctx)
        odd = odd_run_ids(ctx)
        if scored and applies(ctx, "R-SUB-SEEDS-SAME-CONFIG.seed-count"):
            yield from self._seed_count([r for r in scored if id(r) not in odd], len(odd))

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

    def _seed_count(self, scored: list[SeedRun], n_other_config: int) -> Iterable[Finding]:
        seeds = {run_seed(r) for r in scored}
        seeds.discard(None)
        n = len(seeds)
        if n >= MIN_SEEDS:
            return
        listed = ", ".join(str(s) for s in sorted(s for s in seeds if s is not None)) or "none logged"
        other = (f" ({n_other_config} more run(s) used another configuration and do not count)"
                 if n_other_config else "")
        yield self.finding(
            f"The logs show {n} distinct seed(s) of the submitted configuration ({listed}) with a final "
            f"score{other}; a record-track row needs a mean over at least {MIN_SEEDS} seeds of it "
            "(R-SUB-SEEDS-SAME-CONFIG: single-seed rows were excluded in #1902, and #561 asks for the logs "
            "backing each claimed seed). Add the logs of the missing seeds.",
            rule_id="R-SUB-SEEDS-SAME-CONFIG.seed-count", key="count", severity=Severity.ERROR,
            evidence=[Evidence(f"seed {run_seed(r)}: val_bpb {r.val_bpb}", r.log_path, r.score_line) for r in scored],
        )

    def _same_config(self, groups: ConfigGroups) -> Iterable[Finding]:
        """Each claimed seed must have a run with the submitted configuration (audit/seedconfig.py):
        every differing result-affecting key (and the embedded code's hash) is listed (#2124);
        identity and logging keys that differ are a note; values derived from the seed are not shown."""
        derived, ref_run, ref_cfg = groups.derived, groups.ref_run, groups.ref_cfg
        assert ref_run is not None
        by_seed: dict[object, list[tuple[SeedRun, dict[str, str]]]] = {}
        for r, c in groups.configs:
            by_seed.setdefault(run_seed(r), []).append((r, c))
        notes: dict[str, tuple[str, str]] = {}
        for seed_runs_ in by_seed.values():
            agreeing = [c for _, c in seed_runs_ if groups.agrees(c)]
            for c in agreeing:
                for k in differing(ref_cfg, c):
                    if key_kind(k, derived) == "identity" and k != "seed":
                        notes.setdefault(k, (ref_cfg[k], c[k]))
            if agreeing:
                continue
            run, cfg = seed_runs_[0]
            diff = [k for k in differing(ref_cfg, cfg) if key_kind(k, derived) == "result"]
            shown = "; ".join(f"{k}: {_short(ref_cfg[k])} vs {_short(cfg[k])}" for k in diff)
            yield self.finding(
                f"{run.log_path} (seed {run_seed(run)}) was run with a different configuration from "
                f"{ref_run.log_path}; every differing result-affecting key: {shown} (R-SUB-SEEDS-SAME-CONFIG). "
                "The claimed mean must come from seeds of the one submitted configuration (a third seed from "
                "another config was rejected on #2124). Re-run the odd seed with the submitted settings.",
                path=run.log_path, key=f"config:{run.log_path}", severity=Severity.ERROR,
                evidence=[Evidence(f"{k}: {_short(ref_cfg[k])} in {ref_run.log_path}, {_short(cfg[k])} in "
                                   f"{run.log_path}", run.log_path) for k in diff],
            )
        if notes:
            yield self.finding(
                "Identity and logging keys differ between the seeds (no effect on the result): "
                + "; ".join(f"{k}: {_short(a)} vs {_short(b)}" for k, (a, b) in sorted(notes.items())) + ".",
                severity=Severity.INFO, key="identity-keys",
            )


def _short(value: str) -> str:
    return value if len(value) <= 40 else value[:16] + "…" + value[-8:]
