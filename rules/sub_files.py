"""R-SUB-FILES: the folder holds README.md, submission.json, the train logs and the main script."""

from __future__ import annotations

from collections.abc import Iterable

from audit.context import AuditContext
from audit.enforcement import enforce
from audit.findings import Evidence, Finding, Severity
from audit.read_problems import ReadProblem, ReadProblemKind
from audit.rule import FILE, FOLDER, README_RULE_DATE, Invalid, Rule, RuleDoc, Valid
from audit.seeds import claimed_seeds, run_seed, seed_runs, seed_table
from audit.submission import Submission
from rules._meta_examples import SCRIPT, folder, log

K = ReadProblemKind
# How serious each reader fact is. An error where the audit could not see the folder as it is
# (a link out of it, a limit a real submission never reaches); a warning where a reviewer can
# still read the file themselves.
READ_SEVERITY = {
    K.NOT_A_DIRECTORY: Severity.ERROR, K.BAD_PATH: Severity.ERROR, K.SYMLINK_ESCAPES: Severity.ERROR,
    K.NOT_INSPECTABLE: Severity.WARNING, K.NOT_LISTABLE: Severity.WARNING, K.UNREADABLE: Severity.WARNING,
    K.TOO_LARGE: Severity.WARNING, K.NOT_UTF8: Severity.WARNING, K.HARDLINK: Severity.WARNING,
    K.TOO_MANY_FILES: Severity.WARNING, K.TOO_MANY_ENTRIES: Severity.ERROR, K.TOO_DEEP: Severity.ERROR,
    K.READ_BUDGET: Severity.ERROR,
}
# Reported by the rule the fact is about, not here.
ELSEWHERE = {K.WRAPPER_UNDECODABLE: "R-ARTIFACT-CODE-COUNT"}


def _without(files: dict[str, str | bytes], *names: str) -> dict[str, str | bytes]:
    return {k: v for k, v in files.items() if k not in names}


