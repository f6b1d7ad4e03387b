"""Lead side of the probes: find the evaluator, port the code, run the driver in the sandbox, judge.

The submission's code is never imported here. Steps: the static analysis names the call behind
the claimed score (`audit.analysis.api.score_call`); the folder is copied to scratch and every
Python file is replaced by its CPU port (same lines); the driver runs there under the harness
isolation (scrubbed environment, network cut where the kernel allows, a deadline, every process
killed at the end); its measurements come back as JSON and are judged by `kraft` here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from audit.probes import kraft

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_VOCAB = 384  # small BPE over 256 byte-fallback pieces, 4 controls and the required characters: V+1 runs stay cheap
DEFAULT_N = 24  # targets in the probe stream
CHUNK = 12  # TTT chunk size set for the probe: two chunks in the stream, a third holding the candidate
TINY_ENV = {"NUM_LAYERS": "2", "MODEL_DIM": "64", "NUM_HEADS": "4", "NUM_KV_HEADS": "2", "MLP_MULT": "2",
            "VAL_BATCH_SIZE": "65536", "ITERATIONS": "1", "WARMUP_STEPS": "0", "SEED": "1337"}


@dataclass
class ProbeOutcome:
    """What one probe run measured, for findings and the bench."""

    folder: str
    status: str  # ok | not-applicable
    category: str = ""
    reason: str = ""
    evaluator: str = ""
    path: str | None = None  # file a reviewer opens (the wrapper for a packed script)
    line: int | None = None
    decoded: bool = False
    rewrites: list[dict] = field(default_factory=list)
    kraft: dict | None = None  # value, p_max, p_min, candidates, tolerance..., twin
    bytes: dict | None = None
    config: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    replayed: list[dict] = field(default_factory=list)  # main's val-consuming steps run before the evaluator
    skipped_steps: list[str] = field(default_factory=list)
    env_from_logs: dict[str, str] = field(default_factory=dict)  # switches the logs prove were set
    env_refused: dict[str, str] = field(default_factory=dict)  # README/script variables refused, and why

    def to_dict(self) -> dict:
        return asdict(self)


def probe_data(vocab: int = DEFAULT_VOCAB):
    """Our own tokenizer + shards at the probe's small vocabulary, built once into the user cache."""
    from reference_impl.fixture_data import ensure_fixture_data

    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pgolf-audit" / f"probe-data-v{vocab}"
    return ensure_fixture_data(cache, vocab_size=vocab)


def sample_texts(k: int = 40) -> list[str]:
    from reference_impl.fixture_data import generate_documents

    return generate_documents(k, seed=7)


def run_probe(folder: Path, *, timeout_s: float = 300.0, vocab: int = DEFAULT_VOCAB, n: int = DEFAULT_N,
              allow_network: bool = False, threads: int = 1, keep_scratch: bool = False) -> ProbeOutcome:
    from audit.analysis.api import score_call
    from audit.context import AuditContext
    from audit.submission import Submission

    folder = Path(folder)
    ctx = AuditContext(Submission.load(folder))
    found = score_call(ctx)
    if found is None:
        if not any(py.stat().st_size > 0 for py in folder.rglob("*.py") if py.is_file()):
            return ProbeOutcome(str(folder), "not-applicable", "no script",
                                "the folder ships no (non-empty) Python script to drive")
        return ProbeOutcome(str(folder), "not-applicable", "no claimed-score call",
                            "the static analysis found no evaluator call, in main, the functions it calls or a "
                            "logging wrapper, whose result is logged as val_bpb/val_loss")
    src, call = found
    out = ProbeOutcome(str(folder), "not-applicable", evaluator=call.callee, path=src.decoded_from or src.path,
                       line=call.line, decoded=src.decoded_from is not None)
    if call.hparams == () or call.model is None:
        out.category, out.reason = "unusual construction", (
            "main builds no Hyperparameters-like object" if not call.hparams else
            "main constructs no nn.Module subclass of the script from its Hyperparameters")
        return out
    scratch = Path(tempfile.mkdtemp(prefix="pgolf-probe-"))
    try:
        return _run_in_scratch(folder, scratch, ctx, src, call, out, timeout_s, vocab, n, allow_network, threads)
    finally:
        if not keep_scratch:
            shutil.rmtree(scratch, ignore_errors=True)


