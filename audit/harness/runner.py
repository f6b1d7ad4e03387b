"""Re-run a submission seed by seed and collect the results (the orchestration of `rerun`)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from audit.harness import store
from audit.harness.envpolicy import screen, trusted_path
from audit.harness.isolation import HIDDEN_DIRS, HostFacts, Isolation, plan_config, read_report
from audit.harness.launch import DEFAULT_MAX_OUTPUT, Deadlines, RunOutcome, run_group
from audit.harness.measure import (
    SeedResult,
    crash_reason,
    error_excerpt,
    fill_measurements,
    parse_produced_logs,
    produced_files,
    read_tail,
    refused_writes,
    status_of,
)
from audit.harness.progress import ProgressView
from audit.harness.sandbox import SECRET_PATTERN, copy_submission, file_manifest, remove_tree, scrub_env
from audit.harness.vocab import sentencepiece_vocab_size

HARNESS_VERSION = "2"
# Variables the harness owns for every seed; --env cannot override them.
HARNESS_OWNED = ("SEED", "RUN_ID", "DATA_PATH", "TOKENIZER_PATH", "TMPDIR", "HOME")
# Inside a private network namespace nothing else listens, so a fixed rendezvous port cannot clash.
SANDBOX_MASTER_PORT = 29500


@dataclass
class RerunOptions:
    folder: Path
    seeds: list[int]
    out: Path
    nproc: int = 8
    data: Path | None = None
    tokenizer: Path | None = None
    vocab_size: int | None = None  # default: read from the tokenizer
    timeout_train: float = 600.0
    timeout_eval: float = 600.0
    timeout_total: float = 1500.0
    startup_allowance: float = 300.0  # start-up + compile, which the train clock does not count
    grace: float = 10.0
    env: dict[str, str] = field(default_factory=dict)
    env_from_readme: bool = False  # also apply the K=V of the README's torchrun command (--env wins)
    resume: bool = False
    allow_network: bool = False
    keep_scratch: bool = False
    scratch_root: Path | None = None
    python: str = sys.executable
    show_progress: bool = True
    unsafe: bool = False  # run without any sandbox (no namespaces); refused otherwise where namespaces fail
    max_output: int = DEFAULT_MAX_OUTPUT  # bytes of output kept per seed (head + tail)
    launcher: str = "torchrun"  # "python": run the script directly (tests of the sandbox itself)

    @property
    def deadlines(self) -> Deadlines:
        return Deadlines(self.timeout_train + self.startup_allowance, self.timeout_total, self.grace)


def config_key(opts: RerunOptions, folder_digest: str, script: str) -> str:
    """What must be equal for a stored seed result to be reused by --resume."""
    basis = {
        "harness": HARNESS_VERSION, "folder": folder_digest, "script": script, "nproc": opts.nproc,
        "data": str(opts.data), "tokenizer": str(opts.tokenizer), "vocab": opts.vocab_size,
        "env": sorted(opts.env.items()), "limits": [opts.timeout_train, opts.timeout_total, opts.startup_allowance],
        "launcher": opts.launcher, "unsafe": opts.unsafe, "network": opts.allow_network,
    }
    return hashlib.sha256(json.dumps(basis, sort_keys=True).encode()).hexdigest()[:20]


def on_gpu_host() -> bool:
    return shutil.which("nvidia-smi") is not None or Path("/dev/nvidia0").exists()


@dataclass(frozen=True)
class Toolchain:
    """Every program a seed runs, as absolute paths, and what the interpreter loads (fixed before seed 1).
    `facts` are the host's addresses, loopback services and sockets when the re-run started (each
    seed's plan gathers them afresh)."""

    python: str
    python_paths: tuple[str, ...]
    isolation: Isolation
    facts: HostFacts


