"""Pin the val_bpb metric of reference_impl: byte LUTs, the hand-computed tiny case, sidecar bytes."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
spm = pytest.importorskip("sentencepiece")
pytestmark = pytest.mark.usefixtures("torch_single_thread")

from reference_impl.eval import eval_full  # noqa: E402
from reference_impl.tokenizer import (  # noqa: E402
    build_byte_luts,
    sidecar_path,
    target_bytes,
    token_byte_counts,
)


@pytest.fixture(scope="module")
def sp(fixture_data):
    return spm.SentencePieceProcessor(model_file=str(fixture_data.tokenizer_path))


class UniformModel(torch.nn.Module):
    """Predicts every token with probability 1/V: NLL is exactly ln V per target."""

    def __init__(self, vocab: int):
        super().__init__()
        self.vocab = vocab

    def forward_logits(self, x):
        return torch.zeros(*x.shape, self.vocab)

    def token_nll(self, x, y):
        return torch.full(y.shape, math.log(self.vocab), dtype=torch.float32)


def test_lut_classes(sp):
    base, space, boundary = build_byte_luts(sp, 600)
    assert base.numel() == 600  # max(sp vocab, VOCAB_SIZE); the extra ids are boundaries of 0 bytes
    assert bool(boundary[512:].all()) and int(base[512:].abs().sum()) == 0
    for special in (0, 1, 2, 3):  # pad, bos, eos (control) and unk: boundary, 0 bytes
        assert bool(boundary[special]) and int(base[special]) == 0 and not bool(space[special])
    byte_id = sp.piece_to_id("<0xC3>")
    assert sp.is_byte(byte_id) and int(base[byte_id]) == 1 and not bool(boundary[byte_id])
    the = sp.piece_to_id("\u2581the")
    assert int(base[the]) == 3 and bool(space[the])
    lone = sp.piece_to_id("\u2581")
    assert int(base[lone]) == 0 and bool(space[lone])


def test_hand_computed_bpb(sp):
    """[BOS ▁the le ▁the BOS ▁the <0xC3>]: targets cost 3, 2, 4, 0 (BOS), 3 (after BOS), 1 = 13 bytes."""
    bos, the, le, byte = 1, sp.piece_to_id("\u2581the"), sp.piece_to_id("le"), sp.piece_to_id("<0xC3>")
    tokens = torch.tensor([bos, the, le, the, bos, the, byte], dtype=torch.int64)
    luts = build_byte_luts(sp, sp.vocab_size())
    assert target_bytes(tokens[:-1], tokens[1:], luts).tolist() == [3, 2, 4, 0, 3, 1]
    res = eval_full(UniformModel(512), tokens, seq_len=3, luts=luts, batch_seqs=1, return_nll=True)
    assert (res.tokens, res.bytes) == (6, 13)
    assert res.val_loss == pytest.approx(math.log(512), abs=1e-6)
    assert res.val_bpb == pytest.approx(9.0 * 6 / 13, abs=1e-6)  # log2(512) bits per token, 6 tokens / 13 bytes
    assert res.positions.tolist() == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize(
    "text",
    ["The quiet garden opens at 9.30 near the river.", "Zürich café costs 42 francs", "東京 and 🙂 twice 2026!"],
)
def test_luts_count_exact_utf8_bytes(sp, text):
    """For a document after BOS, the LUT rule charges exactly the text's UTF-8 bytes."""
    ids = [1, *sp.encode(text)]
    assert sp.decode(ids[1:]) == text  # the normaliser leaves these strings alone
    t = torch.tensor(ids)
    luts = build_byte_luts(sp, sp.vocab_size())
    assert int(target_bytes(t[:-1], t[1:], luts).sum()) == len(text.encode("utf-8"))
    assert sum(token_byte_counts(sp, ids)) == len(text.encode("utf-8"))


def test_sidecar_bytes_equal_luts(sp, fixture_data):
    """A byte sidecar holding the LUT counts gives the same val_bpb as the LUTs themselves."""
    from reference_impl.data import load_validation_tokens

    val = load_validation_tokens(str(fixture_data.data_path / "fineweb_val_*.bin"), 64)[: 64 * 8 + 1]
    luts = build_byte_luts(sp, sp.vocab_size())
    side = torch.tensor(token_byte_counts(sp, val.tolist()))
    a = eval_full(UniformModel(512), val, 64, luts, batch_seqs=3)
    b = eval_full(UniformModel(512), val, 64, luts, batch_seqs=3, token_bytes=side)
    assert a.bytes == b.bytes and a.val_bpb == pytest.approx(b.val_bpb, rel=1e-12)
    assert sidecar_path(fixture_data.data_path / "fineweb_val_000000.bin").name == "fineweb_val_bytes_000000.bin"
