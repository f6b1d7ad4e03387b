"""How far the auditor's verdicts agree with the maintainers', on the real-PR corpus.

    python bench/accuracy.py [CORPUS]          # CORPUS: argument, else $PGOLF_CORPUS, else /work/corpus

Audits, in process, every labelled PR of `dev.tsv` (`dev/pr<N>/<submission_dir>`) and every folder
merged on main at HEAD (`head/records/<track>/<name>`), as laid out by `bench/corpus.py`, and prints:

- a confusion table by class for dev.tsv. A PR of an illegal class is *caught* when it gets an
  error from that class's rule family; a legal PR is right when it gets no error at all;
- for the merged folders (each accepted by the maintainers), every error with its rule and
  reason, split into *exceptions* (objective breaches of a written rule that the maintainers
  missed: a logged total over 16,000,000 bytes, a claimed score no log supports, and the missing
  required files of the same folder) and *disagreements* (everything else: our bugs).

Folders are judged on the date the maintainers judged them, as `--as-of` would: a folder that
landed on main (`head/landed.tsv`) on its landing date (what the tool reads from git inside a
checkout), a PR that was not merged on the date of its head commit (from the mirror,
$PGOLF_MIRROR), since the label records the maintainers' verdict on that version; with no mirror,
today's rules (audit/enforcement.py).
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from audit.context import Options  # noqa: E402
from audit.engine import audit_submission  # noqa: E402
from audit.findings import Finding, Severity  # noqa: E402
from audit.submission import Submission  # noqa: E402

DEFAULT_CORPUS = "/work/corpus"
DEFAULT_MIRROR = "/work/.mirror/openai+parameter-golf/repo"
# dev.tsv class -> rule-ID prefixes whose error catches it.
CLASS_RULES: dict[str, tuple[str, ...]] = {
    "prequant_ttt_val": ("R-TTT-PREQUANT",),
    "score_after_update": ("R-TTT-SCORE-FIRST", "R-TTT-PREQUANT", "R-TTT-NO-RESCORE", "R-EVAL-C3"),
    "ngram_unnormalized": ("R-EVAL-C2", "R-NGRAM-CACHE", "R-PPM-BYTE-MIXTURE"),
    "ngram_target_leak": ("R-EVAL-C1", "R-NGRAM-CACHE"),
    "tokenizer_byte_accounting": ("R-METRIC-BPB", "R-METRIC-TOKENIZER"),
    "slot": ("R-SLOT",),
    "slot_causal": ("R-SLOT",),
    "over_eval_time": ("R-EVAL-TIME-600",),
    "over_train_time": ("R-TRAIN-TIME-600", "R-TRAIN-TIME-SCOPE"),
    "over_cap": ("R-ARTIFACT-CAP", "R-ARTIFACT-CODE-COUNT"),
    "seeds": ("R-SUB-SEEDS-SAME-CONFIG",),
    "claims": ("R-SUB-JSON.claims-match-logs",),
}
# Keys (audit.findings.Finding.key prefixes) of errors that are objective breaches of a written rule.
OBJECTIVE = {
    "R-ARTIFACT-CAP": ("log:",),  # the run's own log prints a total over the cap
    "R-SUB-JSON.claims-match-logs": ("unsupported", "cherry-pick"),  # no log supports the claim
}
# In a folder with an objective breach, missing required files are objective too (R-SUB-FILES).
OBJECTIVE_IN_SAME_FOLDER = {"R-SUB-FILES": ("missing:",)}


@dataclass
class Row:
    name: str
    folder: Path
    verdict: str = "merged"  # legal | illegal | contested | merged
    classes: tuple[str, ...] = ()
    as_of: str | None = None
    track: str = ""
    findings: list[Finding] = field(default_factory=list)
    crashed: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == Severity.ERROR]

    def caught(self, cls: str) -> bool:
        prefixes = CLASS_RULES.get(cls, ())
        return any(f.rule_id.startswith(prefixes) for f in self.errors) if prefixes else False


def corpus_dir(argv: list[str]) -> Path:
    return Path(argv[0] if argv else os.environ.get("PGOLF_CORPUS", DEFAULT_CORPUS))


def landed(corpus: Path) -> dict[str, str]:
    path = corpus / "head" / "landed.tsv"
    if not path.is_file():
        return {}
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) == 2:
            out[parts[0]] = parts[1]
    return out


def commit_date(sha: str) -> str | None:
    """The commit date of a PR's head in the mirror (None without a mirror: today's rules)."""
    mirror = Path(os.environ.get("PGOLF_MIRROR", DEFAULT_MIRROR))
    if not mirror.is_dir() or not sha:
        return None
    try:
        out = subprocess.run(["git", "--git-dir", str(mirror), "show", "-s", "--format=%cs", sha],
                             capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def dev_rows(corpus: Path, dates: dict[str, str]) -> list[Row]:
    tsv = corpus / "dev.tsv"
    if not tsv.is_file():
        return []
    rows = []
    with open(tsv, encoding="utf-8") as f:
        for r in csv.DictReader(f, delimiter="\t"):
            folder = corpus / "dev" / f"pr{r['pr']}" / r["submission_dir"]
            if folder.is_dir():
                as_of = dates.get(r["submission_dir"]) or commit_date(r["head_sha"])
                rows.append(Row(f"pr{r['pr']}", folder, r["verdict"], tuple(r["classes"].split(",")),
                                as_of, r["submission_dir"].split("/")[1]))
    return rows


def merged_rows(corpus: Path, dates: dict[str, str]) -> list[Row]:
    rows = []
    for folder in sorted((corpus / "head").glob("records/*/*")):
        if folder.is_dir():
            rel = f"records/{folder.parent.name}/{folder.name}"
            rows.append(Row(rel, folder, as_of=dates.get(rel), track=folder.parent.name))
    return rows


def audit(row: Row, kinds: tuple[str, ...] = ("static", "meta")) -> Row:
    report = audit_submission(Submission.load(row.folder), Options(as_of=row.as_of), kinds=kinds)
    row.findings = list(report.findings)
    row.crashed = [f"{e.where}: {e.message}" for e in report.errors]
    return row


def is_objective(f: Finding, folder_has_breach: bool = True) -> bool:
    key = f.key or ""
    if any(f.rule_id == rid and key.startswith(p) for rid, p in OBJECTIVE.items()):
        return True
    return folder_has_breach and any(f.rule_id == rid and key.startswith(p)
                                     for rid, p in OBJECTIVE_IN_SAME_FOLDER.items())


def split_merged(row: Row) -> tuple[list[Finding], list[Finding]]:
    """(exceptions, disagreements) among a merged folder's errors."""
    breach = any(is_objective(f, False) for f in row.errors)
    exc = [f for f in row.errors if is_objective(f, breach)]
    return exc, [f for f in row.errors if f not in exc]


