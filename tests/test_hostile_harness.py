"""Hostile submissions against the real re-run sandbox (issue 10, items 1-7), on CPU with tiny scripts.

Each test plays the attacker: a `train_gpt.py` (run directly with `launcher="python"` unless
torchrun itself is the point) that tries to escape, and checks from outside that it could not.
The tests that need namespaces skip, saying why, where the kernel refuses them.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from functools import cache
from pathlib import Path

import pytest

from audit.findings import Severity
from audit.harness import isolation as isolation_mod
from audit.harness import store
from audit.harness.isolation import Isolation, choose_isolation, plan_config, read_report
from audit.harness.rerun import RerunResult, rerun
from audit.harness.runner import RerunOptions

ROOT = Path(__file__).resolve().parent.parent
SCORE = 'print("final_int8_zlib_roundtrip_exact val_loss:2.00000000 val_bpb:1.18000000", flush=True)\n'


@cache
def _isolation() -> Isolation:
    return choose_isolation()


def needs_namespaces() -> None:
    iso = _isolation()
    if iso.mode != "namespaces":
        pytest.skip(f"the kernel refuses the sandbox's namespaces here: {iso.note}")


def make_folder(tmp_path: Path, code: str, readme: str | None = None, name: str = "2026-01-01_Hostile") -> Path:
    folder = tmp_path / "records" / "track_10min_16mb" / name
    folder.mkdir(parents=True)
    (folder / "train_gpt.py").write_text(textwrap.dedent(code))
    if readme is not None:
        (folder / "README.md").write_text(readme)
    return folder


def run_plain(tmp_path: Path, folder: Path, seeds=(1,), **kw) -> RerunResult:
    (tmp_path / "scratch").mkdir(exist_ok=True)
    base = dict(folder=folder, seeds=list(seeds), out=tmp_path / "out", nproc=1, scratch_root=tmp_path / "scratch",
                show_progress=False, launcher="python", timeout_train=60.0, timeout_total=90.0,
                startup_allowance=0.0, grace=1.0)
    base.update(kw)
    return rerun(RerunOptions(**base), static=False)


def log_of(res: RerunResult, seed: int) -> str:
    return Path(next(r.log_file for r in res.results if r.seed == seed)).read_text(errors="replace")


def processes_with_cwd_under(root: Path) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/cwd").startswith(str(root)):
                    found.append(int(entry))
            except OSError:
                continue
    return found


# -- 1. the README cannot turn the sandbox off ------------------------------------------------

def test_hostile_readme_environment_cannot_plant_tools(tmp_path):
    """A README PATH naming a directory with a fake `unshare` (as an earlier seed would have planted
    it): the fake never runs, every tool is absolute, loader/home variables are refused and listed,
    hyperparameters still apply, and "network cut" comes from each seed's in-sandbox proof."""
    needs_namespaces()
    evil = tmp_path / "evil"
    evil.mkdir()
    marker = tmp_path / "fake-unshare-ran"
    for tool in ("unshare", "python", "python3", "torchrun"):
        fake = evil / tool
        fake.write_text(f"#!/bin/sh\necho ran > {marker}\nexec /usr/bin/env -u PATH \"$@\"\n")
        fake.chmod(0o755)
    readme = (f"# Hostile\n\n```\nPATH={evil}:/usr/bin:/bin PYTHONPATH={evil} LD_PRELOAD={evil}/x.so "
              f"HOME={evil} TMPDIR={evil} GIT_DIR=/x NUM_LAYERS=3 TRAIN_BATCH_TOKENS=4096 \\\n"
              "torchrun --standalone --nproc_per_node=8 train_gpt.py\n```\n")
    code = f"""
        import os, sys
        # Seed 1 tries to plant a fake tool for seed 2 in the README's PATH directory.
        try:
            with open({str(evil / 'unshare')!r}, "w") as fh:
                fh.write("#!/bin/sh\\necho ran > {marker}\\n")
            print("PLANTED", flush=True)
        except OSError as exc:
            print("PLANT-REFUSED", exc.errno, flush=True)
        print("PATH=" + os.environ.get("PATH", ""), flush=True)
        print("NUM_LAYERS=" + os.environ.get("NUM_LAYERS", "unset"), flush=True)
        print("TRAIN_BATCH_TOKENS=" + os.environ.get("TRAIN_BATCH_TOKENS", "unset"), flush=True)
        print("LD_PRELOAD=" + os.environ.get("LD_PRELOAD", "unset"), flush=True)
        {SCORE}
    """
    folder = make_folder(tmp_path, code, readme)
    res = run_plain(tmp_path, folder, seeds=(1, 2), env_from_readme=True)
    assert [r.status for r in res.results] == ["ok", "ok"], [r.log_tail for r in res.results]
    assert not marker.exists()
    refused = res.report.facts["rerun"]["env_refused"]
    assert {"PATH", "PYTHONPATH", "LD_PRELOAD", "HOME", "TMPDIR", "GIT_DIR"} <= set(refused)
    assert "NUM_LAYERS" not in refused and "TRAIN_BATCH_TOKENS" not in refused
    for r in res.results:
        log = log_of(res, r.seed)
        assert "PLANT-REFUSED" in log and "PLANTED" not in log
        assert str(evil) not in next(ln for ln in log.splitlines() if ln.startswith("PATH="))
        assert "NUM_LAYERS=3" in log and "TRAIN_BATCH_TOKENS=4096" in log and "LD_PRELOAD=unset" in log
        argv = next(n for n in r.notes if n.startswith("argv: "))[6:].split()
        assert argv[0] == "/usr/bin/unshare" or (os.path.isabs(argv[0]) and Path(argv[0]).name == "unshare")
        assert all(os.path.isabs(a) for a in argv if Path(a).name.startswith(("python", "unshare")))
        assert r.network_cut and r.sandbox["ok"] and r.sandbox["checks"]["network"]["ok"]
    assert res.report.facts["rerun"]["network_cut"] is True