def _run_in_scratch(folder, scratch, ctx, src, call, out, timeout_s, vocab, n, allow_network, threads) -> ProbeOutcome:
    from audit.harness.sandbox import copy_submission
    from audit.probes.port import port_source

    work = scratch / "sub"
    copy_submission(folder, work)
    module_rel = src.path if src.decoded_from is None else f"{Path(src.path).stem}_pgolf_decoded.py"
    module_rel = module_rel.replace("/", "_") if src.decoded_from is not None else module_rel
    (work / module_rel).write_text(src.parsed.source, encoding="utf-8")
    blockers: list[str] = []
    stubbed: list[str] = []
    for py in sorted(work.rglob("*.py")):
        try:
            ported = port_source(py.read_text(encoding="utf-8"))
        except Exception as exc:  # noqa: BLE001 - a file libcst cannot parse is left as is
            if py.name == Path(module_rel).name:
                out.category, out.reason = "cannot port", f"libcst could not port {module_rel}: {exc}"[:300]
                return out
            continue
        py.write_text(ported.source, encoding="utf-8")
        rel = py.relative_to(work).as_posix()
        shown = out.path if rel == module_rel else rel
        out.rewrites += [{**r.to_dict(), "path": shown} for r in ported.rewrites]
        blockers += list(ported.blockers)
        stubbed += list(ported.stubbed)
    shutil.copyfile(Path(__file__).with_name("flash_shim.py"), work / "_pgolf_flash.py")
    if blockers:
        out.category, out.reason = blockers[0].split(" (")[0], "; ".join(blockers[:3])
        return out
    data = probe_data(vocab)
    # Window layouts tried in one driver run, until one scores x as n targets and x.v as n+1:
    # a single window holding the whole stream (sliding evaluators with partial windows), short
    # windows at stride 1 (sliding evaluators that only take whole windows), and windows of one
    # token (evaluators that trim the stream to whole windows: the appended token is then scored).
    configs: list[dict[str, Any]] = [
               {"label": "one window", "overrides": {"seq_len": n + 8, "stride": n + 8, "chunk": CHUNK}},
               {"label": "short windows, stride 1", "overrides": {"seq_len": 8, "stride": 1, "chunk": CHUNK}},
               {"label": "unit windows", "overrides": {"seq_len": 1, "stride": 1, "chunk": CHUNK}}]
    # main's own val steps (pre-quant TTT in main) train only on whole seq_len sequences: 1-token windows
    # first. (Not for evaluators that adapt inside: their chunking keeps the candidate, and 1-token
    # sequences would make their V+1 runs far slower.)
    if call.steps:
        configs = configs[::-1]
    first = max(configs, key=lambda c: c["overrides"]["seq_len"])["overrides"]
    # DATA_PATH is a scratch copy whose validation shard the driver rewrites with each probe stream,
    # so an evaluator that reads the shards itself (not the tokens it is handed) sees the same stream.
    probe_dir = scratch / "data"
    probe_dir.mkdir()
    for shard in sorted(data.data_path.glob("fineweb_train_*.bin"))[:1]:
        shutil.copyfile(shard, probe_dir / shard.name)
    shutil.copyfile(data.data_path / "fineweb_val_000000.bin", probe_dir / "fineweb_val_000000.bin")
    declared, out.env_from_logs, out.env_refused = _submission_env(ctx, src.parsed.source)
    env = {**declared, **TINY_ENV, **data.env(), "DATA_PATH": str(probe_dir), "TRAIN_SEQ_LEN": str(first["seq_len"]),
           "EVAL_SEQ_LEN": str(first["seq_len"]), "EVAL_STRIDE": str(first["stride"]), "TTT_CHUNK_TOKENS": str(CHUNK)}
    for c in configs:
        c["overrides"]["val_batch"] = 65536
    spec = {"module_file": str(work / module_rel), "env": env, "configs": configs,
            "score_call": _call_dict(call), "vocab_size": vocab, "n": n, "bos": 1,
            "val_shard": str(data.data_path / "fineweb_val_000000.bin"), "tokenizer": str(data.tokenizer_path),
            "stream_shard": str(probe_dir / "fineweb_val_000000.bin"),
            "sample_texts": sample_texts(), "bytes_probe": True, "threads": threads,
            "stub_modules": sorted(set(stubbed))}
    result = _launch(scratch, work, spec, timeout_s, allow_network)
    layout = result.get("layout") or {}
    out.config = {"windows": layout.get("label", "none"), **layout.get("overrides", {}), "vocab": vocab, "n": n}
    out.bytes = result.get("bytes")
    if result.get("status") != "ok":
        out.category, out.reason = result.get("category", "crashed"), result.get("reason", "")
        return out
    out.status = "ok"
    rejected = {int(v): why for v, why in result.get("rejected", {}).items()}
    # A candidate the evaluator cannot score (an assertion on a trailing BOS) is counted with the
    # legal twin's probability for it, and said so in the evidence.
    nll_xv = [n if n is not None else result["nll_x"] + result["twin_nll_xv"][v] - result["twin_nll_x"]
              for v, n in enumerate(result["nll_xv"])]
    k = kraft.KraftMeasure.of(result["nll_x"], nll_xv)
    twin = kraft.KraftMeasure.of(result["twin_nll_x"], result["twin_nll_xv"])
    tol = kraft.tolerance(twin, result["nll_x"], result["nll_x_again"])
    # Stopped early: the sum over the candidates run is a lower bound of the whole sum, which is
    # a violation only if that bound is already above the reference plus the tolerance.
    stopped = bool(result.get("stopped_early"))
    violated = k.value > tol.reference + tol.value if stopped else kraft.violated(k, tol)
    if stopped and not violated:
        out.status, out.category = "not-applicable", "tolerance"
        out.reason = (f"the candidate loop stopped at a partial sum of {k.value:.6g} after {k.candidates} of {vocab} "
                      f"candidates, which the measured tolerance ({tol.value:.1e}) does not decide")
        return out
    out.kraft = {"value": k.value, "p_max": k.p_max, "p_min": k.p_min, "candidates": k.candidates,
                 "stopped_early": stopped, "vocab": vocab,
                 "violated": violated, "tolerance": tol.value, "tolerance_explained": tol.explain(),
                 "reference": tol.reference, "twin_offset": tol.twin_offset,
                 "twin": twin.value, "nll_x": result["nll_x"], "nll_x_again": result["nll_x_again"],
                 "rejected": {str(v): why for v, why in rejected.items()}}
    out.timings = {k2: result[k2] for k2 in ("setup_s", "plain_eval_s", "kraft_runs_s", "total_s", "runs") if k2 in result}
    out.replayed = [{"line": ln, "path": out.path} for ln in result.get("replayed_lines", [])]
    out.skipped_steps = result.get("skipped_steps", [])
    return out