@dataclass
class Summary:
    dev_illegal: int = 0
    dev_caught: int = 0
    dev_legal: int = 0
    dev_legal_with_error: int = 0
    merged: int = 0
    merged_exception_folders: list[str] = field(default_factory=list)
    merged_disagreements: int = 0
    crashes: int = 0


def summarise(dev: list[Row], merged: list[Row]) -> Summary:
    s = Summary()
    for r in dev:
        if r.verdict == "illegal":
            s.dev_illegal += 1
            s.dev_caught += any(r.caught(c) for c in r.classes)
        elif r.verdict == "legal":
            s.dev_legal += 1
            s.dev_legal_with_error += bool(r.errors)
    for r in merged:
        s.merged += 1
        exc, dis = split_merged(r)
        if exc:
            s.merged_exception_folders.append(r.name)
        s.merged_disagreements += len(dis)
    s.crashes = sum(bool(r.crashed) for r in dev + merged)
    return s


def confusion(dev: list[Row]) -> list[str]:
    """Markdown table: per class, how the PRs of that class fared."""
    counts: dict[str, Counter] = {}
    for r in dev:
        for cls in r.classes:
            c = counts.setdefault(f"{r.verdict}: {cls}", Counter())
            c["n"] += 1
            if r.verdict == "illegal":
                outcome = ("caught" if r.caught(cls) else "other-rule error" if r.errors else
                           "warning only" if any(f.severity == Severity.WARNING for f in r.findings) else "nothing")
            else:
                outcome = ("error" if r.errors else
                           "warning only" if any(f.severity == Severity.WARNING for f in r.findings) else "clean")
            c[outcome] += 1
    cols = ["n", "caught", "other-rule error", "error", "warning only", "nothing", "clean"]
    lines = ["| class | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for key in sorted(counts):
        lines.append(f"| {key} | " + " | ".join(str(counts[key].get(c, 0) or "") for c in cols) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    corpus = corpus_dir(list(sys.argv[1:] if argv is None else argv))
    if not (corpus / "dev.tsv").is_file() and not (corpus / "head").is_dir():
        print(f"no corpus at {corpus} (give a path or set PGOLF_CORPUS); skipped", file=sys.stderr)
        return 0  # nothing to measure here (the corpus is never in the repository)
    dates = landed(corpus)
    dev = [audit(r) for r in dev_rows(corpus, dates)]
    merged = [audit(r) for r in merged_rows(corpus, dates)]
    s = summarise(dev, merged)
    print(f"## dev.tsv ({len(dev)} PRs)\n")
    print("\n".join(confusion(dev)))
    print(f"\nillegal caught with the right class: {s.dev_caught}/{s.dev_illegal}; "
          f"legal PRs with an error: {s.dev_legal_with_error}/{s.dev_legal}")
    for r in dev:
        if r.verdict == "illegal" and not any(r.caught(c) for c in r.classes):
            print(f"  missed {r.name} ({','.join(r.classes)}): errors {sorted({f.rule_id for f in r.errors})}")
        if r.verdict == "legal" and r.errors:
            for f in r.errors:
                print(f"  legal {r.name} error {f.rule_id}: {f.message[:200]}")
    print(f"\n## merged folders at HEAD ({len(merged)})\n")
    for r in merged:
        exc, dis = split_merged(r)
        for f, kind in [(f, "EXCEPTION") for f in exc] + [(f, "DISAGREE") for f in dis]:
            print(f"{kind:9s} {r.name} (as of {r.as_of}) {f.rule_id}: {f.message[:260]}")
    print(f"\nmerged folders with an exception: {len(s.merged_exception_folders)} "
          f"({', '.join(s.merged_exception_folders) or 'none'}); errors outside exceptions: {s.merged_disagreements}")
    for r in dev + merged:
        for c in r.crashed:
            print(f"CRASH {r.name}: {c}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
