"""Token lists: the log-source check answers "same program, other formatting" from them before it
parses a log's copy, so equal lists must mean equal trees, and the shortcut must agree with the
parse on every pair it answers."""

from __future__ import annotations

import ast

import pytest

import audit.analysis.same_code as same_code
from audit.context import AuditContext, Options
from audit.submission import Submission
from audit.tokens import code_tokens, same_code_tokens

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


@pytest.mark.parametrize("text", FORMATTING_ONLY)
def test_formatting_leaves_the_token_list(text):
    assert code_tokens(text) == code_tokens(SCRIPT)
    assert same_code_tokens(text, code_tokens(SCRIPT))


@pytest.mark.parametrize("text", CHANGED + SAME_TREE_OTHER_TOKENS)
def test_code_changes_change_the_token_list(text):
    assert code_tokens(text) != code_tokens(SCRIPT)
    assert not same_code_tokens(text, code_tokens(SCRIPT))


def test_a_prefix_or_extension_is_not_the_same_list():
    tokens = code_tokens(SCRIPT)
    assert not same_code_tokens(SCRIPT[: len(SCRIPT) // 2], tokens)
    assert not same_code_tokens(SCRIPT + "y = 2\n", tokens)


def test_untokenizable_text_has_no_list():
    assert code_tokens('x = "unterminated\n') is None
    assert not same_code_tokens('x = "unterminated\n', code_tokens(SCRIPT))


def _ctx() -> AuditContext:
    return AuditContext(Submission.from_files({"train_gpt.py": SCRIPT}), Options())


@pytest.mark.parametrize("text", FORMATTING_ONLY + CHANGED + SAME_TREE_OTHER_TOKENS)
def test_same_syntax_agrees_with_ast_dump(text):
    expected = ast.dump(ast.parse(text)) == ast.dump(ast.parse(SCRIPT))
    assert same_code.same_syntax(_ctx(), text, SCRIPT) is expected


@pytest.mark.parametrize("text", FORMATTING_ONLY)
def test_formatting_only_copies_are_answered_without_a_parse(text, monkeypatch):
    def no_parse(_text):
        raise AssertionError("parsed although the tokens match")

    monkeypatch.setattr(same_code, "_parse", no_parse)
    assert same_code.same_syntax(_ctx(), text, SCRIPT) is True
