"""Shared pytest fixtures: the offline fixture dataset and the bundled reference submission.

Both are built once per session (the dataset is also cached on disk in fixtures/data/).
Tests that use them need torch + sentencepiece and skip cleanly without them.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def fixture_data():
    """reference_impl.fixture_data.FixtureData: .data_path, .tokenizer_path, .vocab_size, .env()."""
    pytest.importorskip("torch")
    pytest.importorskip("sentencepiece")
    from reference_impl.fixture_data import ensure_fixture_data

    return ensure_fixture_data()


@pytest.fixture(scope="session")
def tiny_env(fixture_data) -> dict[str, str]:
    """Env for a seconds-long 2-process CPU run of the reference on the fixture data (add SEED, RUN_ID)."""
    from reference_impl.hparams import TINY_ENV

    return {**TINY_ENV, **fixture_data.env()}


@pytest.fixture(scope="session")
def reference_submission(tmp_path_factory) -> Path:
    """A fresh bundled reference submission folder (train_gpt.py, README.md, submission.json)."""
    pytest.importorskip("torch")
    from reference_impl.bundle import write_submission

    return write_submission(tmp_path_factory.mktemp("reference_submission"))


@pytest.fixture
def torch_single_thread():
    """Run a torch test on one intra-op thread: on a shared 2-core box, 2 threads are ~5x slower."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _fixed_terminal(monkeypatch):
    """Terminal output off a tty is COLUMNS wide: fix it, so no test depends on the shell or runner."""
    monkeypatch.setenv("COLUMNS", "120")
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)
