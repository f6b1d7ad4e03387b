"""R-DATA-FULL-COVERAGE: the reported val_bpb is computed on the whole validation split."""

from __future__ import annotations

import re
from collections.abc import Iterable

from audit.context import AuditContext
from audit.findings import Evidence, Finding, Severity
from audit.logs import SeedRun
from audit.rule import FILE, README_RULE_DATE, Invalid, Rule, RuleDoc, Valid
from audit.seeds import seed_runs, seed_table
from audit.tokfamily import FULL_VAL_TOKENS, TRUNCATION_SLACK, any_known_count, family, log_body
from rules._meta_examples import SEEDS, folder, log

# Knobs that score only part of the split when set to a positive number.
SUBSET_KNOBS = ("val_token_limit", "ppm_subset_tokens", "val_tokens_limit", "val_max_tokens", "eval_max_tokens")
_KNOB_RE = re.compile(r"\b(" + "|".join(SUBSET_KNOBS) + r")\s*[:=]\s*(-?[\d.e+]+)", re.IGNORECASE)
# A shortfall of more than 1 % cannot be truncation: a subset was scored.
SUBSET_FRACTION = 0.99


def _seq_lens(run: SeedRun) -> list[int]:
    """Logged train/eval sequence lengths: the reference eval drops up to one length of tail tokens."""
    out = []
    for k, v in run.hyperparameters.items():
        if k.lower() in ("train_seq_len", "eval_seq_len", "seq_len", "context_length"):
            try:
                out.append(int(float(v)))
            except ValueError:
                continue
    return out


