"""The static legality rules on the mutation test-bed (fixtures/mutants), every shape, no probe.

Each illegal behaviour must be reported by its own rule family in all seven shapes (renamed,
helper, method, closure, functools.partial, second module), and no legal evaluator may get an
error or a warning from these rules: the static reading follows provenance, not names.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from audit.commands.batch import Job, audit_folder
from audit.commands.check import select_rules
from audit.context import Options

MUTANTS = Path(__file__).resolve().parents[1] / "fixtures" / "mutants"
# The rules about evaluation legality (the mutants ship no logs, so meta rules are left out).
LEGALITY = ("R-TTT", "R-EVAL-C", "R-NGRAM", "R-SLOT", "R-GPTQ", "R-PPM", "R-DATA-NO-VAL", "R-METRIC-BPB", "R-BOS")
# behaviour -> rule-ID prefixes that name its violation
FAMILY = {
    "gptq_on_val": ("R-GPTQ-CALIB",),
    "multi_epoch_ttt": ("R-TTT-SCORE-FIRST",),
    "ngram_update_first": ("R-EVAL-C3-SCORE-BEFORE-UPDATE",),
    "prequant_ttt": ("R-TTT-PREQUANT",),
    "rescore_after_ttt": ("R-TTT-PREQUANT", "R-TTT-NO-RESCORE"),
    "score_after_update": ("R-TTT-SCORE-FIRST",),
    "slot": ("R-SLOT",),
    "target_gated_expert": ("R-NGRAM-CACHE.oracle-gate", "R-EVAL-C1"),
    "target_keyed_hash": ("R-NGRAM-CACHE", "R-EVAL-C1"),
    "unnormalised_ratio": ("R-EVAL-C2",),
}
EXPECTED = json.loads((MUTANTS / "expected.json").read_text())


def _loud(folder: Path) -> list[tuple[str, str]]:
    job = Job(tuple(select_rules(list(LEGALITY), [])), Options(), LEGALITY, ())
    report = audit_folder(folder, job).report
    assert not report.errors, report.errors
    return [(f.rule_id, f.severity.value) for f in report.findings if f.severity.value in ("error", "warning")]


@pytest.mark.parametrize("name", sorted(n for n, e in EXPECTED.items() if not e["legal"]))
def test_illegal_mutant_is_reported_by_its_rule(name):
    behaviour = EXPECTED[name]["behaviour"]
    loud = _loud(MUTANTS / name)
    family = FAMILY[behaviour]
    hits = [r for r, _ in loud if r.startswith(family)]
    assert hits, f"{name}: expected a finding from {family}, got {loud}"
    if behaviour != "slot":  # R-SLOT is a warning (no maintainer ruling); every other one is an error
        assert any(r.startswith(family) and sev == "error" for r, sev in loud), loud


@pytest.mark.parametrize("name", sorted(n for n, e in EXPECTED.items() if e["legal"] and e["bytes_ok"]))
def test_legal_mutant_is_clean(name):
    assert _loud(MUTANTS / name) == []


# Second-order shapes: a committed mutant with one more rewrite that a name- or spelling-keyed
# reading would miss (or, for the legal ones, would wrongly flag). (name, mutant, edits, family)
# with family None for a legal evaluator.
_GRID = "class Bigrams:\n    def __init__(self, v):\n        self.table = torch.zeros(v, v)\n\n" \
        "    def observe(self, a, b):\n        self.table[a, b] += 1\n\n    def row(self, a):\n        return self.table[a]\n\n\n"
_AS_METHOD = [("    counts = torch.zeros(logp.size(-1), logp.size(-1))\n", "    cache = Bigrams(logp.size(-1))\n"),
              ("        counts[prev, tgt] += 1\n", "        cache.observe(prev, tgt)\n"),
              ("args.ngram_beta * counts[prev]", "args.ngram_beta * cache.row(prev)"),
              ("def eval_val(", _GRID + "def eval_val(")]
_AS_CLOSURE = [("    nll = []\n    for i in range(logp.size(0)):",
                "    nll = []\n\n    def bump(a, b):\n        counts[a, b] += 1\n\n    for i in range(logp.size(0)):"),
               ("        counts[prev, tgt] += 1\n", "        bump(prev, tgt)\n")]
_PLAIN_PAIR = [("prev, tgt = int(val_tokens[i]), int(val_tokens[i + 1])", "a, b = int(val_tokens[i]), int(val_tokens[i + 1])"),
               ("counts[prev, tgt] += 1", "counts[a, b] += 1"), ("counts[prev]", "counts[a]"), ("-row[tgt]", "-row[b]")]
SECOND_ORDER = [
    ("update_via_method", "ngram_update_first__base", _AS_METHOD, ("R-EVAL-C3-SCORE-BEFORE-UPDATE",)),
    ("tilt_via_method", "ngram_tilt__base", _AS_METHOD, None),
    ("update_via_closure", "ngram_update_first__base", _AS_CLOSURE, ("R-EVAL-C3-SCORE-BEFORE-UPDATE",)),
    ("tilt_via_closure", "ngram_tilt__base", _AS_CLOSURE, None),
    ("update_plain_names", "ngram_update_first__base", _PLAIN_PAIR, ("R-EVAL-C3-SCORE-BEFORE-UPDATE",)),
    ("tilt_plain_names", "ngram_tilt__base", _PLAIN_PAIR, None),
    ("hash_scored_by_gather", "target_keyed_hash__base",
     [("tgt", "cur"), ('nll = F.cross_entropy(logits + table[key], cur, reduction="none")',
                       'nll = -(logits + table[key]).log_softmax(-1).gather(-1, cur[:, None])[:, 0]')],
     ("R-NGRAM-CACHE",)),
    ("hash_embedding_module", "target_keyed_hash__method",
     [("    table = 2.0 * torch.randn(args.ngram_buckets, logits.size(-1), generator=gen)\n",
       "    bias = nn.Embedding(args.ngram_buckets, logits.size(-1))\n"), ("logits + table[key]", "logits + bias(key)")],
     ("R-NGRAM-CACHE",)),
    ("gate_blended", "target_gated_expert__base",
     [("    nll = torch.where(gate, flat, sharp)\n", "    w = gate.float()\n    nll = w * flat + (1 - w) * sharp\n")],
     ("R-NGRAM-CACHE.oracle-gate",)),
    ("gate_masked_overwrite", "target_gated_expert__names",
     [("    gate = flat < sharp\n", "    gate = torch.lt(flat, sharp)\n"),
      ("    costs = torch.where(gate, flat, sharp)\n", "    costs = sharp.clone()\n    costs[gate] = flat[gate]\n")],
     ("R-NGRAM-CACHE.oracle-gate",)),
    ("epochs_plain_counter", "multi_epoch_ttt__helper",
     [("    for epoch in range(args.ttt_epochs):\n", "    k = 0\n    while k < 3:\n        k += 1\n")],
     ("R-TTT-SCORE-FIRST",)),
    ("gptq_quantiser_in_a_method", "gptq_on_val__names",
     [("    compress_weights(model, stats, args.quant_bits)\n", "    Packer(args.quant_bits).run(model, stats)\n"),
      ("def assess_heldout(", "class Packer:\n    def __init__(self, bits):\n        self.bits = bits\n\n"
       "    def run(self, model, stats):\n        compress_weights(model, stats, self.bits)\n\n\ndef assess_heldout(")],
     ("R-GPTQ-CALIB",)),
    ("gptq_on_training_tokens", "gptq_on_val__names",
     [("    stats = gather_stats(model, heldout_ids)\n",
       "    calib = load_data_shard(os.path.join(args.data_path, 'fineweb_train_000000.bin'))[:4096]\n"
       "    stats = gather_stats(model, calib)\n")], None),
]


@pytest.mark.parametrize("name,mutant,edits,family", SECOND_ORDER, ids=[s[0] for s in SECOND_ORDER])
def test_second_order_shape(tmp_path, name, mutant, edits, family):
    folder = tmp_path / name
    shutil.copytree(MUTANTS / mutant, folder)
    script = folder / "train_gpt.py"
    text = script.read_text()
    for old, new in edits:
        assert old in text, f"{mutant} no longer contains {old!r}: update this case"
        text = text.replace(old, new)
    script.write_text(text)
    loud = _loud(folder)
    if family is None:
        assert loud == [], f"{name}: legal, got {loud}"
    else:
        assert any(r.startswith(family) and sev == "error" for r, sev in loud), f"{name}: expected {family}, got {loud}"
