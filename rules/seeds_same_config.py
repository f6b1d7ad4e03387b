"""R-SUB-SEEDS-SAME-CONFIG: three or more seeds, each log the seed it says, all one configuration."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable

from audit.analysis.api import seed_derived_names
from audit.context import AuditContext
from audit.enforcement import applies, enforce
from audit.findings import Evidence, Finding, Severity
from audit.logs import SeedRun
from audit.rule import Invalid, Rule, Valid
from audit.seeds import claimed_seeds, excerpt, is_non_record, run_seed, scored_runs, seed_runs, seed_table
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
            rule_id="R-SUB-SEEDS-SAME-CONFIG.seed-count",
        ),
        Invalid(
            folder({"train_seed1337.log": log(1337, 2.0727), "train_seed42.log": log(1337, 2.0739),
                    "train_seed2025.log": log(2025, 2.0718)}),
            "train_seed42.log was run with seed 1337",
            rule_id="R-SUB-SEEDS-SAME-CONFIG.seed-name",
        ),
        Invalid(
            folder({"train_seed1337.log": log(1337, 2.0727), "train_seed42.log": log(42, 2.0739)}),
            "two seeds in a folder merged before #1902 (2026-04-29): a warning",
            rule_id="R-SUB-SEEDS-SAME-CONFIG.seed-count", severity=Severity.WARNING,
            options={"as_of": "2026-04-09"},
        ),
        Invalid(_THIRD_OTHER_CONFIG, "the third seed ran with a different iteration count (#2124)",
                severity=Severity.ERROR),
        Invalid(_THIRD_OTHER_CONFIG, "so only two seeds of the submitted configuration remain",
                rule_id="R-SUB-SEEDS-SAME-CONFIG.seed-count", severity=Severity.ERROR),
        Invalid(_THIRD_OTHER_CONFIG, "the same folder merged before the #2124 ruling: a warning",
                severity=Severity.WARNING, options={"as_of": "2026-04-20"}),
        Invalid(
            folder({**{f"train_seed{s}.log": log(s, v) for s, v in SEEDS[:2]},
                    "train_seed2025.log": log(2025, 2.0718, source=SCRIPT + "LR_BOOST = 2.0\n")}),
            "the third seed's log embeds different code (the code hash differs)",
            severity=Severity.ERROR,
        ),
    ]

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        yield from enforce(ctx, self._check(ctx))

    def _check(self, ctx: AuditContext) -> Iterable[Finding]:
        seed_table(ctx)
        runs = seed_runs(ctx)
        for run in runs:
            yield from self._seed_name(ctx, run)
        scored = scored_runs(ctx)
        pool = _claim_pool(ctx, scored)
        odd: set[int] = set()
        if pool:
            findings, odd = self._same_config(ctx, pool)
            yield from findings
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

    def _same_config(self, ctx: AuditContext, runs: list[SeedRun]) -> tuple[list[Finding], set[int]]:
        """Each claimed seed must have a run with the configuration most of the claim's runs share.

        Logged keys fall in three kinds (see `key_kind`): identity and logging keys (a difference
        is a note), values the script derives from the seed (no finding), and everything else,
        which affects the result; with the code each log embeds, a difference there means the
        seeds are not one configuration (#2124). Returns the findings and the ids of odd runs.
        """
        out: list[Finding] = []
        derived = seed_derived_names(ctx)
        configs = [(r, _config(r)) for r in runs if r.hyperparameters or r.embedded_source]
        if len({run_seed(r) for r, _ in configs}) < 2:
            return out, set()
        frozen = Counter(frozenset(_affecting(c, derived).items()) for _, c in configs)
        reference = dict(frozen.most_common(1)[0][0])
        ref_run, ref_cfg = next((r, c) for r, c in configs if _affecting(c, derived) == reference)
        by_seed: dict[object, list[tuple[SeedRun, dict[str, str]]]] = {}
        for r, c in configs:
            by_seed.setdefault(run_seed(r), []).append((r, c))
        odd: set[int] = set()
        notes: dict[str, tuple[str, str]] = {}
        for seed_runs_ in by_seed.values():
            agreeing = [(r, c) for r, c in seed_runs_ if _agrees(_affecting(c, derived), reference)]
            for r, c in seed_runs_:
                if (r, c) not in agreeing:
                    odd.add(id(r))
            for _, c in agreeing:
                for k in _differing(ref_cfg, c):
                    if key_kind(k, derived) == "identity" and k != "seed":
                        notes.setdefault(k, (ref_cfg[k], c[k]))
            if agreeing:
                continue
            run, cfg = seed_runs_[0]
            diff = [k for k in _differing(ref_cfg, cfg) if key_kind(k, derived) == "result"]
            shown = "; ".join(f"{k}: {_short(ref_cfg[k])} vs {_short(cfg[k])}" for k in diff)
            out.append(self.finding(
                f"{run.log_path} (seed {run_seed(run)}) was run with a different configuration from "
                f"{ref_run.log_path}; every differing result-affecting key: {shown} (R-SUB-SEEDS-SAME-CONFIG). "
                "The claimed mean must come from seeds of the one submitted configuration (a third seed from "
                "another config was rejected on #2124). Re-run the odd seed with the submitted settings.",
                path=run.log_path, key=f"config:{run.log_path}", severity=Severity.ERROR,
                evidence=[Evidence(f"{k}: {_short(ref_cfg[k])} in {ref_run.log_path}, {_short(cfg[k])} in "
                                   f"{run.log_path}", run.log_path) for k in diff],
            ))
        if notes:
            out.append(self.finding(
                "Identity and logging keys differ between the seeds (no effect on the result): "
                + "; ".join(f"{k}: {_short(a)} vs {_short(b)}" for k, (a, b) in sorted(notes.items())) + ".",
                severity=Severity.INFO, key="identity-keys",
            ))
        return out, odd


def _claim_pool(ctx: AuditContext, scored: list[SeedRun]) -> list[SeedRun]:
    """The runs behind the claim: those of the claimed seeds, else (record track) every scored run.
    Ablation logs of a non-record study without a seed claim are not a claim."""
    seeds = set(claimed_seeds(ctx))
    if seeds:
        return [r for r in scored if run_seed(r) in seeds]
    return [] if is_non_record(ctx) else list(scored)


CODE_KEY = "<embedded source sha256>"
# Keys that name the run or steer its logging/output: a difference between seeds is only a note.
_IDENTITY_KEY = re.compile(
    r"^(seed|run_id|run_name|logfile|log_file|log_dir|logdir|exp_name|experiment|tag|host|hostname|"
    r"rank|local_rank|job_id|uuid|timestamp|date|wandb\w*)$"
    r"|(_path|_dir|_file|_files|_name)$|^(out|output|save|checkpoint|ckpt|artifact)_?"
    r"|(_every|_interval|_freq|_frequency)$|^(log|print|val_log)_",
    re.IGNORECASE,
)


def key_kind(key: str, derived: set[str]) -> str:
    """identity (names the run or its logging), derived (computed from the seed), or result."""
    k = key.lower()
    if k == CODE_KEY:
        return "result"
    if _IDENTITY_KEY.search(k):
        return "identity"
    if "seed" in k or k in derived or k.rsplit(".", 1)[-1] in derived:
        return "derived"
    return "result"


def _affecting(cfg: dict[str, str], derived: set[str]) -> dict[str, str]:
    return {k: v for k, v in cfg.items() if key_kind(k, derived) == "result"}


def _differing(a: dict[str, str], b: dict[str, str]) -> list[str]:
    return sorted(k for k in set(a) & set(b) if a[k] != b[k])


def _short(value: str) -> str:
    return value if len(value) <= 40 else value[:16] + "…" + value[-8:]


def _agrees(cfg: dict[str, str], reference: dict[str, str]) -> bool:
    """Same values on every key both dumps have (a key dumped by one only is a code-version change)."""
    return all(cfg[k] == reference[k] for k in set(cfg) & set(reference))


def _config(run: SeedRun) -> dict[str, str]:
    cfg = {k.lower(): str(v).strip() for k, v in run.hyperparameters.items()}
    if run.embedded_source is not None:
        cfg[CODE_KEY] = hashlib.sha256(run.embedded_source.rstrip("\n").encode("utf-8")).hexdigest()[:16]
    return cfg
