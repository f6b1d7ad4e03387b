"""Which variables a re-run takes from the README or --env, and scrubbing the harness's own environment.

A README is written by the submitter. `PATH=/scratch/...` in its run command once let one seed
plant a fake `unshare` that the next seed ran outside the sandbox. The variables a submission may
set are its hyperparameters; anything that steers how programs are found or loaded (PATH,
PYTHON*, LD_*, HOME, TMPDIR, ...) or where credentials, certificates and caches come from is
refused, and the refusal is listed in the result. The allowlist is the shape of a hyperparameter:
an upper-case name and a single-line value. (Names that merely look like credentials, such as
TRAIN_BATCH_TOKENS, are hyperparameters here: what a README sets is not a secret of ours.)

The harness also removes credential-like variables from its *own* process before it spawns
anything: a child that is not in a PID namespace can read `/proc/<harness pid>/environ`, which
shows the environment the process was started with, not `os.environ`; so the original block is
overwritten in memory as well.
"""

from __future__ import annotations

import os
import re

from audit.harness.sandbox import LAUNCHER_OWNED, SECRET_PATTERN, scrub_env

# Exact names that steer the loader, the shell, name resolution, locale files, TLS trust or homes.
DENY_NAMES = frozenset({
    "PATH", "HOME", "TMPDIR", "TMP", "TEMP", "TEMPDIR", "SHELL", "ENV", "BASH_ENV", "IFS", "CDPATH", "PS4",
    "USER", "LOGNAME", "PWD", "OLDPWD", "MAIL", "GCONV_PATH", "LOCPATH", "NLSPATH", "HOSTALIASES",
    "RESOLV_HOST_CONF", "RES_OPTIONS", "LOCALDOMAIN", "GLIBC_TUNABLES", "TZDIR", "TERMINFO", "SSL_CERT_FILE",
    "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_OPTIONS", "PERL5LIB", "PERL5OPT", "RUBYOPT",
    "RUBYLIB", "JAVA_TOOL_OPTIONS", "CLASSPATH", "EDITOR", "VISUAL", "PAGER", "BROWSER", "VIRTUAL_ENV",
    "LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT",
})
# Prefixes of the same families (dynamic loader, Python start-up, shell functions, per-user dirs,
# allocator hooks, version control, agents, package managers, torchrun's own agent, ours).
DENY_PREFIXES = ("LD_", "DYLD_", "PYTHON", "BASH_FUNC_", "XDG_", "MALLOC_", "GIT_", "SSH_", "GPG", "GNUPG",
                 "DBUS_", "KRB5", "PIP_", "UV_", "CONDA", "NSS_", "TORCHELASTIC_", "PGOLF_", "LIBC_", "GCONV")
_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
MAX_VALUE = 4096


def refusal(name: str, value: str, owned: tuple[str, ...] = ()) -> str | None:
    """Why `name=value` may not come from a README or --env, or None when it may."""
    upper = name.upper()
    if not _NAME.match(name):
        return "not an upper-case hyperparameter name"
    if name in owned or upper in LAUNCHER_OWNED:
        return "set by the harness or the launcher"
    if upper in DENY_NAMES or upper.startswith(DENY_PREFIXES):
        return "steers program lookup, loading, homes or temporary files"
    if len(value) > MAX_VALUE or any(c in value for c in "\n\r\0"):
        return "value is not a single line of at most 4096 characters"
    return None


def screen(env: dict[str, str], owned: tuple[str, ...] = ()) -> tuple[dict[str, str], dict[str, str]]:
    """(accepted, refused name -> reason)."""
    accepted: dict[str, str] = {}
    refused: dict[str, str] = {}
    for name, value in env.items():
        why = refusal(name, value, owned)
        if why is None:
            accepted[name] = value
        else:
            refused[name] = why
    return accepted, refused


def trusted_path(path: str | None) -> str:
    """The caller's PATH without relative entries (they would resolve inside the scratch copy)."""
    entries = [p for p in (path or "").split(os.pathsep) if os.path.isabs(p)]
    return os.pathsep.join(dict.fromkeys(entries)) or "/usr/local/bin:/usr/bin:/bin"


def scrub_own_environ() -> tuple[list[str], bool]:
    """Remove credential-like variables from this process; (names removed, initial block wiped)."""
    _, dropped = scrub_env(dict(os.environ))
    names = [n for n in dropped if SECRET_PATTERN.search(n.upper())]
    for name in names:
        os.environ.pop(name, None)
    return names, _wipe_initial_block(set(names))


def _wipe_initial_block(names: set[str]) -> bool:
    """Zero the start-up copies of `names` that /proc/self/environ shows (they are no longer in use)."""
    if not names:
        return True
    try:
        stat = open("/proc/self/stat", encoding="ascii").read()
        fields = stat[stat.rfind(")") + 2:].split()
        start, end = int(fields[47]), int(fields[48])  # proc(5) fields 50, 51: env_start, env_end
        with open("/proc/self/mem", "r+b", buffering=0) as mem:
            mem.seek(start)
            block = mem.read(end - start)
            offset = 0
            for entry in block.split(b"\0"):
                name = entry.split(b"=", 1)[0].decode("utf-8", "surrogateescape")
                if name in names and b"=" in entry:
                    mem.seek(start + offset)
                    mem.write(b"\0" * len(entry))
                offset += len(entry) + 1
        with open("/proc/self/environ", "rb") as fh:
            left = {e.split(b"=", 1)[0].decode("utf-8", "surrogateescape") for e in fh.read().split(b"\0") if e}
        return not (left & names)
    except (OSError, ValueError, IndexError):
        return False
