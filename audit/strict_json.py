"""Parse submission.json strictly: what Python's `json` lets through silently becomes a problem.

`json.loads` accepts `NaN` and `Infinity`, turns `1e400` into infinity, parses a 400-digit
integer, and keeps the last of two duplicate keys. Each of these lets a submission.json claim a
number no reviewer can check (a `bytes_total` of 10**400 is "under the cap" for some readers and
an overflow for others; with duplicate keys the reviewer reads one value and a tool another). The
parse hooks below record every such spot as a `JsonProblem`; a document with any problem is not
handed to the rules as data, and `rules/sub_json.py` reports each problem as an error.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

# 20 digits hold every 64-bit integer; seeds, byte counts and millisecond times need far fewer.
MAX_INT_DIGITS = 20
# A float literal longer than this is not a measurement anybody wrote by hand or by `json.dump`.
MAX_NUMBER_CHARS = 64
# Problems kept per document (the count of the rest is kept too): a document with a million
# duplicate keys must not become a million findings.
MAX_PROBLEMS = 20


class JsonProblemKind(str, Enum):
    SYNTAX = "syntax"  # not JSON at all (or nested too deeply to parse)
    NOT_OBJECT = "not-object"  # valid JSON, but not an object
    DUPLICATE_KEY = "duplicate-key"
    BIG_INTEGER = "big-integer"
    NUMBER_OVERFLOW = "number-overflow"  # a literal like 1e400 that becomes infinity (or a huge literal)
    NON_FINITE = "non-finite"  # NaN, Infinity, -Infinity: not JSON (RFC 8259), accepted by Python


@dataclass(frozen=True)
class JsonProblem:
    """One thing wrong with a submission*.json, located where we can find it."""

    kind: JsonProblemKind
    path: str  # the JSON file, relative to the folder
    text: str  # a complete sentence naming the file and the offending value
    line: int | None = None


@dataclass
class ParsedJson:
    data: Any = None  # the parsed value; None when there is any problem
    problems: list[JsonProblem] = field(default_factory=list)
    dropped: int = 0  # problems beyond MAX_PROBLEMS


def parse(text: str, path: str) -> ParsedJson:
    """Parse `text` (the content of `path`); never raises."""
    seen: list[tuple[JsonProblemKind, str, str]] = []  # (kind, literal to locate, sentence)

    distinct: set[tuple[JsonProblemKind, str]] = set()

    def note(kind: JsonProblemKind, literal: str, sentence: str) -> None:
        if (kind, literal) not in distinct:  # the same key or literal again is the same problem
            distinct.add((kind, literal))
            seen.append((kind, literal, sentence))

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                note(JsonProblemKind.DUPLICATE_KEY, key,
                     f"{path} has the key {_show(json.dumps(key))} twice in one object; JSON readers disagree on which value "
                     "counts (Python keeps the last one)")
            out[key] = value
        return out

    def integer(literal: str) -> int | None:
        digits = len(literal.lstrip("-"))
        if digits > MAX_INT_DIGITS:
            note(JsonProblemKind.BIG_INTEGER, literal,
                 f"{path} has an integer with {digits} digits ({_show(literal)}); no count or score in a "
                 f"submission needs more than {MAX_INT_DIGITS}")
            return None
        return int(literal)

    def floating(literal: str) -> float | None:
        if len(literal) > MAX_NUMBER_CHARS:
            note(JsonProblemKind.NUMBER_OVERFLOW, literal,
                 f"{path} has a number literal of {len(literal)} characters ({_show(literal)})")
            return None
        value = float(literal)
        if math.isinf(value):
            note(JsonProblemKind.NUMBER_OVERFLOW, literal,
                 f"{path} has the number {_show(literal)}, which is too large to be represented (it reads as "
                 "infinity)")
            return None
        return value

    def constant(name: str) -> None:
        note(JsonProblemKind.NON_FINITE, name,
             f"{path} has the value {name}, which is not a number and not valid JSON (RFC 8259); Python's json "
             "module accepts it, other readers do not")
        return None

    body = text.removeprefix("\ufeff")  # an editor's byte-order mark is harmless
    try:
        data = json.loads(body, object_pairs_hook=pairs, parse_int=integer, parse_float=floating,
                          parse_constant=constant)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, deep nesting
        return ParsedJson(problems=[JsonProblem(JsonProblemKind.SYNTAX, path,
                                                f"{path} is not valid JSON: {str(exc)[:300]}",
                                                getattr(exc, "lineno", None))])
    if seen:
        problems = [JsonProblem(kind, path, sentence, _line_of(body, kind, literal))
                    for kind, literal, sentence in seen[:MAX_PROBLEMS]]
        return ParsedJson(problems=problems, dropped=max(0, len(seen) - MAX_PROBLEMS))
    if not isinstance(data, dict):
        return ParsedJson(problems=[JsonProblem(JsonProblemKind.NOT_OBJECT, path,
                                                f"{path} holds a {type(data).__name__}, not a JSON object", 1)])
    return ParsedJson(data=data)


def _show(literal: str, width: int = 40) -> str:
    return literal if len(literal) <= width else literal[: width - 1] + "…"


def _line_of(text: str, kind: JsonProblemKind, literal: str) -> int | None:
    """The line of the offending token: the second `"key":` for a duplicate, else the literal itself."""
    if kind == JsonProblemKind.DUPLICATE_KEY:
        # Only when the key is written exactly twice in the file is the second one surely the
        # duplicate; otherwise (the same name in other objects) the finding is on the file.
        hits = list(itertools.islice(re.finditer(re.escape(json.dumps(literal)) + r"\s*:", text), 3))
        match = hits[1] if len(hits) == 2 else None
    else:
        match = re.compile(r"(?<![\w.+-])" + re.escape(literal) + r"(?![\w.])").search(text)
    return text.count("\n", 0, match.start()) + 1 if match else None
