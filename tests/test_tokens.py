"""Token lists: the log-source check answers "same program, other formatting" from them before it
parses a log's copy, so equal lists must mean equal trees, and the shortcut must agree with the
parse on every pair it answers."""

from __future__ import annotations

import ast

import pytest

import audit.analysis.same_code as same_code
from audit.context import AuditContext, Options
from audit.submission import Submission
from audit.tokens import code_tokens, same_program

SCRIPT = '''"""Doc."""
import os


def train(steps):
    total = 0  # running sum
    for step in range(steps):
        total += step
    return total


if __name__ == "__main__":
    print(train(int(os.environ.get("STEPS", "3"))))
'''

FORMATTING_ONLY = [
    SCRIPT.replace("  # running sum", ""),  # a comment dropped
    SCRIPT.replace("\n\n\n", "\n\n"),  # blank lines
    SCRIPT.replace("\n", "\r\n"),  # line ends
    SCRIPT.replace("    ", "  "),  # indentation width
    SCRIPT.replace("total += step", "total   +=   step"),  # spacing
    SCRIPT + "# trailing comment\n",
]
CHANGED = [
    SCRIPT.replace('"3"', '"4"'),
    SCRIPT.replace("total += step", "total -= step"),
    SCRIPT.replace('"""Doc."""', '"""Other doc."""'),
    SCRIPT + "x = 1\n",
]
SAME_TREE_OTHER_TOKENS = [
    SCRIPT.replace("total = 0", "total = (0)"),
    SCRIPT.replace('"STEPS"', "'STEPS'"),
]


ELIF = """def sign(x):
    if x > 0:
        return 1
    elif x < 0:
        return -1
    return 0
"""
ELSE_IF = """def sign(x):
    if x > 0:
        return 1
    else:
        if x < 0:
            return -1
    return 0
"""
NAMES_CHANGED = [
    SCRIPT.replace("total", "acc"),
    SCRIPT.replace("import os", "import os, sys"),
    SCRIPT.replace("return total", "return total + steps"),
]
SAME_NAMES_OTHER_TREE = [  # names agree, the trees differ: only a parse can tell
    SCRIPT.replace('"3"', '"4"'),
    SCRIPT.replace("total += step", "total -= step"),
    SCRIPT.replace('"""Doc."""', '"""Other doc."""'),
]


@pytest.mark.parametrize("text", FORMATTING_ONLY)
def test_formatting_leaves_the_token_list(text):
    assert code_tokens(text) == code_tokens(SCRIPT)
    assert same_program(text, code_tokens(SCRIPT)) is True


@pytest.mark.parametrize("text", NAMES_CHANGED)
def test_other_names_are_another_program(text):
    assert same_program(text, code_tokens(SCRIPT)) is False


@pytest.mark.parametrize("text", SAME_NAMES_OTHER_TREE + SAME_TREE_OTHER_TOKENS)
def test_same_names_other_tokens_need_a_parse(text):
    assert code_tokens(text) != code_tokens(SCRIPT)
    assert same_program(text, code_tokens(SCRIPT)) is None


def test_elif_is_else_if():
    assert ast.dump(ast.parse(ELIF)) == ast.dump(ast.parse(ELSE_IF))
    assert same_program(ELSE_IF, code_tokens(ELIF)) is None  # not False: the trees are the same
    assert same_program(ELIF, code_tokens(ELSE_IF)) is None


def test_keywords_before_a_starred_argument_are_the_same_call():
    before, after = "f(k=v, *a)\n", "f(*a, k=v)\n"
    assert ast.dump(ast.parse(before)) == ast.dump(ast.parse(after))
    assert same_program(before, code_tokens(after)) is None


def test_identifiers_are_compared_as_the_parser_reads_them():
    ligature = "\ufb01le = 1\nprint(\ufb01le)\n"  # 'ﬁle': NFKC makes it 'file'
    plain = "file = 1\nprint(file)\n"
    assert ast.dump(ast.parse(ligature)) == ast.dump(ast.parse(plain))
    assert same_program(ligature, code_tokens(plain)) is not False


