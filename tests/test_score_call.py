"""Which call produces the claimed score (audit/analysis/score_call.py), on small programs of our own.

The shapes records use from April on: the score logged inside a wrapper that calls the evaluator
it is handed (`timed_eval(label, fn, *args)`), in a helper main calls, with the Hyperparameters
built in main, the model built by a factory and the validation data held by an object; and a
scalar conversion on the evaluator's result, which is never the evaluator itself.
"""

from __future__ import annotations

import ast
import textwrap

from audit.analysis.score_call import LoggedScores, find_score_call

HEADER = '''
import math, time
import torch
from torch import nn

class Hyperparameters:
    vocab_size = 64

class Net(nn.Module):
    def __init__(self, h):
        super().__init__()
        self.emb = nn.Embedding(h.vocab_size, 8)
    def forward(self, x):
        return self.emb(x)

class ValidationData:
    def __init__(self, h, device):
        self.val_tokens = torch.zeros(10, dtype=torch.long)
        self.base_bytes_lut, self.has_leading_space_lut, self.is_boundary_token_lut = luts(h)

def log(msg):
    print(msg)

def eval_plain(h, device, val_data, model):
    return 1.0, 2.0

def eval_adapting(h, model, device, val_data, stride=64):
    return 0.5, 0.9

def deserialize(cfg, device):
    m = Net(cfg).to(device)
    return m
'''

WRAPPED = HEADER + '''
def timed_eval(label, fn, *args, **kwargs):
    t0 = time.perf_counter()
    val_loss, val_bpb = fn(*args, **kwargs)
    log(f"{label} val_loss:{val_loss:.8f} val_bpb:{val_bpb:.8f} eval_time:{time.perf_counter() - t0:.0f}ms")
    return val_loss, val_bpb

def train_and_eval(h, device):
    val_data = ValidationData(h, device)
    timed_eval("pre-quantization post-ema", eval_plain, h, device, val_data, None)
    eval_model = deserialize(h, device)
    timed_eval("quantized", eval_plain, h, device, val_data, eval_model)
    if h.vocab_size > 0:
        adapt_model = deserialize(h, device)
        timed_eval("legal_ttt_exact", eval_adapting, h, adapt_model, device, val_data, stride=32)

def main():
    h = Hyperparameters()
    train_and_eval(h, "cpu")

if __name__ == "__main__":
    main()
'''


def _find(text: str, logged: LoggedScores | None = None):
    text = textwrap.dedent(text)
    return find_score_call("train_gpt.py", ast.parse(text), text, logged)


def test_a_logging_wrapper_is_followed_to_the_evaluator_it_is_handed():
    call = _find(WRAPPED)
    assert call is not None
    assert call.callee == "eval_adapting" and call.label == "legal_ttt_exact"
    assert call.call_args == ((None, "h"), (None, "adapt_model"), (None, "device"), (None, "val_data"), ("stride", "32"))
    assert call.main_name == "train_and_eval"
    assert any("timed_eval" in n for n in call.notes)


def test_hyperparameters_from_the_caller_and_the_model_from_its_factory():
    call = _find(WRAPPED)
    assert call is not None
    assert call.hparams and call.hparams[0].name == "h" and call.hparams[0].source == "Hyperparameters()"
    assert call.model is not None and call.model.name == "adapt_model" and call.model.source.startswith("Net(cfg)")
    assert "cfg" in call.hp_aliases  # the factory's own name for the Hyperparameters
    assert [b.name for b in call.objects] == ["val_data"] and call.objects[0].source == "ValidationData(h, device)"


def test_the_logged_claimed_label_picks_the_evaluation_not_the_last_one():
    logged = LoggedScores(("quantized",), frozenset({"pre-quantization post-ema", "quantized"}))
    call = _find(WRAPPED, logged)
    assert call is not None and call.label == "quantized" and call.callee == "eval_plain"
    assert call.call_args[-1] == (None, "eval_model")


def test_other_evaluations_that_do_not_train_are_not_replayed():
    call = _find(WRAPPED)
    assert call is not None
    assert not any("timed_eval" in st.source for st in call.steps), call.steps


