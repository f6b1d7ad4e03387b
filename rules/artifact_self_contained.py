"""R-ARTIFACT-SELF-CONTAINED: no network or hub access in the code that trains and evaluates.

README: the artifact must be self-contained; evaluation may not download anything or call the
network. Data preparation (downloading FineWeb or a tokenizer before training) and `pip install`
are setup and allowed, so only train_gpt.py and the local modules it imports are examined;
stand-alone data-prep scripts shipped next to it are not.
"""

from __future__ import annotations

from collections.abc import Iterable

from audit.analysis.api import network_calls, train_reads_at_eval
from audit.context import AuditContext
from audit.findings import Evidence, Finding, Severity
from audit.rule import README_RULE_DATE, Invalid, Rule, RuleDoc, Valid

# Calls that fetch from the network, by their last name, when made on a module of this set
_GOOD = '''
import subprocess
import sys

import torch


def main():
    subprocess.run([sys.executable, "-m", "pip", "install", "brotli"], check=False)
    model = torch.nn.Linear(4, 4)
    torch.save(model.state_dict(), "final_model.pt")
'''

_HUB = '''
import torch
from huggingface_hub import hf_hub_download


def eval_val(model):
    path = hf_hub_download(repo_id="someone/ngram-tables", filename="tables.npz")
    return torch.load(path)
'''

_DATA_PREP = '''
import os

from huggingface_hub import snapshot_download


def setup_data(ds):
    if not os.path.exists(os.path.join(ds, "fineweb_train_000000.bin")):
        snapshot_download(repo_id="someone/fineweb_sp8192", repo_type="dataset", local_dir=ds)
'''

_CURL = '''
import os
import subprocess


def fetch_tables():
    subprocess.run(["curl", "-L", "-o", "tables.bin", "https://example.com/tables.bin"], check=True)
    return os.path.getsize("tables.bin")
'''

_REQUESTS = '''
import requests


def remote_score(tokens):
    return requests.post("https://example.com/score", json={"tokens": tokens}).json()["bpb"]
'''


class ArtifactSelfContained(Rule):
    ID = "R-ARTIFACT-SELF-CONTAINED"
    TITLE = "Network or hub access from the training/evaluation code"
    SEVERITY = Severity.ERROR
    KIND = "static"
    SOURCE = "RULES.md A R-ARTIFACT-SELF-CONTAINED (README FAQ: artifact size; evaluation restrictions)"
    DOC = RuleDoc(
        why="During evaluation there may be no external downloads, no network calls and no access"
            " to training data (unless those bits are paid for inside the 16 MB). The artifact "
            "must be fully self-contained and reproducible.",
        ruling="README (FAQ artifact size; FAQ evaluation restrictions).",
        date=README_RULE_DATE,
        sources=(
            "README FAQ: artifact size; evaluation restrictions",
        ),
    )
    VALID = [
        Valid(_GOOD, "pip install of a package is setup"),
        Valid({"train_gpt.py": _GOOD, "download_data.py": _HUB},
              "a data-prep script that downloads, not imported by train_gpt.py"),
    ]
    INVALID = [
        Invalid(_HUB, "hf_hub_download at evaluation", line=6, severity=Severity.ERROR),
        Invalid(_DATA_PREP, "train_gpt.py downloads the dataset itself: a warning", line=8,
                severity=Severity.WARNING),
        Invalid(_CURL, "curl from a subprocess", line=6),
        Invalid(_REQUESTS, "remote scoring over HTTP", line=5),
        Invalid({"train_gpt.py": "import torch\nfrom tables import load_tables\n\nT = load_tables()\n",
                 "tables.py": _HUB.replace("def eval_val(model)", "def load_tables()")},
                "a helper module imported by train_gpt.py downloads", path="tables.py", line=7),
    ]

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        for nc in network_calls(ctx):
            unit, what, line = nc.unit, nc.what, nc.line
            label = "network access" + (" [decoded wrapper text]" if unit.decoded_from else "")
            if nc.data_prep:
                yield self.finding(
                    f"R-ARTIFACT-SELF-CONTAINED: {unit.path} downloads data itself (`{what}`). "
                    "Fetching the dataset or tokenizer is setup and is allowed before training, but "
                    "it must not happen during evaluation and the data must be the official one; "
                    "prefer a separate data-preparation script.",
                    path=unit.path, line=line, severity=Severity.WARNING,
                    evidence=[Evidence(label + " (dataset/tokenizer download)", unit.path, line,
                                       unit.parsed.line_text(line)[:200] or None)],
                    key=f"net:{unit.path}:{what}",
                )
                continue
            yield self.finding(
                f"R-ARTIFACT-SELF-CONTAINED: {unit.path} calls `{what}`, which reaches the network. "
                "The artifact must be self-contained: training and evaluation may not download files, "
                "call remote services or read outside data (unless those bits are counted in the "
                "16,000,000 bytes). Move downloads into a separate data-preparation step run before "
                "training, or ship what is needed inside the artifact.",
                path=unit.path, line=line,
                evidence=[Evidence(label, unit.path, line, unit.parsed.line_text(line)[:200] or None)],
                key=f"net:{unit.path}:{what}",
            )


