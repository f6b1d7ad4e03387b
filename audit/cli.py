"""`pgolf-audit`: audit submission folders, re-render a saved report, list the rules, or re-run a submission.

Exit codes: 0 PASS, 1 FAIL or REVIEW (`--fail-on error`: REVIEW exits 0), 2 usage or internal
error (a crashed rule, a path that does not exist), 130 interrupted. Never a traceback.
Start-up stays fast: rich, scipy, jinja2 and the rules are imported only when needed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from audit.report.model import TargetResult
    from audit.rule import Rule

PROG = "pgolf-audit"
# Subcommands implemented elsewhere, imported only when used (they may need torch):
# name -> (module with add_arguments(parser) and run(args) -> int, description).
DELEGATES = {
    "rerun": ("audit.harness.cli", "re-run a submission under torchrun and compare with its claims (needs torch)"),
}
SUBCOMMANDS = ("check", "rules", "report", *DELEGATES)
FORMATS = ("terminal", "json", "sarif", "github", "html")
FILE_NAMES = {"json": "report.json", "sarif": "report.sarif", "html": "report.html"}
EXIT_OK, EXIT_FINDINGS, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """A problem with the command line or its inputs: message, exit 2."""


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    _tolerant_streams()
    try:
        return _dispatch(args)
    except UsageError as exc:
        _err(str(exc))
        return EXIT_ERROR
    except KeyboardInterrupt:
        _err("interrupted")
        return EXIT_INTERRUPTED
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_FINDINGS
    except Exception as exc:  # noqa: BLE001 - the promise is: a message, never a traceback
        _err(f"internal error: {type(exc).__name__}: {exc}")
        return EXIT_ERROR


def _dispatch(args: list[str]) -> int:
    if args and args[0] in DELEGATES:
        return _delegate(args[0], args[1:])
    if not args or (args[0] not in SUBCOMMANDS and args[0] not in ("-h", "--help", "--version")):
        args = ["check", *args]
    ns = build_parser().parse_args(args)
    if ns.command == "rules":
        return _list_rules(ns)
    if ns.command == "report":
        return _rerender(ns)
    return _check(ns)


# -- parser ---------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    from audit.report.model import tool_version

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Audit OpenAI Parameter Golf submission folders against the challenge rules. "
        "`pgolf-audit PATH ...` is short for `pgolf-audit check PATH ...`.",
        epilog="exit codes: 0 PASS, 1 FAIL or REVIEW, 2 usage or internal error, 130 interrupted",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {tool_version()}")
    sub = parser.add_subparsers(dest="command", metavar="{" + ",".join(SUBCOMMANDS) + "}")
    check = sub.add_parser("check", help="audit submission folders (the default)",
                           description="Audit submission folders statically (no GPU, no code executed).")
    check.add_argument("paths", nargs="*", metavar="PATH", help="submission folder(s), e.g. records/track_10min_16mb/*")
    check.add_argument("--format", default="terminal",
                       help=f"comma list of {', '.join(FORMATS)} (default terminal), e.g. github,sarif")
    check.add_argument("--out", metavar="PATH",
                       help="file or directory for json/sarif/html (a directory gets report.json, report.sarif, "
                       "report.html); without it json/sarif go to stdout and html to ./report.html")
    check.add_argument("--fail-on", choices=("error", "warning"), default="warning",
                       help="warning (default): exit 1 on FAIL or REVIEW; error: exit 1 on FAIL only")
    check.add_argument("--exit-zero", action="store_true", help="exit 0 even when findings fail the check")
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
    report = sub.add_parser("report", help="re-render a saved JSON report (no re-audit)",
                            description="Render a JSON report written by `--format json` in other formats, "
                            "without auditing again. Exit codes as for check, from the saved results.")
    report.add_argument("report_json", metavar="REPORT.json", help="a report written by --format json")
    report.add_argument("--format", default="terminal",
                        help=f"comma list of {', '.join(FORMATS)} (default terminal)")
    report.add_argument("--out", metavar="PATH", help="file or directory for json/sarif/html, as for check")
    report.add_argument("--fail-on", choices=("error", "warning"), default="warning",
                        help="warning (default): exit 1 on FAIL or REVIEW; error: exit 1 on FAIL only")
    report.add_argument("--exit-zero", action="store_true", help="exit 0 whatever the saved verdicts")
    rules = sub.add_parser("rules", help="list every rule: ID, severity, kind, title, source")
    rules.add_argument("--markdown", action="store_true", help="print the rule catalogue as Markdown: an index, then every rule's documentation")
    for name, (_, description) in DELEGATES.items():
        sub.add_parser(name, help=description, add_help=False)
    return parser


# -- check ----------------------------------------------------------------------------------------
def _check(ns: argparse.Namespace) -> int:
    formats = parse_formats(ns.format)
    plan = plan_outputs(formats, ns.out)
    _validate_sota(ns.sota)
    select, ignore = _prefixes(ns.select), _prefixes(ns.ignore)
    rules = select_rules(select, ignore)
    targets, results = _targets(ns, select, ignore)
    if targets is None:
        return EXIT_OK
    results += audit_folders(targets, rules, ns.sota, select, ignore, as_of=ns.as_of)
    try:
        emit(results, plan)
    except (BrokenPipeError, SystemExit):
        # `pgolf-audit ... | head`: the reader left (rich turns that into SystemExit(1) itself);
        # the verdict still decides the exit code.
        _silence_stdout()
    return exit_code(results, ns.fail_on, ns.exit_zero)


def _rerender(ns: argparse.Namespace) -> int:
    """`report REPORT.json`: the saved results in other formats; the verdicts decide the exit code."""
    from audit.report.load import ReportLoadError, load_report

    formats = parse_formats(ns.format)
    plan = plan_outputs(formats, ns.out)
    try:
        results = load_report(ns.report_json)
    except ReportLoadError as exc:
        raise UsageError(str(exc)) from None
    try:
        emit(results, plan)
    except (BrokenPipeError, SystemExit):
        _silence_stdout()
    return exit_code(results, ns.fail_on, ns.exit_zero)


def _validate_sota(sota: str | None) -> None:
    """Read --sota once up front, so that a bad file is a usage error and not a crash per folder."""
    if not sota:
        return
    from audit.sota import SotaError, load_reference

    try:
        load_reference(sota)
    except SotaError as exc:
        raise UsageError(str(exc)) from None


def _targets(ns: argparse.Namespace, select: list[str], ignore: list[str]
             ) -> tuple[list[Path] | None, list[TargetResult]]:
    """The folders to audit (None: nothing to do), plus the PR-level result of --changed-since."""
    results: list[TargetResult] = []
    if ns.from_files:
        targets = folders_of_files(ns.paths)
        if not targets and not ns.changed_since:
            _err("no submission folder among the given files")
            return None, results
    else:
        targets = [_existing_dir(p) for p in ns.paths]
    if ns.changed_since:
        folders, diff_result = changed_folders(ns.changed_since)
        targets += folders
        diff_result.report.findings = [f for f in diff_result.report.findings if wanted(f.rule_id, select, ignore)]
        if diff_result.report.findings:
            results.append(diff_result)
        if not folders:
            _err(f"no record folder changed since {ns.changed_since}")
    elif not targets:
        raise UsageError("no PATH given; usage: pgolf-audit PATH [PATH ...] (see --help)")
    return _unique(targets), results


def audit_folders(targets: list[Path], rules: list[type[Rule]], sota: str | None,
                  select: list[str], ignore: list[str], as_of: str | None = None) -> list[TargetResult]:
    """One TargetResult per folder: its report (findings filtered by --select/--ignore) and excerpts."""
    from audit.context import Options
    from audit.engine import audit_submission
    from audit.report.model import TargetResult, build_excerpts
    from audit.submission import Submission

    options = Options(sota=sota, as_of=as_of)
    results = []
    for path in targets:
        submission = Submission.load(path)
        report = audit_submission(submission, options, rules=rules)
        report.target = str(path)
        report.findings = [f for f in report.findings if wanted(f.rule_id, select, ignore)]
        results.append(TargetResult(report, excerpts=build_excerpts(submission, report.findings)))
    return results


def exit_code(results: list[TargetResult], fail_on: str, exit_zero: bool) -> int:
    from audit.findings import Verdict

    crashed = [(r, e) for r in results for e in r.report.errors]
    for r, e in crashed:
        _err(f"internal error: rule {e.where} crashed on {r.report.target}: {e.message}; "
             "the audit of that folder is incomplete")
    if crashed:
        return EXIT_ERROR
    if exit_zero:
        return EXIT_OK
    failing = {Verdict.FAIL} | ({Verdict.REVIEW} if fail_on == "warning" else set())
    return EXIT_FINDINGS if any(r.report.verdict in failing for r in results) else EXIT_OK


def parse_formats(spec: str) -> list[str]:
    formats = [f.strip().lower() for f in spec.split(",") if f.strip()]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise UsageError(f"--format {spec!r}: choose from {', '.join(FORMATS)} (comma-separated)")
    return list(dict.fromkeys(formats))


def plan_outputs(formats: list[str], out: str | None) -> dict[str, Path | None]:
    """Where each format goes: a file path, or None for stdout."""
    file_formats = [f for f in formats if f in FILE_NAMES]
    plan: dict[str, Path | None] = {f: None for f in formats}
    if out is None:
        if "html" in plan:
            plan["html"] = Path(FILE_NAMES["html"])
        on_stdout = [f for f in formats if plan[f] is None]
        if len(on_stdout) > 1 and any(f in ("json", "sarif") for f in on_stdout):
            raise UsageError(f"--format {','.join(formats)} would mix {' and '.join(on_stdout)} on stdout; "
                             "add --out DIR")
        return plan
    if not file_formats:
        raise UsageError("--out applies to the json, sarif and html formats")
    out_path = Path(out)
    single = file_formats[0] if len(file_formats) == 1 else None
    # One format and a name that looks like a file (an existing file, or a suffix) -> that file;
    # otherwise a directory that gets report.json / report.sarif / report.html.
    is_file = (
        single is not None
        and not out_path.is_dir()
        and not out.endswith(("/", os.sep))
        and (out_path.is_file() or bool(out_path.suffix))
        and (single != "html" or out_path.suffix.lower() in (".html", ".htm"))
    )
    for f in file_formats:
        plan[f] = out_path if is_file else out_path / FILE_NAMES[f]
    return plan


def emit(results: list[TargetResult], plan: dict[str, Path | None]) -> None:
    for fmt, dest in plan.items():
        if fmt == "terminal":
            from audit.report import terminal

            terminal.render(results, terminal.make_console(sys.stdout))
            continue
        text = _render(fmt, results)
        if fmt == "github":
            from audit.report.github import write_step_summary

            write_step_summary(results)
        if dest is None:
            sys.stdout.write(text)
            sys.stdout.flush()
        else:
            try:
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_text(text, encoding="utf-8")
            except OSError as exc:
                raise UsageError(f"cannot write {dest}: {exc.strerror or exc}") from None
            _err(f"wrote {dest}", prefix="")


def _render(fmt: str, results: list[TargetResult]) -> str:
    if fmt == "json":
        from audit.report import json_report

        return json_report.render(results)
    if fmt == "sarif":
        from audit.report import sarif

        return sarif.render(results)
    if fmt == "github":
        from audit.report import github

        return github.render(results)
    from audit.report import html

    return html.render(results)


# -- rule selection -------------------------------------------------------------------------------
def _prefixes(values: list[str]) -> list[str]:
    return [p.strip() for v in values for p in v.split(",") if p.strip()]


def wanted(rule_id: str, select: list[str], ignore: list[str]) -> bool:
    if select and not any(rule_id.startswith(p) for p in select):
        return False
    return not any(rule_id.startswith(p) for p in ignore)


def select_rules(select: list[str], ignore: list[str]) -> list[type[Rule]]:
    """Rules that may report a wanted ID (a rule runs if any of its IDs is wanted)."""
    from audit.registry import all_rules

    rules = list(all_rules())
    known = {rid for r in rules for rid in (r.ID, *r.ALSO_REPORTS)} | {"R-SUB-FILES", "R-SUB-FOLDER"}
    for p in select + ignore:
        if not any(rid.startswith(p) for rid in known):
            raise UsageError(f"no rule ID starts with {p!r}; `pgolf-audit rules` lists them")
    return [r for r in rules if any(wanted(rid, select, ignore) for rid in (r.ID, *r.ALSO_REPORTS))]


# -- --changed-since ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Change:
    status: str  # git's letter: A, M, D, T, ...
    path: str  # repository-relative, POSIX


def changed_folders(ref: str) -> tuple[list[Path], TargetResult]:
    """Record folders changed since `ref`, and a PR-level result with R-SUB-FOLDER findings."""
    from audit.findings import Report
    from audit.report.model import TargetResult

    root = Path(_git(["rev-parse", "--show-toplevel"], Path.cwd()).strip())
    raw = _git(["diff", "--name-status", "-z", "--no-renames", f"{ref}...HEAD"], root)
    changes = parse_name_status(raw)
    findings = sub_folder_findings(changes)
    folders = sorted({folder for c in changes if (folder := record_folder(c.path))})
    existing = [root / f for f in folders if (root / f).is_dir()]
    report = Report(target=f"{ref}...HEAD", findings=findings)
    return existing, TargetResult(report, kind="diff", root=str(root))


def folders_of_files(paths: list[str]) -> list[Path]:
    """The records/<track>/<folder> of each file (paths as pre-commit passes them: from the repo root)."""
    folders = []
    for p in paths:
        folder = record_folder(Path(p).as_posix())
        if folder is not None and Path(folder).is_dir():
            folders.append(Path(folder))
    return sorted(set(folders))


def parse_name_status(raw: str) -> list[Change]:
    parts = raw.split("\0")
    out: list[Change] = []
    i = 0
    while i + 1 < len(parts) and parts[i]:
        out.append(Change(parts[i][:1], parts[i + 1]))
        i += 2
    return out


def record_folder(path: str) -> str | None:
    parts = PurePosixPath(path).parts
    if len(parts) >= 4 and parts[0] == "records":
        return "/".join(parts[:3])
    return None


def sub_folder_findings(changes: list[Change]) -> list:
    """R-SUB-FOLDER on a PR's diff: one new folder under records/<track>/, nothing else."""
    from audit.findings import Evidence, Finding, Severity
    from audit.report.rulemeta import BUILTIN

    source = BUILTIN["R-SUB-FOLDER"].source
    by_folder: dict[str, list[Change]] = {}
    outside: list[Change] = []
    for c in changes:
        folder = record_folder(c.path)
        if folder is None:
            outside.append(c)
        else:
            by_folder.setdefault(folder, []).append(c)
    findings: list[Finding] = []
    if len(by_folder) > 1:
        findings.append(Finding(
            "R-SUB-FOLDER", Severity.ERROR,
            f"This change touches {len(by_folder)} submission folders; a submission PR adds exactly one new folder "
            "under records/<track>/ (R-SUB-FOLDER). Split it into one PR per submission, or drop the unrelated "
            "changes.",
            evidence=tuple(Evidence(f"{len(cs)} changed file(s) in {f}", cs[0].path) for f, cs in sorted(by_folder.items())),
            key="many-folders", source=source,
        ))
    if outside:
        shown = outside[:20]
        findings.append(Finding(
            "R-SUB-FOLDER", Severity.ERROR,
            f"This change touches {len(outside)} file(s) outside a records/<track>/<folder>/ submission folder "
            f"(e.g. {outside[0].path}); a submission PR only adds its folder (R-SUB-FOLDER). Move the files into "
            "the folder or drop them from the PR (the leaderboard README is updated by the maintainers).",
            path=outside[0].path,
            evidence=tuple(Evidence(f"{_STATUS.get(c.status, c.status)} outside records/<track>/<folder>/", c.path)
                           for c in shown),
            key="outside", source=source,
        ))
    for folder, cs in sorted(by_folder.items()):
        touched = [c for c in cs if c.status != "A"]
        if touched:
            findings.append(Finding(
                "R-SUB-FOLDER", Severity.WARNING,
                f"{folder} existed before this change and {len(touched)} of its files are "
                f"{'/'.join(sorted({_STATUS.get(c.status, c.status) for c in touched}))}; a submission PR adds a "
                "new folder and leaves merged records alone (R-SUB-FOLDER). A reviewer must confirm this is a "
                "sanctioned fix.",
                path=touched[0].path,
                evidence=tuple(Evidence(_STATUS.get(c.status, c.status), c.path) for c in touched[:20]),
                key=f"existing:{folder}", source=source,
            ))
    return findings


