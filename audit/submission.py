"""A submission folder, read once: files, submission.json, README, logs and code.

Never imports or executes anything from the folder, never writes to it, and never follows a
symlink out of it. Problems met while reading (a symlink that escapes, a file too large, bytes
that are not UTF-8, malformed JSON) become findings instead of exceptions.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from audit.findings import Evidence, Finding, Severity

# Real record scripts reach ~160 KB and logs a few MB; anything far larger is not read as text.
MAX_TEXT_BYTES = 8 * 1024 * 1024
MAX_FILES = 2000
CODE_SUFFIXES = {".py"}
LOG_SUFFIXES = {".log", ".txt", ".out"}
NOT_LOGS = {"requirements.txt", "readme.txt", "license.txt", "notes.txt"}
SUB_FILES_SOURCE = "RULES.md R-SUB-FILES (README 'Submission Process'; PR #561)"


@dataclass
class TextFile:
    """One file of the folder. `text` is None when it could not be read as text (see `error`)."""

    path: str  # relative, POSIX separators
    size: int
    text: str | None
    sha256: str
    error: str | None = None
    lossy: bool = False  # decoded with replacement characters (not valid UTF-8)

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines() if self.text is not None else []


@dataclass
class Submission:
    """The folder as the rules see it."""

    name: str
    root: Path | None = None
    track: str | None = None
    files: dict[str, int] = field(default_factory=dict)  # every regular file -> size in bytes
    code: dict[str, TextFile] = field(default_factory=dict)
    logs: dict[str, TextFile] = field(default_factory=dict)
    readme: TextFile | None = None
    json_path: str | None = None
    json_data: dict[str, Any] | None = None
    json_error: str | None = None
    input_findings: list[Finding] = field(default_factory=list)

    # -- construction -------------------------------------------------------------------
    @classmethod
    def load(cls, folder: str | os.PathLike[str]) -> Submission:
        root = Path(folder)
        sub = cls(name=root.resolve().name, root=root, track=_track_of(root))
        if not root.is_dir():
            sub._finding(Severity.ERROR, f"{folder} is not a directory", None)
            return sub
        real_root = root.resolve()
        for rel, path in _walk(root):
            if len(sub.files) >= MAX_FILES:
                sub._finding(Severity.WARNING, f"more than {MAX_FILES} files; the rest were not read", None)
                break
            if path.is_symlink():
                target = path.resolve()
                if not _inside(target, real_root):
                    sub._finding(
                        Severity.ERROR,
                        f"{rel} is a symlink that leaves the submission folder (-> {os.readlink(path)}); not read",
                        rel,
                    )
                    continue
                if not target.is_file():
                    continue
            if not path.is_file():
                continue
            size = path.stat().st_size
            sub.files[rel] = size
            if _wants_text(rel):
                sub._add_text(rel, path, size)
        return sub

    @classmethod
    def from_files(cls, files: dict[str, str | bytes], name: str = "in-memory") -> Submission:
        """Build a submission from a mapping of relative path -> content (tests, rule examples)."""
        sub = cls(name=name)
        for rel, content in sorted(files.items()):
            data = content.encode("utf-8") if isinstance(content, str) else content
            sub.files[rel] = len(data)
            if _wants_text(rel):
                sub._add_bytes(rel, data)
        return sub

    # -- reading ------------------------------------------------------------------------
    def _add_text(self, rel: str, path: Path, size: int) -> None:
        if size > MAX_TEXT_BYTES:
            self._finding(
                Severity.WARNING,
                f"{rel} is {size:,} bytes, over the {MAX_TEXT_BYTES:,}-byte limit for text; not read",
                rel,
            )
            return
        try:
            data = path.read_bytes()
        except OSError as exc:
            self._finding(Severity.WARNING, f"{rel} could not be read: {exc.strerror or exc}", rel)
            return
        self._add_bytes(rel, data)

    def _add_bytes(self, rel: str, data: bytes) -> None:
        digest = hashlib.sha256(data).hexdigest()
        lossy = False
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            text = data.decode("utf-8", errors="replace")
            lossy = True
            self._finding(
                Severity.WARNING,
                f"{rel} is not valid UTF-8 (byte {exc.start}); read with replacement characters",
                rel,
            )
        tf = TextFile(path=rel, size=len(data), text=text, sha256=digest, lossy=lossy)
        low = PurePosixPath(rel).name.lower()
        suffix = PurePosixPath(rel).suffix.lower()
        if suffix in CODE_SUFFIXES:
            self.code[rel] = tf
        elif low == "readme.md" and "/" not in rel:
            self.readme = tf
        elif suffix == ".json" and _is_submission_json(rel):
            self._read_json(tf)
        elif suffix in LOG_SUFFIXES and low not in NOT_LOGS and _looks_like_log(text):
            self.logs[rel] = tf

    def _read_json(self, tf: TextFile) -> None:
        # Prefer the canonical name; a variant (submission_ternary.json) only when it is alone.
        if self.json_path == "submission.json":
            return
        self.json_path = tf.path
        self.json_data = None
        self.json_error = None
        try:
            data = json.loads(tf.text or "")
        except (json.JSONDecodeError, RecursionError) as exc:
            self.json_error = f"{tf.path} is not valid JSON: {exc}"
            return
        if not isinstance(data, dict):
            self.json_error = f"{tf.path} holds a {type(data).__name__}, not a JSON object"
            return
        self.json_data = data

    def _finding(self, severity: Severity, message: str, rel: str | None) -> None:
        self.input_findings.append(
            Finding("R-SUB-FILES", severity, message, path=rel, source=SUB_FILES_SOURCE,
                    evidence=(Evidence("read of the submission folder", rel),))
        )

    # -- queries ------------------------------------------------------------------------
    @property
    def main_script(self) -> TextFile | None:
        """The script that trains and evaluates: train_gpt.py, else the only top-level train*.py."""
        if "train_gpt.py" in self.code:
            return self.code["train_gpt.py"]
        top = [p for p in self.code if "/" not in p and PurePosixPath(p).name.startswith("train")]
        if len(top) == 1:
            return self.code[top[0]]
        return None

    def python_files(self) -> list[TextFile]:
        return [self.code[p] for p in sorted(self.code)]


def _walk(root: Path):
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in {".git", "__pycache__"})
        for name in sorted(filenames) + [d for d in dirnames if (Path(dirpath) / d).is_symlink()]:
            path = Path(dirpath) / name
            yield path.relative_to(root).as_posix(), path


def _inside(target: Path, root: Path) -> bool:
    try:
        target.relative_to(root)
        return True
    except ValueError:
        return False


def _track_of(root: Path) -> str | None:
    parent = root.resolve().parent.name
    return parent if parent.startswith("track_") else None


def _wants_text(rel: str) -> bool:
    p = PurePosixPath(rel)
    suffix = p.suffix.lower()
    if suffix in CODE_SUFFIXES or suffix in LOG_SUFFIXES:
        return True
    if suffix == ".json" and _is_submission_json(rel):
        return True
    return p.name.lower() == "readme.md" and len(p.parts) == 1


def _is_submission_json(rel: str) -> bool:
    p = PurePosixPath(rel)
    return len(p.parts) == 1 and re.fullmatch(r"submission(_[\w.-]+)?\.json", p.name.lower()) is not None


_LOG_MARKERS = re.compile(r"val_bpb|val_loss|train_loss|step[: ]\d|Total submission size|seed")


def _looks_like_log(text: str) -> bool:
    return _LOG_MARKERS.search(text[:2_000_000]) is not None