def test_hostile_env_policy_takes_hyperparameters_only():
    """The allow/deny policy itself (no sandbox needed): what a README or --env may set."""
    from audit.harness.envpolicy import screen, trusted_path
    from audit.harness.runner import HARNESS_OWNED

    asked = {"PATH": "/x", "PYTHONPATH": "/x", "PYTHONSTARTUP": "/x", "LD_PRELOAD": "/x.so", "LD_LIBRARY_PATH": "/x",
             "HOME": "/x", "TMPDIR": "/x", "XDG_CACHE_HOME": "/x", "GCONV_PATH": "/x", "GLIBC_TUNABLES": "x",
             "BASH_FUNC_f%%": "() { :; }", "BASH_ENV": "/x", "SSL_CERT_FILE": "/x", "SEED": "1", "RANK": "0",
             "MASTER_PORT": "1", "lower_case": "1", "NUM_LAYERS": "11", "TRAIN_BATCH_TOKENS": "786432",
             "NCCL_IB_DISABLE": "1", "QK_GAIN_INIT": "5.25", "MULTILINE": "a\nb"}
    accepted, refused = screen(asked, HARNESS_OWNED)
    assert accepted == {"NUM_LAYERS": "11", "TRAIN_BATCH_TOKENS": "786432", "NCCL_IB_DISABLE": "1",
                        "QK_GAIN_INIT": "5.25"}
    assert set(refused) == set(asked) - set(accepted)
    assert trusted_path("bin:/usr/bin::.:/bin:/usr/bin") == "/usr/bin:/bin"