def _submission_env(ctx, source: str) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """(what the submission sets for the probe run, of it what the logs prove, what was refused).
    The README and the script are the submitter's: every variable passes the harness's own policy
    (`envpolicy.screen`), so `LD_LIBRARY_PATH=. LD_PRELOAD=x.so` in a run command cannot load a
    shipped library into the sandbox's launcher before it isolates anything."""
    from audit.harness.envpolicy import screen

    readme, refused = screen(_readme_env(ctx))
    logged, refused_logged = screen(_logged_env(ctx, source))
    return {**readme, **logged}, logged, {**refused, **refused_logged}


def _readme_env(ctx) -> dict[str, str]:
    """The K=V settings of the README's run command (TTT_EPOCHS=3 ...): the configuration that was
    scored, e.g. a TTT step switched on there but off by default. The tiny config and our data win."""
    from audit.harness.readme_env import declared_env

    readme = ctx.submission.readme
    try:
        declared = declared_env(readme.text or "") if readme is not None else {}
    except Exception:  # noqa: BLE001 - an unreadable README leaves the script's defaults
        return {}
    return {k: v for k, v in declared.items() if "/" not in v and k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}


_ENV_READ = re.compile(r"""(\w+)\s*(?::[ \t]+[\w\[\], .|]+?)?[ \t]*=([^\n;]*?os\.(?:environ\.get|getenv)\(\s*['"](\w+)['"][^\n;]*)""")
_AS_INT = re.compile(r"""\bint\(\s*os\.(?:environ\.get|getenv)\(""")
_COMPARED = re.compile(r"""(?:==|!=)\s*['"]([^'"]+)['"]""")


