"""The TTT / val-data rules end to end: evidence chains, wrappers, and inputs that must not crash."""

from __future__ import annotations

import base64
import lzma
import textwrap

import pytest

from audit.engine import audit_submission
from audit.findings import Severity
from audit.registry import rule_by_id
from audit.submission import Submission
from rules._ttt_examples import ADAPT, MAIN_PREQUANT, MAIN_SCORE_FIRST, SCORE_FIRST, program

TTT_RULES = ["R-TTT-PREQUANT", "R-TTT-SCORE-FIRST", "R-TTT-NO-RESCORE", "R-GPTQ-CALIB",
             "R-DATA-NO-VAL-IN-TRAINING", "R-SLOT", "R-TTT-WARMUP-ON-VAL"]


def audit(files: dict[str, str | bytes]):
    rules = [rule_by_id(r) for r in TTT_RULES]
    return audit_submission(Submission.from_files(files), rules=rules, kinds=("static",))


def lines_of(code: str, needle: str) -> int:
    return next(i for i, line in enumerate(code.splitlines(), 1) if needle in line)


def test_prequant_evidence_chain_source_call_update_score():
    code = textwrap.dedent(program(ADAPT, MAIN_PREQUANT)).lstrip("\n")
    report = audit({"train_gpt.py": code})
    assert not report.errors
    (f,) = [f for f in report.findings if f.rule_id == "R-TTT-PREQUANT"]
    assert f.severity == Severity.ERROR and f.line == lines_of(code, "loss.backward()")
    chain = [(e.label, e.line) for e in f.evidence]
    want = [lines_of(code, 'val_tokens = load_validation_tokens("data'), lines_of(code, "ttt_adapt(model, val_tokens)"),
            lines_of(code, "loss.backward()"), lines_of(code, "opt.step()"), lines_of(code, 'print("final"')]
    got = [line for _, line in chain]
    assert [w for w in want if w in got] == want, chain  # every link, in this order
    assert all(e.excerpt for e in f.evidence)


def test_score_first_program_is_clean_and_wrapped_prequant_is_not():
    legal = textwrap.dedent(program(SCORE_FIRST, MAIN_SCORE_FIRST)).lstrip("\n")
    assert not [f for f in audit({"train_gpt.py": legal}).findings if f.severity != Severity.INFO]

    illegal = textwrap.dedent(program(ADAPT, MAIN_PREQUANT)).lstrip("\n")
    blob = base64.b85encode(lzma.compress(illegal.encode())).decode()
    wrapper = f'import lzma as L,base64 as B\nexec(L.decompress(B.b85decode("{blob}")))\n'
    report = audit({"train_gpt.py": wrapper})
    hits = [f for f in report.findings if f.rule_id == "R-TTT-PREQUANT"]
    assert hits and hits[0].path == "train_gpt.py"
    assert "decoded" in hits[0].message


@pytest.mark.parametrize("content", [
    "def f(:\n    pass\n",                                  # syntax error
    'print "python 2"\nexec "x = 1"\n',                     # Python 2
    b"x = '\xff\xfe'\nval_tokens = 1\n",                    # not UTF-8
    "x = 1\x00\n",                                          # NUL byte
    "x = " + "(" * 300 + "1" + ")" * 300 + "\n",            # too nested for the parser
    "y = " + "+".join(["val_tokens"] * 30000) + "\n",      # very deep expression
    "",                                                     # empty file
], ids=["syntax", "py2", "non-utf8", "nul", "nested-parens", "deep-expr", "empty"])
def test_bad_code_never_crashes(content):
    report = audit({"train_gpt.py": content, "helper.py": program(ADAPT, MAIN_PREQUANT)})
    assert not report.errors, report.errors
    # the other (valid) file is still analysed
    assert any(f.rule_id == "R-TTT-PREQUANT" and f.path == "helper.py" for f in report.findings)