_EVAL_READS_TRAIN = '''
import glob

import numpy as np


def eval_val_ngram(args, model, val_tokens):
    shards = sorted(glob.glob(args.train_files))
    table = np.concatenate([np.fromfile(f, dtype="<u2", offset=1024) for f in shards])
    return model(val_tokens, table)
'''

_TRAIN_THEN_EVAL = '''
import glob

import numpy as np


def train(args, model):
    shards = sorted(glob.glob(args.train_files))
    return model.fit(np.fromfile(shards[0], dtype="<u2", offset=1024))


def eval_val(args, model, val_tokens):
    return model.score(val_tokens)
'''


class DataNoTrainAtEval(Rule):
    ID = "R-DATA-NO-TRAIN-AT-EVAL"
    TITLE = "Training shards read by evaluation code"
    SEVERITY = Severity.ERROR
    KIND = "static"
    SOURCE = ("RULES.md C R-DATA-NO-TRAIN-AT-EVAL and A R-ARTIFACT-SELF-CONTAINED (README FAQ; valerio-oai "
              "on #593/#609, second-hand): https://github.com/openai/parameter-golf/issues/677")
    DOC = RuleDoc(
        checks="Evaluation code (the scoring functions and what they call) that reads the "
               "training shards, e.g. to build n-gram tables at eval time. Training reads of the "
               "same shards are fine.",
        why="Eval may not read training shards unless the bits are paid for in the 16 MB (e.g. "
            "n-gram tables packed into the artifact).",
        ruling="README; RULING (valerio-oai on #593/#609 GPTQ calibration, second-hand).",
        date=README_RULE_DATE,
        sources=(
            "README FAQ: evaluation restrictions",
            "https://github.com/openai/parameter-golf/issues/677",
            "https://github.com/openai/parameter-golf/issues/140",
        ),
    )
    VALID = [Valid(_TRAIN_THEN_EVAL, "training reads the train shards, evaluation does not")]
    INVALID = [Invalid(_EVAL_READS_TRAIN, "an n-gram table built from the train shards inside eval", line=7)]

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        for hit in train_reads_at_eval(ctx):
            unit, line, def_line = hit.unit, hit.line, hit.def_line
            tag = " [decoded wrapper text]" if unit.decoded_from else ""
            yield self.finding(
                f"R-DATA-NO-TRAIN-AT-EVAL: the evaluation function `{hit.qualname}` reads training data "
                f"(`{hit.what}`). Evaluation may not access the training shards unless those bits are paid for "
                "inside the 16,000,000-byte artifact; tables or statistics built from training data must "
                "be computed during training and shipped in the artifact.",
                path=unit.path, line=line,
                evidence=[Evidence("evaluation-time function" + tag, unit.path, def_line,
                                   unit.parsed.line_text(def_line)[:200] or None),
                          Evidence("training data referenced" + tag, unit.path, line,
                                   unit.parsed.line_text(line)[:200] or None)],
                key=f"train-at-eval:{hit.qualname}",
            )
