"""First process inside a re-run's namespaces: build the filesystem view, prove the isolation, exec.

Run by path, as `python -I -S sandbox_init.py CONFIG REPORT_FD -- CMD ARGS...`, by `unshare`
(user, mount, pid, ipc, uts and, unless the network is allowed, net namespaces). It must not
import anything from the project. In order it:

1. brings the loopback interface up (torchrun's rendezvous needs 127.0.0.1);
2. makes every mount read-only (one recursive `mount_setattr`), hides the host's socket and
   temporary directories and homes (`/run`, `/tmp`, `$HOME`, the results folder, ...) under empty
   read-only tmpfs, re-binds the few paths the run needs (Python, data, tokenizer) read-only and
   its own scratch folders read-write, covers every host unix socket with /dev/null, gives it a
   private /dev/shm and a /proc that shows only its own processes;
3. drops every capability (empty bounding set, no_new_privs), so the run cannot undo any of it;
4. checks, from inside, what it is supposed to have achieved (only `lo`, host addresses
   unreachable, host loopback services refused, read-only paths refuse a write, writable paths
   accept one, no host socket connects, no host process visible) and writes the result as JSON
   to REPORT_FD, which it then closes;
5. starts the command only if every check passed (else exits 97 without running anything), as
   its child: the init stays pid 1 of the namespace, reaps orphans, forwards TERM/INT/HUP, and
   when the command ends writes its exit status (or the signal that killed it) as a second JSON
   line to REPORT_FD and exits, which makes the kernel kill whatever is left in the namespace.
   The command is never pid 1, so it gets ordinary signal semantics (pid 1 ignores a SIGKILL it
   sends itself).
"""

import ctypes
import errno
import fcntl
import json
import os
import signal
import socket
import struct
import sys

REFUSED = 97  # exit status when the sandbox could not be proven; nothing of the submission ran

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
MS_BIND, MS_REC, MS_PRIVATE = 0x1000, 0x4000, 0x40000
AT_FDCWD, AT_RECURSIVE = -100, 0x8000
MOUNT_ATTR_RDONLY = 0x1
SYS_MOUNT_SETATTR = 442  # the same number on every architecture (added after the syscall table unification)
PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 38, 24, 47, 4
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1

_libc = ctypes.CDLL(None, use_errno=True)


class MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _enc(s):
    return None if s is None else os.fsencode(s)


def mount(source, target, fstype, flags, data=None) -> None:
    enc = _enc
    _check(_libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)),
           f"mount {source} on {target}")


def set_readonly(path: str, readonly: bool, recursive: bool) -> None:
    attr = MountAttr(MOUNT_ATTR_RDONLY if readonly else 0, 0 if readonly else MOUNT_ATTR_RDONLY, 0, 0)
    ret = _libc.syscall(SYS_MOUNT_SETATTR, AT_FDCWD, os.fsencode(path), AT_RECURSIVE if recursive else 0,
                        ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)))
    _check(ret, f"mount_setattr {'ro' if readonly else 'rw'} {path}")


def loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sH14s", b"lo", 0, b"")
        flags = struct.unpack("16sH14s", fcntl.ioctl(s, SIOCGIFFLAGS, request))[1]
        if not flags & IFF_UP:
            fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14s", b"lo", flags | IFF_UP, b""))


def under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


# -- building the view ----------------------------------------------------------------------

