"""Execution evidence (DESIGN.md "Execution evidence and severity"): the same illegal evaluator,
shipped in one script, judged by what the folder's logs show about whether it ran."""

from __future__ import annotations

import json
import textwrap

from audit.analysis.execution import NOT_RUN, RAN, UNKNOWN, execution_of
from audit.context import AuditContext, Options
from audit.engine import audit_submission
from audit.findings import Severity
from audit.submission import Submission
from rules import _static_eval_examples as ex

# The #779-family hashed cache of the examples, as an optional second evaluator.
NGRAM_EVAL = ex.TARGET_KEY_CACHE.replace("def eval_val(", "def eval_val_ngram(")

MAIN = '''

def eval_val(model, val_tokens, seq_len, luts):
    base_bytes, leading_space, is_boundary = luts
    loss_sum, n_tok, n_bytes = 0.0, 0, 0
    with torch.no_grad():
        for start in range(0, val_tokens.numel() - 1 - seq_len + 1, seq_len):
            x = val_tokens[start:start + seq_len]
            y = val_tokens[start + 1:start + seq_len + 1]
            logp = F.log_softmax(model_logits(model, x[None])[0], dim=-1)
            loss_sum += float(-logp.gather(-1, y[:, None]).sum())
            n_tok += y.numel()
            n_bytes += int(base_bytes[y].sum())
    val_loss = loss_sum / n_tok
    return val_loss, val_loss / math.log(2.0) * n_tok / n_bytes


def main():
    import os
    ngram_eval_enabled = bool(int(os.environ.get("NGRAM_EVAL_ENABLED", "0")))
    model, val_tokens, luts = build()
    print(f"ngram_eval_enabled:{int(ngram_eval_enabled)} seed:1337")
    val_loss, val_bpb = eval_val(model, val_tokens, 1024, luts)
    print(f"final_sliding_window_exact val_loss:{val_loss:.8f} val_bpb:{val_bpb:.8f}")
    if ngram_eval_enabled:
        ng_loss, ng_bpb = eval_val_ngram(model, val_tokens, 1024, luts)
        print(f"final_ngram_exact val_loss:{ng_loss:.8f} val_bpb:{ng_bpb:.8f}")
'''

SCRIPT = NGRAM_EVAL + MAIN


def _log(*lines: str) -> str:
    return "\n".join(lines) + "\n"


SLIDING = "final_sliding_window_exact val_loss:1.90000000 val_bpb:1.12500000"
NGRAM = "final_ngram_exact val_loss:1.50000000 val_bpb:0.95000000"


def _folder(files: dict[str, str]) -> Submission:
    base = {"train_gpt.py": textwrap.dedent(SCRIPT).lstrip("\n"),
            "README.md": "# run\n\n`torchrun --standalone --nproc_per_node=8 train_gpt.py`\n"}
    return Submission.from_files({**base, **files})


def _ngram_findings(sub: Submission):
    report = audit_submission(sub, Options(), kinds=("static",))
    assert not report.errors, report.errors
    return [f for f in report.findings if f.rule_id in {"R-NGRAM-CACHE", "R-EVAL-C2-NORMALIZED"}]


def _line_of_lookup() -> int:
    return ex.line_of(SCRIPT, "full_c = full_table[full_key]")


def test_logs_without_the_evaluators_output_make_it_shipped_but_not_run():
    sub = _folder({"train_seed1337.log": _log("seed:1337", SLIDING),
                   "README.md": "Run: `NGRAM_EVAL_ENABLED=1 torchrun --nproc_per_node=8 train_gpt.py`\n"})
    found = _ngram_findings(sub)
    assert found, "the hashed cache must still be reported"
    for f in found:
        assert f.severity == Severity.WARNING, f.message
        assert "Execution: shipped but not run" in f.message
        missing = [e for e in f.evidence if e.path == "train_gpt.py" and "no log line matches" in e.label]
        assert missing and "final_ngram_exact" in (missing[0].excerpt or "")
        assert any(e.path == "train_seed1337.log" and e.label.startswith("other output") for e in f.evidence)


def test_logged_flag_off_makes_it_shipped_but_not_run_with_the_flag_line():
    sub = _folder({"train_seed1337.log": _log("ngram_eval_enabled:0 seed:1337", SLIDING)})
    ctx = AuditContext(sub, Options())
    ex_state = execution_of(ctx, "train_gpt.py", _line_of_lookup())
    assert ex_state.state == NOT_RUN
    assert "ngram_eval_enabled" in ex_state.reason
    assert any(e.path == "train_seed1337.log" and e.line == 1 for e in ex_state.evidence)


