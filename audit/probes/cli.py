"""`pgolf-audit probe DIR ...` and `pgolf-audit DIR --probe`: the probes' findings in the same report.

Wired by audit.cli: `add_arguments(parser)` then `run(args)` for the subcommand (like `rerun`),
and `attach_probes(results, ...)` for `check --probe`. Needs the `[torch]` extra (torch,
sentencepiece, libcst); without it the command says so and exits 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_MISSING = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="DIR", help="submission folder(s)")
    parser.add_argument("--format", default="terminal", help="comma list of terminal, json, sarif, github, html")
    parser.add_argument("--out", metavar="PATH", help="file or directory for json/sarif/html (as for check)")
    parser.add_argument("--timeout", type=float, default=300.0, metavar="S", help="per-folder probe deadline (default 300)")
    parser.add_argument("--no-static", action="store_true", help="report the probes only, not the static check")
    parser.add_argument("--allow-network", action="store_true", help="do not cut the network (debugging only)")
    parser.add_argument("--keep-scratch", action="store_true", help="keep the ported scratch copies")
    parser.add_argument("--fail-on", choices=("error", "warning"), default="warning",
                        help="warning (default): exit 1 on FAIL or REVIEW; error: exit 1 on FAIL only")
    parser.add_argument("--exit-zero", action="store_true", help="exit 0 whatever the verdicts")


def missing_message() -> str | None:
    from audit.probes import missing_extra

    missing = missing_extra()
    if not missing:
        return None
    return (f"the probes need the [torch] extra ({', '.join(missing)} not installed): "
            "pip install 'pgolf-audit[torch]'")


def run(args: argparse.Namespace) -> int:
    from audit.cli import (
        UsageError,
        audit_folders,
        emit,
        exit_code,
        parse_formats,
        plan_outputs,
        select_rules,
    )

    message = missing_message()
    if message:
        print(f"pgolf-audit probe: {message}", file=sys.stderr)
        return EXIT_MISSING
    plan = plan_outputs(parse_formats(args.format), args.out)
    folders = []
    for p in args.paths:
        if not Path(p).is_dir():
            raise UsageError(f"{p}: not a directory")
        folders.append(Path(p))
    if args.no_static:
        from audit.findings import Report
        from audit.report.model import TargetResult

        results = [TargetResult(Report(target=str(f))) for f in folders]
    else:
        results = audit_folders(folders, select_rules([], []), None, [], [])
    attach_probes(results, timeout_s=args.timeout, allow_network=args.allow_network, keep_scratch=args.keep_scratch)
    emit(results, plan)
    return exit_code(results, args.fail_on, args.exit_zero)


def attach_probes(results, *, timeout_s: float = 300.0, allow_network: bool = False, keep_scratch: bool = False) -> None:
    """Run the probes on every folder result and add their findings (and measurements as facts)."""
    from audit.probes.findings import probe_findings
    from audit.probes.runner import run_probe
    from audit.report.model import build_excerpts
    from audit.submission import Submission

    for result in results:
        if result.kind != "folder":
            continue
        folder = Path(result.report.target)
        print(f"probing {folder} ...", file=sys.stderr)
        outcome = run_probe(folder, timeout_s=timeout_s, allow_network=allow_network, keep_scratch=keep_scratch)
        found = probe_findings(outcome)
        result.report.findings.extend(found)
        facts = outcome.to_dict()
        result.report.facts["probe"] = {k: v for k, v in facts.items() if k != "rewrites"} | {
            "rewrites": len(outcome.rewrites)}
        try:
            result.excerpts.update(build_excerpts(Submission.load(folder), found))
        except Exception:  # noqa: BLE001 - excerpts are a convenience; the findings stand without them
            pass
