"""The significance tests reproduce the p-values maintainers quoted (RULES.md R-REC-PROGRESSION).

Per-seed final val_bpb below are data read from the submissions' own logs / submission.json in
openai/parameter-golf (PR heads), kept here as numbers only.
"""

from __future__ import annotations

import math

import pytest

from audit import stats
from audit.stats import RunSet, Summary, welch_one_sided, welch_one_sided_from_stats

# PR #2135 and PR #2014 (final leaderboard rows, RULES.md §G).
PR2135 = [1.05662016, 1.05610947, 1.05679341]
PR2014 = [1.05740567, 1.05730104, 1.05807084]
# PR #1529 (legal_ttt_exact of train_seed{1337,2024,42}.log) and PR #1514 (seeds 0, 42, 1234).
PR1529 = [1.07506048, 1.07645101, 1.07585093]
PR1514 = [1.07928348, 1.07996676, 1.08024795]
# PR #1855 pooled with an independent 3-seed reproduction (summary only), vs #1868's re-run.
PR1855_POOLED = Summary(mean=1.060755, sd=0.000933, n=6)
PR1868 = [1.06083288, 1.06090748, 1.06248776]


def test_pr2135_vs_pr2014_reproduces_p_0014():
    res = welch_one_sided(PR2135, PR2014)
    assert res.p == pytest.approx(0.0138, abs=5e-5)
    assert res.t < 0 and res.n_new == 3 and res.n_ref == 3


def test_pr1529_vs_pr1514_reproduces_p_0001():
    res = welch_one_sided(PR1529, PR1514)
    assert res.p == pytest.approx(0.0009, abs=5e-5)
    assert round(res.p, 3) == 0.001


def test_pr1855_pooled_vs_pr1868_from_summary_reproduces_p_0188():
    res = welch_one_sided_from_stats(PR1855_POOLED, Summary.of(PR1868))
    assert res.p == pytest.approx(0.1884, abs=5e-5)


def test_matches_scipy_welch():
    from scipy import stats as sps

    ours = welch_one_sided(PR2135, PR2014)
    theirs = sps.ttest_ind(PR2135, PR2014, equal_var=False, alternative="less")
    assert ours.t == pytest.approx(float(theirs.statistic))
    assert ours.p == pytest.approx(float(theirs.pvalue))
    assert ours.df == pytest.approx(float(theirs.df))


def test_margin_makes_the_test_harder():
    plain = welch_one_sided(PR1529, PR1514)
    margin = welch_one_sided(PR1529, PR1514, margin=0.005)
    assert margin.p > plain.p
    # The improvement (~0.0040 bpb) is below a 0.005 margin: H1 cannot be supported.
    assert margin.p > 0.5


def test_worse_new_runs_give_large_p():
    assert welch_one_sided(PR2014, PR2135).p > 0.9


def test_single_run_reference_is_a_constant():
    res = welch_one_sided(PR2135, [1.0575])
    one_sample = welch_one_sided(PR2135, [1.0575, 1.0575])
    assert res.df == pytest.approx(2.0)
    assert res.p == pytest.approx(one_sample.p)


def test_zero_variance_both_sides():
    res = welch_one_sided([1.0, 1.0], [1.1, 1.1])
    assert res.p == 0.0 and math.isinf(res.t)
    assert res.to_dict()["t"] is None and res.to_dict()["df"] is None
    assert welch_one_sided([1.2, 1.2], [1.1, 1.1]).p == 1.0


def test_no_test_with_single_runs_both_sides():
    with pytest.raises(ValueError):
        welch_one_sided([1.0], [1.1])


