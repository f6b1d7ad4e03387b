"""Evaluation-legality analyses (targets, n-gram caches, gates) and their rules, beyond the inline examples.

The inline VALID/INVALID examples run in test_rule_examples.py; here we check the evidence chain,
aliasing, the shapes that must stay silent, and that bad input never raises.
"""

from __future__ import annotations

import textwrap

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.analysis.ngram import ngram_facts
from audit.analysis.targets import target_flow
from audit.context import AuditContext
from audit.engine import audit_submission
from audit.findings import Severity
from audit.registry import rule_by_id
from audit.submission import Submission
from rules import _static_eval_examples as ex

STATIC_EVAL_IDS = ("R-NGRAM-CACHE", "R-EVAL-C2-NORMALIZED", "R-PPM-BYTE-MIXTURE", "R-BOS-BOUNDARY",
                   "R-ARTIFACT-SELF-CONTAINED", "R-SUB-FILES.code-parses")


def _ctx(files: dict[str, str | bytes]) -> AuditContext:
    files = {k: (textwrap.dedent(v).lstrip("\n") if isinstance(v, str) else v) for k, v in files.items()}
    return AuditContext(Submission.from_files(files))


def _audit(files: dict[str, str | bytes]):
    files = {k: (textwrap.dedent(v).lstrip("\n") if isinstance(v, str) else v) for k, v in files.items()}
    rules = [rule_by_id(i) for i in STATIC_EVAL_IDS]
    return audit_submission(Submission.from_files(files), rules=rules, kinds=("static",))


def _loud(report, prefix: str = "") -> list[tuple[str, int | None]]:
    return [(f.rule_id, f.line) for f in report.findings
            if f.severity != Severity.INFO and f.rule_id.startswith(prefix or "R-")]


# -- targets ---------------------------------------------------------------------------------

def test_shift_pair_marks_the_tail_as_target_and_not_the_input():
    ctx = _ctx({"train_gpt.py": """
        def run(buf, model):
            x = buf[:-1].reshape(1, -1)
            y = buf[1:].reshape(1, -1)
            return model(x, y)
    """})
    flow = target_flow(ctx)
    fn = next(f for f in flow.functions if f.name == "run")
    assert flow.is_target(fn, "y")
    assert not flow.is_target(fn, "x")


def test_a_window_shifted_in_place_is_not_the_next_token():
    """`window[j] = window[j + 1]` moves context within one buffer; `nxt = toks[i + 1]` is the target."""
    ctx = _ctx({"train_gpt.py": """
        def score(toks, bytes_in, window, order, counts):
            total = 0.0
            for i in range(len(toks) - 1):
                for j in range(order - 1):
                    window[j] = window[j + 1]
                window[order - 1] = bytes_in[i]
                key = hash(tuple(window)) & 4095
                nxt = toks[i + 1]
                total += counts[key][nxt]
            return total
    """})
    flow = target_flow(ctx)
    fn = next(f for f in flow.functions if f.name == "score")
    assert flow.is_target(fn, "nxt")
    assert not flow.is_target(fn, "window")


def test_prev_cur_slices_combined_in_a_hash_are_inputs_not_targets():
    ctx = _ctx({"train_gpt.py": """
        def bigram(ids, table):
            prev = ids[:, :-1]
            cur = ids[:, 1:]
            key = ((cur * 36313) ^ (prev * 27191)) % 4095
            return table[key]
    """})
    flow = target_flow(ctx)
    fn = next(f for f in flow.functions if f.name == "bigram")
    assert not flow.is_target(fn, "cur")


@pytest.mark.parametrize("name,is_target", [
    ("targets", True), ("tgt_np", True), ("seg_targets_np", True), ("target_ids", True),
    ("target_pos", False), ("target_mask", False), ("y_len", False), ("tgt_idx", False), ("targets_nll", False),
])
def test_names_that_describe_targets_are_not_target_ids(name, is_target):
    ctx = _ctx({"train_gpt.py": f"""
        def f(toks, {name}):
            return toks[{name}]
    """})
    flow = target_flow(ctx)
    fn = next(f for f in flow.functions if f.name == "f")
    assert flow.is_target(fn, name) is is_target