def _switch_values(statement: str) -> tuple[str, str] | None:
    """("on", "off") as the script's own read of the variable parses them: `bool(int(os.environ.get(
    "X", "0")))` -> ("1", "0"); `os.environ.get("X", "false") == "true"` -> ("true", "false");
    None when the read is not an on/off switch (a list of layers, a path)."""
    if _AS_INT.search(statement):
        return "1", "0"
    cmp = _COMPARED.search(statement)
    if cmp is not None:
        on = cmp.group(1)
        if "!=" in statement[cmp.start():cmp.start() + 2]:
            return None
        return on, ("0" if on.isdigit() else "false" if on.lower() == "true" else "no" if on.lower() == "yes" else "")
    return None


def _logged_env(ctx, text: str) -> dict[str, str]:
    """On/off switches that every log's hyperparameter dump shows (`ttt_enabled: True`), as the
    environment variables the script reads them from, in the form its own read parses: the probe
    measures what ran, not the script's defaults (a TTT off by default but on in the scored runs).
    Only switches: sizes and lengths stay tiny."""
    from audit.analysis.flags import logged_flags

    try:
        flags = logged_flags(ctx.runs)
    except Exception:  # noqa: BLE001 - unreadable logs prove nothing
        return {}
    reads = {m.group(1).lower(): (m.group(3), m.group(2)) for m in _ENV_READ.finditer(text)}
    out: dict[str, str] = {}
    for key, value in flags.items():
        named_switch = any(w in key for w in ("enable", "disable", "use_", "_on"))
        if key not in reads or not (isinstance(value, bool) or (value in (0.0, 1.0) and named_switch)):
            continue  # a 0/1 count (freeze_blocks: 1, rank: 0) is not a switch
        var, statement = reads[key]
        values = _switch_values(statement)
        if values is None or not values[1]:
            continue
        out[var] = values[0] if value else values[1]
    return out


def _call_dict(call) -> dict:
    """The score call as JSON, every expression replaced by its CPU port (the driver evaluates them)."""
    d = asdict(call)
    d["callee"] = _ported_expr(call.callee)
    d["call_args"] = [[kw, _ported_expr(src)] for kw, src in call.call_args]
    for key in ("hparams", "bindings", "objects"):
        d[key] = [{**b, "source": _ported_expr(b["source"])} for b in d[key]]
    d["steps"] = [{**st, "source": _ported_expr(st["source"]).strip(),
                   "guards": [_ported_expr(g) for g in st["guards"]]} for st in d["steps"]]
    for key in ("model", "luts"):
        if d[key] is not None:
            d[key]["source"] = _ported_expr(d[key]["source"])
    if d.get("defs") is not None:
        from audit.probes.port import port_source

        try:
            d["defs"]["source"] = port_source(d["defs"]["source"] + "\n").source
        except Exception:  # noqa: BLE001 - left as written
            pass
    return d