def test_huge_source_is_reported_not_walked():
    big = "x = 1\n" * 750_000  # 4.5 MB of code: over the analysed limit, under the reader's 8 MB
    report = audit({"train_gpt.py": big})
    assert not report.errors
    (f,) = [f for f in report.findings if f.rule_id == "R-TTT-PREQUANT"]
    assert f.severity == Severity.WARNING and "not analysed" in f.message


def test_dead_adaptation_code_is_not_flagged():
    code = program(ADAPT, '''
def main():
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    print(eval_val(torch.nn.Linear(8, 8), val_tokens))
''')
    assert not [f for f in audit({"train_gpt.py": code}).findings if f.severity != Severity.INFO]


def test_diagnostic_probe_on_frozen_features_is_not_adaptation():
    code = program('''
def probe_diagnostic(model, val_tokens):
    with torch.no_grad():
        feats = model(val_tokens[:-1])
    probe = torch.nn.Linear(8, 8)
    opt = torch.optim.Adam(probe.parameters(), lr=1e-3)
    for _ in range(100):
        loss = F.cross_entropy(probe(feats), val_tokens[1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return float(loss)


def main():
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    model = torch.nn.Linear(8, 8)
    print("probe", probe_diagnostic(model, val_tokens))
    print("final", eval_val(model, val_tokens))
''')
    assert not [f for f in audit({"train_gpt.py": code}).findings if f.severity != Severity.INFO]


def _slot_behind_flag(flag_value: str) -> dict[str, str]:
    from rules.slot import SLOT_EVAL

    code = program(SLOT_EVAL.replace("SCORED_SLICE", "s:").replace(
        '    print("final", eval_val_slot(model, val_tokens))',
        '    args = Hyperparameters()\n'
        '    if args.slot_enabled:\n'
        '        print("final", eval_val_slot(model, val_tokens))\n'
        '    else:\n'
        '        print("final", eval_val(model, val_tokens))'))
    log = ("Hyperparameters:\n"
           f"  slot_enabled: {flag_value}\n  seed: 42\n"
           "final_int8_zlib_roundtrip_exact val_loss:2.07 val_bpb:1.22\n")
    return {"train_gpt.py": code, "train_seed42.log": log}


def test_code_switched_off_in_every_log_is_noted_not_counted():
    report = audit(_slot_behind_flag("False"))
    slot = [f for f in report.findings if f.rule_id == "R-SLOT"]
    assert slot and all(f.severity == Severity.INFO for f in slot), slot
    assert "off in the submitted runs" in slot[0].message


def test_code_switched_on_in_the_logs_is_counted():
    report = audit(_slot_behind_flag("True"))
    assert any(f.rule_id == "R-SLOT" and f.severity == Severity.WARNING for f in report.findings)


RESCORE_MAIN = '''
def main():
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    eval_model = torch.nn.Linear(8, 8)
    ttt_loss = eval_val_ttt(eval_model, val_tokens)
    print(f"final_int6_sliding_window_ttt val_loss:{ttt_loss:.4f} val_bpb:{ttt_loss:.4f}")
    s64_loss = eval_val(eval_model, val_tokens)
    print(f"final_int6_sliding_window_s64 val_loss:{s64_loss:.4f} val_bpb:{s64_loss:.4f}")
'''


def _rescore_folder(with_log: bool) -> dict[str, str]:
    files = {"train_gpt.py": program(SCORE_FIRST, RESCORE_MAIN)}
    if with_log:
        files["train_seed42.log"] = (
            "seed:42\n"
            "final_int6_sliding_window_ttt val_loss:2.0000 val_bpb:1.2000 eval_time:100ms\n"
            "final_int6_sliding_window_ttt_exact val_loss:2.00000000 val_bpb:1.20000000\n"
            "final_int6_sliding_window_s64 val_loss:1.9000 val_bpb:1.1000 eval_time:100ms\n"
            "final_int6_sliding_window_s64_exact val_loss:1.90000000 val_bpb:1.10000000\n")
    return files


