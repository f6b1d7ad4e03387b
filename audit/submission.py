"""A submission folder, read once: files, submission.json, README, logs and code.

Never imports or executes anything from the folder, never writes to it, and never follows a
symlink out of it. Problems met while reading (a symlink that escapes, a file too large, bytes
that are not UTF-8, malformed JSON, a limit reached) are recorded as facts (`problems`,
`json_problems`) that the rules R-SUB-FILES and R-SUB-JSON report; the reader makes no findings.

Hostile folders must cost little: the walk is iterative, lists at most MAX_ENTRIES entries and
MAX_DEPTH levels, and the reader reads at most MAX_READ_BYTES of text per folder (a hard link to
a file already read is not read again), the JSON first, then README and code, then logs.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from audit.codesize import DecodeBudget, WrapperInfo, find_wrapper
from audit.read_problems import ReadProblem, ReadProblemKind
from audit.strict_json import JsonProblem
from audit.strict_json import parse as parse_json

# Real record scripts reach ~220 KB and logs a few MB; anything far larger is not read as text.
MAX_TEXT_BYTES = 8 * 1024 * 1024
MAX_FILES = 2000
# Per-folder budgets (README "Limits"). The largest real folder reads 1.2 MB of text, 19 files,
# 3 levels deep; these leave room for 25x that and stop a hostile folder early.
MAX_READ_BYTES = 32 * 1024 * 1024
MAX_DEPTH = 16
MAX_ENTRIES = 20_000
MAX_NAMES_READ = 10 * MAX_ENTRIES  # names listed (no stat) to choose the entries kept
CODE_SUFFIXES = {".py"}
LOG_SUFFIXES = {".log", ".txt", ".out"}
NOT_LOGS = {"requirements.txt", "readme.txt", "license.txt", "notes.txt"}
SKIP_DIRS = {".git", "__pycache__"}
_CODEC_HINT = re.compile(r"decompress|b85decode|b64decode|a85decode|unhexlify|fromhex")
K = ReadProblemKind


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
    json_problems: list[JsonProblem] = field(default_factory=list)  # empty when json_data is usable
    json_problems_dropped: int = 0  # problems of the JSON beyond those kept
    json_variants: list[str] = field(default_factory=list)  # every top-level submission*.json seen
    # Decoded inner sources of self-extracting wrapper scripts, keyed by the wrapper's path.
    decoded: dict[str, TextFile] = field(default_factory=dict)
    # Decoded once per folder: every code file's wrapper (None: not one), and one budget for all
    # decompressions of the folder (codesize.DecodeBudget), shared with the analysis sources.
    wrappers: dict[str, WrapperInfo | None] = field(default_factory=dict)
    decode_budget: DecodeBudget = field(default_factory=DecodeBudget)
    problems: list[ReadProblem] = field(default_factory=list)  # what went wrong while reading
    bytes_read: int = 0  # bytes of text read from the folder (counted against MAX_READ_BYTES)

    @property
    def json_error(self) -> str | None:
        """The JSON's problems as one sentence list (None when the JSON parsed cleanly)."""
        return "; ".join(p.text for p in self.json_problems) or None

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
            sub._note(K.NOT_A_DIRECTORY, None, detail=str(folder))
            return sub
        real_root = root.resolve()
        wanted: list[tuple[str, Path, int, tuple[int, int] | None]] = []
        over_files = False
        for rel, path in _walk(root, sub.problems):
            if len(sub.files) >= MAX_FILES and not _wants_text(rel):
                over_files = True  # other files are only listed; the ones rules read stay bounded
                continue  # by MAX_ENTRIES and MAX_READ_BYTES
            try:
                link = path.is_symlink()
                if link:
                    target = path.resolve()
                    if not _inside(target, real_root):
                        sub._note(K.SYMLINK_ESCAPES, rel, detail=os.readlink(path))
                        continue
                    if not target.is_file():
                        continue
                if not path.is_file():
                    continue  # directories, FIFOs, sockets, devices: never opened
                st = path.stat()
            except (OSError, RuntimeError) as exc:  # permission, symlink loop, vanished file
                sub._note(K.NOT_INSPECTABLE, rel, reason=_reason(exc))
                continue
            sub.files[rel] = st.st_size
            if _wants_text(rel):
                ident = (st.st_dev, st.st_ino) if not link and st.st_nlink > 1 else None
                wanted.append((rel, path, st.st_size, ident))
        if over_files:
            sub._note(K.TOO_MANY_FILES, None, limit=MAX_FILES)
        sub._read_all(wanted)
        return sub

    @classmethod
    def from_files(cls, files: dict[str, str | bytes], name: str = "in-memory") -> Submission:
        """Build a submission from a mapping of relative path -> content (tests, rule examples)."""
        sub = cls(name=name)
        contents: dict[str, bytes] = {}
        for rel, content in sorted(files.items(), key=lambda kv: str(kv[0])):
            clean = _clean_rel(str(rel))
            if clean is None:
                sub._note(K.BAD_PATH, None, detail=str(rel))
                continue
            if isinstance(content, str):
                data = content.encode("utf-8", errors="surrogatepass")
            elif isinstance(content, (bytes, bytearray)):
                data = bytes(content)
            else:
                continue
            sub.files[clean] = len(data)
            if _wants_text(clean):
                contents[clean] = data
        over: list[str] = []
        admitted: dict[str, bytes] = {}
        for rel in sorted(contents, key=_read_priority):
            data = contents[rel]
            if len(data) > MAX_TEXT_BYTES:
                sub._note(K.TOO_LARGE, rel, size=len(data), limit=MAX_TEXT_BYTES)
            elif sub.bytes_read + len(data) > MAX_READ_BYTES:
                over.append(rel)
            else:
                sub.bytes_read += len(data)
                admitted[rel] = data
        sub._note_budget(over)
        for rel in contents:
            if rel in admitted:
                sub._add_bytes(rel, admitted[rel])
        return sub

    # -- reading ------------------------------------------------------------------------
    def _note(self, kind: ReadProblemKind, rel: str | None, **facts: Any) -> None:
        self.problems.append(ReadProblem(kind, rel, **facts))

    def _note_budget(self, over: list[str]) -> None:
        if over:
            self._note(K.READ_BUDGET, None, detail=", ".join(over[:5]), count=len(over), limit=MAX_READ_BYTES,
                       size=sum(self.files.get(p, 0) for p in over))

    def _read_all(self, wanted: list[tuple[str, Path, int, tuple[int, int] | None]]) -> None:
        """Read the text files, most important first, within the folder's read budget; then file
        them in walk order (so that the rules see the same order as the listing)."""
        read: dict[str, bytes] = {}
        first_of: dict[tuple[int, int], str] = {}
        over: list[str] = []
        for rel, path, size, ident in sorted(wanted, key=lambda w: _read_priority(w[0])):
            if ident is not None and ident in first_of:
                self._note(K.HARDLINK, rel, detail=first_of[ident], size=size)
                continue
            if size > MAX_TEXT_BYTES:
                self._note(K.TOO_LARGE, rel, size=size, limit=MAX_TEXT_BYTES)
                continue
            if self.bytes_read + size > MAX_READ_BYTES:
                over.append(rel)
                continue
            try:
                with path.open("rb") as fh:
                    data = fh.read(MAX_TEXT_BYTES + 1)  # the file may have grown since stat()
            except OSError as exc:
                self._note(K.UNREADABLE, rel, reason=_reason(exc))
                continue
            self.bytes_read += len(data)
            if len(data) > MAX_TEXT_BYTES:
                self._note(K.TOO_LARGE, rel, size=len(data), limit=MAX_TEXT_BYTES)
                continue
            if ident is not None:
                first_of[ident] = rel
            read[rel] = data
        self._note_budget(over)
        for rel, _, _, _ in wanted:
            if rel in read:
                self._add_bytes(rel, read[rel])

    def _add_bytes(self, rel: str, data: bytes) -> None:
        digest = hashlib.sha256(data).hexdigest()
        lossy = False
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            text = data.decode("utf-8", errors="replace")
            lossy = True
            self._note(K.NOT_UTF8, rel, detail=str(exc.start))
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
            self._note(K.WRAPPER_UNDECODABLE, tf.path, detail=info.codec, reason=str(info.error), line=info.line)
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
        parsed = parse_json(tf.text or "", tf.path)
        self.json_data = parsed.data
        self.json_problems = parsed.problems
        self.json_problems_dropped = parsed.dropped

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