def test_readme_criterion_uses_nats_per_byte():
    # val_loss / val_bpb pairs of the #1529 / #1514 runs (same SP8192 tokenizer).
    new = RunSet("new", val_bpb=tuple(PR1529), val_loss=(2.77699288, 2.78058475, 2.77903470))
    ref = RunSet("ref", val_bpb=tuple(PR1514), val_loss=(2.78790132, 2.78966630, 2.79039264))
    out = stats.readme_test(new, ref)
    assert out is not None
    assert out["verdict_unit"] == "nats/byte"
    # 0.0040 bpb = 0.0028 nats/byte < 0.005: the README criterion fails per byte ...
    assert out["per_byte"]["improvement"] == pytest.approx(0.004049 * math.log(2), abs=2e-5)
    assert out["passed"] is False
    # ... while per token it is 0.0105 nats, and it passes there (same tokenizer).
    assert out["per_token"]["improvement"] == pytest.approx(0.01045, abs=1e-4)
    assert out["per_token"]["passed"] is True
    assert out["per_token"]["comparable"] is True
    practice = stats.practice_test(new, ref)
    assert practice is not None and practice["passed"] is True


def test_per_token_not_comparable_across_tokenizers():
    new = RunSet("new", val_bpb=(1.10, 1.101, 1.099), val_loss=(1.86, 1.862, 1.858))
    ref = RunSet("ref", val_bpb=(1.12, 1.121, 1.119), val_loss=(2.89, 2.891, 2.889))
    out = stats.readme_test(new, ref)
    assert out is not None and out["per_token"]["comparable"] is False
    assert out["tokens_per_byte"]["same_tokenizer"] is False


def test_significance_shape_is_json_able():
    import json

    out = stats.significance(RunSet("a", val_bpb=tuple(PR2135)), RunSet("b", val_bpb=tuple(PR2014)))
    text = json.dumps(out, allow_nan=False)
    assert '"practice"' in text
    assert out["practice"]["p"] == pytest.approx(0.0138, abs=5e-5)
    assert out["readme"]["per_token"] is None


def test_import_does_not_load_scipy():
    import subprocess
    import sys

    code = "import sys, audit.stats; print('scipy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- the R-REC-SIGNIFICANCE / R-REC-PROGRESSION rule, with a reference run set (--sota) ----------
def _folder(bpbs: list[float], seeds=(42, 1337, 2025), track: str | None = None) -> dict[str, str]:
    """A tiny record folder whose logs and submission.json agree on the per-seed scores."""
    import json as _json

    files: dict[str, str] = {"train_gpt.py": "print('hello')\n", "README.md": "# x\n"}
    results = {}
    for seed, b in zip(seeds, bpbs):
        loss = round(b * math.log(2) / 0.41, 8)
        files[f"train_seed{seed}.log"] = (
            f"seed:{seed}\nstep:100/100 val_loss:{loss:.4f} val_bpb:{b:.4f} train_time:500000ms step_avg:5000.00ms\n"
            f"final_int8_zlib_roundtrip_exact val_loss:{loss:.8f} val_bpb:{b:.8f}\n"
        )
        results[str(seed)] = {"val_bpb": b, "val_loss": loss}
    data = {"author": "A", "github_id": "a", "name": "x", "val_bpb": sum(bpbs) / len(bpbs), "seed_results": results}
    if track:
        data["track"] = track
    files["submission.json"] = _json.dumps(data)
    return files


def _audit(files: dict[str, str], sota: str | None):
    from audit.context import Options
    from audit.engine import audit_submission
    from audit.registry import rule_by_id
    from audit.submission import Submission

    rule = rule_by_id("R-REC-SIGNIFICANCE")
    return audit_submission(Submission.from_files(files), Options(sota=sota), rules=[rule], kinds=("meta",))


def _sota_file(tmp_path, bpbs, name="PR 2014") -> str:
    import json as _json

    p = tmp_path / "sota.json"
    p.write_text(_json.dumps({"name": name, "val_bpb": bpbs, "val_loss": [round(b * math.log(2) / 0.41, 8)
                                                                           for b in bpbs]}))
    return str(p)


def test_rule_without_sota_only_notes():
    rep = _audit(_folder(PR2135), None)
    assert not rep.errors
    assert [(f.rule_id, f.severity.value) for f in rep.findings] == [("R-REC-SIGNIFICANCE", "info")]
    assert "--sota" in rep.findings[0].message
    assert "not tested" in rep.stats["significance"]["note"]