def test_rescore_without_logs_is_an_error():
    hits = [f for f in audit(_rescore_folder(False)).findings if f.rule_id == "R-TTT-NO-RESCORE"]
    assert hits and hits[0].severity == Severity.ERROR


def test_rescore_that_the_logs_do_not_report_is_only_noted():
    hits = [f for f in audit(_rescore_folder(True)).findings if f.rule_id == "R-TTT-NO-RESCORE"]
    assert hits and all(f.severity == Severity.INFO for f in hits), hits
    assert "final_int6_sliding_window_s64" in hits[0].message


def test_ttt_on_a_deep_copy_then_scoring_the_original_is_not_a_rescore():
    code = program(SCORE_FIRST.replace(
        "    opt = torch.optim.SGD(model.parameters(), lr=1e-3)",
        "    model = copy.deepcopy(model)\n    opt = torch.optim.SGD(model.parameters(), lr=1e-3)"), RESCORE_MAIN)
    hits = [f for f in audit({"train_gpt.py": code}).findings if f.rule_id == "R-TTT-NO-RESCORE"]
    assert not hits, hits


def test_warmup_announced_by_a_log_line_is_a_warmup():
    code = program(SCORE_FIRST, '''
def main():
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    model = torch.nn.Linear(8, 8)
    print("ttt: warming up compiled kernels")
    adapter = torch.nn.Linear(8, 8)
    opt = torch.optim.SGD(adapter.parameters(), lr=1e-3)
    for _ in range(3):
        loss = F.cross_entropy(model(val_tokens[:64]) + adapter(val_tokens[:64]), val_tokens[1:65])
        loss.backward()
        opt.step()
    print("final", eval_val_ttt(model, val_tokens))
''')
    rules = {f.rule_id: f.severity for f in audit({"train_gpt.py": code}).findings}
    assert rules.get("R-TTT-WARMUP-ON-VAL") == Severity.WARNING and "R-TTT-PREQUANT" not in rules


def test_per_window_slot_module_is_slot_not_ttt():
    code = program('''
class SlotDelta(torch.nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.delta = torch.nn.Parameter(torch.zeros(dim))

    def forward(self, h):
        return h + self.delta


def eval_val_slot(model, val_tokens, seq_len=64):
    loss_sum = torch.zeros(())
    n = 0
    for ws in range(0, val_tokens.numel() - seq_len - 1, seq_len):
        x = val_tokens[ws:ws + seq_len]
        y = val_tokens[ws + 1:ws + seq_len + 1]
        slot = SlotDelta(8)
        opt = torch.optim.AdamW(slot.parameters(), lr=1e-2)
        for _ in range(4):
            loss = F.cross_entropy(model(x, slot=slot), y)
            loss.backward()
            opt.step()
        with torch.no_grad():
            loss_sum += F.cross_entropy(model(x, slot=slot), y, reduction="sum")
            n += seq_len
    return (loss_sum / n).item()


def main():
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    print("final", eval_val_slot(torch.nn.Linear(8, 8), val_tokens))
''')
    found = {(f.rule_id, f.severity) for f in audit({"train_gpt.py": code}).findings}
    assert ("R-SLOT", Severity.WARNING) in found
    assert not any(sev == Severity.ERROR for _, sev in found), found


def _env_gated(snippet_main: str, helpers: str) -> str:
    return program(helpers, snippet_main).replace(
        "import torch\n", 'import os\nimport torch\nUSE_IT = bool(int(os.environ.get("FEATURE_ENABLED", "0")))\n', 1)