def test_tuple_elements_keep_their_own_taint_through_lists_zip_and_enumerate():
    ctx = _ctx({"train_gpt.py": """
        def run(buf, starts):
            x = buf[:-1]
            y = buf[1:]
            segs = [] if starts else None
            for s in starts:
                segs.append((s, y[s:s + 4], x[s:s + 4]))
            for pos, nxt, inp in segs:
                use(pos, nxt, inp)
            for i, (pos2, nxt2, _) in enumerate(segs):
                use(i, pos2, nxt2)
            for a, b in zip(starts, y):
                use(a, b)
            c, d = starts, y
            return c, d
    """})
    flow = target_flow(ctx)
    fn = next(f for f in flow.functions if f.name == "run")
    assert flow.is_target(fn, "nxt") and flow.is_target(fn, "nxt2") and flow.is_target(fn, "b")
    assert flow.is_target(fn, "d")
    for name in ("pos", "inp", "pos2", "i", "a", "c"):
        assert not flow.is_target(fn, name), name


def test_unknown_tuple_shapes_still_carry_the_taint():
    ctx = _ctx({"train_gpt.py": """
        def run(buf, rows):
            y = buf[1:]
            x = buf[:-1]
            rows = load(rows)
            rows.append((x, y))
            for p, q in rows:
                use(p, q)
    """})
    flow = target_flow(ctx)
    fn = next(f for f in flow.functions if f.name == "run")
    assert flow.is_target(fn, "q") and flow.is_target(fn, "p")


def test_counts_read_at_a_target_key_do_not_make_later_context_keys_targets():
    ctx = _ctx({"train_gpt.py": """
        def backoff(toks, pos, tgt, ctx_t, full_t):
            matched = pos < 0
            for n in (3, 2):
                elig = pos[~matched]
                ctx_key = (toks[elig - 1] * 31 ^ toks[elig - 2]) % 4096
                full_key = (ctx_key ^ (tgt[~matched] * 7)) % 4096
                found = full_t[full_key] > 0
                matched = matched | found
            return ctx_t[ctx_key]
    """})
    flow = target_flow(ctx)
    fn = next(f for f in flow.functions if f.name == "backoff")
    assert flow.is_target(fn, "full_key")
    assert not flow.is_target(fn, "found") and not flow.is_target(fn, "ctx_key")


def test_target_crosses_calls_by_position_and_keyword():
    ctx = _ctx({"train_gpt.py": """
        def inner(a, b, *, gold):
            return gold

        def outer(chunk):
            inp = chunk[:-1]
            nxt = chunk[1:]
            inner(inp, nxt, gold=nxt)
    """})
    flow = target_flow(ctx)
    inner = next(f for f in flow.functions if f.name == "inner")
    assert flow.is_target(inner, "b") and flow.is_target(inner, "gold")
    assert not flow.is_target(inner, "a")


# -- the n-gram cache evidence chain -----------------------------------------------------------

def test_target_key_lookup_has_a_full_evidence_chain_in_order():
    report = _audit({"train_gpt.py": ex.TARGET_KEY_CACHE})
    [finding] = [f for f in report.findings if f.rule_id == "R-NGRAM-CACHE"]
    lines = [e.line for e in finding.evidence]
    want = [ex.line_of(ex.TARGET_KEY_CACHE, s) for s in (
        "y = chunk[1:]", "full_key = ((ctx_hash ^", "full_c = full_table[full_key]", "nll = -np.log(")]
    assert lines == want, [str(e) for e in finding.evidence]
    assert "shifted by one" in finding.evidence[0].label


def test_aliased_helper_chain_reaches_the_parameter():
    report = _audit({"train_gpt.py": ex.TARGET_KEY_HELPER})
    [finding] = [f for f in report.findings if f.rule_id == "R-NGRAM-CACHE"]
    labels = " | ".join(e.label for e in finding.evidence)
    assert "predicted token" in labels and "passed as `nxt`" in labels and "realized" in labels