def build_view(cfg: dict, notes: list) -> None:
    mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing we do here may reach the host
    keeps = [(p, False) for p in cfg["keep_ro"]] + [(p, True) for p in cfg["writable"]]
    keeps = [(p, w) for p, w in keeps if os.path.lexists(p)]
    # Open every path we will re-bind before anything hides it; /proc/self/fd/N stays usable.
    fds = {p: os.open(p, os.O_PATH) for p, _ in keeps}
    set_readonly("/", True, recursive=True)
    hidden: list = []
    for d in cfg["hide"]:
        if not os.path.isdir(d) or os.path.islink(d) or any(under(d, h) for h in hidden):
            continue
        if not any(under(d, p) for p, _ in keeps):
            mount("tmpfs", d, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=4m")
            hidden.append(d)
        else:
            notes.append(f"{d} not hidden: a path the run needs contains it")
    for path, writable in sorted(keeps, key=lambda k: (k[0].count("/"), k[1])):
        inside_hidden = any(under(path, h) for h in hidden)
        if inside_hidden and not os.path.lexists(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if os.path.isdir(f"/proc/self/fd/{fds[path]}"):
                os.mkdir(path)
            else:
                open(path, "wb").close()
        if inside_hidden or writable:
            mount(f"/proc/self/fd/{fds[path]}", path, None, MS_BIND | MS_REC)
            set_readonly(path, not writable, recursive=True)
    for fd in fds.values():
        os.close(fd)
    for d in hidden:  # a private tmp stays writable: an empty tmpfs of its own, 4 MB
        set_readonly(d, d not in cfg.get("private_tmp", ()), recursive=False)
    for sock in cfg["sockets"]:
        if os.path.lexists(sock):  # still visible (not hidden, or inside a re-bound path)
            try:
                mount("/dev/null", sock, None, MS_BIND)
                set_readonly(sock, True, recursive=False)
            except OSError as exc:
                notes.append(f"socket {sock}: {exc}")
    if os.path.isdir("/dev/shm") and not os.path.islink("/dev/shm"):
        mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
    if os.getpid() == 1:
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)


def drop_privileges() -> None:
    for cap in range(64):
        if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() == errno.EINVAL:
            break
    _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")


# -- proving it from inside -------------------------------------------------------------------

def _connect_error(family: int, address, timeout: float = 1.0) -> int | None:
    """None when the connection succeeded, else its errno (or ETIMEDOUT)."""
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(address)
        return None
    except TimeoutError:
        return errno.ETIMEDOUT
    except OSError as exc:
        return exc.errno or -1
    finally:
        s.close()


def check_network(cfg: dict) -> dict:
    problems = []
    names = [n for _, n in socket.if_nameindex()]
    if names != ["lo"]:
        problems.append(f"interfaces {names}, expected only lo")
    srv = socket.socket()
    try:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        if _connect_error(socket.AF_INET, srv.getsockname()) is not None:
            problems.append("loopback does not accept a connection")
    finally:
        srv.close()
    for addr in list(cfg["host_addrs"]) + ["1.1.1.1"]:
        err = _connect_error(socket.AF_INET, (addr, 9))
        if err not in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL):
            problems.append(f"{addr}: {'connected' if err is None else os.strerror(err)} (expected no route)")
    for port in cfg["host_lo_ports"]:
        if _connect_error(socket.AF_INET, ("127.0.0.1", port)) is None:
            problems.append(f"host loopback port {port} reachable")
    return {"ok": not problems, "detail": "; ".join(problems) or
            f"only lo; {len(cfg['host_addrs']) + 1} outside address(es) unreachable; "
            f"{len(cfg['host_lo_ports'])} host loopback port(s) refused"}


def check_filesystem(cfg: dict) -> dict:
    problems = []
    for path in cfg["must_be_ro"]:
        probe = os.path.join(path, f".pgolf-probe-{os.getpid()}")
        try:
            os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except OSError:
            continue
        os.unlink(probe)
        problems.append(f"{path} is writable")
    for path in cfg["writable"]:
        probe = os.path.join(path, f".pgolf-probe-{os.getpid()}")
        try:
            os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            os.unlink(probe)
        except OSError as exc:
            problems.append(f"{path} is not writable ({exc.strerror})")
    return {"ok": not problems, "detail": "; ".join(problems) or
            f"{len(cfg['must_be_ro'])} path(s) refuse writes, {len(cfg['writable'])} scratch path(s) accept them"}