def test_off_by_default_env_flag_softens_warnings_only():
    from rules.slot import SLOT_EVAL

    slot_code = _env_gated('''
def main():
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    model = torch.nn.Linear(8, 8)
    if USE_IT:
        print("final", eval_val_slot(model, val_tokens))
''', SLOT_EVAL.replace("SCORED_SLICE", "s:").split("\n\ndef main():")[0])
    assert {f.severity for f in audit({"train_gpt.py": slot_code}).findings if f.rule_id == "R-SLOT"} == {
        Severity.INFO}
    readme = "# run\n\n`FEATURE_ENABLED=1 torchrun --nproc_per_node=8 train_gpt.py`\n"
    sev = {f.severity for f in audit({"train_gpt.py": slot_code, "README.md": readme}).findings
           if f.rule_id == "R-SLOT"}
    assert sev == {Severity.WARNING}

    prequant = _env_gated('''
def main():
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    model = torch.nn.Linear(8, 8)
    if USE_IT:
        ttt_adapt(model, val_tokens)
    print("final", eval_val(model, val_tokens))
''', ADAPT)
    assert any(f.rule_id == "R-TTT-PREQUANT" and f.severity == Severity.ERROR
               for f in audit({"train_gpt.py": prequant}).findings)


# -- false alarms found on real PRs, reduced to their shape (hand-written, not copied) ---------
def _loud(code: str, rule_id: str) -> list[tuple[str, int | None]]:
    report = audit({"train_gpt.py": textwrap.dedent(code).lstrip("\n")})
    return [(f.rule_id, f.line) for f in report.findings if f.rule_id == rule_id and f.severity != Severity.INFO]


GPTQ_ON_TRAIN = '''
class Hyperparameters:
    def __init__(self):
        self.train_files = "data/fineweb_train_*.bin"
        self.val_files = "data/fineweb_val_*.bin"
        self.ttt_source = "val"
        self.ttt_files = self.train_files if self.ttt_source == "train" else self.val_files


class ValidationData:
    def __init__(self, h):
        self.val_tokens = load_validation_tokens(h.val_files)
        self.extra = []
        self.extra.append(self.val_tokens[:8])


class TrainLoader:
    def __init__(self, h):
        self.tokens = torch.load(h.train_files)


def train_model(h, val_data):
    model = torch.nn.Linear(8, 8)
    summary = {"val_loss": eval_val(model, val_data.val_tokens)}
    return model, summary


def collect_hessians(model, loader):
    return [model(loader.tokens[:8])]


def main():
    h = Hyperparameters()
    val_data = ValidationData(h)
    model, summary = train_model(h, val_data)
    hessians = collect_hessians(model, TrainLoader(h))
    torch.save({"model": model.state_dict(), "hessians": hessians}, "final_model.pt")
    print("final", eval_val(model, val_data.val_tokens))
'''


def test_config_object_and_tuple_returns_do_not_make_the_model_val_data():
    # `ValidationData(h)` binds `h` to the parameter after `self`; a config attribute naming the
    # val files does not make `h` val data; `model, summary = train_model(...)` keeps the
    # val-derived summary off the model.
    code = program(GPTQ_ON_TRAIN)
    assert not _loud(code, "R-GPTQ-CALIB")
    assert not _loud(code, "R-DATA-NO-VAL-IN-TRAINING")
    on_val = code.replace("collect_hessians(model, TrainLoader(h))", "collect_hessians(model, val_data)")
    on_val = on_val.replace("return [model(loader.tokens[:8])]", "return [model(loader.val_tokens[:8])]")
    assert _loud(on_val, "R-GPTQ-CALIB")


def test_training_names_on_a_val_chunk_are_not_training_data():
    code = program('''
def eval_val_ttt(model, tokens, chunk=64):
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    loss_sum = torch.zeros(())
    for ci in range((tokens.numel() - 1) // chunk):
        local = tokens[ci * chunk:(ci + 1) * chunk + 1]
        with torch.no_grad():
            loss_sum += F.cross_entropy(model(local[:-1]), local[1:], reduction="sum")
        train_tokens = local
        x_train = train_tokens[:-1]
        y_train = train_tokens[1:]
        loss = F.cross_entropy(model(x_train), y_train)
        loss.backward()
        opt.step()
    return loss_sum.item()


def main():
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    print("final", eval_val_ttt(torch.nn.Linear(8, 8), val_tokens))
''')
    assert not _loud(code, "R-DATA-NO-VAL-IN-TRAINING")
    assert not _loud(code, "R-TTT-PREQUANT") and not _loud(code, "R-TTT-SCORE-FIRST")


