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

from audit.codesize import DecodeBudget, WrapperInfo, find_wrapper
from audit.findings import Evidence, Finding, Severity

# Real record scripts reach ~160 KB and logs a few MB; anything far larger is not read as text.
MAX_TEXT_BYTES = 8 * 1024 * 1024
MAX_FILES = 2000
CODE_SUFFIXES = {".py"}
LOG_SUFFIXES = {".log", ".txt", ".out"}
NOT_LOGS = {"requirements.txt", "readme.txt", "license.txt", "notes.txt"}
SUB_FILES_SOURCE = "RULES.md R-SUB-FILES (README 'Submission Process'; PR #561)"
CODE_COUNT_SOURCE = "RULES.md R-ARTIFACT-CODE-COUNT (PRs #1412, #1855, #2135)"
_CODEC_HINT = re.compile(r"decompress|b85decode|b64decode|a85decode|unhexlify|fromhex")


@dataclass
class TextFile:
    """One file of the folder. `text` is None when it could not be read as text (see `error`)."""

    path: str  # relative, POSIX separators
    size: int
    text: str | None
    sha256: str
    error: str | None = None
    lossy: bool = False  # decoded with replacement characters (not valid UTF-8)
    # Set on the virtual file that holds the statically decoded source of a self-extracting
    # wrapper: the path of the wrapper it came from (line numbers refer to the decoded text).
    decoded_from: str | None = None

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
    json_variants: list[str] = field(default_factory=list)  # every top-level submission*.json seen
    # Decoded inner sources of self-extracting wrapper scripts, keyed by the wrapper's path.
    decoded: dict[str, TextFile] = field(default_factory=dict)
    # Decoded once per folder: every code file's wrapper (None: not one), and one budget for all
    # decompressions of the folder (codesize.DecodeBudget), shared with the analysis sources.
    wrappers: dict[str, WrapperInfo | None] = field(default_factory=dict)
    decode_budget: DecodeBudget = field(default_factory=DecodeBudget)
    input_findings: list[Finding] = field(default_factory=list)

    # -- construction -------------------------------------------------------------------
    @classmethod
    def load(cls, folder: str | os.PathLike[str]) -> Submission:
        root = Path(folder)
        try:
            name = root.resolve().name or str(folder)
        except (OSError, RuntimeError):
            name = str(folder)
        sub = cls(name=name, root=root, track=_track_of(root))
        if not root.is_dir():
            sub._finding(Severity.ERROR, f"{folder} is not a directory", None)
            return sub
        real_root = root.resolve()
        walk_errors: list[OSError] = []
        for rel, path in _walk(root, walk_errors):
            if len(sub.files) >= MAX_FILES:
                sub._finding(Severity.WARNING, f"more than {MAX_FILES} files; the rest were not read", None)
                break
            try:
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
                    continue  # directories, FIFOs, sockets, devices: never opened
                size = path.stat().st_size
            except (OSError, RuntimeError) as exc:  # permission, symlink loop, vanished file
                sub._finding(Severity.WARNING, f"{rel} could not be inspected: {_reason(exc)}", rel)
                continue
            sub.files[rel] = size
            if _wants_text(rel):
                sub._add_text(rel, path, size)
        for err in walk_errors:
            where = _rel_or_none(err.filename, root)
            sub._finding(Severity.WARNING, f"{where or 'a folder'} could not be listed: {_reason(err)}", where)
        return sub

    @classmethod
    def from_files(cls, files: dict[str, str | bytes], name: str = "in-memory") -> Submission:
        """Build a submission from a mapping of relative path -> content (tests, rule examples)."""
        sub = cls(name=name)
        for rel, content in sorted(files.items(), key=lambda kv: str(kv[0])):
            clean = _clean_rel(str(rel))
            if clean is None:
                sub._finding(Severity.ERROR, f"{rel!r} is not a relative path inside the folder; not read", None)
                continue
            if isinstance(content, str):
                data = content.encode("utf-8", errors="surrogatepass")
            elif isinstance(content, (bytes, bytearray)):
                data = bytes(content)
            else:
                continue
            sub.files[clean] = len(data)
            if not _wants_text(clean):
                continue
            if len(data) > MAX_TEXT_BYTES:
                sub._too_large(clean, len(data))
                continue
            sub._add_bytes(clean, data)
        return sub

    # -- reading ------------------------------------------------------------------------
    def _too_large(self, rel: str, size: int) -> None:
        self._finding(
            Severity.WARNING,
            f"{rel} is {size:,} bytes, over the {MAX_TEXT_BYTES:,}-byte limit for text; not read",
            rel,
        )

    def _add_text(self, rel: str, path: Path, size: int) -> None:
        if size > MAX_TEXT_BYTES:
            self._too_large(rel, size)
            return
        try:
            with path.open("rb") as fh:
                data = fh.read(MAX_TEXT_BYTES + 1)  # the file may have grown since stat()
        except OSError as exc:
            self._finding(Severity.WARNING, f"{rel} could not be read: {_reason(exc)}", rel)
            return
        if len(data) > MAX_TEXT_BYTES:
            self._too_large(rel, len(data))
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
            self._decode_wrapper(tf)
        elif low == "readme.md" and "/" not in rel:
            self.readme = tf
        elif suffix == ".json" and _is_submission_json(rel):
            self._read_json(tf)
        elif suffix in LOG_SUFFIXES and low not in NOT_LOGS and _looks_like_log(text):
            self.logs[rel] = tf

    def _decode_wrapper(self, tf: TextFile) -> None:
        """Statically decode a self-extracting wrapper so the static rules can see the real code."""
        text = tf.text or ""
        if "exec" not in text or len(text) > MAX_TEXT_BYTES or not _CODEC_HINT.search(text):
            return
        info = self.wrappers[tf.path] = find_wrapper(text, budget=self.decode_budget)
        if info is None:
            return
        if info.inner_source is None:
            self._finding(
                Severity.WARNING,
                f"{tf.path} is a self-extracting wrapper ({info.codec}) that could not be decoded statically "
                f"({info.error}); the static rules only see the wrapper",
                tf.path, line=info.line, rule_id="R-ARTIFACT-CODE-COUNT", source=CODE_COUNT_SOURCE,
            )
            return
        inner = info.inner_source.encode("utf-8", errors="surrogatepass")
        self.decoded[tf.path] = TextFile(
            path=tf.path, size=len(inner), text=info.inner_source, sha256=hashlib.sha256(inner).hexdigest(),
            decoded_from=tf.path,
        )

    def _read_json(self, tf: TextFile) -> None:
        # Prefer the canonical name; a variant (submission_ternary.json) only when it is alone.
        self.json_variants.append(tf.path)
        if self.json_path is not None and (self.json_path.lower() == "submission.json" or tf.path.lower() != "submission.json"):
            return
        self.json_path = tf.path
        self.json_data = None
        self.json_error = None
        try:
            data = json.loads((tf.text or "").removeprefix("\ufeff"))  # editors' BOM is harmless
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, huge ints, deep nesting
            self.json_error = f"{tf.path} is not valid JSON: {str(exc)[:300]}"
            return
        if not isinstance(data, dict):
            self.json_error = f"{tf.path} holds a {type(data).__name__}, not a JSON object"
            return
        self.json_data = data

    def _finding(self, severity: Severity, message: str, rel: str | None, *, line: int | None = None,
                 rule_id: str = "R-SUB-FILES", source: str = SUB_FILES_SOURCE) -> None:
        self.input_findings.append(
            Finding(rule_id, severity, message, path=rel, line=line, source=source,
                    evidence=(Evidence("read of the submission folder", rel, line),))
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
        """The code files as shipped (a wrapper is the wrapper)."""
        return [self.code[p] for p in sorted(self.code)]

    def analysis_sources(self) -> list[TextFile]:
        """The code the static rules should analyse: each code file, with a self-extracting
        wrapper replaced by its statically decoded source (a virtual TextFile with the same path
        and `decoded_from` set). An undecodable wrapper stays as it is (a finding says so)."""
        return [self.decoded.get(p, self.code[p]) for p in sorted(self.code)]


def _walk(root: Path, errors: list[OSError]):
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False, onerror=errors.append):
        dirnames[:] = sorted(d for d in dirnames if d not in {".git", "__pycache__"})
        for name in sorted(filenames) + [d for d in dirnames if (Path(dirpath) / d).is_symlink()]:
            path = Path(dirpath) / name
            yield path.relative_to(root).as_posix(), path


def _reason(exc: BaseException) -> str:
    return (exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)) or type(exc).__name__


def _rel_or_none(filename: object, root: Path) -> str | None:
    if not isinstance(filename, str):
        return None
    try:
        return Path(filename).relative_to(root).as_posix()
    except ValueError:
        return None


def _clean_rel(rel: str) -> str | None:
    """A safe relative POSIX path, or None for absolute paths, '..' escapes and empty names."""
    p = PurePosixPath(rel.replace("\\", "/"))
    if p.is_absolute() or not p.parts or any(part in {"..", ""} for part in p.parts) or rel.endswith("/"):
        return None
    parts = [part for part in p.parts if part != "."]
    return "/".join(parts) if parts else None


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