def _walk(root: Path, problems: list[ReadProblem]) -> Iterator[tuple[str, Path]]:
    """Every entry under `root`, top-down, each folder's files (and symlinked folders) in name
    order before its subfolders. Iterative (no recursion limit), never descends a symlinked
    folder, keeps at most MAX_ENTRIES entries and MAX_DEPTH levels; what it skips is noted.
    When a folder holds more entries than remain, the files the rules read (code, logs, JSON,
    README) are kept before the rest, so that junk entries cannot hide them."""
    stack: list[tuple[Path, int]] = [(root, 0)]
    kept = 0
    names_read = 0
    too_deep: list[str] = []
    while stack:
        folder, depth = stack.pop()
        rel_folder = folder.relative_to(root).as_posix() if folder != root else None
        if depth > MAX_DEPTH:
            too_deep.append(rel_folder or ".")
            continue
        try:
            with os.scandir(folder) as it:  # names only: cheap even for many entries
                entries = list(itertools.islice(it, max(0, MAX_NAMES_READ - names_read)))
        except OSError as exc:
            problems.append(ReadProblem(K.NOT_LISTABLE, rel_folder, reason=_reason(exc)))
            continue
        names_read += len(entries)
        if kept + len(entries) > MAX_ENTRIES or names_read >= MAX_NAMES_READ:
            problems.append(ReadProblem(K.TOO_MANY_ENTRIES, None, limit=MAX_ENTRIES))
            entries.sort(key=lambda e: (not _wants_text(e.name if folder == root else "x/" + e.name), e.name))
            entries = entries[: max(0, MAX_ENTRIES - kept)]
            stack.clear()
        kept += len(entries)
        files, links, subdirs = [], [], []
        for e in entries:
            try:
                is_dir = e.is_dir()
            except OSError:
                is_dir = False
            if not is_dir:
                files.append(e.name)
            elif e.name in SKIP_DIRS:
                continue
            elif e.is_symlink():
                links.append(e.name)
            else:
                subdirs.append(e.name)
        for name in sorted(files) + sorted(links):
            path = folder / name
            yield path.relative_to(root).as_posix(), path
        stack.extend((folder / d, depth + 1) for d in sorted(subdirs, reverse=True))
    if too_deep:
        problems.append(ReadProblem(K.TOO_DEEP, too_deep[0], limit=MAX_DEPTH, count=len(too_deep)))


def _reason(exc: BaseException) -> str:
    return (exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)) or type(exc).__name__


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


def _read_priority(rel: str) -> tuple[int, str]:
    """Reading order under the budget: submission*.json, README.md, top-level code, other code, logs."""
    p = PurePosixPath(rel)
    suffix = p.suffix.lower()
    if suffix == ".json":
        rank = 0
    elif len(p.parts) == 1 and p.name.lower() == "readme.md":
        rank = 1
    elif suffix in CODE_SUFFIXES:
        rank = 2 if len(p.parts) == 1 else 3
    else:
        rank = 4
    return rank, rel


def _is_submission_json(rel: str) -> bool:
    p = PurePosixPath(rel)
    return len(p.parts) == 1 and re.fullmatch(r"submission(_[\w.-]+)?\.json", p.name.lower()) is not None


_LOG_MARKERS = re.compile(r"val_bpb|val_loss|train_loss|step[: ]\d|Total submission size|seed")


def _looks_like_log(text: str) -> bool:
    return _LOG_MARKERS.search(text[:2_000_000]) is not None