def test_update_with_the_target_after_scoring_is_not_a_lookup():
    report = _audit({"train_gpt.py": """
        import numpy as np

        def add_counts(table, ctx_hash, y):
            key = ((ctx_hash ^ (y * 51647)) & 1023).astype(np.int64)
            np.add.at(table, key, 1)
            table[key] += 1
            table[key] = table[key] + 1
    """})
    assert not _loud(report)


def test_hash_of_target_into_an_embedding_is_not_a_cache_lookup():
    # A learned table is not a count table: a (weird) target-keyed embedding is a different question.
    report = _audit({"train_gpt.py": """
        import torch

        class Head(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.emb = torch.nn.Embedding(4096, 8)

            def forward(self, x, y):
                h = ((x * 36313) ^ (y * 27191)) % 4095
                return self.emb(h).sum()
    """})
    assert not _loud(report, "R-NGRAM")


_KEYED_ROW = """
    import torch
    import torch.nn.functional as F

    class Scorer(torch.nn.Module):
        def __init__(self, vocab):
            super().__init__()
            self.shift = torch.nn.Embedding(1024, vocab)

        def forward(self, logits, here, after):
            slot = ((here * 36313) ^ (KEYED * 27191)) % 1023
            return F.cross_entropy(logits + self.shift(slot), after, reduction="none")
"""


def test_target_keyed_embedding_row_in_the_scored_logits_is_a_lookup():
    # the row is added to the logits of the cross-entropy that scores `after`: C1 however it is normalised
    report = _audit({"train_gpt.py": _KEYED_ROW.replace("KEYED", "after")})
    assert ("R-NGRAM-CACHE", 11) in _loud(report, "R-NGRAM"), _loud(report)
    assert not _loud(report, "R-EVAL-C2")  # a normalised distribution: not a count ratio


def test_input_keyed_embedding_row_in_the_scored_logits_is_legal():
    report = _audit({"train_gpt.py": _KEYED_ROW.replace("KEYED", "torch.roll(here, 1)")})
    assert not _loud(report, "R-NGRAM")


def test_logsumexp_mixture_is_not_an_oracle_gate():
    report = _audit({"train_gpt.py": """
        import math
        import torch.nn.functional as F

        def score(logits, y, ng_logp, lam):
            nll = F.cross_entropy(logits, y, reduction="none")
            a = math.log(1 - lam) - nll
            b = math.log(lam) + ng_logp(y)
            mixed = max(a, b) + math.log1p(math.exp(-abs(a - b)))
            return -mixed
    """})
    assert not _loud(report, "R-NGRAM")


def test_keeping_the_better_nll_per_token_is_an_oracle_gate():
    report = _audit({"train_gpt.py": """
        import torch.nn.functional as F

        def score(logits, y, cache_logp, scored):
            nll = F.cross_entropy(logits, y, reduction="none")
            alt = -cache_logp(y)
            for t in range(len(y)):
                if alt[t] < nll[t]:
                    scored[t] = alt[t]
            return scored
    """})
    assert ("R-NGRAM-CACHE.oracle-gate", 7) in _loud(report)


def test_facts_are_memoised_per_submission():
    ctx = _ctx({"train_gpt.py": ex.TARGET_KEY_CACHE})
    assert ngram_facts(ctx) is ngram_facts(ctx)
    assert target_flow(ctx) is target_flow(ctx)


# -- decoded wrappers ------------------------------------------------------------------------

def test_self_extracting_wrapper_is_analysed_as_its_decoded_program():
    import base64
    import lzma

    payload = base64.b85encode(lzma.compress(textwrap.dedent(ex.TARGET_KEY_CACHE).lstrip("\n").encode()))
    wrapper = f'import lzma as L,base64 as B\nexec(L.decompress(B.b85decode("{payload.decode()}")))\n'
    report = _audit({"train_gpt.py": wrapper})
    hits = [f for f in report.findings if f.rule_id == "R-NGRAM-CACHE"]
    assert hits and hits[0].line == ex.line_of(ex.TARGET_KEY_CACHE, "full_c = full_table[full_key]")


# -- bad input never raises ------------------------------------------------------------------