def test_logs_with_the_evaluators_output_show_it_ran():
    sub = _folder({"train_seed1337.log": _log("ngram_eval_enabled:1 seed:1337", SLIDING, NGRAM)})
    found = _ngram_findings(sub)
    assert found
    for f in found:
        assert f.severity == Severity.ERROR
        assert "Execution: ran" in f.message
        assert any(e.path == "train_seed1337.log" and e.line == 3 and "final_ngram_exact" in (e.excerpt or "")
                   for e in f.evidence)


def test_no_logs_is_unknown_and_keeps_the_error():
    found = _ngram_findings(_folder({}))
    assert found
    for f in found:
        assert f.severity == Severity.ERROR
        assert "Execution: unknown" in f.message


def test_logs_that_decide_nothing_are_unknown():
    # The script's own source in the log (as the baseline writes it) is not printed output, and a
    # log cut before any final score proves nothing about what would have followed.
    sub = _folder({"train_seed1337.log": _log("seed:1337", "step:1/10 train_loss:6.9"),
                   "README.md": "Run: `NGRAM_EVAL_ENABLED=1 torchrun --nproc_per_node=8 train_gpt.py`\n"})
    ctx = AuditContext(sub, Options())
    assert execution_of(ctx, "train_gpt.py", _line_of_lookup()).state == UNKNOWN


def test_logged_flag_on_shows_it_ran():
    sub = _folder({"train_seed1337.log": _log("ngram_eval_enabled:1 seed:1337", "step:1/10 train_loss:6.9")})
    state = execution_of(AuditContext(sub, Options()), "train_gpt.py", _line_of_lookup())
    assert state.state == RAN and "ngram_eval_enabled" in state.reason


def test_default_off_flag_set_nowhere_makes_it_not_run():
    # No hyperparameter line and no output that decides: the guard's environment variable is off
    # by default and neither the README nor a log sets it.
    script = SCRIPT.replace('    print(f"final_ngram_exact val_loss:{ng_loss:.8f} val_bpb:{ng_bpb:.8f}")\n', "")
    sub = Submission.from_files({"train_gpt.py": script,
                                 "train_seed1337.log": _log("seed:1337", SLIDING)})
    ctx = AuditContext(sub, Options())
    state = execution_of(ctx, "train_gpt.py", ex.line_of(script, "full_c = full_table[full_key]"))
    assert state.state == NOT_RUN and "off by default" in state.reason
    assert any(e.path == "train_gpt.py" and "NGRAM_EVAL_ENABLED" in (e.excerpt or "") for e in state.evidence)
    readme = Submission.from_files({"train_gpt.py": script, "train_seed1337.log": _log("seed:1337", SLIDING),
                                    "README.md": "Run with `NGRAM_EVAL_ENABLED=1 torchrun ...`\n"})
    assert execution_of(AuditContext(readme, Options()), "train_gpt.py",
                        ex.line_of(script, "full_c = full_table[full_key]")).state != NOT_RUN


def test_ran_state_from_the_flagged_functions_own_print():
    script = SCRIPT.replace("    val_loss = loss_sum / n_tok\n    return val_loss, val_loss / math.log(2.0) * n_tok / n_bytes\n",
                            "    val_loss = loss_sum / n_tok\n    print(f\"ngram_cache_done tokens:{n_tok}\")\n"
                            "    return val_loss, val_loss / math.log(2.0) * n_tok / n_bytes\n", 1)
    sub = Submission.from_files({"train_gpt.py": script,
                                 "train_seed1337.log": _log("seed:1337", "ngram_cache_done tokens:4096", SLIDING)})
    state = execution_of(AuditContext(sub, Options()), "train_gpt.py",
                         ex.line_of(script, "full_c = full_table[full_key]"))
    assert state.state == RAN
    assert state.evidence[0].line == 2


def _claim(bpb: float) -> str:
    return json.dumps({"name": "x", "author": "a", "github_id": "a", "val_bpb": bpb})


def test_the_claimed_score_line_names_the_evaluator_that_produced_it():
    sub = _folder({"train_seed1337.log": _log("seed:1337", SLIDING, NGRAM), "submission.json": _claim(0.95)})
    state = execution_of(AuditContext(sub, Options()), "train_gpt.py", _line_of_lookup())
    assert state.state == RAN
    assert "claimed score line `final_ngram_exact`" in state.reason
    assert state.evidence[0].path == "train_seed1337.log" and state.evidence[0].line == 3


def test_a_claim_from_another_evaluator_is_noted_when_the_flagged_one_ran():
    sub = _folder({"train_seed1337.log": _log("seed:1337", SLIDING, NGRAM), "submission.json": _claim(1.125)})
    state = execution_of(AuditContext(sub, Options()), "train_gpt.py", _line_of_lookup())
    assert state.state == RAN
    assert "the claimed score line `final_sliding_window_exact` comes from" in state.reason
    assert any(e.line == 2 and e.label == "the score line the claim comes from" for e in state.evidence)