def test_a_val_metric_saved_with_a_checkpoint_is_not_val_data():
    code = program('''
def save_checkpoint(model, step, val_bpb, path):
    torch.save({"step": step, "val_bpb": val_bpb, "model_state_dict": model.state_dict()}, path)


def main():
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    model = torch.nn.Linear(8, 8)
    save_checkpoint(model, 100, eval_val(model, val_tokens), "final_model.pt")
''')
    assert not _loud(code, "R-DATA-NO-VAL-IN-TRAINING")


TEMPERATURE_SEARCH = '''
def find_temperature(model, val_tokens):
    best_t, best = 1.0, float("inf")
    for t in [0.9, 1.0, 1.1]:
        loss = eval_val(model, val_tokens * 1, seq_len=int(8 * t))
        if loss < best:
            best, best_t = loss, t
    return best_t


def main():
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    train_tokens = torch.load("data/fineweb_train_000000.bin")
    model = torch.nn.Linear(8, 8)
    t = find_temperature(model, CALIB)
    print("final", eval_val(model, val_tokens), t)
'''


def test_temperature_fitted_on_training_tokens_is_not_calibration_on_scored():
    on_train = program(TEMPERATURE_SEARCH.replace("CALIB", "train_tokens[:4096]"))
    assert not _loud(on_train, "R-TTT-NO-CALIBRATION-ON-SCORED")
    on_val = program(TEMPERATURE_SEARCH.replace("CALIB", "val_tokens"))
    assert _loud(on_val, "R-TTT-NO-CALIBRATION-ON-SCORED")


def test_hand_written_step_on_a_fresh_delta_is_slot_not_model_training():
    code = program('''
def eval_val_slot(model, val_tokens, newton=True, seq_len=64):
    loss_sum = torch.zeros(())
    for ws in range(0, val_tokens.numel() - seq_len - 1, seq_len):
        x = val_tokens[ws:ws + seq_len][None]
        y = val_tokens[ws + 1:ws + seq_len + 1][None]
        with torch.no_grad():
            hidden = model(x)
        if newton:
            delta = torch.zeros(1, 1, 8, requires_grad=True)
            loss = F.cross_entropy((hidden + delta)[0], y[0])
            loss.backward()
            delta = (-0.1 * delta.grad).detach()
        else:
            delta = torch.zeros(1, 1, 8).requires_grad_(True)
            params = [delta]
            opt = torch.optim.LBFGS(params, lr=1.0)

            def closure():
                opt.zero_grad()
                inner = F.cross_entropy((hidden + delta)[0], y[0])
                inner.backward()
                return inner
            opt.step(closure)
        with torch.no_grad():
            loss_sum += F.cross_entropy((hidden + delta)[0], y[0], reduction="sum")
    return loss_sum.item()


def main():
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    print("final", eval_val_slot(torch.nn.Linear(8, 8), val_tokens))
''')
    assert not _loud(code, "R-TTT-SCORE-FIRST") and not _loud(code, "R-TTT-PREQUANT")
    assert _loud(code, "R-SLOT")


def test_a_penalty_summed_into_the_loss_is_not_a_score():
    code = program('''
def prequant_ttt(model, val_tokens, epochs=2):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    anchors = [p.detach().clone() for p in model.parameters()]
    for _ in range(epochs):
        for i in range(0, val_tokens.numel() - 9, 8):
            loss = F.cross_entropy(model(val_tokens[i:i + 8]), val_tokens[i + 1:i + 9])
            penalty = torch.zeros(())
            for p, a in zip(model.parameters(), anchors):
                penalty = penalty + (p - a).pow(2).sum()
            loss = loss + 0.1 * penalty
            loss.backward()
            opt.step()
            opt.zero_grad()


def main():
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    model = torch.nn.Linear(8, 8)
    prequant_ttt(model, val_tokens)
    print("final", eval_val(model, val_tokens))
''')
    assert _loud(code, "R-TTT-PREQUANT")