@pytest.mark.parametrize("content", [
    "def f(:\n",
    'print "py2"\n',
    b"import os\x00\n",
    b"\xff\xfe\x00garbage not utf8 \x80\x81\n",
    "x = (" * 300 + ")" * 300 + "\n",
    "",
])
def test_broken_code_gives_findings_not_tracebacks(content):
    report = _audit({"train_gpt.py": content, "helper.py": ex.TARGET_KEY_CACHE})
    assert not report.errors, report.errors
    # the helper is still analysed although train_gpt.py is broken
    assert any(f.rule_id == "R-NGRAM-CACHE" and f.path == "helper.py" for f in report.findings)


def test_huge_script_is_reported_not_analysed():
    big = "x = '" + "a" * 4_500_000 + "'\n"  # 4.5 MB: cheap to parse, too large to analyse
    report = _audit({"train_gpt.py": big})
    assert not report.errors
    assert any(f.rule_id == "R-SUB-FILES.code-parses" and f.severity == Severity.ERROR for f in report.findings)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(ex.TARGET_KEY_CACHE.splitlines() + ex.BIGRAM_EMBEDDING.splitlines()
                                + ["    ", "def", ":", "(", "\x00", "'''"]), max_size=60))
def test_random_line_soup_never_raises(lines):
    report = _audit({"train_gpt.py": "\n".join(lines)})
    assert not report.errors, report.errors


def test_script_too_large_to_read_is_an_error_of_the_main_script(tmp_path):
    (tmp_path / "train_gpt.py").write_bytes(b"#" * (9 * 1024 * 1024))
    (tmp_path / "ngram_helper.py").write_text(textwrap.dedent(ex.TARGET_KEY_CACHE).lstrip("\n"))
    rules = [rule_by_id(i) for i in STATIC_EVAL_IDS]
    report = audit_submission(Submission.load(tmp_path), rules=rules, kinds=("static",))
    assert not report.errors
    assert any(f.rule_id == "R-SUB-FILES.code-parses" and f.path == "train_gpt.py"
               and f.severity == Severity.ERROR for f in report.findings)
    assert any(f.rule_id == "R-NGRAM-CACHE" for f in report.findings)  # the rest still ran


def test_unmasked_smear_is_dated_by_when_the_folder_was_merged():
    """R-BOS-BOUNDARY is a ruling: an error, except for folders merged before it (a warning);
    the date is the folder's landing date or --as-of (audit/enforcement.py), not its own claim."""
    from audit.context import Options
    from rules.bos_boundary import _SMEAR

    files = {"train_gpt.py": textwrap.dedent(_SMEAR).lstrip("\n"),
             "submission.json": '{"date": "2026-03-20", "val_bpb": 1.2}'}
    severities = {}
    for as_of in ("2026-03-20", "2026-05-01"):
        report = audit_submission(Submission.from_files(files), Options(as_of=as_of),
                                  rules=[rule_by_id("R-BOS-BOUNDARY")], kinds=("static",))
        severities[as_of] = {f.severity for f in report.findings if f.rule_id == "R-BOS-BOUNDARY"}
    assert severities == {"2026-03-20": {Severity.WARNING}, "2026-05-01": {Severity.ERROR}}


@pytest.mark.parametrize("read", ["full_counts.gather(0, key)", "torch.gather(full_counts, 0, key)",
                                  "full_counts.index_select(0, key)", "np.take(full_counts, key)"])
def test_method_and_function_reads_of_a_count_table_are_lookups(read):
    report = _audit({"train_gpt.py": f"""
        import numpy as np
        import torch

        def score(full_counts, ctx_hash, chunk, p_model):
            inp = chunk[:-1]
            y = chunk[1:]
            key = (ctx_hash ^ (y * 51647)) % 4096
            p = {read} / 10.0
            nll = -torch.log(0.5 * p_model + 0.5 * p)
            full_counts.index_add_(0, key, torch.ones_like(key))
            return nll, inp
    """})
    assert ("R-NGRAM-CACHE", 8) in _loud(report)


def test_leading_byte_order_mark_is_valid_python():
    report = _audit({"train_gpt.py": "\ufeff" + textwrap.dedent(ex.TARGET_KEY_CACHE).lstrip("\n")})
    assert not [f for f in report.findings if f.rule_id == "R-SUB-FILES.code-parses"]
    assert any(f.rule_id == "R-NGRAM-CACHE" for f in report.findings)