def test_a_prefix_or_extension_is_not_the_same_program():
    tokens = code_tokens(SCRIPT)
    assert same_program(SCRIPT[: len(SCRIPT) // 2], tokens) is not True
    assert same_program(SCRIPT + "y = 2\n", tokens) is False
    assert same_program(SCRIPT + "y\n", tokens) is False


def test_untokenizable_text_has_no_list():
    assert code_tokens('x = "unterminated\n') is None
    assert same_program('x = "unterminated\n', code_tokens(SCRIPT)) in (None, False)


def _ctx() -> AuditContext:
    return AuditContext(Submission.from_files({"train_gpt.py": SCRIPT}), Options())


ALL_VARIANTS = FORMATTING_ONLY + CHANGED + SAME_TREE_OTHER_TOKENS + NAMES_CHANGED + SAME_NAMES_OTHER_TREE


@pytest.mark.parametrize("text", ALL_VARIANTS)
def test_same_syntax_agrees_with_ast_dump(text):
    expected = ast.dump(ast.parse(text)) == ast.dump(ast.parse(SCRIPT))
    assert same_code.same_syntax(_ctx(), text, SCRIPT) is expected


@pytest.mark.parametrize(("text", "same"), [(t, True) for t in FORMATTING_ONLY] + [(t, False) for t in NAMES_CHANGED])
def test_the_tokens_answer_without_a_parse(text, same, monkeypatch):
    """Copies that differ only in formatting, and copies with other names."""
    def no_parse(_text):
        raise AssertionError("parsed although the tokens tell")

    monkeypatch.setattr(same_code, "_parse", no_parse)
    assert same_code.same_syntax(_ctx(), text, SCRIPT) is same


@pytest.mark.parametrize("module", ["ast", "argparse", "dataclasses", "inspect", "typing"])
def test_token_answers_agree_with_the_parse_on_real_code(module):
    """Every line of a stdlib module dropped in turn (and each line's names renamed): whenever
    the tokens answer, the answer is what comparing the parsed trees says."""
    import importlib
    from pathlib import Path

    source = Path(importlib.import_module(module).__file__).read_text(encoding="utf-8")
    lines = source.splitlines(keepends=True)
    base = code_tokens(source)
    base_dump = ast.dump(ast.parse(source))
    assert same_program(ast.unparse(ast.parse(source)), base) is not False  # one tree, other tokens
    answered = 0
    for k in range(0, len(lines), max(1, len(lines) // 12)):
        for variant in ("".join(lines[:k] + lines[k + 1:]), "".join(lines[:k] + [lines[k].replace("self", "this")] + lines[k + 1:])):
            told = same_program(variant, base)
            if told is None:
                continue
            answered += 1
            try:
                expected = ast.dump(ast.parse(variant)) == base_dump
            except SyntaxError:
                expected = False
            assert told is expected, (module, k)
    assert answered > 0


def test_a_shipped_file_is_parsed_once(monkeypatch):
    """The submitted side is the folder's own parse of the shipped file, even when no analysed
    source holds it (a file too large to analyse): a second tree of a 4 MB script doubled the peak."""
    monkeypatch.setattr(same_code, "analysis_sources", lambda ctx: [])
    parsed: list[str] = []
    real = same_code._parse
    monkeypatch.setattr(same_code, "_parse", lambda text: parsed.append(text) or real(text))
    for text in CHANGED + SAME_NAMES_OTHER_TREE:
        expected = ast.dump(ast.parse(text)) == ast.dump(ast.parse(SCRIPT))
        assert same_code.same_syntax(_ctx(), text, SCRIPT) is expected
    assert SCRIPT not in parsed


def test_copies_of_the_script_are_not_all_parsed(monkeypatch):
    monkeypatch.setattr(same_code, "analysis_sources", lambda ctx: [])
    ctx = AuditContext(Submission.from_files({"train_gpt.py": SCRIPT, "copy.py": SCRIPT}), Options())
    assert same_code.same_syntax(ctx, CHANGED[0], SCRIPT) is False
    assert len([p for p in ("train_gpt.py", "copy.py") if p in ctx._parsed]) == 1