ITEM = HEADER + '''
def main():
    args = Hyperparameters()
    model = Net(args)
    tokens = torch.zeros(10, dtype=torch.long)
    loss_t, bpb_t = eval_plain(args, "cpu", tokens, model)
    val_loss = loss_t.item()
    val_bpb = float(bpb_t)
    log(f"final_exact val_loss:{val_loss:.8f} val_bpb:{val_bpb:.8f}")
    acc = torch.zeros(())
    for t in tokens:
        acc += t
    sv_loss = (acc / 10).item()
    sv_bpb = sv_loss / math.log(2.0)
    log(f"final_slot_exact val_loss:{sv_loss:.8f} val_bpb:{sv_bpb:.8f}")

if __name__ == "__main__":
    main()
'''


def test_a_scalar_conversion_leads_back_to_the_evaluator_and_an_inline_score_is_no_candidate():
    call = _find(ITEM)
    assert call is not None
    # `.item()` / `float()` on the result: the evaluator is the call that produced it; the
    # inline accumulation logged last (a `.item()` on a tensor sum) is not an evaluator at all
    assert call.callee == "eval_plain" and call.label == "final_exact"
    assert call.model is not None and call.model.source == "Net(args)"


SWITCHED_OFF = HEADER + '''
def main():
    args = Hyperparameters()
    model = Net(args)
    tokens = torch.zeros(10, dtype=torch.long)
    sw_loss, sw_bpb = eval_plain(args, "cpu", tokens, model)
    log(f"final_sliding_exact val_loss:{sw_loss:.8f} val_bpb:{sw_bpb:.8f}")
    log(f"final_exact val_loss:{sw_loss:.8f} val_bpb:{sw_bpb:.8f}")
    if args.vocab_size > 100:
        ad_loss, ad_bpb = eval_adapting(args, model, "cpu", tokens)
        log(f"final_adapted_exact val_loss:{ad_loss:.8f} val_bpb:{ad_bpb:.8f}")
        log(f"final_exact val_loss:{ad_loss:.8f} val_bpb:{ad_bpb:.8f}")

if __name__ == "__main__":
    main()
'''


def test_a_block_whose_score_lines_were_not_logged_did_not_produce_the_claim():
    # without logs: the score logged last
    assert _find(SWITCHED_OFF).callee == "eval_adapting"  # type: ignore[union-attr]
    # the logs show `final_exact` but never `final_adapted_exact`: the switched-off block did not run
    logged = LoggedScores(("final_exact",), frozenset({"final_sliding_exact", "final_exact"}))
    call = _find(SWITCHED_OFF, logged)
    assert call is not None and call.callee == "eval_plain"


def test_labels_with_formatted_parts_match_the_logged_label():
    text = HEADER + '''
def main():
    args = Hyperparameters()
    model = Net(args)
    tokens = torch.zeros(10, dtype=torch.long)
    quant = "int6"
    a_loss, a_bpb = eval_plain(args, "cpu", tokens, model)
    log(f"final_{quant}_roundtrip_exact val_loss:{a_loss:.8f} val_bpb:{a_bpb:.8f}")
    b_loss, b_bpb = eval_adapting(args, model, "cpu", tokens)
    log(f"final_sliding stride:{64} val_loss:{b_loss:.8f} val_bpb:{b_bpb:.8f}")

if __name__ == "__main__":
    main()
'''
    logged = LoggedScores(("final_int6_roundtrip_exact",), frozenset({"final_int6_roundtrip_exact", "final_sliding"}))
    assert _find(text, logged).callee == "eval_plain"  # type: ignore[union-attr]
    logged = LoggedScores(("final_sliding",), logged.seen)  # the `stride:64` word is not part of the label
    assert _find(text, logged).callee == "eval_adapting"  # type: ignore[union-attr]


def test_fstring_parts_of_a_python_312_line_are_read_back():
    from audit.analysis.fstrings import downgrade_fstrings, fstring_parts

    line = 'x = 1; log(f"{label} val_bpb:{v:.8f} {", ".join(names)}")'
    (plain, parts), = fstring_parts(line)
    assert plain in downgrade_fstrings(line)
    assert parts[0] == (True, "label") and parts[1] == (False, " val_bpb:") and parts[2] == (True, "v:.8f")
    assert parts[-1] == (True, '", ".join(names)')


def test_the_cpu_port_requotes_python_312_fstrings_and_keeps_lines():
    from audit.probes.port import port_source

    src = 'names = ["a"]\nmsg = f"{", ".join(names)} {len(names)}"\nok = f"{names[0]}"\n'
    ported = port_source(src)
    assert ported.source.count("\n") == src.count("\n")
    ns: dict = {}
    exec(compile(ported.source, "ported.py", "exec"), ns)  # noqa: S102 - our own text
    assert ns["msg"] == "a 1" and ns["ok"] == "a"
    assert [r.line for r in ported.rewrites if "f-string" in r.kind] == [2]


