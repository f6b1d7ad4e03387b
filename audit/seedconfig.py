"""Which runs of a submission are one configuration: the grouping the claim and the seed count rest on.

The claimed val_bpb must be the mean over seeds of the one submitted configuration (#2124), and a
record needs three of them (#1902). Logged hyperparameter keys fall in three kinds (`key_kind`):
identity and logging keys (seed, run_id, logfile, intervals, output paths), values the script
derives from the seed (found by following its assignments, `audit.analysis.api.seed_derived_names`),
and result-affecting keys, to which the sha256 of the code each log embeds is added. The submitted
configuration is the one most of the claim's runs share on the result-affecting keys; a run that
disagrees with it on a key both dumped is "odd". Computed once per folder and shared by
R-SUB-SEEDS-SAME-CONFIG and R-SUB-JSON.claims-match-logs.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field

from audit.context import AuditContext
from audit.logs import SeedRun
from audit.seeds import claimed_seeds, is_non_record, run_seed, scored_runs

CODE_KEY = "<embedded source sha256>"
# Keys that name the run or steer its logging/output: a difference between seeds is only a note.
_IDENTITY_KEY = re.compile(
    r"^(seed|run_id|run_name|logfile|log_file|log_dir|logdir|exp_name|experiment|tag|host|hostname|"
    r"rank|local_rank|job_id|uuid|timestamp|date|wandb\w*)$"
    r"|(_path|_dir|_file|_files|_name)$|^(out|output|save|checkpoint|ckpt|artifact)_?"
    r"|(_every|_interval|_freq|_frequency)$|^(log|print|val_log)_",
    re.IGNORECASE,
)


@dataclass
class ConfigGroups:
    """The claim's runs sorted against the submitted configuration."""

    derived: set[str]
    configs: list[tuple[SeedRun, dict[str, str]]] = field(default_factory=list)
    reference: dict[str, str] = field(default_factory=dict)  # result-affecting keys of the submitted config
    ref_run: SeedRun | None = None
    ref_cfg: dict[str, str] = field(default_factory=dict)
    odd: list[tuple[SeedRun, dict[str, str]]] = field(default_factory=list)

    def agrees(self, cfg: dict[str, str]) -> bool:
        return _agrees(affecting(cfg, self.derived), self.reference)


def claim_pool(ctx: AuditContext) -> list[SeedRun]:
    """The runs behind the claim: those of the claimed seeds, else (record track) every scored run.
    Ablation logs of a non-record study without a seed claim are not a claim."""
    scored = scored_runs(ctx)
    seeds = set(claimed_seeds(ctx))
    if seeds:
        return [r for r in scored if run_seed(r) in seeds]
    return [] if is_non_record(ctx) else list(scored)


def config_groups(ctx: AuditContext) -> ConfigGroups | None:
    """None when fewer than two seeds of the claim dumped a configuration (nothing to compare)."""
    return ctx.memo("seedconfig.groups", lambda: _groups(ctx))


def odd_run_ids(ctx: AuditContext) -> set[int]:
    groups = config_groups(ctx)
    return {id(r) for r, _ in groups.odd} if groups is not None else set()


def _groups(ctx: AuditContext) -> ConfigGroups | None:
    from audit.analysis.api import seed_derived_names  # the analysis layer imports audit.seeds

    runs = claim_pool(ctx)
    configs = [(r, config_of(r)) for r in runs if r.hyperparameters or r.embedded_source]
    if len({run_seed(r) for r, _ in configs}) < 2:
        return None
    derived = seed_derived_names(ctx)
    frozen = Counter(frozenset(affecting(c, derived).items()) for _, c in configs)
    reference = dict(frozen.most_common(1)[0][0])
    ref_run, ref_cfg = next((r, c) for r, c in configs if affecting(c, derived) == reference)
    groups = ConfigGroups(derived, configs, reference, ref_run, ref_cfg)
    groups.odd = [(r, c) for r, c in configs if not groups.agrees(c)]
    return groups


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


def affecting(cfg: dict[str, str], derived: set[str]) -> dict[str, str]:
    return {k: v for k, v in cfg.items() if key_kind(k, derived) == "result"}


def differing(a: dict[str, str], b: dict[str, str]) -> list[str]:
    return sorted(k for k in set(a) & set(b) if a[k] != b[k])


def _agrees(cfg: dict[str, str], reference: dict[str, str]) -> bool:
    """Same values on every key both dumps have (a key dumped by one only is a code-version change)."""
    return all(cfg[k] == reference[k] for k in set(cfg) & set(reference))


def config_of(run: SeedRun) -> dict[str, str]:
    cfg = {k.lower(): str(v).strip() for k, v in run.hyperparameters.items()}
    if run.embedded_source is not None:
        cfg[CODE_KEY] = hashlib.sha256(run.embedded_source.rstrip("\n").encode("utf-8")).hexdigest()[:16]
    return cfg
