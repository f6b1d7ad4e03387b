"""The byte-accounting probe (R-METRIC-BPB): are the submission's byte tables the tokenizer's?

val_bpb divides by bytes, so a wrong table makes any score look good. The reference tables are
recomputed from the SentencePiece model with sentencepiece (REFERENCE.md 1.7): control / unknown
/ unused ids are boundaries with 0 bytes, byte-fallback pieces 1 byte, other pieces the UTF-8
length without a leading U+2581, which instead sets the leading-space flag (one more byte unless
the previous token is a boundary). Two checks: the tables equal the reference id by id, and on a
text sample the bytes the tables charge equal the UTF-8 length of the text as tokenized.
Pure Python over lists; sentencepiece is imported by the caller (the sandboxed driver).
"""

from __future__ import annotations

from dataclasses import dataclass, field

LEADING_SPACE = "\u2581"
Tables = tuple[list[int], list[bool], list[bool]]  # base bytes, leading space, boundary


def reference_tables(sp, size: int) -> Tables:
    sp_vocab = int(sp.vocab_size())
    size = max(size, sp_vocab)
    base, space, boundary = [0] * size, [False] * size, [True] * size
    for tid in range(sp_vocab):
        if sp.is_control(tid) or sp.is_unknown(tid) or sp.is_unused(tid):
            continue
        boundary[tid] = False
        if sp.is_byte(tid):
            base[tid] = 1
            continue
        piece = sp.id_to_piece(tid)
        if piece.startswith(LEADING_SPACE):
            space[tid] = True
            piece = piece[1:]
        base[tid] = len(piece.encode("utf-8"))
    return base, space, boundary


def charged_bytes(tables: Tables, stream: list[int]) -> int:
    """Bytes the tables charge to every target of a stream (position 0 is never a target)."""
    base, space, boundary = tables
    return sum(base[t] + (1 if space[t] and not boundary[p] else 0) for p, t in zip(stream, stream[1:]))


@dataclass
class ByteCheck:
    table_size: int
    mismatches: list[dict] = field(default_factory=list)  # {"id", "piece", "field", "theirs", "ours"}
    sample_docs: int = 0
    sample_text_bytes: int = 0
    sample_charged_bytes: int = 0
    worst_doc: dict | None = None  # the document with the largest difference

    @property
    def ok(self) -> bool:
        return not self.mismatches and self.sample_text_bytes == self.sample_charged_bytes

    def to_dict(self) -> dict:
        return {"table_size": self.table_size, "mismatches": self.mismatches[:20], "mismatch_count": len(self.mismatches),
                "sample_docs": self.sample_docs, "sample_text_bytes": self.sample_text_bytes,
                "sample_charged_bytes": self.sample_charged_bytes, "worst_doc": self.worst_doc, "ok": self.ok}


def check_tables(theirs: Tables, sp, texts: list[str], bos_id: int = 1) -> ByteCheck:
    """Compare the tables with the reference and charge a text sample with them."""
    size = len(theirs[0])
    ours = reference_tables(sp, size)
    out = ByteCheck(size)
    names = ("base_bytes", "has_leading_space", "is_boundary")
    for tid in range(min(size, len(ours[0]))):
        for name, a, b in zip(names, theirs, ours):
            if tid >= len(a):
                continue
            differs = int(a[tid]) != int(b[tid]) if name == "base_bytes" else bool(a[tid]) != bool(b[tid])
            if differs:
                piece = sp.id_to_piece(tid) if tid < int(sp.vocab_size()) else "<pad id>"
                out.mismatches.append({"id": tid, "piece": piece, "field": name, "theirs": int(a[tid]), "ours": int(b[tid])})
    worst = 0
    for text in texts:
        ids = sp.encode(text)
        stream = [bos_id, *ids]
        want = len(sp.decode(ids).encode("utf-8"))  # the text as tokenized (NFKC-normalised)
        got = charged_bytes(theirs, stream)
        out.sample_docs += 1
        out.sample_text_bytes += want
        out.sample_charged_bytes += got
        if abs(got - want) > worst:
            worst = abs(got - want)
            out.worst_doc = {"text": text[:120], "text_bytes": want, "charged": got}
    return out


def tables_from(values) -> Tables:
    """Three sequences (tensors, arrays or lists) -> plain lists."""
    def plain(v):
        v = v.tolist() if hasattr(v, "tolist") else list(v)
        return v
    base, space, boundary = (plain(v) for v in values)
    return [int(x) for x in base], [bool(x) for x in space], [bool(x) for x in boundary]