class SubFiles(Rule):
    ID = "R-SUB-FILES"
    TITLE = "Required files: README.md, submission.json, train logs, train_gpt.py"
    SEVERITY = Severity.ERROR
    KIND = "meta"
    SOURCE = "RULES.md R-SUB-FILES: README 'Submission Process'; https://github.com/openai/parameter-golf/pull/561"
    DOC = RuleDoc(
        why="The folder must contain (1) `README.md` explaining the submission in reasonable "
            "detail; (2) `submission.json`; (3) train log(s) produced automatically by the "
            "script, enough to show statistical significance (usually 3 runs); (4) `train_gpt.py`"
            " plus any other dependencies, which must compile and run from inside the records "
            "folder. Add `requirements.txt` when importing extra packages. Incomplete submissions"
            " are not accepted.",
        ruling="README; RULING (cocohearts #561: PRs without `submission.json` or without the "
               "logs backing a 3-seed claim are \"not leaderboard-ready\").",
        date=README_RULE_DATE,
        sources=(
            "README 'Submission Process'",
            "https://github.com/openai/parameter-golf/pull/561",
        ),
    )
    ALSO_REPORTS = ("R-SUB-FILES.seed-logs",)
    VALID = [
        Valid(folder(), "the four required kinds of file"),
        Valid(
            {**_without(folder(), "train_gpt.py"), "train_gpt_cuda_ternary.py": SCRIPT},
            "the only train*.py is the main script (non-standard name: info only)",
        ),
        Valid(
            folder(json_extra={"seeds": [1337, 42, 2025]}),
            "every claimed seed has its log",
        ),
    ]
    INVALID = [
        Invalid(_without(folder(), "README.md"), "no README.md", path=FOLDER),
        Invalid(_without(folder(), "submission.json"), "no submission.json", path=FOLDER),
        Invalid(_without(folder(), "train_seed1337.log", "train_seed42.log", "train_seed2025.log"), "no train log", path=FOLDER),
        Invalid(_without(folder(), "train_gpt.py"), "no script at all", path=FOLDER),
        Invalid(
            folder({"train_seed1337.log": log(1337, 2.0727)}, json_extra={"seeds": [1337, 42, 2025]}),
            "three seeds claimed, one log shipped",
            rule_id="R-SUB-FILES.seed-logs", path="submission.json", line=FILE,
        ),
        Invalid(
            {**folder(), "train_seed42.log": log(42, 2.0739).encode() + b"\xff\xfe\n"},
            "a log that is not UTF-8: read with replacement characters (a reader fact)",
            severity=Severity.WARNING, path="train_seed42.log", line=FILE,
        ),
    ]

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        # What the reader could not see is about the audit, not a track's practice: not enforced by date.
        yield from self.reader_findings(ctx.submission)
        yield from enforce(ctx, self._check(ctx))

    def _check(self, ctx: AuditContext) -> Iterable[Finding]:
        seed_table(ctx)
        sub = ctx.submission
        if sub.readme is None:
            others = sorted(p for p in sub.files if "readme" in p.lower() and p.lower().endswith((".md", ".txt")))
            yield self._missing(
                "README.md", "a README.md explaining the submission in reasonable detail"
                + (f" ({', '.join(others[:3])} exists: rename it)" if others else ""),
                severity=Severity.WARNING if others else Severity.ERROR,
            )
        if sub.json_path is None:
            yield self._missing("submission.json", "submission.json with author, github_id, name and val_bpb")
        if not sub.logs:
            yield self._missing(
                "train logs", "the train log(s) the script wrote, enough to show the claimed score (usually 3 seeds)",
            )
        yield from self._main_script(ctx)
        yield from self._seed_logs(ctx)

    def reader_findings(self, sub: Submission) -> Iterable[Finding]:
        """What the folder reader could not read, or read only in part (audit.read_problems).
        Hard links to one file make one finding, however many there are."""
        links: dict[str, list[ReadProblem]] = {}
        for problem in sub.problems:
            if problem.kind == K.HARDLINK:
                links.setdefault(problem.detail, []).append(problem)
            elif problem.kind not in ELSEWHERE:
                yield self.read_problem_finding(problem, READ_SEVERITY[problem.kind])
        for target, group in links.items():
            merged = ReadProblem(K.HARDLINK, group[0].path, detail=target, count=len(group))
            yield self.read_problem_finding(merged, READ_SEVERITY[K.HARDLINK])

    def _missing(self, what: str, need: str, severity: Severity = Severity.ERROR) -> Finding:
        return self.finding(
            f"The submission folder has no {what} (R-SUB-FILES). A submission must contain {need}; "
            "incomplete submissions are not leaderboard-ready (#561). Add it to the folder.",
            severity=severity, key=f"missing:{what}",
            evidence=[Evidence(f"no {what} in the folder listing")],
        )

    def _main_script(self, ctx: AuditContext) -> Iterable[Finding]:
        sub = ctx.submission
        main = sub.main_script
        if main is not None:
            if main.path != "train_gpt.py":
                yield self.finding(
                    f"The main script is {main.path}, not train_gpt.py; README asks for train_gpt.py, and tools "
                    "that re-run submissions look for that name.",
                    path=main.path, severity=Severity.INFO, key="main-name",
                    evidence=[Evidence("only top-level train*.py", main.path)],
                )
            return
        top = sorted(p for p in sub.code if "/" not in p)
        if not top:
            yield self._missing("train_gpt.py", "train_gpt.py, the script that trains and evaluates the artifact")
            return
        yield self.finding(
            f"No train_gpt.py and no single train*.py: the main script is ambiguous among {', '.join(top[:6])} "
            "(R-SUB-FILES). Name the script that produces the logged runs train_gpt.py (it must run from inside "
            "the records folder).",
            severity=Severity.WARNING, key="main-ambiguous",
            evidence=[Evidence("top-level Python file", p) for p in top[:6]],
        )

    def _seed_logs(self, ctx: AuditContext) -> Iterable[Finding]:
        claimed = claimed_seeds(ctx)
        if not claimed:
            return
        logged = set()
        for run in seed_runs(ctx):
            logged.add(run_seed(run))
            logged.add(run.seed_from_name)
        missing = [s for s in claimed if s not in logged]
        if not missing:
            return
        path = ctx.submission.json_path
        yield self.finding(
            f"submission.json claims seed(s) {', '.join(map(str, claimed))} but no log is shipped for "
            f"{', '.join(map(str, missing))} (R-SUB-FILES: the logs must back each claimed seed; #561). "
            "Add those train logs, or remove the seeds from the claim and recompute the mean.",
            path=path, rule_id="R-SUB-FILES.seed-logs", key="seed-logs",
            evidence=[Evidence(f"claimed seeds {claimed}", path),
                      Evidence(f"seeds found in logs: {sorted(s for s in logged if s is not None)}")],
        )
