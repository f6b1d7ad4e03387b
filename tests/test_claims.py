"""Claims.from_json over the submission.json variants of REFERENCE.md 2.2 (hand-written examples)."""

from __future__ import annotations

import pytest

from audit.claims import Claims


def test_canonical_fields():
    c = Claims.from_json({
        "author": "A. Person", "github_id": "aperson", "name": "Tiny", "date": "2026-04-01T00:00:00Z",
        "track": "10min_16mb", "val_bpb": 1.0812, "val_loss": 2.79, "bytes_total": 15990000, "bytes_code": 16000,
        "val_bpb_std": 0.0004, "blurb": "b",
    })
    assert (c.val_bpb, c.val_bpb_key, c.val_bpb_from_val_loss) == (1.0812, "val_bpb", False)
    assert (c.bytes_total, c.bytes_total_key, c.bytes_code, c.bytes_code_key) == (15990000, "bytes_total", 16000, "bytes_code")
    assert (c.author, c.github_id, c.name, c.track, c.val_bpb_std) == ("A. Person", "aperson", "Tiny", "10min_16mb", 0.0004)
    assert c.problems == []


def test_seed_list_and_seed_results_dict():
    c = Claims.from_json({
        "val_bpb": 1.07, "seeds": [42, "0", 1234],
        "seed_results": {"42": {"val_bpb": 1.0728, "val_loss": 2.77, "artifact_bytes": 15932897, "steps": 4971,
                                "train_time_s": 596.1, "eval_time_ms": 332086},
                         "0": {"val_bpb": "1.07134", "bytes_total": "15,939,841", "ttt_eval_time_s": 332.1},
                         "1234_rerun": {"val_bpb": 1.0716}},
    })
    assert c.seeds == [42, 0, 1234]
    by_seed = c.seed_claims()
    assert sorted(by_seed) == [0, 42, 1234]
    s42 = by_seed[42]
    assert (s42.val_bpb, s42.val_loss, s42.artifact_bytes, s42.steps) == (1.0728, 2.77, 15932897, 4971)
    assert s42.train_time_s == 596.1 and s42.eval_time_s == pytest.approx(332.086)
    assert by_seed[0].val_bpb == 1.07134 and by_seed[0].artifact_bytes == 15939841 and by_seed[0].eval_time_s == 332.1
    assert by_seed[1234].key == "1234_rerun"
    assert sorted(c.per_seed_bpbs()) == [1.07134, 1.0716, 1.0728]


def test_seeds_as_dict_and_positional_seed_scores():
    c = Claims.from_json({"seeds": {"0": {"val_bpb": 1.0821, "bytes_total": 15991018, "train_time_ms": 588004,
                                          "ttt_time_ms": 293430}, "7": 1.09}})
    assert c.seeds == [0, 7]
    assert c.seed_claims()[0].train_time_s == pytest.approx(588.004)
    assert c.seed_claims()[0].eval_time_s == pytest.approx(293.43)
    assert c.seed_claims()[7].val_bpb == 1.09
    d = Claims.from_json({"seeds": [42, 0, 1337], "seed_scores": [1.0906, 1.0908, 1.0923]})
    assert {s: x.val_bpb for s, x in d.seed_claims().items()} == {42: 1.0906, 0: 1.0908, 1337: 1.0923}
    e = Claims.from_json({"seeds": [42], "seed_scores": [1.0, 2.0]})
    assert e.seed_claims() == {} and e.problems


def test_bpb_under_val_loss_is_flagged():
    c = Claims.from_json({"val_loss": 1.14276, "bytes_total": 15900000})
    assert (c.val_bpb, c.val_bpb_key, c.val_bpb_from_val_loss) == (1.14276, "val_loss", True)
    real_nats = Claims.from_json({"val_loss": 2.79})
    assert real_nats.val_bpb is None and not real_nats.val_bpb_from_val_loss


@pytest.mark.parametrize(
    "data,key,value",
    [({"mean_val_bpb": 1.17}, "mean_val_bpb", 1.17),
     ({"score": 1.0587, "score_metric": "val_bpb"}, "score", 1.0587),
     ({"results": {"mean_val_bpb": 0.66}}, "mean_val_bpb", 0.66)],
)
def test_alternative_bpb_keys(data, key, value):
    c = Claims.from_json(data)
    assert (c.val_bpb, c.val_bpb_key) == (value, key)


@pytest.mark.parametrize(
    "data,key,value",
    [({"artifact_bytes": 15374243}, "artifact_bytes", 15374243),
     ({"artifact_bytes_max": 15940380}, "artifact_bytes_max", 15940380),
     ({"artifact_size_bytes": 15878809.0}, "artifact_size_bytes", 15878809),
     ({"artifact_bytes_mean": 15427455}, "artifact_bytes_mean", 15427455)],
)
def test_alternative_size_keys(data, key, value):
    c = Claims.from_json(data)
    assert (c.bytes_total, c.bytes_total_key) == (value, key)


def test_names_and_code_bytes_variants():
    c = Claims.from_json({"run_name": "r", "code_bytes": 50651, "seed": 1337})
    assert (c.name, c.bytes_code, c.bytes_code_key, c.seeds) == ("r", 50651, "code_bytes", [1337])


@pytest.mark.parametrize(
    "data",
    [None, [], "x", 3, {"val_bpb": None, "bytes_total": None, "seeds": None},
     {"val_bpb": "n/a", "bytes_total": 1.5, "seeds": "all", "seed_results": [1, {"seed": "x"}]},
     {"val_bpb": True, "author": {"name": "x"}, "seeds": [[1], {"a": 2}, None, 3.5]},
     {"seed_results": {"1": None, "2": [1, 2], "3": {"val_bpb": {"nested": 1}}}},
     {"val_bpb": 10 ** 400, "bytes_total": "9" * 100, "val_loss": float("nan")}],
)
def test_junk_never_raises(data):
    c = Claims.from_json(data)
    assert isinstance(c, Claims)
    assert c.val_bpb is None or isinstance(c.val_bpb, float)


def test_type_problems_are_recorded():
    c = Claims.from_json({"val_bpb": "n/a", "bytes_total": 1.5, "seeds": ["x", 2]})
    assert c.val_bpb is None and c.bytes_total is None and c.seeds == [2]
    assert len(c.problems) == 3
