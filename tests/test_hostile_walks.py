"""Hostile code shapes against the analysis walks (issue 10 item 9) and per-folder memory (issue 8
item 5): long one-line expressions must cost linear work, deep chains must not crash any rule,
and nothing of a folder's parsed trees may outlive its audit.

Work is measured in AST child visits (every walk goes through `ast.iter_child_nodes`), never in
wall-clock time.
"""

from __future__ import annotations

import ast
import gc
import json
from pathlib import Path

import pytest

from audit.analysis import syntax
from audit.context import AuditContext, Options
from audit.engine import audit_submission
from audit.submission import Submission


def _folder(tmp_path: Path, name: str, code: str) -> Path:
    d = tmp_path / name
    d.mkdir()
    (d / "train_gpt.py").write_text(code)
    (d / "README.md").write_text("# hostile shapes\n")
    (d / "submission.json").write_text(json.dumps({"name": name, "val_bpb": 1.2}))
    return d


def _static_audit(folder: Path):
    return audit_submission(Submission.load(folder), kinds=("static",))


def _visits(monkeypatch, folder: Path) -> int:
    """AST child visits made by a whole static check of `folder`."""
    count = [0]
    real = ast.iter_child_nodes

    def counting(node):
        count[0] += 1
        return real(node)

    monkeypatch.setattr(ast, "iter_child_nodes", counting)
    report = _static_audit(folder)
    monkeypatch.setattr(ast, "iter_child_nodes", real)
    assert report.errors == []
    return count[0]


def test_hostile_long_sum_line_costs_linear_work(tmp_path, monkeypatch):
    """`x = 1+1+...+1`: 4x the terms must cost about 4x the visits (a quadratic walk costs 16x)."""
    small = _folder(tmp_path, "small", "x = " + "+".join(["1"] * 600) + "\n")
    large = _folder(tmp_path, "large", "x = " + "+".join(["1"] * 2400) + "\n")
    v_small, v_large = _visits(monkeypatch, small), _visits(monkeypatch, large)
    assert v_large < 6 * v_small, (v_small, v_large)


def test_hostile_long_sum_of_names_in_a_function_costs_linear_work(tmp_path, monkeypatch):
    """The same inside a function, with distinct names the target/cache analyses look at."""
    def code(n: int) -> str:
        terms = "+".join(f"x[{i}] * y[{i}]" for i in range(n))
        return f"def score(x, y):\n    total = {terms}\n    return total\n"
    v_small = _visits(monkeypatch, _folder(tmp_path, "small", code(400)))
    v_large = _visits(monkeypatch, _folder(tmp_path, "large", code(1600)))
    assert v_large < 6 * v_small, (v_small, v_large)


DEEP = 2500


@pytest.mark.parametrize("shape", [
    "a" + ".b" * DEEP,  # attribute chain
    "a" + "[0]" * DEEP,  # subscript chain
    "f" + "()" * DEEP,  # call chain
    "a" + ".b()" * DEEP,  # method chain (too deep for Python's own parser: a parse finding)
])
def test_hostile_deep_chain_is_recorded_not_a_crash(tmp_path, shape):
    code = f"y = {shape}\n\ndef train(val_tokens):\n    z = {shape}\n    return z\n"
    folder = _folder(tmp_path, "deep", code)
    report = _static_audit(folder)
    assert report.errors == []
    explained = [f for f in report.findings if "nested too deeply" in f.message or "does not parse" in f.message]
    assert explained, [f.message for f in report.findings]
    assert len(report.findings) < 20


def test_hostile_deep_chain_under_a_small_recursion_limit(tmp_path):
    """Every walk is iterative or depth-bounded: a low recursion limit changes nothing."""
    import sys

    folder = _folder(tmp_path, "deep", "y = a" + ".b" * DEEP + "\n")
    sub = Submission.load(folder)
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(600)
    try:
        report = audit_submission(sub, kinds=("static",))
    finally:
        sys.setrecursionlimit(old)
    assert report.errors == []


def _ast_nodes_alive() -> int:
    gc.collect()
    # by type, not isinstance: some objects of other libraries warn when their class is asked
    return sum(1 for o in gc.get_objects() if issubclass(type(o), ast.AST))


def test_no_parsed_tree_outlives_its_folder(tmp_path):
    """Memos live on the nodes of one folder's trees: after an audit, none of its nodes remain,
    so a many-folder run does not grow with every folder."""
    code = ("import torch\n\ndef evaluate(model, val_tokens):\n    total = 0.0\n"
            "    for i in range(10):\n        total += model(val_tokens[i]).sum()\n    return total\n")
    audit_submission(Submission.load(_folder(tmp_path, "warm", code)))
    base = _ast_nodes_alive()
    for i in range(3):
        report = audit_submission(Submission.load(_folder(tmp_path, f"f{i}", code)))
        assert report.errors == []
        assert _ast_nodes_alive() <= base


_FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "submissions"


@pytest.mark.parametrize("name", sorted(p.name for p in _FIXTURES.iterdir() if p.is_dir()))
def test_a_check_leaves_its_trees_to_reference_counting(name):
    """Once its report is built, a folder's trees are freed by reference counting
    (`AuditContext.release`; no memo refers back to its own node), with the collector off: the
    collector has none of them to trace, which cost 0.1 s after each 170 KB script when it had."""
    folder = _FIXTURES / name
    audit_submission(Submission.load(folder))  # warm-up: lazy imports and caches of the process
    base = _ast_nodes_alive()
    gc.disable()
    try:
        report = audit_submission(Submission.load(folder))
        left = sum(1 for o in gc.get_objects() if issubclass(type(o), ast.AST))
    finally:
        gc.enable()
    assert report.findings or report.errors == []
    assert left <= base


def test_names_in_and_dotted_keep_both_readings():
    expr = ast.parse("self.t[y].sum() + [v for v in rows if v > k] + g(lambda q: q + w)", mode="eval").body
    assert syntax.names_in(expr) >= {"self", "t", "y", "sum", "v", "rows", "k", "g", "q", "w"}
    assert syntax.names_in(expr, variables=True) == {"self.t", "y", "rows", "k", "g"}
    call = ast.parse("torch.optim.AdamW(p)[0].step", mode="eval").body
    assert syntax.dotted(call) == "torch.optim.AdamW.step"
    assert syntax.dotted(call, variable=True) == ""
    assert syntax.dotted(ast.parse("self.x.y", mode="eval").body, variable=True) == "self.x"
    assert syntax.dotted(ast.parse("a.b.c", mode="eval").body, variable=True) == "a"
    deep = ast.parse("a" + ".b" * DEEP, mode="eval").body
    assert syntax.dotted(deep, variable=True) == "a"
    assert syntax.names_in(deep) == {"a", "b"}
    assert syntax.too_deep(ast.parse("x = a" + ".b" * DEEP))


def test_context_memo_holds_the_trees_only_for_its_folder(tmp_path):
    """The per-folder context is the only owner of parsed trees and analyses."""
    folder = _folder(tmp_path, "one", "def f(val_tokens):\n    return val_tokens.sum()\n")
    ctx = AuditContext(Submission.load(folder), Options())
    from audit.analysis.api import program

    prog = program(ctx)
    assert prog.functions
    before = _ast_nodes_alive()
    del ctx, prog
    assert _ast_nodes_alive() < before


def test_hostile_wide_expression_within_the_depth_bound_costs_linear_work(tmp_path, monkeypatch):
    """Shallow but wide (it is analysed, not skipped): `total = sum([x[0] * y[0], ...])`."""
    def code(n: int) -> str:
        terms = ", ".join(f"x[{i}] * y[{i}] ^ x[{i} - 1]" for i in range(1, n))
        return f"def score(x, y):\n    total = sum([{terms}])\n    return total\n"
    v_small = _visits(monkeypatch, _folder(tmp_path, "small", code(300)))
    v_large = _visits(monkeypatch, _folder(tmp_path, "large", code(1200)))
    assert v_large < 6 * v_small, (v_small, v_large)


def test_hostile_deep_guard_with_logs_and_a_finding(tmp_path):
    """Execution evidence (did the flagged code run?) reads `if` guards of every function; a
    2,500-deep guard in a script whose logs exist and that has a finding must not crash it."""
    deep = "a" + ".b" * DEEP
    code = (f"import torch\nif {deep}:\n    print(f\"val_bpb: {{x}}\")\n\n"
            "def adapt(model, opt, val_tokens):\n    for x in val_tokens:\n        loss = model(x).sum()\n"
            "        loss.backward()\n        opt.step()\n\n"
            "def evaluate(model, val_tokens):\n    total = 0.0\n    with torch.no_grad():\n"
            "        for x in val_tokens:\n            total += model(x).sum().item()\n    return total\n\n"
            "def main(model, opt, val_tokens):\n    print('step 1')\n"
            "    adapt(model, opt, val_tokens)\n    bpb = evaluate(model, val_tokens)\n    print(f\"val_bpb: {bpb}\")\n")
    folder = _folder(tmp_path, "deep_guard", code)
    (folder / "train_seed1.log").write_text("step 1\nval_bpb: 1.2\n")
    report = _static_audit(folder)
    assert report.errors == []
    assert any("nested too deeply" in f.message for f in report.findings)
    assert any(f.rule_id == "R-TTT-PREQUANT" and f.line for f in report.findings)