def seed_env(opts: RerunOptions, seed: int, run_id: str, tmpdir: Path, home: Path | None = None
             ) -> tuple[dict[str, str], list[str], dict[str, str], dict[str, str]]:
    """(environment of the run, names dropped from ours, the variables the harness chose, refused ones)."""
    env, dropped = scrub_env(dict(os.environ))
    env["PATH"] = trusted_path(env.get("PATH"))
    chosen: dict[str, str] = {"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    vocab = opts.vocab_size or (sentencepiece_vocab_size(opts.tokenizer) if opts.tokenizer else None)
    if vocab:
        chosen["VOCAB_SIZE"] = str(vocab)
    if not on_gpu_host():
        chosen["OMP_NUM_THREADS"] = "1"  # 2 shared cores in CI: threads per process would thrash
    accepted, refused = screen(opts.env, HARNESS_OWNED)
    chosen.update(accepted)
    owned = {"SEED": str(seed), "RUN_ID": run_id, "TMPDIR": str(tmpdir)}
    if home is not None:
        owned["HOME"] = str(home)
    if opts.data is not None:
        owned["DATA_PATH"] = str(opts.data.resolve())
    if opts.tokenizer is not None:
        owned["TOKENIZER_PATH"] = str(opts.tokenizer.resolve())
    chosen.update(owned)
    env.update(chosen)
    return env, dropped, chosen, refused


def make_run_id(folder: Path, seed: int) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", folder.resolve().name)[:48] or "submission"
    return f"rerun_{slug}_seed{seed}"


@contextmanager
def scratch_area(opts: RerunOptions) -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="pgolf-rerun-", dir=opts.scratch_root))
    try:
        yield root
    finally:
        if not opts.keep_scratch:
            remove_tree(root)


def launch_argv(opts: RerunOptions, python: str, script: str, isolation: Isolation) -> list[str]:
    """torchrun with a static single-node rendezvous (no elastic heartbeats that a busy host can
    starve), on a port that cannot clash: fixed inside a private network namespace, else a free one."""
    if opts.launcher == "python":
        return [python, script]
    port = SANDBOX_MASTER_PORT if isolation.network_cut else _free_port()
    return [python, "-m", "torch.distributed.run", "--nnodes=1", "--node-rank=0", "--rdzv-backend=static",
            "--master-addr=127.0.0.1", f"--master-port={port}", f"--nproc-per-node={opts.nproc}", script]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sandbox_plan(opts: RerunOptions, tools: Toolchain, scratch: Path, seed_dir: Path, workdir: Path,
                 writable: list[Path]) -> dict:
    """What the seed may see and write: see sandbox_init.py."""
    keep = [*tools.python_paths] + [str(p.resolve()) for p in (opts.data, opts.tokenizer) if p is not None]
    caller_home = os.path.expanduser("~")
    out = opts.out.resolve()
    hide = [*HIDDEN_DIRS, caller_home, str(out), str(scratch)]
    must_be_ro = [str(out), str(scratch), str(seed_dir), str(workdir.parent), str(opts.folder.resolve()),
                  os.path.dirname(tools.python), caller_home, "/usr", "/etc", "/var"]
    return plan_config(cwd=str(workdir), net=tools.isolation.network_cut, keep_ro=keep,
                       writable=[str(p) for p in writable], hide=hide,
                       must_be_ro=[p for p in must_be_ro if os.path.isdir(p)],
                       facts=HostFacts.gather())  # per seed: a socket bound since the last seed is covered too


