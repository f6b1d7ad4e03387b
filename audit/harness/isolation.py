"""How each seed is wrapped: namespaces via an absolute `unshare`, and the per-seed sandbox plan.

Every tool is resolved to an absolute path once, before the first seed, from the system's
directories (unshare) or the caller's own absolute PATH entries (python), never from the
environment given to the run. The wrap is `unshare ... python -I -S sandbox_init.py CONFIG FD --
torchrun ...`; the init process proves the isolation from inside on every seed and reports it
through the inherited pipe FD, which only it holds (the run never sees it). "Network cut" and the
other guarantees are reported per seed from that proof, never from what we asked for.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

SANDBOX_INIT = Path(__file__).with_name("sandbox_init.py")
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
REFUSED_EXIT = 97  # sandbox_init.REFUSED
# Host directories that hold sockets, other users' files or temporary files: empty inside.
HIDDEN_DIRS = ("/run", "/var/run", "/tmp", "/var/tmp", "/root", "/home", "/mnt", "/media", "/srv")
_NS_FLAGS = ("--mount", "--pid", "--fork", "--ipc", "--uts", "--kill-child=SIGKILL")
MAX_SOCKETS = 256
MAX_LO_PORTS = 16


def resolve_tool(name: str, search: str = SYSTEM_PATH) -> str | None:
    """An absolute path for `name` (as given if it already contains a slash)."""
    if os.sep in name:
        path = os.path.abspath(name)
        return path if os.access(path, os.X_OK) and os.path.isfile(path) else None
    found = shutil.which(name, path=search)
    return os.path.abspath(found) if found else None


@dataclass(frozen=True)
class Isolation:
    """The wrap of every seed. mode: namespaces | unsafe (none, by request) | unavailable (refused)."""

    mode: str
    prefix: tuple[str, ...]
    python: str  # runs sandbox_init.py (absolute)
    network_cut: bool  # what is asked for; each seed's own proof is what the report states
    pid_namespace: bool
    note: str
    tried: tuple[str, ...] = field(default=())

    def wrap(self, argv: list[str], config: Path | None, report_fd: int | None) -> list[str]:
        if self.mode != "namespaces":
            return list(argv)
        return [*self.prefix, self.python, "-I", "-S", str(SANDBOX_INIT), str(config), str(report_fd), "--", *argv]


def choose_isolation(allow_network: bool = False, unsafe: bool = False, python: str = sys.executable) -> Isolation:
    """The namespaces this host allows, found by running the sandbox's own self-test through them."""
    if unsafe:
        return Isolation("unsafe", (), python, False, False,
                         "NO sandbox (--unsafe): no namespaces, the network is not cut, the filesystem is writable")
    unshare = resolve_tool("unshare")
    if unshare is None:
        return Isolation("unavailable", (), python, False, False, "`unshare` (util-linux) is not installed")
    net = () if allow_network else ("--net",)
    tried: list[str] = []
    for user in (("--user", "--map-root-user"), ()):
        prefix = (unshare, *user, *net, *_NS_FLAGS)
        iso = Isolation("namespaces", prefix, python, not allow_network, True,
                        ("network cut" if not allow_network else "network left on (--allow-network)")
                        + f"; {'user+' if user else ''}mount+pid+ipc+uts{'' if allow_network else '+net'} namespaces")
        report, err = self_test(iso)
        if report is not None and report.get("ok"):
            return Isolation(iso.mode, prefix, python, iso.network_cut, True, iso.note, tuple(tried))
        tried.append(f"{' '.join(prefix)}: {err or json.dumps(report)[:300]}")
    return Isolation("unavailable", (), python, False, False,
                     "this host refuses the namespaces the sandbox needs (" + "; ".join(tried) + ")", tuple(tried))


def self_test(iso: Isolation) -> tuple[dict | None, str | None]:
    """Run a no-op through the wrap with an empty plan; (the init's report, an error)."""
    with tempfile.TemporaryDirectory(prefix="pgolf-sandbox-test-") as tmp:
        config = Path(tmp) / "sandbox.json"
        config.write_text(json.dumps(plan_config(cwd="/", net=iso.network_cut, keep_ro=python_paths(iso.python, {"PATH": SYSTEM_PATH}),
                                                 writable=[], hide=list(HIDDEN_DIRS), must_be_ro=[], facts=HostFacts())))
        r, w = os.pipe()
        try:
            proc = subprocess.run(iso.wrap([iso.python, "-I", "-S", "-c", "pass"], config, w), pass_fds=(w,),
                                  stdin=subprocess.DEVNULL, capture_output=True, timeout=60, env={"PATH": SYSTEM_PATH})
        except (OSError, subprocess.TimeoutExpired) as exc:
            os.close(r)
            os.close(w)
            return None, f"{type(exc).__name__}: {exc}"
        os.close(w)
        report = read_report(r)
        if proc.returncode != 0 and report is None:
            return None, f"exit {proc.returncode}: {proc.stderr.decode('utf-8', 'replace').strip()[-300:]}"
        return report, None if proc.returncode == 0 else f"exit {proc.returncode}"


