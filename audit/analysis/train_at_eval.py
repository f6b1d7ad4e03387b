"""Evaluation functions that read training data (asked by R-DATA-NO-TRAIN-AT-EVAL): a function
named like evaluation / TTT / scoring whose body names the training shards or loader."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from audit.analysis.eval_code import CodeUnit
from audit.analysis.imports import runtime_functions
from audit.analysis.syntax import walk_nodes

TRAIN_REF = re.compile(r"(train_files|fineweb_train|train_loader|train_tokens|train_shards|train_pattern|train_stream)")
EVAL_FN = re.compile(r"(eval|ttt|score|slot|test_time)", re.I)


@dataclass(frozen=True)
class TrainReadAtEval:
    unit: CodeUnit
    qualname: str
    def_line: int  # the evaluation function's definition
    line: int  # where the training data is named
    what: str


def train_reads_at_eval(ctx) -> list[TrainReadAtEval]:  # type: ignore[no-untyped-def]
    """The first training-data reference of every evaluation-time function of the run-time code."""
    def build() -> list[TrainReadAtEval]:
        out = []
        for unit, fns in runtime_functions(ctx):
            for fn in fns:
                if not EVAL_FN.search(fn.name) or (re.search("train", fn.name, re.I) and "ttt" not in fn.name.lower()):
                    continue
                hit = _train_reference(fn.node)
                if hit is None:
                    continue
                line, what = hit
                out.append(TrainReadAtEval(unit, fn.qualname, getattr(fn.node, "lineno", line), line, what))
        return out
    return ctx.memo("patterns.train_reads_at_eval", build)


def _train_reference(fn_node: ast.AST) -> tuple[int, str] | None:
    for n in walk_nodes(fn_node):
        text = None
        if isinstance(n, ast.Name):
            text = n.id
        elif isinstance(n, ast.Attribute):
            text = n.attr
        elif isinstance(n, ast.Constant) and isinstance(n.value, str) and len(n.value) < 300:
            text = n.value
        if text is not None and TRAIN_REF.search(text):
            return getattr(n, "lineno", 0), text[:60]
    return None
