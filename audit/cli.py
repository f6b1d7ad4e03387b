"""`pgolf-audit`: audit submission folders, re-render a saved report, list the rules, re-run or probe.

This module only assembles the command line. Each subcommand is a module listed in SUBCOMMANDS
with `add_parser(subparsers, common)` and `run(args)` (the contract is in audit/commands/__init__.py);
whatever results it returns leave through audit.report.output, the one way out: formats, `--out`
planning, exit codes. A new subcommand (e.g. `probe`, in audit.probes.cli) is one line here.

Exit codes: 0 PASS, 1 FAIL or REVIEW (`--fail-on error`: REVIEW exits 0), 2 usage or internal
error (a crashed or timed-out rule, a path that does not exist), 130 interrupted. Never a traceback.
Start-up stays fast: rich, scipy, jinja2 and the rules are imported only when needed.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

from audit.report import output
from audit.report.output import EXIT_ERROR, EXIT_FINDINGS, EXIT_INTERRUPTED, PROG, UsageError

__all__ = ["main", "build_parser", "UsageError", "SUBCOMMANDS"]

# The registration point: subcommand name -> module with add_parser(subparsers, common) and run(args).
# A module that is not installed (audit.probes before it lands) is simply not offered.
SUBCOMMANDS = {
    "check": "audit.commands.check",
    "rules": "audit.commands.rules_list",
    "report": "audit.commands.rerender",
    "rerun": "audit.harness.cli",
    "probe": "audit.probes.cli",
}
DEFAULT = "check"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    output.tolerant_streams()
    try:
        return _dispatch(args)
    except UsageError as exc:
        from audit.report.sanitize import terminal_line

        output.err(terminal_line(str(exc)))  # it may quote a path from the submission
        return EXIT_ERROR
    except KeyboardInterrupt:
        output.err("interrupted")
        return EXIT_INTERRUPTED
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    except BrokenPipeError:
        output.silence_stdout()
        return EXIT_FINDINGS
    except Exception as exc:  # noqa: BLE001 - the promise is: a message, never a traceback
        from audit.report.sanitize import terminal_line

        output.err(terminal_line(f"internal error: {type(exc).__name__}: {exc}"))
        return EXIT_ERROR


def _dispatch(args: list[str]) -> int:
    parser, modules = _build(args[0] if args else None)
    if args and args[0] in SUBCOMMANDS and args[0] not in modules:
        raise UsageError(f"`{args[0]}` is not available in this installation ({SUBCOMMANDS[args[0]]} is missing)")
    if not args or (args[0] not in modules and args[0] not in ("-h", "--help", "--version")):
        args = [DEFAULT, *args]
    ns = parser.parse_args(args)
    module = modules[ns.command]
    plan = None
    if hasattr(ns, "format"):  # a subcommand that writes reports: check its outputs before any work
        out_dir = module.output_dir(ns) if hasattr(module, "output_dir") else None
        plan = output.plan_for(ns, out_dir)
    results = module.run(ns)
    if isinstance(results, int):
        return results
    assert plan is not None, f"{ns.command} returned results but declares no output options"
    return output.finish(results, ns, plan)


def build_parser() -> argparse.ArgumentParser:
    return _build(None)[0]


def _build(wanted: str | None) -> tuple[argparse.ArgumentParser, dict[str, ModuleType]]:
    from audit.report.model import tool_version

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Audit OpenAI Parameter Golf submission folders against the challenge rules. "
        "`pgolf-audit PATH ...` is short for `pgolf-audit check PATH ...`.",
        epilog="exit codes: 0 PASS, 1 FAIL or REVIEW, 2 usage or internal error, 130 interrupted",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {tool_version()}")
    modules = {name: m for name, path in SUBCOMMANDS.items() if (m := _load(name, path, wanted)) is not None}
    sub = parser.add_subparsers(dest="command", metavar="{" + ",".join(modules) + "}")
    common = output.common_parent()
    for module in modules.values():
        module.add_parser(sub, common)
    return parser, modules


def _load(name: str, path: str, wanted: str | None) -> ModuleType | None:
    """The subcommand's module; None if it is not installed. A missing dependency is said on use."""
    try:
        return importlib.import_module(path)
    except ModuleNotFoundError as exc:
        if exc.name is not None and path.startswith(exc.name):
            return None
        if name == wanted:
            raise UsageError(f"`{name}` needs a package that is not installed: {exc.name} "
                             "(install the [torch] extra: pip install 'pgolf-audit[torch]')") from None
        return None


if __name__ == "__main__":
    sys.exit(main())
