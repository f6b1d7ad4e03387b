"""The vocabulary size of a SentencePiece model, read without sentencepiece.

The harness passes VOCAB_SIZE to the run because the baseline script refuses a tokenizer whose
size differs from it. A `.model` file is a protobuf `ModelProto` whose field 1 is the repeated
list of pieces, so the size is the number of field-1 records at the top level. Reading the wire
format directly keeps the harness free of the [torch] extra.
"""

from __future__ import annotations

from pathlib import Path


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def sentencepiece_vocab_size(path: Path) -> int | None:
    """Number of pieces in a SentencePiece model file, or None if it is not one."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    pos, pieces = 0, 0
    try:
        while pos < len(data):
            key, pos = _varint(data, pos)
            field, wire = key >> 3, key & 7
            if wire == 0:
                _, pos = _varint(data, pos)
            elif wire == 1:
                pos += 8
            elif wire == 5:
                pos += 4
            elif wire == 2:
                length, pos = _varint(data, pos)
                pos += length
                if field == 1:
                    pieces += 1
            else:
                return None
            if pos > len(data):
                return None
    except ValueError:
        return None
    return pieces or None
