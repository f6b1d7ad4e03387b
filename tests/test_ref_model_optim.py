"""Model and optimizer properties the metric and the auditor rely on: causality, the legal BigramHash,
identity at init, Newton-Schulz orthogonality, the warmdown schedule."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.usefixtures("torch_single_thread")

from reference_impl.hparams import TINY_ENV, Hyperparameters  # noqa: E402
from reference_impl.model import bigram_buckets, build_model  # noqa: E402
from reference_impl.optim import (  # noqa: E402
    build_optimizers,
    lr_multiplier,
    muon_momentum_at,
    split_params,
    zeropower_via_newtonschulz5,
)


def _model(**kw):
    torch.manual_seed(0)
    hp = Hyperparameters(vocab_size=64, num_layers=3, model_dim=32, num_heads=4, num_kv_heads=2, **kw)
    m = build_model(hp)
    with torch.no_grad():
        for p in m.parameters():
            if p.ndim == 2:
                p.normal_(0, 0.3)
    return m, hp


@pytest.mark.parametrize("bigram", [0, 31])
def test_logits_are_causal(bigram):
    m, _ = _model(bigram_vocab_size=bigram, bigram_dim=8)
    x = torch.randint(0, 64, (2, 12))
    y = x.clone()
    y[:, 7] = (y[:, 7] + 5) % 64  # change the token at position 7
    a, b = m.forward_logits(x), m.forward_logits(y)
    assert torch.allclose(a[:, :7], b[:, :7], atol=1e-6)  # earlier predictions cannot see it
    assert not torch.allclose(a[:, 7:], b[:, 7:], atol=1e-4)


def test_bigram_buckets_key_on_previous_and_current_input():
    t = torch.tensor([[5, 9, 9, 1023]])
    b = bigram_buckets(t, 2048)
    assert b[0, 0] == 2047  # no previous token
    assert b[0, 1] == ((36313 * 9) ^ (27191 * 5)) % 2047
    assert b[0, 3] == ((36313 * 1023) ^ (27191 * 9)) % 2047


def test_zero_init_blocks_are_identity_and_loss_is_near_uniform():
    hp = Hyperparameters(vocab_size=64, num_layers=2, model_dim=32, num_heads=4, num_kv_heads=2)
    torch.manual_seed(0)
    m = build_model(hp)
    x, y = torch.randint(0, 64, (2, 8)), torch.randint(0, 64, (2, 8))
    with torch.no_grad():
        # identity blocks (+ U-Net skip of the same x): the normed embedding, up to the norm eps
        assert torch.allclose(m.hidden(x), torch.nn.functional.rms_norm(m.tok_emb(x), (32,)), rtol=1e-2, atol=1e-2)
        # tied embedding N(0, 0.005): logits are tiny, so the loss is ~ln(V)
        assert float(m(x, y)) == pytest.approx(float(torch.log(torch.tensor(64.0))), abs=0.05)
        assert float(m.token_nll(x, y).mean()) == pytest.approx(float(m(x, y)), abs=1e-6)


def test_param_split_matches_baseline():
    m, hp = _model()
    g = split_params(m, hp.control_patterns)
    ids = {k: {id(p) for p in v} for k, v in g.items()}
    for name, p in m.blocks.named_parameters():  # resid_mix is 2-D but a control tensor: Adam, not Muon
        expect = "matrix" if p.ndim == 2 and "resid_mix" not in name else "scalar"
        assert id(p) in ids[expect], name
    assert id(m.tok_emb.weight) in ids["embed"] and id(m.skip_weights) in ids["scalar"]
    total = sum(p.numel() for grp in g.values() for p in grp)
    assert total == sum(p.numel() for p in m.parameters())


def test_newton_schulz_is_nearly_orthogonal():
    g = torch.randn(32, 48)
    x = zeropower_via_newtonschulz5(g, steps=5)
    s = torch.linalg.svdvals(x)
    assert x.shape == g.shape and float(s.min()) > 0.5 and float(s.max()) < 1.3


def test_optimizers_reduce_training_loss():
    m, hp = _model()
    opts, _ = build_optimizers(m, hp)
    x = torch.randint(0, 64, (4, 16))
    first = None
    for _ in range(15):
        loss = m(x[:, :-1], x[:, 1:])
        first = first if first is not None else float(loss.detach())
        loss.backward()
        for o in opts:
            o.step()
            o.zero_grad()
    assert float(m(x[:, :-1], x[:, 1:]).detach()) < 0.7 * first


def test_schedules():
    hp = Hyperparameters(iterations=100, warmdown_iters=20, max_wallclock_seconds=0.0, muon_momentum_warmup_steps=10)
    assert lr_multiplier(0, 0.0, hp) == 1.0 and lr_multiplier(79, 0.0, hp) == 1.0
    assert lr_multiplier(90, 0.0, hp) == pytest.approx(0.5)
    capped = Hyperparameters(warmdown_iters=10, max_wallclock_seconds=1.0)
    assert lr_multiplier(10, 500.0, capped) == 1.0  # 50 ms/step -> warmdown spans the last 500 ms
    assert lr_multiplier(15, 750.0, capped) == pytest.approx(0.5)
    assert muon_momentum_at(0, hp) == pytest.approx(0.85) and muon_momentum_at(10, hp) == pytest.approx(0.95)


def test_tiny_env_is_a_valid_config(monkeypatch):
    for k, v in TINY_ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("TIE_EMBEDDINGS", "0")
    hp = Hyperparameters.from_env()
    assert hp.num_layers == 2 and hp.model_dim == 160 and hp.max_wallclock_seconds == 600.0
    assert hp.tie_embeddings is False and hp.run_id  # bool(int(x)) parsing; uuid when RUN_ID unset
    assert hp.val_files.endswith("fineweb_val_*.bin")
    m = build_model(hp)
    assert m.tok_emb.weight.numel() > 65_536  # the int8 path is exercised, not only passthrough


def test_cuda_compile_path_traces_without_graph_breaks():
    """train.py compiles the model with fullgraph=True on CUDA; dynamo tracing (eager backend) checks it here."""
    m, _ = _model(bigram_vocab_size=31, bigram_dim=8)
    compiled = torch.compile(m, dynamic=False, fullgraph=True, backend="eager")
    x = torch.randint(0, 64, (2, 16))
    loss = compiled(x[:, :-1], x[:, 1:])
    loss.backward()
    assert torch.allclose(loss.detach(), m(x[:, :-1], x[:, 1:]).detach(), atol=1e-6)
    ns = torch.compile(zeropower_via_newtonschulz5, fullgraph=True, backend="eager")
    g = torch.randn(8, 12)
    assert torch.allclose(ns(g, steps=5), zeropower_via_newtonschulz5(g, steps=5), atol=1e-6)