HANDED_IN = HEADER + '''
def timed_eval(label, fn, *args, **kwargs):
    val_loss, val_bpb = fn(*args, **kwargs)
    log(f"{label} val_loss:{val_loss:.8f} val_bpb:{val_bpb:.8f}")
    return val_loss, val_bpb

def run_evals(h, device, val_data, eval_model):
    timed_eval("final_sliding", eval_adapting, h, eval_model, device, val_data)

def train_and_eval(h, device):
    val_data = ValidationData(h, device)
    eval_model = deserialize(h, device); run_evals(h, device, val_data, eval_model)

def main():
    h = Hyperparameters()
    train_and_eval(h, "cpu")

if __name__ == "__main__":
    main()
'''


def test_the_model_and_the_data_handed_in_by_a_caller_are_followed_to_where_they_are_built():
    call = _find(HANDED_IN)
    assert call is not None and call.callee == "eval_adapting" and call.main_name == "run_evals"
    assert call.model is not None and call.model.name == "eval_model" and call.model.source.startswith("Net(cfg)")
    assert [(b.name, b.source) for b in call.objects] == [("val_data", "ValidationData(h, device)")]
    assert call.hparams[0].source == "Hyperparameters()"


PRE_QUANT = HEADER + '''
def adapt_on(model, tokens, epochs):
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(epochs):
        model(tokens).sum().backward()
        opt.step()

def main():
    args = Hyperparameters()
    base_model = Net(args)
    tokens = torch.zeros(10, dtype=torch.long)
    d_loss, d_bpb = eval_plain(args, "cpu", tokens, base_model)
    log(f"diagnostic val_loss:{d_loss:.4f} val_bpb:{d_bpb:.4f}")
    epochs = 3
    if args.vocab_size > 0:
        adapt_on(base_model, tokens, epochs)
    state = base_model.state_dict()
    eval_model = Net(args)
    eval_model.load_state_dict(state)
    if args.vocab_size > 1:
        f_loss, f_bpb = eval_plain(args, "cpu", tokens, eval_model)
        log(f"final_exact val_loss:{f_loss:.8f} val_bpb:{f_bpb:.8f}")

if __name__ == "__main__":
    main()
'''


def test_adaptation_of_the_trained_model_before_a_fresh_scored_copy_is_replayed():
    call = _find(PRE_QUANT)
    assert call is not None and call.callee == "eval_plain" and call.model.name == "eval_model"  # type: ignore[union-attr]
    sources = [st.source for st in call.steps]
    # the adaptation of base_model (whose weights the scored copy loads) is replayed, with the
    # names it uses bound; the diagnostic evaluation, which trains nothing, is not
    assert sources == ["adapt_on(base_model, tokens, epochs)"], sources
    assert call.steps[0].guards == ("args.vocab_size > 0",)
    assert "epochs" in {b.name for b in call.bindings}


def test_an_if_around_the_score_call_is_not_a_guard_of_a_step_under_it():
    text = PRE_QUANT.replace("    if args.vocab_size > 0:\n        adapt_on", "    if args.vocab_size > 1:\n        adapt_on")
    text = text.replace("    state = base_model", "    if args.vocab_size > 1:\n        pass\n    state = base_model")
    call = _find(text.replace("""    if args.vocab_size > 1:
        adapt_on(base_model, tokens, epochs)
    if args.vocab_size > 1:
        pass
    state = base_model.state_dict()
    eval_model = Net(args)
    eval_model.load_state_dict(state)
    if args.vocab_size > 1:
        f_loss""", """    state = base_model.state_dict()
    eval_model = Net(args)
    eval_model.load_state_dict(state)
    if args.vocab_size > 1:
        adapt_on(eval_model, tokens, epochs)
        f_loss"""))
    assert call is not None and [st.source for st in call.steps] == ["adapt_on(eval_model, tokens, epochs)"]
    assert call.steps[0].guards == ()  # the score call ran under the same test


def test_the_cpu_port_turns_inference_mode_into_no_grad():
    from audit.probes.port import port_source

    ported = port_source("import torch\nwith torch.inference_mode():\n    pass\n")
    assert "torch.no_grad()" in ported.source and any("inference_mode" in r.kind for r in ported.rewrites)


