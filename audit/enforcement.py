"""Severity follows enforcement: which rulings bind a folder, on which track, from which date.

A finding's severity is the rule's authority (error where a maintainer ruled) *as the maintainers
enforce it*. Two facts decide that, and they are decided here, in one place that rules call:

- **The track.** The non-record track is held to the 16,000,000-byte cap and to the evaluation
  legality rules, but not to the time limits, the three-seed rule or significance (RULES.md
  R-NONREC); non-record folders were merged with a missing submission.json and with claims that
  differ from the logs, so there those are warnings.
- **The date.** "A ruling made on date D binds every submission not yet merged by D." A folder is
  judged on the date it landed on `main` (from git, when the folder sits in a checkout of the
  challenge repository), on `--as-of DATE` when given, and otherwise today: a PR under review is
  subject to every ruling made while it was open. A folder merged on or before D was accepted
  under the older practice, so an error under a later ruling becomes a warning for it.

Rules call `enforce(ctx, findings)` (or `adjust` for one finding that rests on a specific
ruling); `POLICIES` says which ruling and which track policy each rule ID follows.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from audit.context import AuditContext
from audit.findings import Finding, Severity
from audit.seeds import is_non_record

GIT_TIMEOUT_S = 10.0
MAIN_REFS = ("refs/heads/main", "refs/remotes/origin/main", "refs/remotes/upstream/main")


@dataclass(frozen=True)
class Ruling:
    """A maintainer decision and the date it was made (public)."""

    date: dt.date
    source: str


# Dates are when the ruling became public (RULES.md sources; commit dates from the challenge repo).
RULINGS: dict[str, Ruling] = {
    # README rules in force from the launch of the challenge.
    "readme": Ruling(dt.date(2026, 3, 18), "README (challenge launch, 2026-03-18)"),
    # cocohearts on #561: a claim needs the logs of each claimed seed.
    "seed-logs": Ruling(dt.date(2026, 3, 23), "#561 (cocohearts, 2026-03-23)"),
    # The cocohearts audit of #1797 (comment 4322526174) required BOS-masked previous-token mixing
    # for leaderboard rows; it took effect with the #1902 update (merged 2026-04-29), which added the
    # "BOS-fixed" rows while PRs merged that day without the mask stayed on the board.
    "bos-boundary": Ruling(dt.date(2026, 4, 29), "#1797 audit, enforced by #1902 (merged 2026-04-29)"),
    # regina-openai declared #1835 ineligible on its log's total although the wrapped file was smaller.
    "log-total-cap": Ruling(dt.date(2026, 4, 26), "#1835 (regina-openai, 2026-04-26)"),
    # The #1902 leaderboard update (merged 2026-04-29) excluded single-seed rows.
    "three-seeds": Ruling(dt.date(2026, 4, 29), "#1902 (cocohearts, merged 2026-04-29)"),
    # #1956 documents #1908's forced-step run at 601,153 ms as over the cap.
    "train-overshoot": Ruling(dt.date(2026, 4, 29), "#1908/#1956 (2026-04-29)"),
    # cocohearts on #2124: a third seed from another configuration does not count.
    "same-config": Ruling(dt.date(2026, 5, 1), "#2124 (cocohearts, 2026-05-01)"),
}


@dataclass(frozen=True)
class Policy:
    """How one rule ID is enforced: the ruling that makes it an error, and its non-record treatment.

    non_record: "binds" (same as the record track), "warning" (an error becomes a warning) or
    "exempt" (no finding at all: the rule does not apply to that track).
    """

    ruling: str
    non_record: str = "binds"


POLICIES: dict[str, Policy] = {
    "R-ARTIFACT-CAP": Policy("readme"),
    "R-ARTIFACT-CODE-COUNT": Policy("readme"),
    "R-TRAIN-TIME-600": Policy("readme", non_record="exempt"),
    "R-TRAIN-TIME-SCOPE": Policy("readme", non_record="exempt"),
    "R-EVAL-TIME-600": Policy("readme", non_record="exempt"),
    "R-REC-SIGNIFICANCE": Policy("readme", non_record="exempt"),
    "R-REC-PROGRESSION": Policy("readme", non_record="exempt"),
    "R-SUB-SEEDS-SAME-CONFIG.seed-count": Policy("three-seeds", non_record="exempt"),
    "R-SUB-SEEDS-SAME-CONFIG": Policy("same-config", non_record="warning"),
    "R-SUB-FILES.seed-logs": Policy("seed-logs", non_record="warning"),
    "R-SUB-FILES": Policy("readme", non_record="warning"),
    "R-SUB-JSON": Policy("readme", non_record="warning"),
    # "Required for leaderboard rows" (RULES.md): a non-record folder is not a leaderboard row.
    "R-BOS-BOUNDARY": Policy("bos-boundary", non_record="warning"),
}


@dataclass(frozen=True)
class JudgedOn:
    """The date a folder is judged on, and how it was decided (for messages and the report)."""

    date: dt.date
    how: str  # "as-of" | "landed" | "today"

    def describe(self) -> str:
        if self.how == "landed":
            return f"landed on main {self.date.isoformat()}"
        if self.how == "as-of":
            return f"judged as of {self.date.isoformat()} (--as-of)"
        return f"not merged: judged under today's rules ({self.date.isoformat()})"


def judged_on(ctx: AuditContext) -> JudgedOn:
    """--as-of, else the folder's landing date on main (git), else today."""

    def decide() -> JudgedOn:
        as_of = parse_date(getattr(ctx.options, "as_of", None))
        if as_of is not None:
            return JudgedOn(as_of, "as-of")
        root = ctx.submission.root
        landed = landing_date(root) if root is not None else None
        if landed is not None:
            return JudgedOn(landed, "landed")
        return JudgedOn(dt.date.today(), "today")

    judged = ctx.memo("enforcement.judged_on", decide)
    ctx.facts.setdefault("enforcement", {"judged_on": judged.date.isoformat(), "how": judged.how,
                                         "track": "non-record" if is_non_record(ctx) else "record"})
    return judged