def run_one_seed(opts: RerunOptions, seed: int, script: str, scratch: Path, tools: Toolchain,
                 view: ProgressView) -> SeedResult:
    """Copy, launch, wait, measure one seed. Never raises for anything the submission does; a
    signal (signals.Interrupted) comes back as a result with status "interrupted"."""
    isolation = tools.isolation
    seed_dir = scratch / f"seed-{seed}"
    workdir = seed_dir / "run" / opts.folder.resolve().name
    tmpdir, home = seed_dir / "tmp", seed_dir / "home"
    copy_notes = copy_submission(opts.folder, workdir)
    tmpdir.mkdir(parents=True)
    home.mkdir()
    before = file_manifest(workdir)
    run_id = make_run_id(opts.folder, seed)
    env, dropped, chosen, refused = seed_env(opts, seed, run_id, tmpdir, home)
    argv = launch_argv(opts, tools.python, script, isolation)
    pass_fds: tuple[int, ...] = ()
    report_fd: int | None = None
    if isolation.mode == "namespaces":
        config = seed_dir / "sandbox.json"
        config.write_text(json.dumps(sandbox_plan(opts, tools, scratch, seed_dir, workdir, [workdir, tmpdir, home])))
        report_fd, write_fd = os.pipe()
        pass_fds = (write_fd,)
        argv = isolation.wrap(argv, config, write_fd)
    log_path = store.seed_log_path(opts.out, seed)
    view.start_seed(f"seed {seed}", opts.deadlines)
    started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    interrupted: BaseException | None = None
    try:
        outcome = run_group(argv, cwd=workdir, env=env, log_path=log_path, deadlines=opts.deadlines,
                            on_tick=view.tick, max_output=opts.max_output, pass_fds=pass_fds)
    except KeyboardInterrupt as exc:  # signals.Interrupted too: the run is already dead
        interrupted = exc
        outcome = getattr(exc, "outcome", None) or RunOutcome(None, 0.0, None, interrupted=type(exc).__name__)
    sandbox = read_report(report_fd) if report_fd is not None else {"mode": isolation.mode, "ok": False}
    sandbox = sandbox or {"ok": False, "errors": ["the sandbox reported nothing (it did not start)"]}
    sandbox_ok = isolation.mode != "namespaces" or bool(sandbox.get("ok"))
    net_proof = (sandbox.get("checks") or {}).get("network") or {}
    ending = sandbox.get("command_exit")
    if isinstance(ending, dict) and isinstance(ending.get("exit_code"), int) and outcome.exit_code is not None:
        outcome.exit_code = ending["exit_code"]  # the command's own status (negative: its signal), not the init's
    run, parsed_from = parse_produced_logs(log_path, workdir, run_id)
    status = status_of(outcome, run, sandbox_ok)
    result = SeedResult(
        seed=seed, run_id=run_id, status=status, exit_code=outcome.exit_code,
        wall_s=round(outcome.wall_s, 3),
        train_phase_wall_s=round(outcome.train_end_s, 3) if outcome.train_end_s is not None else None,
        eval_phase_wall_s=(round(outcome.wall_s - outcome.train_end_s, 3)
                           if outcome.train_end_s is not None and not outcome.timed_out else None),
        timed_out=outcome.timed_out, survivors=outcome.survivors, stragglers=outcome.stragglers,
        log_file=str(log_path), log_tail=read_tail(log_path), error_excerpt=error_excerpt(log_path), parsed_log=parsed_from,
        network_cut=bool(sandbox_ok and net_proof.get("ok")), isolation_note=isolation.note, env_dropped=dropped,
        env_set=shown_env(chosen), notes=[*copy_notes, f"started {started}", "argv: " + " ".join(argv)],
        launch_error=outcome.launch_error, sandbox=sandbox, env_refused=refused,
        output_bytes=outcome.output_bytes, output_truncated=outcome.output_truncated, interrupted=outcome.interrupted,
    )
    if status in ("crashed", "timeout", "sandbox-error", "interrupted"):
        result.crash_reason = crash_reason(outcome.exit_code, log_path)
    script_path = opts.folder / script
    source = script_path.read_bytes().decode("utf-8", "replace") if script_path.is_file() else None
    fill_measurements(result, run, produced_files(before, file_manifest(workdir)), source)
    result.outside_writes = outside_writes(seed_dir, workdir) + refused_writes(log_path)
    view.end_seed(f"{result.status}, val_bpb={result.val_bpb}, wall {result.wall_s:.0f}s, "
                  f"artifact {result.artifact_bytes_raw} B")
    if interrupted is not None:
        interrupted.result = result  # type: ignore[attr-defined]
        raise interrupted
    return result


def outside_writes(seed_dir: Path, workdir: Path) -> list[str]:
    """Entries the run created next to or above its working copy, up to the scratch root."""
    found: list[str] = []
    scratch = seed_dir.parent
    expected = {seed_dir: {"run", "tmp", "home", "sandbox.json"}, workdir.parent: {workdir.name}}
    for directory, allowed in expected.items():
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        found += [os.path.relpath(directory / n, workdir) for n in names if n not in allowed]
    try:
        found += [os.path.relpath(scratch / n, workdir) for n in sorted(os.listdir(scratch)) if not n.startswith("seed-")]
    except OSError:
        pass
    return found


def shown_env(chosen: dict[str, str]) -> dict[str, str]:
    """The variables we set, for the record; a credential-like name passed with --env is masked."""
    return {k: ("***" if SECRET_PATTERN.search(k.upper()) else v) for k, v in chosen.items()}
