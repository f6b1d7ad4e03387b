"""R-DATA-TRAIN-VAL-DISJOINT: the training shards do not contain the validation documents."""

from __future__ import annotations

import re
from collections.abc import Iterable

from audit.context import AuditContext
from audit.findings import Evidence, Finding, Severity
from audit.rule import FILE, Invalid, Rule, RuleDoc, Valid
from audit.seeds import seed_runs, seed_table
from audit.tokfamily import family, log_body, matches_full_split
from rules._meta_examples import SEEDS, folder, log

# 1499 train shards is the fingerprint of the leaky local CaseOps rebuild (val docs 10,000-49,999
# also written to train); cocohearts excluded #2018/#2130 on it (PR #2146).
LEAKY_TRAIN_SHARDS = 1499
_DOUBLED_PATH = re.compile(r"datasets/datasets/")
_VAL_DOCS_DEFAULT = re.compile(r"""["']--val[-_]docs["'][^)\n]*?default\s*=\s*([\d_]+)""")
_PREP_NAME = re.compile(r"prepare|download|tokeni[sz]e|build_data|make_data", re.IGNORECASE)
CANONICAL_VAL_DOCS = 50_000

PREP = '''import argparse
ap = argparse.ArgumentParser()
ap.add_argument("--val-docs", type=int, default={n}, help="Validation docs count")
'''


class DataTrainValDisjoint(Rule):
    ID = "R-DATA-TRAIN-VAL-DISJOINT"
    TITLE = "Training data is disjoint from the 50,000 validation documents"
    SEVERITY = Severity.ERROR
    KIND = "meta"
    SOURCE = (
        "RULES.md R-DATA-TRAIN-VAL-DISJOINT: https://github.com/openai/parameter-golf/issues/2127 ; "
        "https://github.com/openai/parameter-golf/pull/2146"
    )
    DOC = RuleDoc(
        why="Training data must be disjoint from the 50k validation documents.",
        ruling="RULING (cocohearts excluded #2018 and #2130 for a \"train/validation document "
               "overlap fingerprint\", PR #2146).",
        date="RULES.md gives no date for this ruling (the exclusion is in cocohearts' final "
             "leaderboard PR #2146)",
        sources=(
            "https://github.com/openai/parameter-golf/issues/2127",
            "https://github.com/openai/parameter-golf/pull/2146",
        ),
    )
    VALID = [
        Valid(folder(), "80 canonical train shards"),
        Valid(
            folder(extra_files={"prepare_caseops_data.py": PREP.format(n="10_000")}),
            "a prep script with the old 10,000 default, but the logs show the full validation split: "
            "the canonical export was used (as in the merged CaseOps records)",
        ),
    ]
    INVALID = [
        Invalid(
            folder({f"train_seed{s}.log": log(s, v, train_shards=LEAKY_TRAIN_SHARDS) for s, v in SEEDS}),
            "1499 train shards: the leaky local rebuild", path="train_seed1337.log", line=FILE,
        ),
        Invalid(
            folder({f"train_seed{s}.log": log(s, v, val_tokens=9_570_000)
                    for s, v in SEEDS}, extra_files={"prepare_caseops_data.py": PREP.format(n="10_000")}),
            "prep script defaults to 10,000 val docs and the logs show a short validation split",
            severity=Severity.WARNING, path="prepare_caseops_data.py", line=3,
        ),
    ]

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        seed_table(ctx)
        full_split_seen = False
        for run in seed_runs(ctx):
            path = run.log_path
            tf = ctx.submission.logs.get(path)
            body = log_body(tf.text or "", run) if tf is not None else ""
            fam = family(run, body)
            full_here = bool(run.val_tokens is not None and fam and matches_full_split(run.val_tokens, fam))
            full_split_seen = full_split_seen or full_here
            if run.train_shards == LEAKY_TRAIN_SHARDS:
                yield self.finding(
                    f"{path}: the run used {LEAKY_TRAIN_SHARDS} training shards, the fingerprint of the local "
                    "CaseOps rebuild whose train split also holds validation documents 10,000-49,999 "
                    "(R-DATA-TRAIN-VAL-DISJOINT; submissions with this fingerprint were excluded in #2146). "
                    "Rebuild the data with --val-docs 50000 or use the canonical export, and re-run.",
                    path=path, key=f"shards:{path}",
                    evidence=[Evidence(f"train_shards: {run.train_shards}", path)],
                )
            m = _DOUBLED_PATH.search(body[:200_000])
            benign = full_here and run.train_shards is not None and run.train_shards != LEAKY_TRAIN_SHARDS
            if m:
                text = (tf.text or "") if tf is not None else ""
                line = text.count("\n", 0, len(text) - len(body) + m.start()) + 1
                yield self.finding(
                    f"{path}: the data path contains 'datasets/datasets/', the layout of a local rebuild written "
                    "into the wrong directory, seen with train/validation overlap (R-DATA-TRAIN-VAL-DISJOINT). "
                    + ("Here the run shows the full validation split and "
                       f"{run.train_shards} train shards, the canonical export's shape (its snapshot also lands in a "
                       "doubled path), so this is a note." if benign else
                       "Confirm which export was used and that its train split starts after the 50,000 "
                       "validation documents."),
                    path=path, line=line, severity=Severity.INFO if benign else Severity.WARNING,
                    key=f"doubled:{path}",
                    evidence=[Evidence("data path in the log", path, line, _line_at(body, m.start()))],
                )
        yield from self._check_prep_scripts(ctx, full_split_seen)

    def _check_prep_scripts(self, ctx: AuditContext, full_split_seen: bool) -> Iterable[Finding]:
        for rel, tf in sorted(ctx.submission.code.items()):
            if tf.text is None or not _PREP_NAME.search(rel.rsplit("/", 1)[-1]):
                continue
            m = _VAL_DOCS_DEFAULT.search(tf.text)
            if not m:
                continue
            n = int(m.group(1).replace("_", ""))
            if n == CANONICAL_VAL_DOCS:
                continue
            line = tf.text.count("\n", 0, m.start()) + 1
            if full_split_seen:
                severity, tail = Severity.INFO, (
                    "The logs show the full validation split, so these runs did not use a rebuild with this "
                    "default; change the default to 50000 so that nobody reproduces the leak."
                )
            else:
                severity, tail = Severity.WARNING, (
                    "No log shows the full validation split, so the runs may have used such a rebuild: confirm "
                    "the data came from the canonical export or a rebuild with --val-docs 50000."
                )
            yield self.finding(
                f"{rel}:{line}: the data preparation defaults to --val-docs {n:,}, not 50,000, so the train split "
                f"would start at document {n:,} and contain validation documents (R-DATA-TRAIN-VAL-DISJOINT). "
                + tail,
                path=rel, line=line, severity=severity, key=f"prep:{rel}",
                evidence=[Evidence("--val-docs default", rel, line, tf.lines[line - 1].strip()[:200])],
            )


def _line_at(text: str, pos: int) -> str:
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    return text[start:end if end >= 0 else len(text)].strip()[:200]