def _ported_expr(src: str) -> str:
    from audit.probes.port import port_source

    try:
        return port_source(f"({src}\n)").source[1:-2] if "\n" in src else port_source(src).source
    except Exception:  # noqa: BLE001 - not an expression libcst accepts alone: use it as written
        return src


def _launch(scratch: Path, work: Path, spec: dict, timeout_s: float, allow_network: bool) -> dict:
    """The driver in the harness sandbox: namespaces (network cut, /tmp and home hidden, only the
    scratch area writable), a scrubbed environment, a deadline, every process killed at the end."""
    from audit.harness.isolation import HIDDEN_DIRS, HostFacts, choose_isolation, plan_config, python_paths
    from audit.harness.launch import Deadlines, run_group
    from audit.harness.sandbox import scrub_env

    spec_path, result_path, log = scratch / "spec.json", scratch / "result.json", scratch / "driver.log"
    result_path.unlink(missing_ok=True)
    spec_path.write_text(json.dumps(spec))
    home, tmp = scratch / "home", scratch / "tmp"
    home.mkdir(exist_ok=True)
    tmp.mkdir(exist_ok=True)
    env, _ = scrub_env(dict(os.environ))
    env = {**env, **spec["env"], "PYTHONPATH": str(REPO_ROOT), "PYTHONDONTWRITEBYTECODE": "1", "HOME": str(home),
           "TMPDIR": str(tmp), "OMP_NUM_THREADS": str(spec["threads"]), "CUDA_VISIBLE_DEVICES": ""}
    iso = choose_isolation(allow_network)
    if iso.mode == "unavailable":  # never import submission code outside a sandbox
        return {"status": "not-applicable", "category": "no sandbox", "reason": iso.note}
    argv = [iso.python, "-m", "audit.probes.driver", str(spec_path), str(result_path)]
    pass_fds: tuple[int, ...] = ()
    report_fd = None
    if iso.mode == "namespaces":
        keep = [*python_paths(iso.python, env), str(REPO_ROOT), str(Path(spec["tokenizer"]).parent)]
        plan = plan_config(cwd=str(work), net=iso.network_cut, keep_ro=keep, writable=[str(scratch)],
                           hide=[*HIDDEN_DIRS, os.path.expanduser("~")], must_be_ro=[str(REPO_ROOT)],
                           facts=HostFacts.gather(), private_tmp=("/tmp",))
        config = scratch / "sandbox.json"
        config.write_text(json.dumps(plan))
        report_fd, write_fd = os.pipe()
        pass_fds = (write_fd,)
        argv = iso.wrap(argv, config, write_fd)
    started = time.monotonic()
    try:
        outcome = run_group(argv, cwd=work, env=env, log_path=log, deadlines=Deadlines(timeout_s, timeout_s, 5.0),
                            pass_fds=pass_fds)
    finally:
        from audit.harness.isolation import read_report

        sandbox = read_report(report_fd) if report_fd is not None else {"ok": True}  # run_group closed write_fd
    if not (sandbox or {}).get("ok"):
        return {"status": "not-applicable", "category": "no sandbox",
                "reason": f"the sandbox did not prove its isolation: {json.dumps(sandbox)[:300]}"}
    if outcome.timed_out:
        return {"status": "not-applicable", "category": "timeout",
                "reason": f"the probe did not finish within {timeout_s:.0f} s"}
    if not result_path.is_file():
        tail = log.read_text(errors="replace")[-400:] if log.is_file() else ""
        return {"status": "not-applicable", "category": "crashed on CPU",
                "reason": f"driver exited {outcome.exit_code} after {time.monotonic() - started:.1f} s: {tail}"}
    return json.loads(result_path.read_text())
