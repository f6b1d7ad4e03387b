"""Isolation for a re-run: a scratch copy of the folder, a scrubbed environment, namespaces.

The submission is untrusted code. It runs on a copy (the original is hashed before and after, so a
write to it is detected), without credentials in its environment, inside user, mount, pid, ipc,
uts and network namespaces (`unshare`, no root needed) where `sandbox_init.py` builds a read-only
view of the host with only the run's scratch folders writable, and proves it from inside before
the script starts. Where the kernel refuses namespaces the re-run refuses to start unless the
caller passes `--unsafe` (see README, "Threat model").
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path

# Names of variables that may carry credentials (matched anywhere in the upper-cased name).
SECRET_PATTERN = re.compile(
    r"TOKEN|KEY|SECRET|PASSW|PASSWD|CREDENTIAL|AUTH|COOKIE|SESSION|PRIVATE|CERT|"
    r"^AWS_|^GH_|^GITHUB_|^HF_|^HUGGING|^WANDB|^OPENAI|^ANTHROPIC|^AZURE|^GOOGLE|^GCP_|^GCLOUD|"
    r"^KAGGLE|^NETRC|^SSH_|^GPG_|^DOCKER_|^KUBE|^VAULT|^NPM_|^PYPI|^TWINE|^CI_JOB|^RUNPOD|^MODAL_|"
    r"PROXY$"
)
# Kept even though they look like nothing above; listed so the intent is explicit.
ALWAYS_KEEP = ("PATH", "HOME", "LANG", "LANGUAGE", "TERM", "TZ", "USER", "LOGNAME", "SHELL", "TMPDIR")
# Set by the launcher itself; dropped from the inherited environment so a stale value cannot leak in.
LAUNCHER_OWNED = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
                  "GROUP_RANK", "ROLE_RANK", "TORCHELASTIC_RUN_ID", "PWD", "OLDPWD")


def scrub_env(base: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """The inherited environment without credential-like variables; also the names dropped."""
    kept: dict[str, str] = {}
    dropped: list[str] = []
    for name, value in base.items():
        upper = name.upper()
        if upper in ALWAYS_KEEP or upper.startswith("LC_"):
            kept[name] = value
        elif upper in LAUNCHER_OWNED or SECRET_PATTERN.search(upper):
            dropped.append(name)
        else:
            kept[name] = value
    return kept, sorted(dropped)


# -- folder identity -------------------------------------------------------------------------

def folder_digest(root: Path) -> str:
    """sha256 over (relative path, kind, bytes or link target) of every entry, in sorted order.

    Symlinks are hashed by their target text, never followed, so a link out of the folder cannot
    make hashing read (or hang on) something outside it.
    """
    h = hashlib.sha256()
    for rel, path in _entries(root):
        h.update(rel.encode("utf-8", "surrogateescape") + b"\0")
        if path.is_symlink():
            h.update(b"L" + os.readlink(path).encode("utf-8", "surrogateescape"))
        elif path.is_dir():
            h.update(b"D")
        elif path.is_file():
            h.update(b"F")
            with path.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
        h.update(b"\0")
    return h.hexdigest()


def _entries(root: Path):
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        base = Path(dirpath)
        for name in sorted(dirnames + filenames):
            path = base / name
            yield path.relative_to(root).as_posix(), path


MAX_HASHED_FILE = 4 << 30  # bigger files (a run can write a huge sparse file) are identified without reading


def file_manifest(root: Path) -> dict[str, tuple[int, str]]:
    """Regular files under root (symlinks not followed) -> (size, sha256).

    A file over MAX_HASHED_FILE is identified by size, mtime and inode instead of its bytes, so a
    run cannot make the harness read terabytes of a sparse file it left behind.
    """
    out: dict[str, tuple[int, str]] = {}
    for rel, path in _entries(root):
        if path.is_file() and not path.is_symlink():
            st = path.stat()
            if st.st_size > MAX_HASHED_FILE:
                out[rel] = (st.st_size, f"unhashed:{st.st_size}:{st.st_mtime_ns}:{st.st_ino}")
                continue
            h = hashlib.sha256()
            with path.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
            out[rel] = (st.st_size, h.hexdigest())
    return out


def remove_tree(root: Path) -> None:
    """Remove a scratch tree even where the run took its own permissions away (chmod 000)."""
    def retry(func, path, _exc):  # noqa: ANN001 - shutil's onerror signature
        try:
            os.chmod(os.path.dirname(path), 0o700)
            if os.path.isdir(path) and not os.path.islink(path):
                os.chmod(path, 0o700)
            func(path)
        except OSError:
            pass

    for dirpath, dirnames, _ in os.walk(root, followlinks=False):
        for d in dirnames:
            p = os.path.join(dirpath, d)
            if not os.path.islink(p):
                try:
                    os.chmod(p, 0o700)
                except OSError:
                    pass
    shutil.rmtree(root, onerror=retry)


def copy_submission(src: Path, dst: Path) -> list[str]:
    """Copy the folder to dst (which must not exist). Returns notes on what was not copied.

    Symlinks pointing inside the folder are copied as the files they point to; symlinks leaving
    it are skipped (the run must not reach the original tree through them). `.git` is skipped.
    """
    notes: list[str] = []
    real_root = src.resolve()
    dst.mkdir(parents=True)
    for rel, path in _entries(src):
        if rel.split("/", 1)[0] == ".git":
            continue
        target = dst / rel
        if path.is_symlink():
            resolved = path.resolve()
            if not _inside(resolved, real_root):
                notes.append(f"{rel}: symlink leaving the folder (-> {os.readlink(path)}) was not copied")
                continue
            if resolved.is_file():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(resolved, target)
            continue
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif path.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    return notes


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False