class DataFullCoverage(Rule):
    ID = "R-DATA-FULL-COVERAGE"
    TITLE = "The score covers the full validation split"
    SEVERITY = Severity.ERROR
    KIND = "meta"
    SOURCE = (
        "RULES.md R-DATA-FULL-COVERAGE / R-DATA-VAL-SPLIT: README ('Validation always runs on the full "
        "fineweb_val_* split'); https://github.com/openai/parameter-golf/pull/1785 ; "
        "https://github.com/openai/parameter-golf/pull/1881 ; https://github.com/openai/parameter-golf/pull/2146"
    )
    DOC = RuleDoc(
        why="The reported val_bpb must be computed over the full validation split, not a subset.",
        ruling="README (\"Validation always runs on the full fineweb_val_* split\"); DE-FACTO (PPM "
               "mixtures reported on 3M/5M/8M-token subsets were challenged and excluded; "
               "cocohearts checked `val_tokens` in #2146).",
        date=README_RULE_DATE,
        sources=(
            "https://github.com/openai/parameter-golf/pull/1785",
            "https://github.com/openai/parameter-golf/pull/1881",
            "https://github.com/openai/parameter-golf/pull/2146",
        ),
    )
    VALID = [
        Valid(folder(), "sp1024 with 62,021,632 val tokens"),
        Valid(
            folder({f"train_seed{s}.log": log(s, v, val_tokens=63_779_840) for s, v in SEEDS}),
            "the older sp1024 export (first baseline log)",
        ),
        Valid(
            folder({f"train_seed{s}.log": log(s, v, val_tokens=47_853_343, vocab_size=8192,
                                              dataset="fineweb10B_sp8192_caseops",
                                              tokenizer="./tok/fineweb_8192_bpe_lossless_caps.model")
                    for s, v in SEEDS}),
            "CaseOps sp8192, untruncated count",
        ),
        Valid(
            folder({f"train_seed{s}.log": log(s, v, extra=("ppm_subset_tokens: 0",)) for s, v in SEEDS}),
            "a subset knob present but off",
        ),
        Valid(
            folder({f"train_seed{s}.log": log(s, v, val_tokens=61_997_056, extra=("eval_seq_len:32768",))
                    for s, v in SEEDS}),
            "32k-token eval windows drop up to 32,767 tail tokens",
        ),
    ]
    INVALID = [
        Invalid(
            folder({f"train_seed{s}.log": log(s, v, val_tokens=5_000_000) for s, v in SEEDS}),
            "scored on a 5M-token subset", path="train_seed1337.log", line=FILE,
        ),
        Invalid(
            folder({f"train_seed{s}.log": log(s, v, val_tokens=40_540_160, vocab_size=8192,
                                              extra=("ppm_subset_tokens: 8000000",)) for s, v in SEEDS}),
            "the PPM mixture is scored on the first 8M tokens only", path="train_seed1337.log", line=FILE,
        ),
    ]

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        seed_table(ctx)
        for run in seed_runs(ctx):
            tf = ctx.submission.logs.get(run.log_path)
            body = log_body(tf.text or "", run) if tf is not None else ""
            yield from self._check_count(run, body)
            yield from self._check_knobs(run, body)

    def _check_count(self, run: SeedRun, body: str) -> Iterable[Finding]:
        tokens = run.val_tokens
        if tokens is None:
            return
        path = run.log_path
        fam = family(run, body)
        counts = FULL_VAL_TOKENS.get(fam or "")
        if counts is None:
            known = any_known_count(tokens)
            if known is None:
                yield self.finding(
                    f"{path}: {tokens:,} validation tokens, and the tokenizer family "
                    f"({fam or 'not logged'}) has no known full-split count; a reviewer should confirm the "
                    "whole fineweb_val split (50,000 documents) was scored (R-DATA-FULL-COVERAGE).",
                    path=path, severity=Severity.INFO, key=f"unknown:{path}",
                    evidence=[Evidence("val_tokens in the log", path)],
                )
            return
        slack = max([TRUNCATION_SLACK, *_seq_lens(run)])
        if any(c - slack <= tokens <= c + TRUNCATION_SLACK for c in counts):
            return
        expected = " or ".join(f"{c:,}" for c in counts)
        if tokens < SUBSET_FRACTION * min(counts):
            yield self.finding(
                f"{path}: the run scored {tokens:,} validation tokens, {tokens / min(counts):.1%} of the full "
                f"{fam} validation split ({expected}) (R-DATA-FULL-COVERAGE). The reported val_bpb must cover "
                "every document of fineweb_val; scores on a subset were excluded from the leaderboard. Evaluate "
                "on the full split and report that number.",
                path=path, key=f"subset:{path}",
                evidence=[Evidence(f"val_tokens {tokens:,} vs {fam} full split {expected}", path)],
            )
        else:
            yield self.finding(
                f"{path}: {tokens:,} validation tokens, which is not the known {fam} count ({expected}); "
                "the difference is too large for eval-length truncation. Check that the standard validation "
                "shards were used (R-DATA-FULL-COVERAGE / R-DATA-VAL-SPLIT).",
                path=path, severity=Severity.WARNING, key=f"odd:{path}",
                evidence=[Evidence(f"val_tokens {tokens:,} vs {fam} full split {expected}", path)],
            )

    def _check_knobs(self, run: SeedRun, body: str) -> Iterable[Finding]:
        settings = {k.lower(): v for k, v in run.hyperparameters.items() if k.lower() in SUBSET_KNOBS}
        for m in _KNOB_RE.finditer(body[:200_000]):
            settings.setdefault(m.group(1).lower(), m.group(2))
        for key, value in sorted(settings.items()):
            try:
                n = int(float(value))
            except ValueError:
                continue
            if n <= 0:
                continue
            if run.val_tokens is not None and n >= run.val_tokens:
                continue
            yield self.finding(
                f"{run.log_path}: {key}={value} limits scoring to the first {n:,} validation tokens "
                "(R-DATA-FULL-COVERAGE). The reported val_bpb must be computed on the whole split; subset "
                "scores (3M/5M/8M-token PPM runs) were excluded. Set the knob to 0 and re-evaluate.",
                path=run.log_path, key=f"knob:{run.log_path}:{key}",
                evidence=[Evidence(f"{key}: {value} in the logged configuration", run.log_path)],
            )
