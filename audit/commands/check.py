"""`pgolf-audit check PATH ...` (the default subcommand): audit submission folders statically."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from audit.report.output import EXIT_OK, UsageError, add_out_option, err
from audit.selection import prefixes, wanted

if TYPE_CHECKING:
    from audit.report.model import TargetResult
    from audit.rule import Rule

NAME = "check"


def add_parser(subparsers, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    check = subparsers.add_parser(NAME, parents=[common], help="audit submission folders (the default)",
                                  description="Audit submission folders statically (no GPU, no code executed).")
    check.add_argument("paths", nargs="*", metavar="PATH", help="submission folder(s), e.g. records/track_10min_16mb/*")
    add_out_option(check)
    check.add_argument("-j", "--jobs", type=_positive_int, default=None, metavar="N",
                       help="audit N folders at a time, each in its own worker process (default: all cores)")
    check.add_argument("--sota", metavar="FILE|DIR",
                       help="reference run set for the significance tests: a JSON file of per-seed val_bpb/"
                       "val_loss, or a submission folder")
    check.add_argument("--as-of", metavar="YYYY-MM-DD", type=_iso_date,
                       help="judge under the rulings made by this date (default: the folder's landing date on "
                       "main when it sits in a checkout of the challenge repository, else today)")
    check.add_argument("--select", action="append", default=[], metavar="RULE_IDS",
                       help="only these rule ID prefixes (comma list, repeatable), e.g. R-TTT,R-EVAL")
    check.add_argument("--ignore", action="append", default=[], metavar="RULE_IDS",
                       help="skip these rule ID prefixes (comma list, repeatable)")
    check.add_argument("--from-files", action="store_true",
                       help="PATHs are changed files (pre-commit): audit the records/<track>/<folder> each belongs to")
    check.add_argument("--changed-since", metavar="GIT_REF",
                       help="audit the record folders this branch adds since GIT_REF (git diff GIT_REF...HEAD), "
                       "and check that it adds exactly one folder (R-SUB-FOLDER)")
    check.add_argument("--probe", action="store_true",
                       help="also run the Kraft-sum and byte-accounting probes (needs the [torch] extra; issue 11)")
    check.add_argument("--rule-timeout", type=float, default=None, metavar="S",
                       help="seconds one rule may spend on one folder before it is recorded as an internal error "
                       "(default 120; see README, Resource limits)")
    return check


def run(args: argparse.Namespace) -> list[TargetResult] | int:
    from audit.commands.batch import Job, audit_folders
    from audit.context import Options

    _validate_sota(args.sota)
    select, ignore = prefixes(args.select), prefixes(args.ignore)
    rules = select_rules(select, ignore)
    targets, results = _targets(args, rules, select, ignore)
    if targets is None:
        return EXIT_OK
    options = Options(sota=args.sota, as_of=args.as_of)
    if args.rule_timeout is not None:
        options.rule_timeout = args.rule_timeout
    job = Job(tuple(rules), options, tuple(select), tuple(ignore))
    results = results + audit_folders(targets, job, args.jobs)
    if args.probe:  # the probes' findings join the same report; loaded like a subcommand (torch extra)
        import importlib

        probes = importlib.import_module("audit.probes.cli")
        if probes.missing_message():
            raise UsageError(f"--probe: {probes.missing_message()}")
        probes.attach_probes(results)
    return results


def select_rules(select: list[str], ignore: list[str]) -> list[type[Rule]]:
    """Rules that may report a wanted ID (a rule runs if any of its IDs is wanted)."""
    from audit.registry import all_rules
    from audit.report.rulemeta import BUILTIN

    rules = list(all_rules())
    known = {rid for r in rules for rid in (r.ID, *r.ALSO_REPORTS)} | set(BUILTIN)
    for p in select + ignore:
        if not any(rid.startswith(p) for rid in known):
            raise UsageError(f"no rule ID starts with {p!r}; `pgolf-audit rules` lists them")
    return [r for r in rules if any(wanted(rid, select, ignore) for rid in (r.ID, *r.ALSO_REPORTS))]


def _validate_sota(sota: str | None) -> None:
    """Read --sota once up front, so that a bad file is a usage error and not a crash per folder."""
    if not sota:
        return
    from audit.sota import SotaError, load_reference

    try:
        load_reference(sota)
    except SotaError as exc:
        raise UsageError(str(exc)) from None


def _targets(args: argparse.Namespace, rules: list[type[Rule]], select: list[str], ignore: list[str]
             ) -> tuple[list[Path] | None, list[TargetResult]]:
    """The folders to audit (None: nothing to do), plus the PR-level result of --changed-since (R-SUB-FOLDER)."""
    from audit.commands import changes

    results: list[TargetResult] = []
    if args.from_files:
        targets = changes.folders_of_files(args.paths)
        if not targets and not args.changed_since:
            err("no submission folder among the given files")
            return None, results
    else:
        targets = [_existing_dir(p) for p in args.paths]
    if args.changed_since:
        root, changed = changes.changed_files(args.changed_since)
        diff = _audit_diff(args.changed_since, root, changed, rules, select, ignore)
        if diff.report.findings or diff.report.errors:
            results.append(diff)
        folders = changes.changed_folders(root, changed)
        targets += folders
        if not folders:
            err(f"no record folder changed since {args.changed_since}")
    elif not targets:
        raise UsageError("no PATH given; usage: pgolf-audit PATH [PATH ...] (see --help)")
    return _unique(targets), results


def _audit_diff(ref: str, root: Path, changed: tuple[tuple[str, str], ...], rules: list[type[Rule]],
                select: list[str], ignore: list[str]) -> TargetResult:
    from audit.engine import audit_changes
    from audit.report.model import TargetResult

    report = audit_changes(changed, f"{ref}...HEAD", rules)
    report.findings = [f for f in report.findings if wanted(f.rule_id, select, ignore)]
    return TargetResult(report, kind="diff", root=str(root))


def _existing_dir(p: str) -> Path:
    path = Path(p)
    if not path.exists():
        raise UsageError(f"{p}: no such file or directory")
    if not path.is_dir():
        raise UsageError(f"{p}: not a directory (give a submission folder)")
    return path


def _unique(paths: list[Path]) -> list[Path]:
    seen: set[Path] = set()
    out = []
    for p in paths:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _iso_date(text: str) -> str:
    """--as-of: a YYYY-MM-DD date (argparse turns the error into a usage error, exit 2)."""
    import datetime

    try:
        return datetime.date.fromisoformat(text.strip()).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None
