"""The one way out of every subcommand that produces reports (`check`, `report`, `rerun`, `probe`).

A subcommand returns its results; this module owns everything after that: the shared output
options (declared once, in a parent parser every such subcommand inherits), where each format goes
(`--out` planning, checked before any work starts), writing the formats, and the exit code.
Each format gets the results sanitised for it first (audit.report.sanitize): the strings come from
an untrusted folder.

Exit codes: 0 PASS, 1 FAIL or REVIEW (`--fail-on error`: REVIEW exits 0), 2 usage or internal
error (a crashed or timed-out rule), 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from audit.report.model import TargetResult

PROG = "pgolf-audit"
FORMATS = ("terminal", "json", "sarif", "github", "html")
FILE_FORMATS = ("json", "sarif", "html")
FILE_NAMES = {"json": "report.json", "sarif": "report.sarif", "html": "report.html"}
EXIT_OK, EXIT_FINDINGS, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130

Plan = dict[str, "Path | None"]


class UsageError(Exception):
    """A problem with the command line or its inputs: message, exit 2."""


# -- the shared options ----------------------------------------------------------------------------
def common_parent() -> argparse.ArgumentParser:
    """--format, --fail-on and --exit-zero: declared here once, inherited via `parents=[...]`."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("output")
    group.add_argument("--format", default="terminal",
                       help=f"comma list of {', '.join(FORMATS)} (default terminal), e.g. github,sarif")
    group.add_argument("--fail-on", choices=("error", "warning"), default="warning",
                       help="warning (default): exit 1 on FAIL or REVIEW; error: exit 1 on FAIL only")
    group.add_argument("--exit-zero", action="store_true", help="exit 0 even when findings fail the check")
    return parent


def add_out_option(parser: argparse.ArgumentParser) -> None:
    """`--out` as `check` and `report` read it (`rerun` has its own: the results directory)."""
    parser.add_argument("--out", metavar="PATH",
                        help="file or directory for json/sarif/html (a directory gets report.json, report.sarif, "
                        "report.html); without it json/sarif go to stdout and html to ./report.html")


# -- planning ----------------------------------------------------------------------------------------
def parse_formats(spec: str) -> list[str]:
    formats = [f.strip().lower() for f in spec.split(",") if f.strip()]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise UsageError(f"--format {spec!r}: choose from {', '.join(FORMATS)} (comma-separated)")
    return list(dict.fromkeys(formats))


def plan_outputs(formats: list[str], out: str | None) -> Plan:
    """Where each format goes: a file path, or None for stdout."""
    file_formats = [f for f in formats if f in FILE_NAMES]
    plan: Plan = {f: None for f in formats}
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


def plan_for(args: argparse.Namespace, out_dir: str | None = None) -> Plan:
    """The plan of a parsed command line: its `--out`, or `out_dir`, a directory the subcommand names
    (`rerun`: the results directory), which then takes every file format."""
    formats = parse_formats(args.format)
    if out_dir is None:
        return plan_outputs(formats, getattr(args, "out", None))
    wants_files = any(f in FILE_FORMATS for f in formats)
    return plan_outputs(formats, out_dir.rstrip("/" + os.sep) + "/" if wants_files else None)


# -- writing -----------------------------------------------------------------------------------------
def emit(results: list[TargetResult], plan: Plan) -> None:
    """Every planned format, each from the results sanitised for it."""
    from audit.report.sanitize import for_format

    for fmt, dest in plan.items():
        safe = for_format(results, fmt)
        if fmt == "terminal":
            from audit.report import terminal

            terminal.render(safe, terminal.make_console(sys.stdout))
            continue
        text = _render(fmt, safe)
        if fmt == "github":
            from audit.report.github import write_step_summary

            write_step_summary(for_format(results, "summary"))
        if dest is None:
            sys.stdout.write(text)
            sys.stdout.flush()
        else:
            try:
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_text(text, encoding="utf-8")
            except OSError as exc:
                raise UsageError(f"cannot write {dest}: {exc.strerror or exc}") from None
            err(f"wrote {dest}", prefix="")


def emit_safely(results: list[TargetResult], plan: Plan) -> None:
    """emit, tolerating a reader that left (`pgolf-audit ... | head`): the verdict still decides."""
    try:
        emit(results, plan)
    except (BrokenPipeError, SystemExit):
        # rich turns a closed pipe into SystemExit(1) itself
        silence_stdout()


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


def exit_code(results: list[TargetResult], fail_on: str, exit_zero: bool) -> int:
    """2 if any rule crashed or timed out (the audit is incomplete), else the verdicts decide."""
    from audit.findings import Verdict
    from audit.report.sanitize import terminal_line

    crashed = [(r, e) for r in results for e in r.report.errors]
    for r, e in crashed:
        err(terminal_line(f"internal error: rule {e.where} crashed on {r.report.target}: {e.message}; "
                          "the audit of that folder is incomplete"))
    if crashed:
        return EXIT_ERROR
    if exit_zero:
        return EXIT_OK
    failing = {Verdict.FAIL} | ({Verdict.REVIEW} if fail_on == "warning" else set())
    return EXIT_FINDINGS if any(r.report.verdict in failing for r in results) else EXIT_OK


def finish(results: list[TargetResult], args: argparse.Namespace, plan: Plan) -> int:
    emit_safely(results, plan)
    return exit_code(results, args.fail_on, args.exit_zero)


# -- streams -----------------------------------------------------------------------------------------
def err(message: str, prefix: str = f"{PROG}: ") -> None:
    try:
        sys.stderr.write(f"{prefix}{message}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def tolerant_streams() -> None:
    """A terminal that cannot encode a character (LANG=C, a Windows code page) gets a '?' for it."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="replace")
            except (OSError, ValueError):
                pass


def silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
