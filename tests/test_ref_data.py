"""Shard format, loaders and the fixture dataset of reference_impl."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from reference_impl.data import (  # noqa: E402
    HEADER_BYTES,
    SHARD_MAGIC,
    DistributedTokenLoader,
    load_data_shard,
    load_validation_tokens,
    shard_files,
    write_data_shard,
)


def test_shard_round_trip_and_header(tmp_path):
    p = tmp_path / "fineweb_val_000000.bin"
    write_data_shard(p, [1, 2, 65535, 0])
    raw = p.read_bytes()
    header = np.frombuffer(raw[:HEADER_BYTES], dtype="<i4")
    assert (header[0], header[1], header[2]) == (SHARD_MAGIC, 1, 4) and not header[3:].any()
    assert len(raw) == HEADER_BYTES + 8
    assert load_data_shard(p).tolist() == [1, 2, 65535, 0]


@pytest.mark.parametrize("corrupt", ["magic", "version", "size"])
def test_shard_reader_rejects_bad_files(tmp_path, corrupt):
    p = tmp_path / "s.bin"
    write_data_shard(p, list(range(10)))
    raw = bytearray(p.read_bytes())
    if corrupt == "magic":
        raw[0] ^= 1
    elif corrupt == "version":
        raw[4] = 2
    else:
        raw += b"\0\0"
    p.write_bytes(bytes(raw))
    with pytest.raises(ValueError):
        load_data_shard(p)


def test_validation_trim_and_sidecar_excluded(tmp_path):
    write_data_shard(tmp_path / "fineweb_val_000000.bin", list(range(7)))
    write_data_shard(tmp_path / "fineweb_val_000001.bin", list(range(100, 110)))
    write_data_shard(tmp_path / "fineweb_val_bytes_000000.bin", [9] * 17)  # CaseOps sidecar, not tokens
    pattern = str(tmp_path / "fineweb_val_*.bin")
    assert [p.name for p in shard_files(pattern)] == ["fineweb_val_000000.bin", "fineweb_val_000001.bin"]
    val = load_validation_tokens(pattern, seq_len=4)  # 17 tokens -> usable 16 (+1)
    assert val.tolist() == list(range(7)) + list(range(100, 110))
    assert load_validation_tokens(pattern, seq_len=5).numel() == 16  # usable 15 (+1)


def test_distributed_loader_ranks_partition_the_stream(tmp_path):
    write_data_shard(tmp_path / "fineweb_train_000000.bin", list(range(50)))
    write_data_shard(tmp_path / "fineweb_train_000001.bin", list(range(50, 90)))
    pattern = str(tmp_path / "fineweb_train_*.bin")
    cpu = torch.device("cpu")
    loaders = [DistributedTokenLoader(pattern, r, 2, cpu) for r in range(2)]
    for step in range(3):  # 2 ranks x (8 + 1) tokens per micro-batch, wrapping over shards
        xs = [ld.next_batch(global_tokens=32, seq_len=4, grad_accum_steps=2) for ld in loaders]
        base = step * 18
        for r, (x, y) in enumerate(xs):
            span = [(base + r * 9 + i) % 90 for i in range(9)]
            assert x.reshape(-1).tolist() == span[:-1] and y.reshape(-1).tolist() == span[1:]
            assert x.shape == (2, 4)


def test_fixture_data_is_well_formed(fixture_data):
    import sentencepiece as spm

    from reference_impl.fixture_data import ensure_fixture_data

    assert ensure_fixture_data() == fixture_data  # idempotent
    sp = spm.SentencePieceProcessor(model_file=str(fixture_data.tokenizer_path))
    assert sp.vocab_size() == fixture_data.vocab_size == 512
    assert (sp.pad_id(), sp.bos_id(), sp.eos_id(), sp.unk_id()) == (0, 1, 2, 3)
    assert sp.piece_to_id("\u2581") != sp.unk_id()  # "▁" is its own piece
    val = load_data_shard(fixture_data.data_path / "fineweb_val_000000.bin")
    assert val[0] == 1 and int((val == 1).sum()) == 200  # BOS-prefixed documents, no EOS
    assert not bool((val == 2).any())
    assert any(sp.is_byte(int(t)) for t in val.tolist())  # byte fallback is exercised
    trains = sorted(fixture_data.data_path.glob("fineweb_train_*.bin"))
    assert len(trains) >= 2
    meta = json.loads((fixture_data.data_path / "fixture.json").read_text())
    assert set(meta["files"]) >= {p.name for p in trains}


def test_fixture_build_is_deterministic(tmp_path, fixture_data):
    from reference_impl.fixture_data import ensure_fixture_data

    other = ensure_fixture_data(tmp_path / "copy")
    for p in sorted(fixture_data.data_path.iterdir()):
        assert (other.data_path / p.name).read_bytes() == p.read_bytes(), p.name


def test_byte_sidecar_is_trimmed_like_the_tokens(tmp_path):
    from reference_impl.data import load_validation_byte_sidecar

    write_data_shard(tmp_path / "fineweb_val_000000.bin", list(range(11)))
    write_data_shard(tmp_path / "fineweb_val_bytes_000000.bin", [3] * 11)
    pattern = str(tmp_path / "fineweb_val_*.bin")
    val = load_validation_tokens(pattern, seq_len=4)  # 11 tokens -> usable 8 (+1)
    side = load_validation_byte_sidecar(pattern, 4, val.numel())
    assert side.tolist() == [3] * 9 and side.dtype == torch.int32
    with pytest.raises(ValueError):
        load_validation_byte_sidecar(pattern, 4, val.numel() + 4)
    with pytest.raises(FileNotFoundError):
        load_validation_byte_sidecar(str(tmp_path / "nothing" / "fineweb_val_*.bin"), 4, 9)
