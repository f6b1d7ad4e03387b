"""Evaluation modes agree where they must: sliding(stride=seq_len) == full, TTT(0 epochs) == sliding,
every target scored once, NLL sums to val_loss x tokens, and TTT scores a chunk before training on it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
spm = pytest.importorskip("sentencepiece")
pytestmark = pytest.mark.usefixtures("torch_single_thread")

import reference_impl.eval as ev  # noqa: E402
from reference_impl.data import load_validation_tokens  # noqa: E402
from reference_impl.hparams import Hyperparameters  # noqa: E402
from reference_impl.model import build_model  # noqa: E402
from reference_impl.tokenizer import build_byte_luts  # noqa: E402

SEQ = 32


@pytest.fixture(scope="module")
def setup(fixture_data):
    sp = spm.SentencePieceProcessor(model_file=str(fixture_data.tokenizer_path))
    luts = build_byte_luts(sp, fixture_data.vocab_size)
    val = load_validation_tokens(str(fixture_data.data_path / "fineweb_val_*.bin"), SEQ)[: SEQ * 24 + 1]
    hp = Hyperparameters(vocab_size=fixture_data.vocab_size, num_layers=2, model_dim=32, num_heads=2, num_kv_heads=1)
    torch.manual_seed(0)
    model = build_model(hp)
    with torch.no_grad():  # non-trivial weights: zero-init projections would make every position alike
        for p in model.parameters():
            if p.ndim == 2:
                p.normal_(0, 0.2)
    return model, val, luts


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 400), seq_len=st.integers(1, 40), stride_frac=st.floats(0.01, 1.0))
def test_sliding_windows_tile_every_target_once(n, seq_len, stride_frac):
    if n < seq_len:
        return
    stride = max(1, int(seq_len * stride_frac))
    scored = []
    for ws, first in ev.sliding_windows(n, seq_len, stride):
        assert 0 <= ws and ws + seq_len <= n and 0 <= first < seq_len
        assert first == 0 or first >= seq_len - stride  # later windows keep >= seq_len - stride context
        scored.extend(range(ws + 1 + first, ws + 1 + seq_len))
    assert scored == list(range(1, n + 1))


def test_sliding_with_stride_seq_len_equals_full(setup):
    model, val, luts = setup
    full = ev.eval_full(model, val, SEQ, luts, batch_seqs=5, return_nll=True)
    slide = ev.eval_sliding(model, val, SEQ, SEQ, luts, batch_seqs=7, return_nll=True)
    assert (slide.tokens, slide.bytes) == (full.tokens, full.bytes) == (SEQ * 24, full.bytes)
    assert torch.equal(slide.positions, full.positions)
    assert torch.allclose(slide.nll, full.nll, atol=1e-5)
    assert slide.val_bpb == pytest.approx(full.val_bpb, rel=1e-6)


def test_sliding_with_context_scores_the_same_targets(setup):
    model, val, luts = setup
    full = ev.eval_full(model, val, SEQ, luts, batch_seqs=8)
    slide = ev.eval_sliding(model, val, SEQ, 8, luts, batch_seqs=8, return_nll=True)
    assert (slide.tokens, slide.bytes) == (full.tokens, full.bytes)
    assert slide.positions.tolist() == list(range(1, val.numel()))
    assert slide.val_loss != pytest.approx(full.val_loss, rel=1e-6)  # more context -> different NLL


def test_nll_sum_equals_loss_times_tokens(setup):
    model, val, luts = setup
    for res in (
        ev.eval_full(model, val, SEQ, luts, batch_seqs=4, return_nll=True),
        ev.eval_sliding(model, val, SEQ, 16, luts, batch_seqs=4, return_nll=True),
    ):
        assert res.nll.numel() == res.tokens
        # full eval sums fp32 batch means (baseline arithmetic), sliding sums per-token NLL in fp64
        assert float(res.nll.double().sum()) == pytest.approx(res.val_loss * res.tokens, rel=1e-7)


def test_ttt_zero_epochs_equals_plain_eval(setup):
    model, val, luts = setup
    cfg = ev.TTTConfig(chunk_tokens=100, epochs=0)
    ttt = ev.eval_ttt_score_first(model, val, SEQ, SEQ, luts, cfg, batch_seqs=4, return_nll=True)
    full = ev.eval_full(model, val, SEQ, luts, batch_seqs=4, return_nll=True)
    assert torch.equal(ttt.positions, full.positions)
    assert ttt.val_bpb == pytest.approx(full.val_bpb, rel=1e-6)
    slide = ev.eval_sliding(model, val, SEQ, 8, luts, batch_seqs=4)
    ttt8 = ev.eval_ttt_score_first(model, val, SEQ, 8, luts, cfg, batch_seqs=4)
    assert ttt8.val_bpb == pytest.approx(slide.val_bpb, rel=1e-6)


def test_ttt_scores_each_chunk_before_training_on_it(setup, monkeypatch):
    model, val, luts = setup
    model = build_model(Hyperparameters(vocab_size=512, num_layers=2, model_dim=32, num_heads=2, num_kv_heads=1))
    model.load_state_dict(setup[0].state_dict())
    scored: set[int] = set()
    trained: list[tuple[int, int]] = []
    real_score, real_train = ev._score_windows, ev._train_on_scored_chunk

    def spy_score(m, v, wins, seq_len, *a, **k):
        for ws, first in wins:
            scored.update(range(ws + 1 + first, ws + 1 + seq_len))
        return real_score(m, v, wins, seq_len, *a, **k)

    def spy_train(m, opt, v, lo, hi, *a, **k):
        assert set(range(lo, hi + 1)) <= scored, "trained on targets not yet scored"
        assert max(scored) == hi, "scored past the chunk before training on it"
        trained.append((lo, hi))
        return real_train(m, opt, v, lo, hi, *a, **k)

    plain = ev.eval_sliding(setup[0], val, SEQ, 16, luts, batch_seqs=4, return_nll=True)
    monkeypatch.setattr(ev, "_score_windows", spy_score)
    monkeypatch.setattr(ev, "_train_on_scored_chunk", spy_train)
    cfg = ev.TTTConfig(chunk_tokens=160, epochs=1, lr=0.05, batch_seqs=2)
    ttt = ev.eval_ttt_score_first(model, val, SEQ, 16, luts, cfg, batch_seqs=4, return_nll=True)
    n_chunks = -(-(val.numel() - 1) // 160)
    assert len(trained) == n_chunks - 1  # never after the last chunk
    assert trained[-1][1] < val.numel() - 1
    first_chunk = plain.positions <= trained[0][1]
    assert torch.allclose(ttt.nll[first_chunk], plain.nll[first_chunk], atol=1e-6)  # scored before any update
    assert not torch.allclose(ttt.nll[~first_chunk], plain.nll[~first_chunk], atol=1e-4)  # later chunks adapted
    assert ttt.tokens == plain.tokens and ttt.bytes == plain.bytes