def test_hostile_unproven_sandbox_runs_nothing(tmp_path):
    """The init refuses to start the command when any in-sandbox check fails (fail closed)."""
    needs_namespaces()
    iso = _isolation()
    work = tmp_path / "work"
    work.mkdir()
    marker = work / "ran"
    # A plan that contradicts itself: the scratch folder must be both writable and read-only.
    cfg = plan_config(cwd=str(work), net=True, keep_ro=list(isolation_mod.python_paths(iso.python, dict(os.environ))),
                      writable=[str(work)], hide=list(isolation_mod.HIDDEN_DIRS), must_be_ro=[str(work)],
                      facts=isolation_mod.HostFacts.gather())
    config = tmp_path / "sandbox.json"
    config.write_text(json.dumps(cfg))
    r, w = os.pipe()
    proc = subprocess.run(iso.wrap(["/bin/touch", str(marker)], config, w), pass_fds=(w,), capture_output=True,
                          timeout=60)
    os.close(w)
    report = read_report(r)
    assert proc.returncode == isolation_mod.REFUSED_EXIT
    assert report is not None and report["ok"] is False and not report["checks"]["filesystem"]["ok"]
    assert not marker.exists()


def test_hostile_network_is_checked_from_inside(tmp_path):
    """Host addresses and services on the host's loopback are unreachable from the run."""
    needs_namespaces()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    port = listener.getsockname()[1]
    addrs = list(isolation_mod.HostFacts.gather().addrs) or ["192.0.2.1"]
    code = f"""
        import socket
        for host, port in [("127.0.0.1", {port}), *[(a, 22) for a in {addrs!r}], ("1.1.1.1", 443)]:
            try:
                socket.create_connection((host, port), timeout=2).close()
                print("REACHED", host, port, flush=True)
            except OSError as exc:
                print("BLOCKED", host, port, exc.errno, flush=True)
        {SCORE}
    """
    try:
        res = run_plain(tmp_path, make_folder(tmp_path, code))
    finally:
        listener.close()
    log = log_of(res, 1)
    assert "REACHED" not in log and log.count("BLOCKED") == len(addrs) + 2
    assert res.results[0].network_cut


# -- 2. nothing outside the scratch copy is writable; results cannot be forged ------------------

def test_hostile_writes_outside_scratch_are_refused_and_resume_checks_digests(tmp_path):
    needs_namespaces()
    out = tmp_path / "out"
    home = os.path.expanduser("~")
    targets = {
        "other seed's result": str(out / "seed-1.json"), "results folder": str(out / "planted.txt"),
        "next to the scratch copy": "../../planted.txt", "scratch root": str(tmp_path / "scratch" / "planted.txt"),
        "the tool's venv": os.path.join(sys.prefix, "planted.txt"), "home": os.path.join(home, "planted.txt"),
        "host tmp": "/tmp/pgolf-hostile-planted.txt", "var tmp": "/var/tmp/pgolf-hostile-planted.txt",
        "etc": "/etc/pgolf-hostile-planted.txt", "original folder": str(tmp_path / "records" / "planted.txt"),
    }
    code = f"""
        import os
        for what, path in {targets!r}.items():
            try:
                with open(path, "w") as fh:
                    fh.write('{{"result": {{"val_bpb": 0.123}}}}')
                print("WROTE", what, flush=True)
            except OSError as exc:
                print("REFUSED", what, exc.errno, flush=True)
        for path in (".", os.environ["TMPDIR"], os.environ["HOME"]):
            with open(os.path.join(path, "mine.txt"), "w") as fh:
                fh.write("ok")
        print("OWN-WRITES-OK", flush=True)
        {SCORE}
    """
    folder = make_folder(tmp_path, code)
    res = run_plain(tmp_path, folder, seeds=(1, 2))
    for r in res.results:
        log = log_of(res, r.seed)
        assert "WROTE" not in log and log.count("REFUSED") == len(targets) and "OWN-WRITES-OK" in log, log
        assert r.status == "ok" and r.val_bpb == pytest.approx(1.18)
    for path in targets.values():
        if os.path.isabs(path) and not path.endswith("seed-1.json"):
            assert not os.path.exists(path), path
    assert json.loads((out / "seed-1.json").read_text())["result"]["val_bpb"] == pytest.approx(1.18)

    again = run_plain(tmp_path, folder, seeds=(1, 2), resume=True)
    assert again.report.facts["rerun"]["resumed_seeds"] == [1, 2]
    # A stored result changed after it was written (by hand, or by a run that could reach it) is not reused.
    doc = json.loads((out / "seed-1.json").read_text())
    doc["result"]["val_bpb"] = 0.123
    store.seed_path(out, 1).write_text(json.dumps(doc))
    (out / "seed-2.log").write_text("forged\n")
    third = run_plain(tmp_path, folder, seeds=(1, 2), resume=True)
    assert third.report.facts["rerun"]["resumed_seeds"] == []
    assert [r.val_bpb for r in third.results] == [pytest.approx(1.18)] * 2


