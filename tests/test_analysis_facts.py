"""The shared substrate: taint labels across aliases, attributes, calls and classes; sites; loops."""

from __future__ import annotations

import textwrap

from audit.analysis import names as N
from audit.analysis.fstrings import downgrade_fstrings
from audit.analysis.parse import parse_source
from audit.analysis.program import build_program
from audit.analysis.valflow import analyse


def prog_of(code: str):
    pm = parse_source("train_gpt.py", textwrap.dedent(code))
    assert pm.tree is not None, pm.error
    return build_program([pm])


def fn(prog, name):
    return next(r.facts for r in prog.functions if r.facts.name == name)


def backward_labels(prog, name):
    return [s.labels for s in fn(prog, name).sites if s.kind == "backward"]


def test_alias_and_slices_carry_val():
    p = prog_of("""
        def main():
            val_tokens = load_validation_tokens("x")
            vt = val_tokens
            chunk = vt[0:64].to("cuda").reshape(1, -1)
            loss = model(chunk[:, :-1], chunk[:, 1:])
            loss.backward()
    """)
    assert N.VAL in backward_labels(p, "main")[0]


def test_reassignment_kills_val_label():
    p = prog_of("""
        def main():
            x = val_tokens[:64]
            x = next(train_loader)
            loss = model(x)
            loss.backward()
    """)
    (lab,) = backward_labels(p, "main")
    assert N.VAL not in lab and N.TRAIN in lab


def test_sizes_do_not_taint_indices():
    p = prog_of("""
        def main():
            n = val_tokens.numel() - 1
            for i in range(n):
                x = train_tokens[i:i + 8]
                model(x).sum().backward()
    """)
    (lab,) = backward_labels(p, "main")
    assert N.VAL not in lab


def test_attribute_and_keyword_through_two_calls():
    p = prog_of("""
        def inner(model, tokens):
            loss = model(tokens)
            loss.backward()

        def outer(model, data):
            inner(model.module, tokens=data.val_tokens)

        def main():
            outer(model, val_data)
    """)
    vf = analyse(p)
    inner = next(r for r in p.functions if r.facts.name == "inner")
    assert "tokens" in vf.val_params[inner.facts.qualname]


def test_config_object_does_not_taint_hyperparameters():
    p = prog_of("""
        class Hyperparameters:
            def __init__(self):
                self.train_files = "data/fineweb_train_*.bin"
                self.val_files = "data/fineweb_val_*.bin"
                self.seq_len = 1024

        def main():
            args = Hyperparameters()
            x = train_loader.next_batch(args.seq_len)
            model(x).backward()
    """)
    (lab,) = backward_labels(p, "main")
    assert N.VAL not in lab


def test_instances_of_one_loader_class_stay_apart():
    p = prog_of("""
        class Loader:
            def __init__(self, pattern):
                self.tokens = load(pattern)

            def next_batch(self):
                return self.tokens[:64]

        def main(args):
            train_loader = Loader(args.train_files)
            val_loader = Loader(args.val_files)
            x = train_loader.next_batch()
            model(x).backward()
            v = val_loader.next_batch()
            model(v).backward()
    """)
    first, second = backward_labels(p, "main")
    assert N.VAL not in first and N.TRAIN in first
    assert N.VAL in second


def test_grad_context_and_loops_are_recorded():
    p = prog_of("""
        def f(model, val_tokens):
            s = 0
            for ci in range(10):
                with torch.no_grad():
                    s += model(val_tokens[ci:ci + 8]).sum()
                model(val_tokens[ci:ci + 8]).sum().backward()
            return s
    """)
    ff = fn(p, "f")
    acc = next(s for s in ff.sites if s.kind == "accum")
    back = next(s for s in ff.sites if s.kind == "backward")
    assert acc.grad_off and not back.grad_off
    assert [lp.line for lp in acc.loops] == [lp.line for lp in back.loops] == [4]
    assert acc.order < back.order


def test_decorated_no_grad_function():
    p = prog_of("""
        @torch.no_grad()
        def ev(model, x):
            y = model(x)
            return y
    """)
    assert all(s.grad_off for s in fn(p, "ev").sites)


def test_param_writes_reach_caller_buffer():
    p = prog_of("""
        def fill(buf, src):
            buf[0] = src[:8]

        def main():
            xb = torch.zeros(8)
            fill(xb, val_tokens)
            model(xb).backward()
    """)
    (lab,) = backward_labels(p, "main")
    assert N.VAL in lab


def test_pep701_fstrings_keep_lines_and_words():
    src = 'x = f"{d["k"]}/fineweb_val_{i}.bin"\ny = 2\nz = f"""a\n{b["c"]}\n"""\nw = 3\n'
    out = downgrade_fstrings(src)
    assert out.count("\n") == src.count("\n")
    assert "fineweb_val_" in out
    import ast
    ast.parse(out)


def test_parse_source_recovers_pep701_code():
    pm = parse_source("t.py", 'x = f"{a["b"]}"\ndef f():\n    return 1\n')
    assert pm.tree is not None
