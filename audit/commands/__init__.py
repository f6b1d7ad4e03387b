"""The subcommands of `pgolf-audit` that live in the core package (check, report, rules).

Every subcommand module, here or elsewhere (audit.harness.cli for `rerun`, audit.probes.cli for
`probe`), has the same two functions, and audit.cli lists it by name in `SUBCOMMANDS`:

    def add_parser(subparsers, common) -> argparse.ArgumentParser
        # `common` is audit.report.output.common_parent(): pass it as parents=[common] when the
        # subcommand writes reports (--format, --fail-on, --exit-zero come with it)
    def run(args) -> list[TargetResult] | int
        # results are written and turned into an exit code by audit.report.output;
        # an int is an exit code for subcommands that write no report (`rules`)

and optionally `def output_dir(args) -> str | None`: where json/sarif/html go when the subcommand
has no `--out` of the check kind (`rerun` writes them into its results directory).
Modules are imported only to build the parser, so they import nothing heavy at module level.
"""