def check_sockets(cfg: dict) -> dict:
    reachable = [s for s in cfg["sockets"] if _connect_error(socket.AF_UNIX, s, 0.5) is None]
    socket_dirs = [d for d in ("/run", "/var/run", "/tmp/.X11-unix") if any(under(os.path.realpath(d), h)
                                                                         for h in cfg["hide"])]
    listed = [d for d in socket_dirs if os.path.isdir(d) and os.listdir(d)]
    problems = [f"socket {s} connects" for s in reachable] + [f"{d} is not empty" for d in listed]
    return {"ok": not problems, "detail": "; ".join(problems) or f"{len(cfg['sockets'])} host socket(s) unreachable"}


def check_processes() -> dict:
    pids = sorted(int(e) for e in os.listdir("/proc") if e.isdigit())
    ok = os.getpid() == 1 and pids == [1]
    return {"ok": ok, "detail": "only the run's own processes are visible" if ok else f"visible pids {pids[:10]}"}


def check_privileges() -> dict:
    with open("/proc/self/status", "rb") as fh:  # bytes: no codec import once the view is built
        status = dict(line.split(b":", 1) for line in fh.read().splitlines() if b":" in line)
    bnd, nnp = int(status.get(b"CapBnd", b"1").strip(), 16), status.get(b"NoNewPrivs", b"0").strip().decode()
    ok = bnd == 0 and nnp == "1"
    return {"ok": ok, "detail": "no capabilities, no_new_privs" if ok else f"CapBnd {bnd:x} NoNewPrivs {nnp}"}


def main(argv: list) -> int:
    if len(argv) < 4 or argv[2] != "--":
        sys.stderr.write("usage: sandbox_init.py CONFIG REPORT_FD -- CMD [ARGS...]\n")
        return 2
    cfg_path, report_fd, cmd = argv[0], int(argv[1]), argv[3:]
    with open(cfg_path, encoding="utf-8") as fh:
        cfg = json.load(fh)
    report = {"errors": [], "notes": [], "checks": {}}
    try:
        if cfg["net"]:
            loopback_up()
        build_view(cfg, report["notes"])
        drop_privileges()
        os.chdir(cfg["cwd"])
    except Exception as exc:  # noqa: BLE001 - reported, and nothing runs
        report["errors"].append(f"{type(exc).__name__}: {exc}")
    if not report["errors"]:
        checks = report["checks"]
        if cfg["net"]:
            checks["network"] = check_network(cfg)
        checks["filesystem"] = check_filesystem(cfg)
        checks["sockets"] = check_sockets(cfg)
        checks["processes"] = check_processes()
        checks["privileges"] = check_privileges()
    ok = not report["errors"] and all(c["ok"] for c in report["checks"].values())
    report["ok"] = ok
    _write_line(report_fd, report)
    if not ok:
        os.close(report_fd)
        sys.stderr.write("pgolf-audit sandbox: isolation could not be proven; the submission was not started: "
                         + json.dumps(report) + "\n")
        return REFUSED
    return supervise(cmd, report_fd)


def _write_line(fd: int, doc: dict) -> None:
    data = json.dumps(doc).encode() + b"\n"
    while data:
        data = data[os.write(fd, data):]


def supervise(cmd: list, report_fd: int) -> int:
    """Run cmd as our child, reap everything, report how it ended."""
    child = os.fork()
    if child == 0:
        os.close(report_fd)
        try:
            os.execv(cmd[0], cmd)
        except OSError as exc:
            sys.stderr.write(f"pgolf-audit sandbox: cannot start {cmd[0]}: {exc}\n")
        os._exit(127)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: os.kill(child, signum))
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            status = 0
            break
        except InterruptedError:
            continue
        if pid == child:
            break
    code = os.waitstatus_to_exitcode(status)
    _write_line(report_fd, {"exit_code": code, "signal": signal.Signals(-code).name if code < 0 else None})
    os.close(report_fd)
    return 128 - code if code < 0 else code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