# -- 3. TERM / HUP / INT kill everything, record, exit 128+N -----------------------------------

HANGER = """
    import os, signal, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            time.sleep(600)
        os._exit(0)
    print("step:1/9 train_loss:1.0", flush=True)
    print("HANGING", flush=True)
    time.sleep(600)
"""


@pytest.mark.parametrize("sig,unsafe", [(signal.SIGTERM, False), (signal.SIGHUP, False), (signal.SIGINT, False),
                                        (signal.SIGTERM, True)], ids=["TERM", "HUP", "INT", "TERM-unsafe"])
def test_hostile_signals_kill_the_run_and_record_it(tmp_path, sig, unsafe):
    """The real CLI under torchrun: a signal to the harness kills unshare, torchrun, the workers and a
    detached daemon, removes the scratch folder, records the seed as interrupted, exits 128+N."""
    pytest.importorskip("torch")
    if not unsafe:
        needs_namespaces()
    folder = make_folder(tmp_path, HANGER)
    out, scratch = tmp_path / "out", tmp_path / "scratch"
    scratch.mkdir()
    cmd = [sys.executable, "-m", "audit", "rerun", str(folder), "--seeds", "5", "--nproc", "1", "--out", str(out),
           "--scratch", str(scratch), "--no-progress", "--no-static", "--grace", "1", "--format", "json"]
    harness = subprocess.Popen(cmd + (["--unsafe"] if unsafe else []), cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            log = out / "seed-5.log"
            if log.is_file() and "HANGING" in log.read_text(errors="replace"):
                break
            assert harness.poll() is None, harness.communicate()
            time.sleep(0.2)
        else:
            pytest.fail("the run never started")
        assert processes_with_cwd_under(scratch)
        harness.send_signal(sig)
        code = harness.wait(timeout=60)
    finally:
        if harness.poll() is None:
            os.killpg(harness.pid, signal.SIGKILL)
    assert code == 128 + sig, harness.stderr.read().decode() if harness.stderr else ""
    time.sleep(0.3)
    assert processes_with_cwd_under(scratch) == []
    assert list(scratch.iterdir()) == []
    seed = json.loads((out / "seed-5.json").read_text())["result"]
    assert seed["status"] == "interrupted" and seed["interrupted"] == signal.Signals(sig).name
    assert seed["survivors"] == []
    summary = json.loads((out / "summary.json").read_text())
    assert summary["facts"]["interrupted"] == signal.Signals(sig).name


# -- 4. without namespaces: no secrets in /proc, no surviving daemon; refused unless --unsafe ----

def test_hostile_without_namespaces_secrets_are_scrubbed_and_daemons_tracked(tmp_path):
    secret = "s3cr3t-value-for-the-hostile-test"
    pidfile = tmp_path / "daemon.pid"
    code = f"""
        import os, sys, time
        leaks = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if b{secret!r} in open(f"/proc/{{entry}}/environ", "rb").read():
                        leaks.append(entry)
                except OSError:
                    pass
        print("LEAKS", leaks, flush=True)
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                with open({str(pidfile)!r}, "w") as fh:
                    fh.write(str(os.getpid()))
                os.execve(sys.executable, [sys.executable, "-c", "import time; time.sleep(600)"], {{}})
            os._exit(0)
        for _ in range(200):  # the daemon is up (and its pid known) before the script ends
            if os.path.exists({str(pidfile)!r}):
                break
            time.sleep(0.05)
        {SCORE}
    """
    folder = make_folder(tmp_path, code)
    driver = textwrap.dedent(f"""
        import json, sys
        from pathlib import Path
        from audit.harness.rerun import rerun
        from audit.harness.runner import RerunOptions
        Path({str(tmp_path / 'scratch')!r}).mkdir(exist_ok=True)
        res = rerun(RerunOptions(folder=Path({str(folder)!r}), seeds=[3], out=Path({str(tmp_path / 'out')!r}),
                                 scratch_root=Path({str(tmp_path / 'scratch')!r}), show_progress=False,
                                 launcher="python", unsafe=True, grace=1.0), static=False)
        r = res.results[0]
        print(json.dumps({{"status": r.status, "stragglers": r.stragglers, "survivors": r.survivors,
                           "facts": res.report.facts["rerun"]}}))
    """)
    env = {**os.environ, "MY_API_TOKEN": secret, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", driver], env=env, capture_output=True, text=True, timeout=120,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout.strip().splitlines()[-1])
    log = (tmp_path / "out" / "seed-3.log").read_text()
    assert "LEAKS []" in log, log
    assert "MY_API_TOKEN" in doc["facts"]["harness_env_scrubbed"] and doc["facts"]["harness_environ_wiped"]
    assert doc["facts"]["sandbox_mode"] == "unsafe" and doc["facts"]["network_cut"] is False
    daemon = int(pidfile.read_text())
    assert daemon in doc["stragglers"] and doc["survivors"] == []
    time.sleep(0.2)
    assert not Path(f"/proc/{daemon}").exists() or "Z" in Path(f"/proc/{daemon}/stat").read_text().split()[2]


def test_hostile_no_namespaces_means_no_run_unless_unsafe(tmp_path, monkeypatch):
    """A host without the sandbox (here: no `unshare` found) refuses to run untrusted code."""
    marker = tmp_path / "ran"
    folder = make_folder(tmp_path, f"open({str(marker)!r}, 'w').close()\n{SCORE}")
    real = isolation_mod.resolve_tool
    monkeypatch.setattr(isolation_mod, "resolve_tool", lambda name, *a: None if name == "unshare" else real(name, *a))
    res = run_plain(tmp_path, folder)
    assert res.results == [] and not marker.exists()
    assert any("--unsafe" in e.message for e in res.report.errors)
    res = run_plain(tmp_path, folder, unsafe=True)
    assert res.results[0].status == "ok" and marker.exists()


# -- 5. host unix sockets stay out of reach --------------------------------------------------------

def test_hostile_host_unix_sockets_are_unreachable(tmp_path):
    needs_namespaces()
    outside_hidden = Path(os.path.realpath(ROOT)) / f".hostile-sock-{os.getpid()}"
    outside_hidden.mkdir()
    servers = []
    try:
        paths = [str(tmp_path / "docker.sock"), str(outside_hidden / "agent.sock")]
        for p in paths:
            s = socket.socket(socket.AF_UNIX)
            s.bind(p)
            s.listen(4)
            servers.append(s)
        abstract = socket.socket(socket.AF_UNIX)
        abstract.bind(f"\0pgolf-hostile-{os.getpid()}")
        abstract.listen(4)
        servers.append(abstract)
        code = f"""
            import os, socket
            for p in {paths!r} + ["\\0pgolf-hostile-{os.getpid()}"]:
                s = socket.socket(socket.AF_UNIX)
                s.settimeout(2)
                try:
                    s.connect(p)
                    print("REACHED", repr(p), flush=True)
                except OSError as exc:
                    print("BLOCKED", repr(p), exc.errno, flush=True)
            print("RUN", sorted(os.listdir("/run")), flush=True)
            {SCORE}
        """
        res = run_plain(tmp_path, make_folder(tmp_path, code))
    finally:
        for s in servers:
            s.close()
        for p in outside_hidden.iterdir():
            p.unlink()
        outside_hidden.rmdir()
    log = log_of(res, 1)
    assert "REACHED" not in log and log.count("BLOCKED") == 3 and "RUN []" in log, log
    assert res.results[0].sandbox["checks"]["sockets"]["ok"]


# -- 6. a crashed seed says why; the rendezvous cannot clash -------------------------------------

def test_hostile_crash_carries_exit_signal_and_last_lines(tmp_path):
    code = """
        import os, signal
        print("step:10/12 train_loss:3.1", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """
    res = run_plain(tmp_path, make_folder(tmp_path, code), unsafe=_isolation().mode != "namespaces")
    r = res.results[0]
    assert r.status == "crashed"
    assert r.crash_reason["signal"] == "SIGKILL" and r.crash_reason["exit_code"] == -9
    assert "step:10/12 train_loss:3.1" in r.crash_reason["last_lines"]
    [f] = [f for f in res.report.findings if f.rule_id == "R-SUB-FILES.rerun-runs"]
    assert "SIGKILL" in f.message
    assert res.report.stats["rerun"]["runs"][0]["reason"] == "killed by SIGKILL"


def test_hostile_worker_killed_under_torchrun_is_named(tmp_path):
    """torchrun's own failure report is read: which worker died, with which signal."""
    pytest.importorskip("torch")
    code = """
        import os, signal, time
        print("step:10/12 train_loss:3.1", flush=True)
        if os.environ.get("RANK") == "1":
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(30)
    """
    res = run_plain(tmp_path, make_folder(tmp_path, code), nproc=2, launcher="torchrun",
                    unsafe=_isolation().mode != "namespaces")
    r = res.results[0]
    assert r.status == "crashed" and r.exit_code not in (0, None)
    assert {"rank": "1", "exitcode": -9, "signal": "SIGKILL"} in r.crash_reason["workers"], r.crash_reason
    assert "worker rank 1 exitcode -9 (SIGKILL)" in res.report.stats["rerun"]["runs"][0]["reason"]


def test_hostile_rendezvous_port_taken_on_the_host(tmp_path):
    """The rendezvous port is private to the seed's network namespace: a host process holding it
    (another run, another agent's test) cannot make a seed crash."""
    pytest.importorskip("torch")
    needs_namespaces()
    from audit.harness.runner import SANDBOX_MASTER_PORT

    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        squatter.bind(("127.0.0.1", SANDBOX_MASTER_PORT))
        squatter.listen(1)
    except OSError:
        pass  # someone already holds it: even better for this test
    code = """
        import os, torch, torch.distributed as dist
        dist.init_process_group("gloo")
        t = torch.ones(1)
        dist.all_reduce(t)
        dist.barrier()
        if dist.get_rank() == 0:
            print("final_int8_zlib_roundtrip_exact val_loss:2.00000000 val_bpb:%.8f" % (1 + t.item() / 10), flush=True)
        dist.destroy_process_group()
    """
    try:
        res = run_plain(tmp_path, make_folder(tmp_path, code), nproc=2, launcher="torchrun")
    finally:
        squatter.close()
    r = res.results[0]
    assert r.status == "ok", r.crash_reason or r.log_tail
    assert r.val_bpb == pytest.approx(1.2)


# -- 7. an output flood is capped, head and tail kept, and reported ------------------------------

def test_hostile_output_flood_is_capped(tmp_path):
    code = f"""
        import sys
        print("FIRST LINE", flush=True)
        line = b"x" * 1023 + b"\\n"
        for _ in range(40 * 1024):  # 40 MiB
            sys.stdout.buffer.write(line)
        sys.stdout.flush()
        print("LAST LINE", flush=True)
        {SCORE}
    """
    cap = 2_000_000
    res = run_plain(tmp_path, make_folder(tmp_path, code), max_output=cap,
                    unsafe=_isolation().mode != "namespaces")
    r = res.results[0]
    log = Path(r.log_file)
    assert log.stat().st_size <= cap + 1000
    text = log.read_text()
    assert text.startswith("FIRST LINE") and "LAST LINE" in text[-cap // 2:] and "bytes of output dropped" in text
    assert r.output_truncated and r.output_bytes >= 40 * 1024 * 1024
    assert r.status == "ok" and r.val_bpb == pytest.approx(1.18)  # the score line in the tail is still read
    [f] = [f for f in res.report.findings if f.rule_id == "R-SUB-FILES.rerun-output-cap"]
    assert f.severity == Severity.WARNING