def parse_date(value: object) -> dt.date | None:
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return dt.date.fromisoformat(value.strip()[:10])
    except ValueError:
        return None


def binds(ctx: AuditContext, ruling: str) -> bool:
    """Does `ruling` bind this folder? Not if the folder was merged on or before the ruling's date."""
    return judged_on(ctx).date > RULINGS[ruling].date


def policy_for(rule_id: str) -> Policy | None:
    """The policy of the longest rule-ID prefix (by dotted parts) that has one."""
    parts = rule_id.split(".")
    for n in range(len(parts), 0, -1):
        p = POLICIES.get(".".join(parts[:n]))
        if p is not None:
            return p
    return None


def applies(ctx: AuditContext, rule_id: str) -> bool:
    """False when the rule does not apply to this folder's track (a rule may skip its work then)."""
    policy = policy_for(rule_id)
    return not (policy is not None and policy.non_record == "exempt" and is_non_record(ctx))


def adjust(ctx: AuditContext, finding: Finding, ruling: str | None = None) -> Finding | None:
    """The finding as enforced on this folder: None when the rule does not apply to its track.

    Only errors are lowered (to warnings); warnings and notes keep their severity, except that a
    rule exempt on the non-record track reports nothing there.
    """
    policy = policy_for(finding.rule_id)
    if policy is None and ruling is None:
        return finding
    non_record = is_non_record(ctx)
    if policy is not None and non_record and policy.non_record == "exempt":
        return None
    if finding.severity != Severity.ERROR:
        return finding
    key = ruling or (policy.ruling if policy else "readme")
    if non_record and policy is not None and policy.non_record == "warning":
        return _lowered(finding, "on the non-record track, where maintainers merged such folders (RULES.md "
                                 "R-NONREC), this is a warning")
    if not binds(ctx, key):
        r = RULINGS[key]
        return _lowered(finding, f"this folder {judged_on(ctx).describe()}, on or before the ruling it rests on "
                                 f"({r.source}), so it was accepted under the earlier practice: a warning")
    return finding


def enforce(ctx: AuditContext, findings: Iterable[Finding], ruling: str | None = None) -> Iterable[Finding]:
    """`adjust` over a rule's findings (a rule's check: `yield from enforce(ctx, self._check(ctx))`).
    Also records in the report's facts the date and track the folder was judged on."""
    judged_on(ctx)
    for f in findings:
        out = adjust(ctx, f, ruling)
        if out is not None:
            yield out


def _lowered(finding: Finding, why: str) -> Finding:
    return replace(finding, severity=Severity.WARNING, message=f"{finding.message} [Enforcement: {why}.]")


# -- landing date from git ---------------------------------------------------------------------
def landing_date(folder: Path) -> dt.date | None:
    """The date `folder` first appeared on main's first-parent line, when it sits in a git checkout.

    The repository must enclose the folder from outside (a `.git` shipped inside the submission is
    never used), the folder must be `records/<track>/<name>` of that repository, and git runs with
    hooks, fsmonitor, pagers and external diff tools disabled, under a timeout. Any doubt: None.
    """
    try:
        folder = folder.resolve()
    except (OSError, RuntimeError):
        return None
    top = _git(folder, "rev-parse", "--show-toplevel")
    if not top:
        return None
    top_path = Path(top.strip())
    try:
        rel = folder.relative_to(top_path.resolve())
    except (ValueError, OSError, RuntimeError):
        return None
    parts = rel.parts
    if len(parts) != 3 or parts[0] != "records" or not parts[1].startswith("track_"):
        return None  # not a submission folder of the challenge repository (or a nested .git)
    for ref in MAIN_REFS:
        if _git(top_path, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}") is None:
            continue
        out = _git(top_path, "log", "--first-parent", "--reverse", "--diff-filter=A", "--no-ext-diff",
                   "--no-textconv", "--format=%cs", ref, "--", rel.as_posix())
        first = (out or "").split("\n", 1)[0].strip()
        return parse_date(first)
    return None


def _git(cwd: Path, *args: str) -> str | None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_TERMINAL_PROMPT="0", GIT_OPTIONAL_LOCKS="0", GIT_CONFIG_NOSYSTEM="1", GIT_PAGER="cat")
    cmd = ["git", "-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false", "-c", "safe.directory=*",
           "-c", "core.pager=cat", "--no-pager", *args]
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=GIT_TIMEOUT_S, env=env,
                              stdin=subprocess.DEVNULL, check=False)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    if proc.returncode != 0:
        return None
    return proc.stdout
