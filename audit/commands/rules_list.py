"""`pgolf-audit rules`: every rule ID with severity, kind, title and source."""

from __future__ import annotations

import argparse
import sys

from audit.report.output import EXIT_OK

NAME = "rules"


def add_parser(subparsers, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    rules = subparsers.add_parser(NAME, help="list every rule: ID, severity, kind, title, source")
    rules.add_argument("--markdown", action="store_true", help="print the rule catalogue as Markdown: an index, then every rule's documentation")
    return rules


def run(args: argparse.Namespace) -> int:
    from audit.report.rulemeta import registered

    infos = registered()
    if args.markdown:
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