_STATUS = {"A": "added", "M": "modified", "D": "deleted", "T": "type changed", "C": "copied", "R": "renamed"}


def _git(args: list[str], cwd: Path) -> str:
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        raise UsageError("--changed-since needs git on PATH") from None
    except subprocess.TimeoutExpired:
        raise UsageError(f"git {' '.join(args)} timed out") from None
    if proc.returncode != 0:
        raise UsageError(f"git {' '.join(args)} failed: {proc.stderr.strip() or proc.returncode}")
    return proc.stdout


# -- rules ----------------------------------------------------------------------------------------
def _list_rules(ns: argparse.Namespace) -> int:
    from audit.report.rulemeta import registered

    infos = registered()
    if ns.markdown:
        from audit.report.rulemeta import catalogue_markdown

        sys.stdout.write(catalogue_markdown(infos))
        return EXIT_OK
    from rich.table import Table

    from audit.report.terminal import make_console

    table = Table(title=f"{len(infos)} rules", title_justify="left", show_lines=False)
    for col in ("ID", "severity", "kind", "title", "source"):
        table.add_column(col, no_wrap=col in ("ID", "severity", "kind"), overflow="fold")
    for r in infos:
        table.add_row(r.id, r.severity.value, r.kind, r.title, r.source)
    make_console(sys.stdout).print(table)
    return EXIT_OK


# -- rerun: delegated ---------------------------------------------------------------------
def _delegate(name: str, args: list[str]) -> int:
    import importlib

    module_name, description = DELEGATES[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            _err(f"`{name}` is not available in this installation ({module_name} is missing)")
        else:
            _err(f"`{name}` needs a package that is not installed: {exc.name} "
                 "(install the [torch] extra: pip install 'pgolf-audit[torch]')")
        return EXIT_ERROR
    parser = argparse.ArgumentParser(prog=f"{PROG} {name}", description=description[:1].upper() + description[1:])
    module.add_arguments(parser)
    ns = parser.parse_args(args)
    return int(module.run(ns))


# -- helpers --------------------------------------------------------------------------------------
def _iso_date(text: str) -> str:
    """--as-of: a YYYY-MM-DD date (argparse turns the ValueError into a usage error, exit 2)."""
    import datetime

    try:
        return datetime.date.fromisoformat(text.strip()).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


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


def _err(message: str, prefix: str = f"{PROG}: ") -> None:
    try:
        sys.stderr.write(f"{prefix}{message}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _tolerant_streams() -> None:
    """A terminal that cannot encode a character (LANG=C, a Windows code page) gets a '?' for it."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="replace")
            except (OSError, ValueError):
                pass


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
