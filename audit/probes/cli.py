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
NAME = "probe"
DESCRIPTION = "run the Kraft-sum and byte-accounting probes on a CPU port of the submission (needs torch)"


def add_parser(subparsers, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The subcommand (registered by name in audit.cli SUBCOMMANDS); --format/--fail-on/--exit-zero from `common`."""
    from audit.report.output import add_out_option

    parser = subparsers.add_parser(NAME, parents=[common], help=DESCRIPTION,
                                   description=DESCRIPTION[:1].upper() + DESCRIPTION[1:])
    add_arguments(parser)
    add_out_option(parser)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="DIR", help="submission folder(s)")
    parser.add_argument("--timeout", type=float, default=300.0, metavar="S", help="per-folder probe deadline (default 300)")
    parser.add_argument("--no-static", action="store_true", help="report the probes only, not the static check")
    parser.add_argument("--allow-network", action="store_true", help="do not cut the network (debugging only)")
    parser.add_argument("--keep-scratch", action="store_true", help="keep the ported scratch copies")


def missing_message() -> str | None:
    from audit.probes import missing_extra

    missing = missing_extra()
    if not missing:
        return None
    return (f"the probes need the [torch] extra ({', '.join(missing)} not installed): "
            "pip install 'pgolf-audit[torch]'")


def run(args: argparse.Namespace):
    """The static check (unless --no-static) and the probes of every folder; results go out through
    audit.report.output. Exit 2 (with a message) without the [torch] extra."""
    from audit.report.output import UsageError

    message = missing_message()
    if message:
        print(f"pgolf-audit probe: {message}", file=sys.stderr)
        return EXIT_MISSING
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
        results = [_static(f) for f in folders]
    attach_probes(results, timeout_s=args.timeout, allow_network=args.allow_network, keep_scratch=args.keep_scratch)
    return results


def _static(folder: Path):
    """The static check of one folder, every rule (as `check` runs it, without its CLI layer)."""
    from audit.context import Options
    from audit.engine import audit_submission
    from audit.registry import all_rules
    from audit.report.model import TargetResult, build_excerpts
    from audit.submission import Submission

    submission = Submission.load(folder)
    report = audit_submission(submission, Options(), rules=list(all_rules()))
    report.target = str(folder)
    return TargetResult(report, excerpts=build_excerpts(submission, report.findings))


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
