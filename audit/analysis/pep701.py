"""Read Python 3.12 f-strings (PEP 701) with a Python 3.11 parser, keeping every line number.

Why: many records (and the decoded wrappers of most April records) write
`f"{", ".join(xs)}"` - a quote of the outer kind inside a replacement field, legal since 3.12.
The stdlib `ast` of 3.11 rejects the whole file, which would blind every static rule. We rewrite
only such nested string literals to the other quote character (same length, same lines), or to an
empty literal of the other kind when they contain both quote characters, then parse again.
Nothing here runs code; if the rewrite does not help the caller keeps the original error.
"""

from __future__ import annotations

_PREFIX_CHARS = set("rRbBuUfF")


def downgrade_fstrings(text: str) -> str | None:
    """The text with PEP 701 nested quotes rewritten, or None when nothing needed changing."""
    out = list(text)
    changed = False
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "#":
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        if c in "'\"":
            prefix = _prefix_before(text, i)
            end, ch = _scan_string(text, i, "f" in prefix.lower(), out)
            changed |= ch
            i = end
            continue
        i += 1
    return "".join(out) if changed else None


def _prefix_before(text: str, i: int) -> str:
    j = i
    while j > 0 and text[j - 1] in _PREFIX_CHARS and i - j < 3:
        j -= 1
    if j > 0 and (text[j - 1].isalnum() or text[j - 1] == "_"):
        return ""  # part of an identifier, e.g. `elif"` is not a prefix
    return text[j:i]


def _scan_string(text: str, i: int, is_f: bool, out: list[str]) -> tuple[int, bool]:
    """Scan the literal starting at quote i; returns (index after it, whether out changed)."""
    q = text[i]
    triple = text.startswith(q * 3, i)
    delim = q * 3 if triple else q
    j = i + len(delim)
    n = len(text)
    changed = False
    while j < n:
        c = text[j]
        if c == "\\":
            j += 2
            continue
        if not triple and c == "\n":
            return j, changed
        if text.startswith(delim, j):
            return j + len(delim), changed
        if is_f and c == "{":
            if text.startswith("{{", j):
                j += 2
                continue
            j, ch = _scan_field(text, j + 1, q, triple, out)
            changed |= ch
            continue
        j += 1
    return n, changed


def _scan_field(text: str, j: int, outer_q: str, outer_triple: bool, out: list[str]) -> tuple[int, bool]:
    """Scan a replacement field up to its closing brace, fixing nested literals that reuse the
    outer quote. Returns the index after the closing `}`."""
    depth = 1
    n = len(text)
    changed = False
    while j < n and depth > 0:
        c = text[j]
        if c in "{[(":
            depth += 1
        elif c in "}])":
            depth -= 1
            if depth == 0:
                return j + 1, changed
        elif c in "'\"":
            prefix = _prefix_before(text, j)
            start = j
            end, ch = _scan_string(text, j, "f" in prefix.lower(), out)
            changed |= ch
            if c == outer_q and not outer_triple:
                changed |= _requote(text, start, end, out)
            j = end
            continue
        elif c == "\n" and not outer_triple:
            return j, changed
        j += 1
    return j, changed


def _requote(text: str, start: int, end: int, out: list[str]) -> bool:
    q = text[start]
    other = "'" if q == '"' else '"'
    triple = text.startswith(q * 3, start)
    width = 3 if triple else 1
    body = text[start + width:end - width]
    if other in body or "\\" in body:
        # keep the length (and so every column and line) with an empty literal plus spaces
        for k in range(start, end):
            if out[k] != "\n":
                out[k] = " "
        out[start] = other
        out[start + 1] = other
        return True
    for k in range(width):
        out[start + k] = other
        out[end - 1 - k] = other
    return True