def read_report(fd: int, limit: int = 1 << 20, timeout_s: float = 10.0) -> dict | None:
    """The init's JSON report from the read end of its pipe (closes fd): the checks, then (second
    line, once the command has ended) its exit status as `command_exit`."""
    import select
    import time

    chunks: list[bytes] = []
    size = 0
    deadline = time.monotonic() + timeout_s
    with os.fdopen(fd, "rb", buffering=0) as fh:
        while size < limit:
            ready, _, _ = select.select([fh], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            chunk = fh.read(65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    lines = b"".join(chunks).split(b"\n")
    try:
        data = json.loads(lines[0] or b"null")
        ending = json.loads(lines[1]) if len(lines) > 1 and lines[1].strip() else None
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    if isinstance(ending, dict):  # the init's second line: how the command ended
        data["command_exit"] = ending
    return data


# -- facts about the host the sandbox must hide ---------------------------------------------

@dataclass(frozen=True)
class HostFacts:
    """What a cut network and a hidden filesystem must make unreachable, gathered on the host."""

    addrs: tuple[str, ...] = ()  # this host's non-loopback IPv4 addresses
    lo_ports: tuple[int, ...] = ()  # TCP ports listening on the host's loopback
    sockets: tuple[str, ...] = ()  # path-bound unix sockets (a Docker socket, an agent)

    @classmethod
    def gather(cls) -> HostFacts:
        return cls(_host_addrs(), _listening_lo_ports(), _unix_socket_paths())


def _host_addrs() -> tuple[str, ...]:
    out: list[str] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _, name in socket.if_nameindex():
            if name == "lo":
                continue
            try:
                raw = fcntl.ioctl(s, 0x8915, struct.pack("256s", name.encode()[:15]))  # SIOCGIFADDR
            except OSError:
                continue
            out.append(socket.inet_ntoa(raw[20:24]))
    return tuple(dict.fromkeys(out))


def _listening_lo_ports() -> tuple[int, ...]:
    ports: list[int] = []
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return ()
    for line in lines:
        parts = line.split()
        if len(parts) > 3 and parts[3] == "0A":
            addr, port = parts[1].split(":")
            if addr in ("0100007F", "00000000"):
                ports.append(int(port, 16))
    return tuple(sorted(set(ports)))[:MAX_LO_PORTS]


def _unix_socket_paths() -> tuple[str, ...]:
    try:
        lines = Path("/proc/net/unix").read_text(errors="replace").splitlines()[1:]
    except OSError:
        return ()
    paths = [p[-1] for p in (ln.split() for ln in lines) if len(p) >= 8 and p[-1].startswith("/")]
    return tuple(dict.fromkeys(paths))[:MAX_SOCKETS]


def python_paths(python: str, env: dict[str, str]) -> list[str]:
    """Directories the interpreter loads from (prefixes and sys.path), so the view can keep them."""
    code = "import json, sys; print(json.dumps([sys.prefix, sys.base_prefix, sys.exec_prefix, *sys.path]))"
    try:
        out = subprocess.run([python, "-s", "-c", code], capture_output=True, text=True, timeout=60, env=env,
                             stdin=subprocess.DEVNULL, cwd="/")
        paths = json.loads(out.stdout)
    except (OSError, ValueError, subprocess.TimeoutExpired):
        paths = []
    real = os.path.realpath(python)
    keep = [str(p) for p in paths if isinstance(p, str) and os.path.isabs(p)]
    return list(dict.fromkeys([*keep, os.path.dirname(os.path.abspath(python)), os.path.dirname(real)]))


def plan_config(*, cwd: str, net: bool, keep_ro: list[str], writable: list[str], hide: list[str],
                must_be_ro: list[str], facts: HostFacts, private_tmp: tuple[str, ...] = ()) -> dict:
    """The JSON the init reads: what to keep, what to hide, what to prove. `private_tmp`: hidden
    directories left writable (an empty private tmpfs, nothing of the host's: a script's own
    `/tmp/counter_<run>` file)."""
    real = lambda p: os.path.realpath(p)  # noqa: E731 - mounts act on real paths
    writable_r = [real(p) for p in writable]
    hide_r = list(dict.fromkeys(real(p) for p in hide if os.path.isdir(p)))
    # A path the run needs never un-hides a whole hidden directory (nor "/").
    keep_r = [p for p in dict.fromkeys(real(p) for p in keep_ro if os.path.exists(p))
              if p != "/" and not any(h == p or h.startswith(p.rstrip("/") + "/") for h in hide_r)]
    return {"cwd": real(cwd), "net": net, "keep_ro": keep_r, "writable": writable_r, "hide": hide_r,
            "must_be_ro": list(dict.fromkeys(real(p) for p in must_be_ro)), "sockets": list(facts.sockets),
            "host_addrs": list(facts.addrs), "host_lo_ports": list(facts.lo_ports),
            "private_tmp": [real(p) for p in private_tmp if real(p) in hide_r]}
