"""`pgolf-audit report REPORT.json`: a saved JSON report in other formats, without auditing again."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from audit.report.output import UsageError, add_out_option

if TYPE_CHECKING:
    from audit.report.model import TargetResult

NAME = "report"


def add_parser(subparsers, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    report = subparsers.add_parser(NAME, parents=[common], help="re-render a saved JSON report (no re-audit)",
                                   description="Render a JSON report written by `--format json` in other formats, "
                                   "without auditing again. Exit codes as for check, from the saved results.")
    report.add_argument("report_json", metavar="REPORT.json", help="a report written by --format json")
    add_out_option(report)
    return report


def run(args: argparse.Namespace) -> list[TargetResult]:
    from audit.report.load import ReportLoadError, load_report

    try:
        return load_report(args.report_json)
    except ReportLoadError as exc:
        raise UsageError(str(exc)) from None
