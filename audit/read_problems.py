"""What went wrong while reading a submission folder, recorded as facts for the rules to report.

The reader never makes findings: it notes each problem here (a symlink that leaves the folder, a
file too large to read, bytes that are not UTF-8, a limit reached) and `rules/sub_files.py` turns
them into R-SUB-FILES findings, so that every finding has one rule, one source text and one doc.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class ReadProblemKind(str, Enum):
    NOT_A_DIRECTORY = "not-a-directory"  # the path given is not a folder
    BAD_PATH = "bad-path"  # an in-memory file name outside the folder (absolute, '..')
    SYMLINK_ESCAPES = "symlink-escapes"  # detail: the link's target as written
    NOT_INSPECTABLE = "not-inspectable"  # stat() failed
    NOT_LISTABLE = "not-listable"  # a folder could not be listed
    UNREADABLE = "unreadable"  # open()/read() failed
    TOO_LARGE = "too-large"  # size > limit (MAX_TEXT_BYTES): not read
    NOT_UTF8 = "not-utf8"  # read with replacement characters; detail: the first bad byte offset
    HARDLINK = "hardlink"  # the same file (dev, inode) as `detail`, which was read: read once
    TOO_MANY_FILES = "too-many-files"  # limit: MAX_FILES
    TOO_MANY_ENTRIES = "too-many-entries"  # limit: MAX_ENTRIES directory entries listed
    TOO_DEEP = "too-deep"  # a folder nested deeper than the limit (MAX_DEPTH); not listed
    READ_BUDGET = "read-budget"  # total bytes read would pass the limit; detail: files not read
    WRAPPER_UNDECODABLE = "wrapper-undecodable"  # detail: the codec, reason: why it failed


@dataclass(frozen=True)
class ReadProblem:
    """One fact about the read: what happened, to which file (None: the folder), with its numbers."""

    kind: ReadProblemKind
    path: str | None
    detail: str = ""
    reason: str = ""  # the OS's or decoder's explanation, where there is one
    size: int | None = None
    limit: int | None = None
    line: int | None = None
    count: int | None = None  # how many files a limit left unread

    def describe(self) -> str:
        """One sentence for a reviewer: the file, what happened, and what was (not) read."""
        where = self.path or "a folder"
        n = f"{self.size:,}" if self.size is not None else "?"
        limit = f"{self.limit:,}" if self.limit is not None else "?"
        k = ReadProblemKind
        text = {
            k.NOT_A_DIRECTORY: f"{self.detail} is not a directory",
            k.BAD_PATH: f"{self.detail!r} is not a relative path inside the folder; not read",
            k.SYMLINK_ESCAPES: f"{where} is a symlink that leaves the submission folder (-> {self.detail}); not read",
            k.NOT_INSPECTABLE: f"{where} could not be inspected: {self.reason}",
            k.NOT_LISTABLE: f"{where} could not be listed: {self.reason}",
            k.UNREADABLE: f"{where} could not be read: {self.reason}",
            k.TOO_LARGE: f"{where} is {n} bytes, over the {limit}-byte limit for text; not read",
            k.NOT_UTF8: f"{where} is not valid UTF-8 (byte {self.detail}); read with replacement characters",
            k.HARDLINK: (f"{where} and {self.count - 1} other file(s) are hard links to {self.detail}"
                         if self.count and self.count > 1 else f"{where} is a hard link to {self.detail}")
                        + f" (the same file); read once, as {self.detail}",
            k.TOO_MANY_FILES: f"more than {self.limit} files; the rest were not read (code, logs, submission.json "
                               "and README.md were)",
            k.TOO_MANY_ENTRIES: f"the folder lists more than {limit} entries (files and folders); the rest were "
                                "not read (code, logs, submission.json and README.md were kept first)",
            k.TOO_DEEP: f"{where} is nested more than {self.limit} folders deep"
                        + (f" (and {self.count - 1} other such folder(s))" if self.count and self.count > 1 else "")
                        + "; nothing below that depth was read",
            k.READ_BUDGET: f"the folder's text files pass the per-folder read budget of {limit} bytes: "
                           f"{self.count} file(s) ({n} bytes) were not read ({self.detail}"
                           + (", …" if self.count and self.count > 5 else "") + ")",
            k.WRAPPER_UNDECODABLE: f"{where} is a self-extracting wrapper ({self.detail}) that could not be decoded "
                                   f"statically ({self.reason}); the static rules only see the wrapper",
        }
        return text[self.kind]
