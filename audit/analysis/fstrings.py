"""Make Python 3.12 f-strings (PEP 701: nested same-type quotes, `f"{d["k"]}"`) parseable by an
older `ast`, keeping every line where it was.

Records from April on use PEP 701 f-strings; the auditor may run on Python 3.10/3.11. Each
f-string is replaced by a plain string holding its literal text and the identifiers of its
expressions (quotes, braces and backslashes dropped), with the same number of newlines, so line
numbers stay exact and path-like literals (`f"{root}/fineweb_val_{i}.bin"`) keep their words.
f-strings only format text, so the data-flow analysis loses nothing that matters.
"""

from __future__ import annotations

import re

_START = re.compile(r"([rRbBuUfF]{0,2})(\"\"\"|'''|\"|')")
_DROP = re.compile(r"[\\'\"{}]")


def downgrade_fstrings(src: str) -> str:
    out: list[str] = []
    i, n = 0, len(src)
    while i < n:
        ch = src[i]
        if ch == "#":
            j = src.find("\n", i)
            j = n if j < 0 else j
            out.append(src[i:j])
            i = j
            continue
        if ch.isalpha() or ch == "_" or ch in "\"'":
            m = _START.match(src, i)
            if m is not None and (i == 0 or not (src[i - 1].isalnum() or src[i - 1] == "_")):
                prefix, quote = m.group(1).lower(), m.group(2)
                end = _scan_string(src, m.end(), quote, "f" in prefix, "r" in prefix)
                if "f" in prefix:
                    body = src[m.end():max(m.end(), end - len(quote))]
                    text = _DROP.sub("", body)
                    newlines = text.count("\n")
                    text = text.replace("\n", " ")
                    out.append(f'"""{text}{chr(10) * newlines}"""' if newlines else f'"{text}"')
                else:
                    out.append(src[i:end])
                i = end
                continue
            if ch.isalpha() or ch == "_":
                j = i
                while j < n and (src[j].isalnum() or src[j] == "_"):
                    j += 1
                out.append(src[i:j])
                i = j
                continue
        out.append(ch)
        i += 1
    return "".join(out)


def _scan_string(src: str, j: int, quote: str, is_f: bool, raw: bool) -> int:
    """Index just past the string body starting at `j` (after the opening quote)."""
    n = len(src)
    depth = 0
    while j < n:
        ch = src[j]
        if depth == 0:
            if ch == "\\" and not raw:
                j += 2
                continue
            if src.startswith(quote, j):
                return j + len(quote)
            if ch == "\n" and len(quote) == 1:
                return j
            if is_f and ch == "{":
                if src.startswith("{{", j):
                    j += 2
                    continue
                depth = 1
            j += 1
            continue
        # inside a replacement field: nested strings are skipped whole
        m = _START.match(src, j) if (ch in "\"'" or ch.isalpha()) else None
        if m is not None and (ch in "\"'" or not (src[j - 1].isalnum() or src[j - 1] == "_")):
            pre = m.group(1).lower()
            j = _scan_string(src, m.end(), m.group(2), "f" in pre, "r" in pre)
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        j += 1
    return n


def fstring_parts(line: str) -> list[tuple[str, list[tuple[bool, str]]]]:
    """The f-strings starting on one line of the original source, each as (the plain string
    `downgrade_fstrings` made of it, its parts: (is a replacement field, text)). Lets a reader of
    the downgraded tree recover what a log line formats (`f"{label} val_bpb:{v}"`)."""
    out: list[tuple[str, list[tuple[bool, str]]]] = []
    i, n = 0, len(line)
    while i < n:
        m = _START.match(line, i) if (line[i].isalpha() or line[i] in "\"'") else None
        if m is None or (i > 0 and (line[i - 1].isalnum() or line[i - 1] == "_")):
            i += 1
            continue
        prefix, quote = m.group(1).lower(), m.group(2)
        end = _scan_string(line, m.end(), quote, "f" in prefix, "r" in prefix)
        if "f" in prefix:
            body = line[m.end():max(m.end(), end - len(quote))]
            out.append((_DROP.sub("", body), _split_fields(body)))
        i = max(end, i + 1)
    return out


def _split_fields(body: str) -> list[tuple[bool, str]]:
    parts: list[tuple[bool, str]] = []
    lit: list[str] = []
    j, n = 0, len(body)
    while j < n:
        if body.startswith("{{", j) or body.startswith("}}", j):
            lit.append(body[j])
            j += 2
            continue
        if body[j] != "{":
            lit.append(body[j])
            j += 1
            continue
        depth, k = 1, j + 1
        while k < n and depth:
            ch = body[k]
            m = _START.match(body, k) if ch in "\"'" else None
            if m is not None:
                k = _scan_string(body, m.end(), m.group(2), False, False)
                continue
            depth += ch == "{"
            depth -= ch == "}"
            k += 1
        if lit:
            parts.append((False, "".join(lit)))
            lit = []
        parts.append((True, body[j + 1:k - 1]))
        j = k
    if lit:
        parts.append((False, "".join(lit)))
    return parts
