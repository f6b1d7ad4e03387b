"""R-SUB-FOLDER: a submission PR adds exactly one new folder under records/<track>/ and nothing else.

The new folder sits in one of the two tracks and is named `YYYY-MM-DD_description` (RULES.md: the
maintainers asked for renames to that form, so a misnamed folder is a warning, not a rejection).

A "diff" rule: it reads the PR's changed files, which `pgolf-audit --changed-since REF` passes as a
fact on the context (`ctx.options.changed_files`: git status letter and repository-relative path).
Without that fact (a folder audited on its own) it has nothing to say.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable

from audit.context import AuditContext
from audit.findings import Evidence, Finding, Severity
from audit.layout import CHANGE_STATUS, record_folder
from audit.rule import FILE, FOLDER, Invalid, Rule, RuleDoc, Valid

NEW = "records/track_10min_16mb/2026-04-01_NewRecord"
OLD = "records/track_10min_16mb/2026-03-01_Merged"
SHOWN = 20  # evidence lines per finding
TRACKS = ("track_10min_16mb", "track_non_record_16mb")
DATED_NAME = re.compile(r"(\d{4})-(\d{2})-(\d{2})_\S")


def _changes(*pairs: tuple[str, str]) -> dict[str, tuple[tuple[str, str], ...]]:
    return {"changed_files": pairs}


class SubFolder(Rule):
    """The PR's diff: one new records/<track>/<folder>/, no other folder, no file outside one."""

    ID = "R-SUB-FOLDER"
    TITLE = "A submission PR adds exactly one new folder under records/<track>/"
    SEVERITY = Severity.ERROR
    KIND = "diff"
    SOURCE = ("RULES.md R-SUB-FOLDER (README; https://github.com/openai/parameter-golf/pull/1143 ; "
              "https://github.com/openai/parameter-golf/pull/561)")
    DOC = RuleDoc(
        checks="The PR's diff (`--changed-since REF`): it adds exactly one new folder under records/<track>/ "
               "and changes nothing outside it; the new folder is in one of the two tracks and named "
               "`YYYY-MM-DD_description`.",
        why="A submission PR only adds a new folder in the appropriate records subfolder "
            "(`records/track_10min_16mb/` or `records/track_non_record_16mb/`), named `YYYY-MM-DD_description`.",
        ruling="README; RULING (cocohearts on #1143: not a single clean folder, so split or trim; naming feedback: "
               "commit \"Rename record folder to YYYY-MM-DD_description format per @cocohearts feedback\" in "
               "MarioPaerle's #1667).",
        date="RULES.md gives no date for this ruling",
        sources=("README", "https://github.com/openai/parameter-golf/pull/1143",
                 "https://github.com/openai/parameter-golf/pull/561"),
    )
    VALID = [
        Valid({}, "one new folder, every file added",
              options=_changes(("A", f"{NEW}/README.md"), ("A", f"{NEW}/train_gpt.py"),
                               ("A", f"{NEW}/submission.json"))),
        Valid({}, "no changed-file list (a folder audited on its own): nothing to judge"),
    ]
    INVALID = [
        Invalid({}, "two submission folders in one PR", path=FOLDER,
                options=_changes(("A", f"{NEW}/README.md"), ("A", "records/track_non_record_16mb/2026-04-02_X/README.md"))),
        Invalid({}, "a file outside any submission folder (the leaderboard README)", path="README.md", line=FILE,
                options=_changes(("A", f"{NEW}/README.md"), ("M", "README.md"))),
        Invalid({}, "a merged record's file modified", severity=Severity.WARNING, path=f"{OLD}/README.md", line=FILE,
                options=_changes(("M", f"{OLD}/README.md"))),
        Invalid({}, "the new folder is not named YYYY-MM-DD_description", severity=Severity.WARNING,
                path="records/track_10min_16mb/MyRecord/README.md", line=FILE,
                options=_changes(("A", "records/track_10min_16mb/MyRecord/README.md"))),
        Invalid({}, "the new folder is not in one of the two tracks", severity=Severity.WARNING,
                path="records/track_1h_64mb/2026-04-01_X/README.md", line=FILE,
                options=_changes(("A", "records/track_1h_64mb/2026-04-01_X/README.md"))),
    ]

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        changes = ctx.options.changed_files
        if changes is None:
            return
        by_folder: dict[str, list[tuple[str, str]]] = {}
        outside: list[tuple[str, str]] = []
        for status, path in changes:
            folder = record_folder(path)
            if folder is None:
                outside.append((status, path))
            else:
                by_folder.setdefault(folder, []).append((status, path))
        if len(by_folder) > 1:
            yield self.finding(
                f"This change touches {len(by_folder)} submission folders; a submission PR adds exactly one new "
                "folder under records/<track>/ (R-SUB-FOLDER). Split it into one PR per submission, or drop the "
                "unrelated changes.",
                evidence=[Evidence(f"{len(cs)} changed file(s) in {f}", cs[0][1]) for f, cs in sorted(by_folder.items())],
                key="many-folders",
            )
        if outside:
            yield self.finding(
                f"This change touches {len(outside)} file(s) outside a records/<track>/<folder>/ submission folder "
                f"(e.g. {outside[0][1]}); a submission PR only adds its folder (R-SUB-FOLDER). Move the files into "
                "the folder or drop them from the PR (the leaderboard README is updated by the maintainers).",
                path=outside[0][1],
                evidence=[Evidence(f"{_word(s)} outside records/<track>/<folder>/", p) for s, p in outside[:SHOWN]],
                key="outside",
            )
        for folder, cs in sorted(by_folder.items()):
            if all(s == "A" for s, _ in cs):
                yield from self._new_folder(folder, cs[0][1])
            touched = [(s, p) for s, p in cs if s != "A"]
            if touched:
                yield self.finding(
                    f"{folder} existed before this change and {len(touched)} of its files are "
                    f"{'/'.join(sorted({_word(s) for s, _ in touched}))}; a submission PR adds a new folder and "
                    "leaves merged records alone (R-SUB-FOLDER). A reviewer must confirm this is a sanctioned fix.",
                    path=touched[0][1], severity=Severity.WARNING,
                    evidence=[Evidence(_word(s), p) for s, p in touched[:SHOWN]],
                    key=f"existing:{folder}",
                )


    def _new_folder(self, folder: str, first_file: str) -> Iterable[Finding]:
        _, track, name = folder.split("/")
        if track not in TRACKS:
            yield self.finding(
                f"{folder} is added under records/{track}/; submissions go to records/{TRACKS[0]}/ or "
                f"records/{TRACKS[1]}/ (R-SUB-FOLDER). Move the folder into the track it competes in.",
                path=first_file, severity=Severity.WARNING, key=f"track:{folder}",
                evidence=[Evidence(f"new folder in records/{track}/", first_file)],
            )
        if not _dated(name):
            yield self.finding(
                f"The new folder {name!r} is not named YYYY-MM-DD_description (R-SUB-FOLDER); the maintainers "
                "ask for that form (RULES.md R-SUB-FOLDER: \"Rename record folder to YYYY-MM-DD_description "
                "format per @cocohearts feedback\"). Rename it, e.g. 2026-04-01_" + re.sub(r"\W+", "", name)[:40] + ".",
                path=first_file, severity=Severity.WARNING, key=f"name:{folder}",
                evidence=[Evidence("new submission folder", first_file)],
            )


def _dated(name: str) -> bool:
    m = DATED_NAME.match(name)
    if m is None:
        return False
    try:
        dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return False
    return True


def _word(status: str) -> str:
    return CHANGE_STATUS.get(status, status)