def test_rule_practice_passes_readme_fails(tmp_path):
    rep = _audit(_folder(PR2135), _sota_file(tmp_path, PR2014))
    assert not rep.errors, rep.errors
    sig = rep.stats["significance"]
    assert sig["practice"]["p"] == pytest.approx(0.0138, abs=5e-4)  # logs round to 8 decimals
    assert sig["practice"]["passed"] is True
    assert sig["readme"]["passed"] is False and sig["readme"]["verdict_unit"] == "nats/byte"
    ids = sorted(f.rule_id for f in rep.findings)
    assert ids == ["R-REC-SIGNIFICANCE"]
    f = rep.findings[0]
    assert f.severity.value == "warning" and "nats/byte" in f.message
    assert f.path == "submission.json" and len(f.evidence) == 3


def test_rule_practice_fails_when_not_better(tmp_path):
    rep = _audit(_folder(PR2014), _sota_file(tmp_path, PR2135))
    ids = sorted(f.rule_id for f in rep.findings)
    assert ids == ["R-REC-PROGRESSION", "R-REC-SIGNIFICANCE"]
    prog = next(f for f in rep.findings if f.rule_id == "R-REC-PROGRESSION")
    assert "p = 0.98" in prog.message or "p = 0.99" in prog.message


def test_rule_big_improvement_passes_both(tmp_path):
    rep = _audit(_folder([1.0700, 1.0705, 1.0698]), _sota_file(tmp_path, [1.0820, 1.0826, 1.0818]))
    assert rep.findings == []
    assert rep.stats["significance"]["readme"]["passed"] is True


def test_rule_skips_non_record_track(tmp_path):
    rep = _audit(_folder(PR2014, track="non_record_16mb"), _sota_file(tmp_path, PR2135))
    assert rep.findings == [] and "significance" not in rep.stats


def test_sota_from_a_folder_and_from_summary(tmp_path):
    from audit.sota import load_reference

    ref_dir = tmp_path / "ref"
    ref_dir.mkdir()
    for name, text in _folder(PR2014).items():
        (ref_dir / name).write_text(text)
    rs = load_reference(str(ref_dir))
    assert sorted(rs.val_bpb) == sorted(PR2014) and len(rs.val_loss) == 3
    summary = tmp_path / "pooled.json"
    summary.write_text('{"name": "1855 pooled", "val_bpb": {"mean": 1.060755, "sd": 0.000933, "n": 6}}')
    pooled = load_reference(str(summary))
    res = stats.practice_test(pooled, RunSet("1868", val_bpb=tuple(PR1868)))
    assert res is not None and res["p"] == pytest.approx(0.1884, abs=5e-5)


@pytest.mark.parametrize("text, fragment", [
    ("[]", "no per-seed"),
    ('{"val_bpb": ["x"]}', "not a finite number"),
    ('{"val_bpb": {"mean": 1.0}}', "summary needs"),
    ('{"val_bpb": [1.0, 1.1], "val_loss": [2.0]}', "val_loss"),
    ('{"val_bpb": [-1.0]}', "positive"),
])
def test_bad_sota_files(tmp_path, text, fragment):
    from audit.sota import SotaError, load_reference

    p = tmp_path / "s.json"
    p.write_text(text)
    with pytest.raises(SotaError, match=fragment):
        load_reference(str(p))


def test_sota_from_submission_json_shapes(tmp_path):
    from audit.sota import runset_from_json

    sub = {"name": "s", "seed_results": {"1": {"val_bpb": 1.1, "val_loss": 2.0}, "2": {"val_bpb": 1.2}}}
    rs = runset_from_json(sub)
    assert rs is not None and rs.val_bpb == (1.1, 1.2) and rs.val_loss == ()
    rs = runset_from_json({"runs": [{"seed": 1, "val_bpb": 1.0}]})
    assert rs is not None and rs.val_bpb == (1.0,)
    assert runset_from_json([1.0, 1.1]) is not None
    assert runset_from_json({"val_bpb": 1.1}) is None


def test_the_same_run_shipped_twice_counts_once(tmp_path):
    files = _folder(PR2135)
    files["train.log"] = files["train_seed42.log"]  # a copy of the seed-42 run under another name
    rep = _audit(files, _sota_file(tmp_path, PR2014))
    assert rep.stats["significance"]["practice"]["n_new"] == 3