# -- cache update order (R-EVAL-C3 for caches) ---------------------------------------------------

def _c3(code: str) -> list[tuple[str, int | None, Severity]]:
    files = {"train_gpt.py": textwrap.dedent(code).lstrip("\n")}
    report = audit_submission(Submission.from_files(files), rules=[rule_by_id("R-EVAL-C3-SCORE-BEFORE-UPDATE.cache")],
                              kinds=("static",))
    return [(f.rule_id, f.line, f.severity) for f in report.findings]


_C3_TABLE = """
    import numpy as np
    def score_all(toks, L, probs):
        rows = np.zeros((4096, 1024))
        loss = 0.0
        {body}
        return loss
"""


def test_update_then_score_in_a_while_loop_is_an_error():
    found = _c3(_C3_TABLE.format(body="""pos = 2
        while pos < len(toks):
            key = (toks[pos - 1:pos + L - 1] * 31 ^ toks[pos - 2:pos + L - 2]) % 4096
            np.add.at(rows, (key, toks[pos:pos + L]), 1)
            p = rows[key] / rows[key].sum(axis=1, keepdims=True)
            loss += -np.log(p[np.arange(L), toks[pos:pos + L]]).sum()
            pos += L"""))
    assert [(f[1], f[2]) for f in found] == [(9, Severity.ERROR)]


def test_update_in_the_other_arm_of_an_if_is_not_ordered_before_the_score():
    found = _c3(_C3_TABLE.format(body="""for pos in range(2, len(toks), L):
            key = (toks[pos - 1:pos + L - 1] * 31 ^ toks[pos - 2:pos + L - 2]) % 4096
            if pos % 2:
                np.add.at(rows, (key, toks[pos:pos + L]), 1)
            else:
                p = rows[key] / rows[key].sum(axis=1, keepdims=True)
                loss += -np.log(p[np.arange(L), toks[pos:pos + L]]).sum()"""))
    assert found == []


def test_prefill_loop_before_the_scoring_loop_is_not_this_check():
    found = _c3(_C3_TABLE.format(body="""for pos in range(2, 100, L):
            key = (toks[pos - 1:pos + L - 1] * 31 ^ toks[pos - 2:pos + L - 2]) % 4096
            np.add.at(rows, (key, toks[pos:pos + L]), 1)
        for pos in range(100, len(toks), L):
            key = (toks[pos - 1:pos + L - 1] * 31 ^ toks[pos - 2:pos + L - 2]) % 4096
            p = rows[key] / rows[key].sum(axis=1, keepdims=True)
            loss += -np.log(p[np.arange(L), toks[pos:pos + L]]).sum()"""))
    assert found == []


def test_per_position_statistics_indexed_by_counters_are_not_caches():
    found = _c3(_C3_TABLE.format(body="""hits = np.zeros(8)
        for pos in range(2, len(toks), L):
            for n in range(8):
                hits[n] += 1
            loss += -np.log(probs[pos] * hits[n] / hits.sum())"""))
    assert found == []


def test_update_whose_arguments_include_more_than_the_chunk_is_a_warning():
    found = _c3("""
        import numpy as np
        class Cache:
            def __init__(self):
                self.rows = np.zeros((4096, 1024))
            def key(self, toks, s, e):
                return (toks[s - 1:e - 1] * 31 ^ toks[s - 2:e - 2]) % 4096
            def add(self, toks, s, e, extra):
                np.add.at(self.rows, (self.key(toks, s, e + extra), toks[s:e]), 1)
            def dist(self, toks, s, e):
                r = self.rows[self.key(toks, s, e)]
                return r / r.sum(axis=1, keepdims=True)
        def score_all(toks, L, cache, extra_list):
            loss = 0.0
            for s in range(2, len(toks), L):
                extra = extra_list[s]
                cache.add(toks, s, s + L, extra)
                p = cache.dist(toks, s, s + L)
                loss += -np.log(p[np.arange(L), toks[s:s + L]]).sum()
            return loss
    """)
    assert [(f[1], f[2]) for f in found] == [(17, Severity.WARNING)]