LAGGED = '''
def eval_val_ttt(model, val_tokens, chunk=64):
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    loss_sum = torch.zeros(())
    count = 0
    ptr = 0
    prev_x, prev_y = None, None
    while ptr + chunk + 1 <= val_tokens.numel():
        piece = val_tokens[ptr:ptr + chunk + 1]
        x = piece[:-1][None]
        y = piece[1:][None]
        if TRAIN_X is not None:
            loss = F.cross_entropy(model(TRAIN_X)[0], TRAIN_Y[0])
            loss.backward()
            opt.step()
            opt.zero_grad()
        with torch.no_grad():
            loss_sum += F.cross_entropy(model(x)[0], y[0], reduction="sum")
            count += chunk
        prev_x = x
        prev_y = y
        ptr += chunk
    return (loss_sum / count).item()


def main():
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    print("final", eval_val_ttt(torch.nn.Linear(8, 8), val_tokens))
'''


def test_training_on_the_previous_scored_chunk_then_scoring_this_one_is_score_first():
    lagged = program(LAGGED.replace("TRAIN_X", "prev_x").replace("TRAIN_Y", "prev_y"))
    assert not _loud(lagged, "R-TTT-SCORE-FIRST") and not _loud(lagged, "R-TTT-PREQUANT")
    current = program(LAGGED.replace("TRAIN_X", "x").replace("TRAIN_Y", "y"))
    assert _loud(current, "R-TTT-SCORE-FIRST")


def test_alternative_passes_behind_an_early_return_are_not_a_rescore():
    two = program(SCORE_FIRST, '''
def run_eval(model, val_tokens, ttt_enabled):
    if ttt_enabled:
        return eval_val_ttt(model, val_tokens)
    return eval_val(model, val_tokens)


def main():
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    print("final", run_eval(torch.nn.Linear(8, 8), val_tokens, True))
''')
    assert not _loud(two, "R-TTT-NO-RESCORE")
    rescored = two.replace("        return eval_val_ttt(model, val_tokens)\n",
                           "        print(\"ttt\", eval_val_ttt(model, val_tokens))\n")
    assert "print(\"ttt\"" in rescored and _loud(rescored, "R-TTT-NO-RESCORE")


LOADERS = '''
class TrainLoader:
    def __init__(self, pattern):
        self.tokens = torch.load(pattern)

    def next_batch(self, n):
        return self.tokens[:n], self.tokens[1:n + 1]


class ValCalibLoader:
    def __init__(self, val_tokens):
        self.val_tokens = val_tokens

    def next_batch(self, n):
        return self.val_tokens[:n], self.val_tokens[1:n + 1]


def make_loader(pattern):
    return TrainLoader(pattern)


def main():
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    model = torch.nn.Linear(8, 8)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    calib = ValCalibLoader(val_tokens)
    loader = LOADER
    for step in range(100):
        x, y = loader.next_batch(64)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad()
    print("final", eval_val(model, val_tokens), calib)
'''


def test_a_method_call_reaches_the_class_its_object_was_built_from():
    # two loaders both define `next_batch`; the training loop's is built from the training shards
    for built in ('TrainLoader("data/fineweb_train_000000.bin")', 'make_loader("data/fineweb_train_000000.bin")'):
        code = program(LOADERS.replace("LOADER", built))
        assert not _loud(code, "R-DATA-NO-VAL-IN-TRAINING"), built
        assert not _loud(code, "R-TTT-PREQUANT"), built
    on_val = program(LOADERS.replace("LOADER", "ValCalibLoader(val_tokens)"))
    assert _loud(on_val, "R-TTT-PREQUANT") or _loud(on_val, "R-DATA-NO-VAL-IN-TRAINING")
