"""Calls that reach the network (asked by R-ARTIFACT-SELF-CONTAINED): hub downloads, HTTP
clients, sockets, and shell commands that fetch (`curl`, `wget`, `git clone`). A call whose
literal arguments name a dataset or tokenizer is marked as data preparation (setup)."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from audit.analysis.eval_code import CodeUnit
from audit.analysis.imports import runtime_functions
from audit.analysis.syntax import dotted, walk_nodes

NET_MODULES = {"requests", "urllib", "request", "urllib3", "httpx", "aiohttp", "socket", "http", "client",
               "huggingface_hub", "hub", "datasets", "wget", "ftplib", "paramiko", "boto3", "gdown"}
NET_CALLS = {"hf_hub_download", "snapshot_download", "load_dataset", "urlopen", "urlretrieve",
             "download_url_to_file", "load_state_dict_from_url", "create_connection", "HTTPConnection",
             "HTTPSConnection", "list_repo_files", "cached_download", "get_file_from_repo"}
HTTP_VERBS = {"get", "post", "put", "head", "request", "urlopen", "connect", "download", "load", "Session"}
SHELL_NET = re.compile(r"\b(curl|wget|git\s+clone|scp|rsync|huggingface-cli|hf\s+download)\b|https?://")
DATA_PREP = re.compile(r"(dataset|fineweb|tokenizer|\.model\b|_bpe|shard)", re.I)
SHELL_CALLS = {"run", "call", "check_call", "check_output", "Popen", "system", "popen", "getoutput"}

@dataclass(frozen=True)
class NetworkCall:
    unit: CodeUnit
    line: int
    what: str  # the call as written, aliases resolved (`huggingface_hub.hf_hub_download`)
    data_prep: bool  # downloads the dataset or tokenizer (setup), judged from literal arguments


def network_calls(ctx) -> list[NetworkCall]:  # type: ignore[no-untyped-def]
    """Every network-reaching call of the run-time code, per file in line order."""
    def build() -> list[NetworkCall]:
        out = []
        for unit, fns in runtime_functions(ctx):
            aliases = _import_aliases([i for f in fns for i in f.imports])
            for node in sorted((c for f in fns for c in f.calls), key=lambda c: c.lineno):
                what = _network_call(node, aliases)
                if what is not None:
                    out.append(NetworkCall(unit, node.lineno, what, _is_data_prep(node)))
        return out
    return ctx.memo("patterns.network_calls", build)


def _import_aliases(nodes: list[ast.Import | ast.ImportFrom]) -> dict[str, str]:
    """local name -> imported module or object path (`hf` -> `huggingface_hub`)."""
    out: dict[str, str] = {}
    for node in nodes:
        if isinstance(node, ast.Import):
            for a in node.names:
                out[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                out[a.asname or a.name] = f"{node.module}.{a.name}"
    return out


def _network_call(call: ast.Call, aliases: dict[str, str]) -> str | None:
    # the whole chain, through calls and subscripts: `requests.Session().get` is requests' get
    parts = [p for p in dotted(call.func).split(".") if p]
    if not parts:
        return None
    head = aliases.get(parts[0], parts[0])
    full = ".".join([head, *parts[1:]])
    last = parts[-1]
    segments = set(full.split("."))
    if last in NET_CALLS or full.split(".")[-1] in NET_CALLS:
        return full
    if full.startswith("torch.hub.") and last in ("load", "download_url_to_file", "load_state_dict_from_url"):
        return full
    roots = full.split(".")
    if roots[0] in NET_MODULES - {"request", "client", "hub", "http"} and (last in HTTP_VERBS or len(roots) > 2):
        if roots[0] == "datasets" and last != "load_dataset":
            return None
        return full
    if {"urllib", "request"} <= segments or {"http", "client"} <= segments:
        return full
    if last in SHELL_CALLS and roots[0] in ("subprocess", "os"):
        text = " ".join(str(n.value) for n in walk_nodes(call) if isinstance(n, ast.Constant) and isinstance(n.value, str))
        if SHELL_NET.search(text) and not re.search(r"\bpip\b", text):
            return f"{full}({text[:60]!r})"
    return None


def _is_data_prep(call: ast.Call) -> bool:
    """A dataset/tokenizer download (setup), judged from the call's literal arguments."""
    text = " ".join(str(n.value) for n in walk_nodes(call) if isinstance(n, ast.Constant) and isinstance(n.value, str))
    return DATA_PREP.search(text) is not None
