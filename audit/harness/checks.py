"""The IDs the harness reports under, with title, default severity and RULES.md source.

Harness findings are made from measurements, not by registered rules (a rule's VALID/INVALID
examples are folders, and these checks need a run), so the report's rule tables (SARIF, `rules`)
learn about them from here. Every ID is a RULES.md ID plus a `.rerun-…` slug.
"""

from __future__ import annotations

from dataclasses import dataclass

from audit.findings import Severity

README = "https://github.com/openai/parameter-golf (README)"


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    severity: Severity
    source: str


def _c(id_: str, title: str, severity: Severity, source: str) -> Check:
    return Check(id_, title, severity, source)


CHECKS = {c.id: c for c in (
    _c("R-SUB-FILES.rerun-runs", "train_gpt.py runs to completion from its own folder under torchrun", Severity.ERROR,
       "RULES.md R-SUB-FILES (README 'Submission Process': code must run from inside the records folder; "
       "https://github.com/openai/parameter-golf/pull/561)"),
    _c("R-SUB-FILES.rerun-original-modified", "The re-run leaves the submitted folder unchanged", Severity.ERROR,
       "RULES.md R-SUB-FILES (README 'Submission Process')"),
    _c("R-SUB-FILES.rerun-writes-outside", "The script writes only inside its own folder", Severity.WARNING,
       "RULES.md R-SUB-FILES (README 'Submission Process': runs from inside the records folder)"),
    _c("R-SUB-FILES.rerun-output-cap", "The re-run's output stays within the per-seed cap", Severity.WARNING,
       "RULES.md R-SUB-FILES (README 'Submission Process': train logs are part of the submission; a log "
       "hundreds of MB long cannot be reviewed)"),
    _c("R-REC-REPRODUCIBLE.rerun-no-score", "A re-run prints a final val_bpb line", Severity.ERROR,
       f"RULES.md R-REC-REPRODUCIBLE ({README} FAQ: top entries are verified, non-reproducible results "
       "can be disqualified)"),
    _c("R-REC-REPRODUCIBLE.rerun-bpb", "Per-seed val_bpb of the re-run matches the claim", Severity.WARNING,
       f"RULES.md R-REC-REPRODUCIBLE ({README} FAQ)"),
    _c("R-REC-REPRODUCIBLE.rerun-mean", "The re-run's mean val_bpb is no worse than claimed", Severity.ERROR,
       f"RULES.md R-REC-REPRODUCIBLE ({README} FAQ); https://github.com/openai/parameter-golf/pull/1868 "
       "(maintainers' own compliance re-run)"),
    _c("R-REC-REPRODUCIBLE.rerun-env", "The re-run uses the environment the README's run command sets",
       Severity.INFO, f"RULES.md R-REC-REPRODUCIBLE ({README} FAQ); REFERENCE.md 1.2 (configuration by env vars)"),
    _c("R-REC-REPRODUCIBLE.rerun-bytes", "The re-run's artifact size matches the claim", Severity.WARNING,
       f"RULES.md R-REC-REPRODUCIBLE, R-ARTIFACT-CAP ({README} FAQ)"),
    _c("R-ARTIFACT-CAP.rerun", "The artifact the re-run writes fits in 16,000,000 bytes", Severity.ERROR,
       "RULES.md R-ARTIFACT-CAP (README FAQ; https://github.com/openai/parameter-golf/pull/1809 ; "
       "https://github.com/openai/parameter-golf/pull/1835 ; https://github.com/openai/parameter-golf/pull/1902)"),
    _c("R-ARTIFACT-CAP.rerun-log", "The run's own size lines agree with the files it wrote", Severity.WARNING,
       "RULES.md R-ARTIFACT-CAP edge case 1 (what the log prints is what reviewers read; "
       "https://github.com/openai/parameter-golf/pull/1835)"),
    _c("R-TRAIN-TIME-600.rerun", "Re-run training stays within 600 s", Severity.ERROR,
       "RULES.md R-TRAIN-TIME-600 (README; https://github.com/openai/parameter-golf/pull/1945 ; "
       "https://github.com/openai/parameter-golf/pull/1956)"),
    _c("R-TRAIN-TIME-600.rerun-timeout", "The re-run reaches the end of training before the deadline", Severity.ERROR,
       "RULES.md R-TRAIN-TIME-600 (README)"),
    _c("R-EVAL-TIME-600.rerun", "Re-run evaluation stays within 600 s", Severity.ERROR,
       "RULES.md R-EVAL-TIME-600 (README FAQ; https://github.com/openai/parameter-golf/pull/1972)"),
    _c("R-EVAL-TIME-600.rerun-wall", "Wall time after training stays within the eval limit", Severity.WARNING,
       "RULES.md R-EVAL-TIME-600 edge case 3 (https://github.com/openai/parameter-golf/pull/2121: shell time "
       "vs script timers, open question)"),
    _c("R-EVAL-TIME-600.rerun-timeout", "The re-run finishes before the total deadline", Severity.ERROR,
       "RULES.md R-EVAL-TIME-600 (README FAQ)"),
    _c("R-ARTIFACT-SELF-CONTAINED.rerun-network", "The script runs with the network cut", Severity.ERROR,
       "RULES.md R-ARTIFACT-SELF-CONTAINED (README FAQ: no network calls or downloads during evaluation)"),
)}


def check(id_: str) -> Check:
    return CHECKS[id_]
