"""Tiny offline dataset in the challenge's format: our own generated text, a small BPE tokenizer, shards.

Why generated text: it is ours (no licence question, nothing downloaded) and it is identical on
every machine and Python version (a seeded `random.Random` over fixed word lists), so shards and
tokenizer hash the same everywhere. The text mixes words, digits (split_digits), punctuation,
newlines and a few rare non-ASCII characters (below the 0.999 character coverage, so they are
encoded with byte-fallback pieces), which exercises every branch of the byte-count LUTs.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

FIXTURE_VERSION = 1
DEFAULT_VOCAB_SIZE = 512
BOS_ID = 1

_NOUNS = (
    "garden river library kettle window lantern market harbour teacher student engine compiler "
    "function variable bridge tower orchard village forest meadow baker painter letter parcel "
    "clock map ledger signal record shelf table number pattern island station train ticket "
    "question answer lesson story recipe journey winter summer morning evening tree stone"
).split()
_ADJS = (
    "quiet bright small large ancient modern careful patient green blue narrow wide simple "
    "strange useful hidden early late gentle heavy light warm cold"
).split()
_VERBS = (
    "reads writes opens closes builds repairs counts carries follows measures paints sorts "
    "finds keeps visits watches prints checks moves tests"
).split()
_NAMES = "Ada Basil Clara Dmitri Elena Farid Greta Hugo Ines Jonas Kaori Lena Mateo Nadia Otto Priya".split()
_PLACES = "Northfield Alder Bay Copperhill Dunmore Eastwick Fernvale Greystone Holloway".split()
_CONNECT = ("and then", "but", "because", "while", "so", "although", "after that")
# Rare characters: far below the 0.1% coverage tail, so they become byte-fallback tokens.
_RARE = ("café", "naïve", "Zürich", "smørrebrød", "東京", "Ωmega", "straße", "jalapeño", "🙂")


def _sentence(rng: random.Random) -> str:
    kind = rng.randrange(6)
    name, noun, noun2 = rng.choice(_NAMES), rng.choice(_NOUNS), rng.choice(_NOUNS)
    adj, verb = rng.choice(_ADJS), rng.choice(_VERBS)
    if kind == 0:
        s = f"{name} {verb} the {adj} {noun} near the {noun2}"
    elif kind == 1:
        s = f"In {rng.choice(_PLACES)}, the {noun} {verb} {rng.randint(2, 999)} {noun2}s every {rng.choice(_NOUNS)}"
    elif kind == 2:
        s = f"The {adj} {noun} {rng.choice(_CONNECT)} the {noun2} {verb} it"
    elif kind == 3:
        s = f"On day {rng.randint(1, 31)} of {rng.randint(1990, 2030)}, {name} counted {rng.randint(10, 99999)} {noun}s"
    elif kind == 4:
        s = f"Why does the {noun} {verb[:-1] if verb.endswith('s') else verb} the {adj} {noun2}"
    else:
        s = f"{name} and {rng.choice(_NAMES)} {verb[:-1]} a {adj} {noun}: {rng.randint(0, 9)}.{rng.randint(0, 99)} percent"
    if rng.random() < 0.004:
        s += f" ({rng.choice(_RARE)})"
    end = "?" if kind == 4 else rng.choice((".", ".", ".", "!", ";"))
    return s + end


def generate_documents(n_docs: int, seed: int) -> list[str]:
    """Deterministic documents of 3-12 sentences, some split into paragraphs."""
    rng = random.Random(seed)
    docs = []
    for _ in range(n_docs):
        parts = []
        for i in range(rng.randint(3, 12)):
            if i and rng.random() < 0.15:
                parts.append("\n")
            elif i:
                parts.append(" ")
            parts.append(_sentence(rng))
        docs.append("".join(parts))
    return docs


@dataclass(frozen=True)
class FixtureData:
    """Where the fixture lives: shards dir (DATA_PATH), tokenizer .model (TOKENIZER_PATH), its vocab."""

    data_path: Path
    tokenizer_path: Path
    vocab_size: int

    def env(self) -> dict[str, str]:
        return {
            "DATA_PATH": str(self.data_path),
            "TOKENIZER_PATH": str(self.tokenizer_path),
            "VOCAB_SIZE": str(self.vocab_size),
        }


@dataclass(frozen=True)
class _Spec:
    vocab_size: int = DEFAULT_VOCAB_SIZE
    train_docs: int = 3000
    val_docs: int = 200
    train_shard_tokens: int = 100_000
    seed: int = 20240520

    def key(self) -> str:
        return json.dumps({"v": FIXTURE_VERSION, **self.__dict__}, sort_keys=True)


def _default_dir() -> Path:
    return Path(__file__).resolve().parents[1] / "fixtures" / "data"


def _train_tokenizer(texts: list[str], model_path: Path, vocab_size: int) -> None:
    """Train in memory (model_writer) so no temp path ends up inside the .model: byte-identical builds."""
    import io

    import sentencepiece as spm

    lines = [line for t in texts for line in t.split("\n") if line]
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=buf,
        model_type="bpe",
        vocab_size=vocab_size,
        character_coverage=0.999,
        byte_fallback=True,
        split_digits=True,
        normalization_rule_name="nmt_nfkc",
        add_dummy_prefix=False,
        pad_id=0,
        bos_id=1,
        eos_id=2,
        unk_id=3,
        hard_vocab_limit=False,
        num_threads=1,
        minloglevel=2,
    )
    model_path.write_bytes(buf.getvalue())


def _encode_docs(sp, docs: list[str]) -> list[int]:
    """Each document as [BOS] + tokens, packed contiguously (no EOS), as the export pipeline does."""
    out: list[int] = []
    for ids in sp.encode(docs):
        out.append(BOS_ID)
        out.extend(ids)
    return out


def _build(out: Path, spec: _Spec) -> None:
    import sentencepiece as spm

    from reference_impl.data import write_data_shard

    out.mkdir(parents=True, exist_ok=True)
    docs = generate_documents(spec.val_docs + spec.train_docs, spec.seed)
    val_docs, train_docs = docs[: spec.val_docs], docs[spec.val_docs :]
    model_path = out / f"fixture_{spec.vocab_size}_bpe.model"
    _train_tokenizer(train_docs, model_path, spec.vocab_size)
    sp = spm.SentencePieceProcessor(model_file=str(model_path))
    write_data_shard(out / "fineweb_val_000000.bin", _encode_docs(sp, val_docs))
    train = _encode_docs(sp, train_docs)
    for i, start in enumerate(range(0, len(train), spec.train_shard_tokens)):
        write_data_shard(out / f"fineweb_train_{i:06d}.bin", train[start : start + spec.train_shard_tokens])
    digest = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())}
    (out / "fixture.json").write_text(json.dumps({"spec": spec.key(), "files": digest}, indent=1))


def _is_complete(out: Path, spec: _Spec) -> bool:
    stamp = out / "fixture.json"
    if not stamp.is_file():
        return False
    try:
        meta = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return False
    if meta.get("spec") != spec.key():
        return False
    return all((out / name).is_file() for name in meta.get("files", {}))


def ensure_fixture_data(out_dir: Path | None = None, vocab_size: int = DEFAULT_VOCAB_SIZE) -> FixtureData:
    """Build the fixture once (a few seconds), then reuse it. Safe when several processes race."""
    spec = _Spec(vocab_size=vocab_size)
    out = Path(out_dir) if out_dir is not None else _default_dir()
    result = FixtureData(out, out / f"fixture_{vocab_size}_bpe.model", vocab_size)
    if _is_complete(out, spec):
        return result
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".fixture-build-", dir=out.parent))
    try:
        _build(tmp, spec)
        if out.exists() and not _is_complete(out, spec):
            shutil.rmtree(out, ignore_errors=True)
        os.chmod(tmp, 0o755)
        try:
            os.rename(tmp, out)
        except OSError:
            if not _is_complete(out, spec):  # lost a race to a broken build: surface it
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return result
