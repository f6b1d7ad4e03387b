"""Command line of `pgolf-audit rerun` (a subcommand module: see audit/commands/__init__.py).

The shared output options (--format, --fail-on, --exit-zero) come from the common parent; the
reports are written into the results directory (`output_dir`) by audit.report.output.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_SEEDS = (42, 1337, 2025)


NAME = "rerun"
DESCRIPTION = "re-run a submission under torchrun and compare with its claims (needs torch)"


def add_parser(subparsers, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(NAME, parents=[common], help=DESCRIPTION,
                                   description=DESCRIPTION[:1].upper() + DESCRIPTION[1:])
    add_arguments(parser)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", metavar="DIR", help="the submission folder (records/<track>/<date>_<name>/)")
    seeds = parser.add_mutually_exclusive_group()
    seeds.add_argument("--seeds", nargs="+", type=int, metavar="SEED",
                       help=f"seeds to run (default: the seeds of the committed logs, else {' '.join(map(str, DEFAULT_SEEDS))})")
    seeds.add_argument("--seeds-from-logs", action="store_true",
                       help="run exactly the seeds named by the committed logs and submission.json")
    parser.add_argument("--nproc", type=int, default=8, help="processes per node for torchrun (default 8: 8xH100)")
    parser.add_argument("--data", metavar="DATA_DIR", help="folder with fineweb_train_*.bin / fineweb_val_*.bin (DATA_PATH)")
    parser.add_argument("--tokenizer", metavar="MODEL", help="SentencePiece .model file (TOKENIZER_PATH)")
    parser.add_argument("--vocab-size", type=int, help="VOCAB_SIZE (default: read from the tokenizer)")
    parser.add_argument("--env", action="append", nargs="+", default=[], metavar="K=V",
                        help="extra environment for the run (the submission's declared hyperparameters); repeatable")
    parser.add_argument("--env-from-readme", action="store_true",
                        help="also apply the K=V assignments of the README's torchrun command (--env wins)")
    parser.add_argument("--timeout-train", type=float, default=600.0, metavar="S",
                        help="training limit in seconds (default 600)")
    parser.add_argument("--timeout-eval", type=float, default=600.0, metavar="S",
                        help="evaluation limit in seconds (default 600)")
    parser.add_argument("--timeout-total", type=float, default=1500.0, metavar="S",
                        help="kill the run after this many seconds (default 1500)")
    parser.add_argument("--startup-allowance", type=float, default=300.0, metavar="S",
                        help="start-up and compilation before the train clock starts (default 300); the run is "
                        "killed if training has not ended after timeout-train + this")
    parser.add_argument("--grace", type=float, default=10.0, metavar="S", help="SIGTERM to SIGKILL delay (default 10)")
    parser.add_argument("--out", metavar="RESULTS_DIR",
                        help="where seed-<S>.json, seed-<S>.log, summary.json and reports go (default ./rerun-<DIR name>)")
    parser.add_argument("--resume", action="store_true", help="reuse seeds already finished in RESULTS_DIR")
    parser.add_argument("--bpb-tolerance", type=float, default=0.001, help="per-seed val_bpb tolerance (default 0.001)")
    parser.add_argument("--bytes-tolerance", type=float, default=0.001,
                        help="relative artifact-size tolerance against claims (default 0.001 = 0.1%%)")
    parser.add_argument("--allow-network", action="store_true",
                        help="do not cut the network (debugging only; the other namespaces stay)")
    parser.add_argument("--unsafe", action="store_true",
                        help="run WITHOUT any sandbox (no namespaces: network, filesystem and host processes "
                        "reachable); only for code you trust, or a host that refuses namespaces")
    parser.add_argument("--max-output", type=int, default=200_000_000, metavar="BYTES",
                        help="output kept per seed, head and tail (default 200000000); more is a finding")
    parser.add_argument("--keep-scratch", action="store_true", help="keep the scratch copies (printed at the end)")
    parser.add_argument("--scratch", metavar="DIR", help="where scratch copies go (default: the system temp dir)")
    parser.add_argument("--python", default=sys.executable, metavar="PATH",
                        help="Python with torch installed, used for torchrun (default: this one)")
    parser.add_argument("--no-static", action="store_true", help="skip the static audit; report the re-run only")
    parser.add_argument("--no-progress", action="store_true", help="no live progress display")


def parse_env(pairs: list[list[str]] | list[str]) -> dict[str, str]:
    from audit.report.output import UsageError

    flat = [p for group in pairs for p in (group if isinstance(group, list) else [group])]
    env: dict[str, str] = {}
    for pair in flat:
        name, sep, value = pair.partition("=")
        if not sep or not name.isidentifier():
            raise UsageError(f"--env {pair!r}: expected NAME=VALUE")
        env[name] = value
    return env


def options_from_args(args: argparse.Namespace):
    """RerunOptions from the parsed command line; usage problems raise audit.report.output.UsageError."""
    from audit.harness.envpolicy import screen
    from audit.harness.rerun import layout_problem, seeds_from_claims
    from audit.harness.runner import HARNESS_OWNED, RerunOptions
    from audit.report.output import UsageError
    from audit.submission import Submission

    folder = Path(args.folder)
    if not folder.is_dir():
        raise UsageError(f"{args.folder}: not a directory")
    for flag, value, want_dir in (("--data", args.data, True), ("--tokenizer", args.tokenizer, False)):
        if value is not None and not (Path(value).is_dir() if want_dir else Path(value).is_file()):
            raise UsageError(f"{flag} {value}: no such {'directory' if want_dir else 'file'}")
    if args.nproc < 1:
        raise UsageError("--nproc must be at least 1")
    env = parse_env(args.env)
    owned = sorted(set(env) & set(HARNESS_OWNED))
    if owned:
        raise UsageError(f"--env cannot set {', '.join(owned)}: the harness sets them per seed")
    _, refused = screen(env, HARNESS_OWNED)
    if refused:
        raise UsageError("--env cannot set " + "; ".join(f"{k} ({why})" for k, why in sorted(refused.items())))
    if args.max_output < 1_000_000:
        raise UsageError("--max-output must be at least 1000000 bytes")
    if args.seeds:
        seeds = list(dict.fromkeys(args.seeds))
    else:
        seeds = seeds_from_claims(Submission.load(folder))
        if args.seeds_from_logs and not seeds:
            raise UsageError(f"--seeds-from-logs: no seed found in the logs or submission.json of {folder}")
        seeds = seeds or list(DEFAULT_SEEDS)
    out = results_dir(args)
    opts = RerunOptions(
        folder=folder, seeds=seeds, out=out, nproc=args.nproc,
        data=Path(args.data) if args.data else None, tokenizer=Path(args.tokenizer) if args.tokenizer else None,
        vocab_size=args.vocab_size, timeout_train=args.timeout_train, timeout_eval=args.timeout_eval,
        timeout_total=args.timeout_total, startup_allowance=args.startup_allowance, grace=args.grace, env=env,
        env_from_readme=args.env_from_readme,
        resume=args.resume, allow_network=args.allow_network, keep_scratch=args.keep_scratch,
        scratch_root=Path(args.scratch) if args.scratch else None, python=args.python,
        show_progress=not args.no_progress, unsafe=args.unsafe, max_output=args.max_output,
    )
    problem = layout_problem(opts)
    if problem is not None:
        raise UsageError(problem)
    return opts


def output_dir(args: argparse.Namespace) -> str:
    """json/sarif/html go into the results directory."""
    return str(results_dir(args))


def results_dir(args: argparse.Namespace) -> Path:
    return Path(args.out) if args.out else Path(f"rerun-{Path(args.folder).resolve().name}")


def run(args: argparse.Namespace) -> list | int:
    """Re-run and compare; audit.report.output writes the reports and sets the exit code as for `check`."""
    from audit.harness.rerun import limits_of, rerun
    from audit.report.model import TargetResult, build_excerpts

    opts = options_from_args(args)
    if opts.data is None or opts.tokenizer is None:
        print("note: --data/--tokenizer not given; the script's own defaults for DATA_PATH/TOKENIZER_PATH apply",
              file=sys.stderr)
    from audit.harness.signals import Interrupted

    try:
        outcome = rerun(opts, limits=limits_of(opts, args.bpb_tolerance, args.bytes_tolerance),
                        static=not args.no_static)
    except Interrupted as exc:  # the run was killed and recorded; the scratch folder is gone
        print(f"interrupted by {exc.signal_name}: the run was stopped; partial results in {opts.out}/ "
              "(summary.json, seed-<S>.json)", file=sys.stderr)
        return exc.exit_code
    result = TargetResult(outcome.report, excerpts=build_excerpts(outcome.submission, outcome.report.findings))
    print(f"re-run results: {opts.out}/ (summary.json, seed-<S>.json, seed-<S>.log)", file=sys.stderr)
    return [result]