def test_switches_the_logs_show_become_the_environment_the_script_reads():
    from types import SimpleNamespace

    from audit.probes.runner import _logged_env

    script = textwrap.dedent('''
        class Hyperparameters:
            ttt_enabled = bool(int(os.environ.get("TTT_ENABLED", "0")))
            use_ema: bool = os.environ.get("USE_EMA", "false") == "true"
            num_layers = int(os.environ.get("NUM_LAYERS", 11))
    ''')
    run = SimpleNamespace(hyperparameters={"ttt_enabled": "True", "use_ema": "True", "num_layers": "11"})
    ctx = SimpleNamespace(runs=[run, run])
    assert _logged_env(ctx, script) == {"TTT_ENABLED": "1", "USE_EMA": "true"}  # sizes stay the probe's
    off = SimpleNamespace(hyperparameters={"ttt_enabled": "False"})
    assert _logged_env(SimpleNamespace(runs=[off]), script) == {"TTT_ENABLED": "0"}
    assert _logged_env(SimpleNamespace(runs=[]), script) == {}


def test_logged_switches_take_the_form_the_script_parses_and_counts_are_left_alone():
    from types import SimpleNamespace

    from audit.probes.runner import _logged_env

    script = "class H:_E='1';gptq_enabled=bool(int(os.environ.get('GPTQ_ENABLED',_E)));" \
             "freeze_blocks=int(os.environ.get('FREEZE_BLOCKS','0'));layers=os.environ.get('LAYERS','')\n"
    run = SimpleNamespace(hyperparameters={"gptq_enabled": "True", "freeze_blocks": "1", "layers": ""})
    assert _logged_env(SimpleNamespace(runs=[run]), script) == {"GPTQ_ENABLED": "1"}


def test_byte_tables_built_into_a_data_object_are_found_for_the_byte_probe():
    call = _find(WRAPPED.replace("luts(h)", "build_sentencepiece_luts(self.sp, h.vocab_size, device)").replace(
        "        self.val_tokens =", "        self.sp = spm.SentencePieceProcessor(model_file='t.model')\n        self.val_tokens ="))
    assert call is not None and call.luts is not None
    assert call.luts.source == "build_sentencepiece_luts(self.sp, h.vocab_size, device)"
    assert call.sp_names == ("self.sp",)


def test_a_nested_logger_is_never_defined_but_a_nested_helper_the_evaluator_needs_is():
    text = PRE_QUANT.replace("    epochs = 3\n", "    epochs = 3\n    def log0(msg):\n        print(msg, file=logfile)\n"
                             "    def fwd(x):\n        return base_model(x)\n").replace(
        "adapt_on(base_model, tokens, epochs)", "adapt_on(base_model, tokens, epochs, log0)").replace(
        "eval_plain(args, \"cpu\", tokens, eval_model)", "eval_plain(args, fwd, tokens, eval_model)")
    call = _find(text)
    assert call is not None and call.defs is not None
    assert call.defs.name == "fwd" and "log0" not in call.defs.source


def test_the_probe_environment_passes_the_harness_policy():
    """A README's run command and the script's own reads are the submitter's: loader and Python
    start-up variables never reach the sandbox launcher; hyperparameters do."""
    from types import SimpleNamespace

    from audit.probes.runner import _submission_env

    readme = SimpleNamespace(text="```\nLD_LIBRARY_PATH=. LD_PRELOAD=evil.so PYTHONINSPECT=1 GCONV_PATH=. "
                                  "TTT_ENABLED=1 torchrun --nproc_per_node=8 train_gpt.py\n```\n")
    script = textwrap.dedent('''
        class Hyperparameters:
            ttt_enabled = bool(int(os.environ.get("TTT_ENABLED", "0")))
            preload = bool(int(os.environ.get("LD_PRELOAD", "0")))
    ''')
    run = SimpleNamespace(hyperparameters={"ttt_enabled": "True", "preload": "True"})
    ctx = SimpleNamespace(submission=SimpleNamespace(readme=readme), runs=[run])
    env, logged, refused = _submission_env(ctx, script)
    assert env == {"TTT_ENABLED": "1"} and logged == {"TTT_ENABLED": "1"}
    assert set(refused) == {"LD_LIBRARY_PATH", "LD_PRELOAD", "PYTHONINSPECT", "GCONV_PATH"}
