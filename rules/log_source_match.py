"""R-SUB-SEEDS-SAME-CONFIG.log-source: the source embedded in each log is the submitted script."""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Iterable

from audit.analysis.api import same_syntax, wrapped_source
from audit.context import AuditContext
from audit.findings import Evidence, Finding, Severity
from audit.rule import FILE, Invalid, Rule, RuleDoc, Valid
from audit.seeds import seed_runs, seed_table
from rules._meta_examples import SCRIPT, SEEDS, folder, log

EDITED = SCRIPT.replace("torch.manual_seed(SEED)", "torch.manual_seed(SEED + 1)")
COMMENTED = SCRIPT.replace("def main():", "def main():  # entry point")


def normalise(source: str) -> str:
    """Line endings, trailing spaces and trailing blank lines do not make two sources differ."""
    return "\n".join(line.rstrip() for line in source.splitlines()).strip("\n")


def digest(source: str) -> str:
    return hashlib.sha256(normalise(source).encode("utf-8")).hexdigest()


def diff_summary(old: str, new: str, limit: int = 3) -> tuple[int, int, list[str]]:
    """Lines added and removed going from `old` to `new`, and the first few changed lines."""
    added = removed = 0
    first: list[str] = []
    for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0):
        if line.startswith(("+++", "---", "@@")):
            continue
        if line.startswith("+"):
            added += 1
        elif line.startswith("-"):
            removed += 1
        else:
            continue
        if len(first) < limit:
            first.append(line[:160])
    return added, removed, first


class LogSourceMatch(Rule):
    ID = "R-SUB-SEEDS-SAME-CONFIG.log-source"
    TITLE = "Each log embeds the submitted train_gpt.py"
    SEVERITY = Severity.WARNING
    KIND = "meta"
    SOURCE = (
        "RULES.md R-SUB-SEEDS-SAME-CONFIG (identical code hash across seed logs) and R-ARTIFACT-CAP edge case 1 "
        "(logs must reflect the shipped code): https://github.com/openai/parameter-golf/pull/2124 ; "
        "https://github.com/openai/parameter-golf/pull/1835"
    )
    DOC = RuleDoc(
        why="Every seed's log must come from the submitted configuration: the reference script "
            "embeds its own source at the top of the log, so a log whose embedded source differs "
            "from the shipped train_gpt.py was produced by other code. What the log prints is "
            "what reviewers read (#1835).",
        ruling="RULING (cocohearts on #2124); #1902 excluded \"single-seed tiny-margin rows\" and "
               "\"missing-evidence submissions\".",
        date="RULES.md gives no date for this ruling",
        sources=(
            "https://github.com/openai/parameter-golf/pull/1835",
            "https://github.com/openai/parameter-golf/pull/2124",
            "https://github.com/openai/parameter-golf/pull/1902",
        ),
    )
    VALID = [
        Valid(folder(), "every log embeds the submitted script"),
        Valid(
            folder({f"train_seed{s}.log": log(s, v, source=None) for s, v in SEEDS}),
            "torchrun stdout captures without embedded source (info only)",
        ),
        Valid(
            folder({f"train_seed{s}.log": log(s, v, source=COMMENTED) for s, v in SEEDS}),
            "the script gained a comment after the runs: same code (info only)",
        ),
    ]
    INVALID = [
        Invalid(
            folder({**{f"train_seed{s}.log": log(s, v) for s, v in SEEDS[:2]},
                    "train_seed2025.log": log(2025, 2.0718, source=EDITED)}),
            "the seed-2025 log was produced by an edited script", path="train_seed2025.log", line=FILE,
        ),
    ]

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        seed_table(ctx)
        sub = ctx.submission
        main = sub.main_script
        if main is None or main.text is None:
            return
        candidates = self._candidates(ctx)
        bare: list[str] = []
        for run in seed_runs(ctx):
            if run.embedded_source is None:
                bare.append(run.log_path)
                continue
            yield from self._compare(ctx, run.log_path, run.embedded_source, main.path, main.text, candidates)
        if bare:
            yield self.finding(
                f"{len(bare)} log(s) carry no embedded source ({', '.join(bare[:4])}{', ...' if len(bare) > 4 else ''}): "
                "they look like torchrun stdout captures rather than the script's own log file, so the code that "
                "produced them cannot be compared with the submitted script. Ship the logs/<run_id>.txt files "
                "the script writes, which start with its source.",
                severity=Severity.INFO, key="bare",
                evidence=[Evidence("log without embedded source", p) for p in bare[:8]],
            )

    def _candidates(self, ctx: AuditContext) -> dict[str, str]:
        """digest -> description of every source the log may legitimately embed."""
        out: dict[str, str] = {}
        for rel, tf in sorted(ctx.submission.code.items()):
            if tf.text is None:
                continue
            out.setdefault(digest(tf.text), rel)
            inner = wrapped_source(ctx, rel)
            if inner:
                out.setdefault(digest(inner), f"{rel} (decoded wrapper)")
        return out

    def _compare(self, ctx: AuditContext, log_path: str, embedded: str, main_path: str, main_text: str,
                 candidates: dict[str, str]) -> Iterable[Finding]:
        d = digest(embedded)
        hit = candidates.get(d)
        if hit == main_path or hit == f"{main_path} (decoded wrapper)":
            return
        if hit is not None:
            yield self.finding(
                f"{log_path} embeds {hit}, not {main_path}; that file is in the folder, so the run's code is "
                "available, but make sure the script a reviewer runs is the one that produced the log.",
                path=log_path, severity=Severity.INFO, key=f"other:{log_path}",
                evidence=[Evidence(f"embedded source sha256 {d[:12]} = {hit}", log_path)],
            )
            return
        target = wrapped_source(ctx, main_path) or main_text
        if same_syntax(ctx, embedded, target):
            yield self.finding(
                f"{log_path}: the embedded source differs from {main_path} only in comments or formatting.",
                path=log_path, severity=Severity.INFO, key=f"format:{log_path}",
                evidence=[Evidence("same syntax tree, different text", log_path)],
            )
            return
        # seeds' logs usually embed one text: diff it against the script once per folder
        theirs = digest(target)
        added, removed, first = ctx.memo(f"log-source.diff:{d}:{theirs}",
                                         lambda: diff_summary(normalise(embedded), normalise(target)))
        yield self.finding(
            f"{log_path}: the source embedded in the log is not the submitted {main_path} "
            f"({added} line(s) added, {removed} removed in the submitted file; first changes: "
            f"{' | '.join(first) or 'n/a'}) (R-SUB-SEEDS-SAME-CONFIG). The logs are the evidence for the claimed "
            "score, size and time; they must come from the code that is submitted. Re-run with the submitted "
            "script, or submit the script that produced the logs.",
            path=log_path, key=f"differs:{log_path}",
            evidence=[Evidence(f"embedded sha256 {d[:12]}, {main_path} sha256 {theirs[:12]}", log_path),
                      *(Evidence("diff", main_path, None, line) for line in first)],
        )
