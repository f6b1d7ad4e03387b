"""Bundle the reference into one self-contained `train_gpt.py` submission folder.

Why one file: the challenge counts the bytes of `train_gpt.py` as the artifact's code, and the
auditor checks that the source embedded at the top of the log is that same file. So the
modules are concatenated (cross-module imports removed, names checked for clashes) into a script
that never imports `reference_impl` at run time and logs its own text.

    python -m reference_impl.bundle OUT_DIR [--env KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import ast
import datetime as _dt
import json
import re
from pathlib import Path

PACKAGE = "reference_impl"
# Dependency order: each module only uses names from modules above it.
BUNDLED_MODULES = ("hparams", "data", "tokenizer", "model", "optim", "quant", "compress", "eval", "train")
# Helpers only tests and fixture builders use: left out so the script stays under the line cap.
NOT_BUNDLED = {
    "hparams": {"TINY_ENV"},
    "data": {"write_data_shard"},
    "tokenizer": {"sidecar_path", "token_byte_counts"},
}
MAX_SCRIPT_LINES = 1500  # the challenge README's cap on train_gpt.py
HEADER = '''"""Parameter Golf reference submission (pgolf-audit `reference_impl`, bundled into one file).

Baseline-compatible GPT trainer, int8+zlib quantiser and val_bpb evaluator. Run with
`torchrun --standalone --nproc_per_node=N train_gpt.py` (CUDA: nccl + bf16; CPU: gloo + fp32).
"""
'''


def _package_dir() -> Path:
    return Path(__file__).resolve().parent


def _is_internal_import(node: ast.AST) -> bool:
    if isinstance(node, ast.ImportFrom):
        return node.level > 0 or (node.module or "").split(".")[0] == PACKAGE
    if isinstance(node, ast.Import):
        return any(a.name.split(".")[0] == PACKAGE for a in node.names)
    return False


def _top_level_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def module_body(name: str) -> str:
    """A module's source minus its docstring, `from __future__` and reference_impl imports."""
    src = (_package_dir() / f"{name}.py").read_text(encoding="utf-8")
    tree = ast.parse(src)
    lines = src.splitlines(keepends=True)
    drop: set[int] = set()
    doc = ""
    body = tree.body
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
        doc = str(body[0].value.value)
        drop.update(range(body[0].lineno, body[0].end_lineno + 1))
    for node in tree.body:
        if _top_level_names(ast.Module(body=[node], type_ignores=[])) & NOT_BUNDLED.get(name, set()):
            start = node.lineno
            while start > 1 and lines[start - 2].lstrip().startswith("#"):  # its leading comment too
                start -= 1
            drop.update(range(start, node.end_lineno + 1))  # type: ignore[operator]
    for node in ast.walk(tree):
        future = isinstance(node, ast.ImportFrom) and node.module == "__future__"
        if future or _is_internal_import(node):
            if node.col_offset:
                raise ValueError(f"{name}.py:{node.lineno}: bundled modules import {PACKAGE} at top level only")
            drop.update(range(node.lineno, node.end_lineno + 1))  # type: ignore[attr-defined]
    kept = "".join(line for i, line in enumerate(lines, start=1) if i not in drop).strip("\n")
    kept = re.sub(r"\n\s*\n(\s*\n)+", "\n\n", kept)  # one blank line at most: the 1500-line cap
    summary = doc.strip().splitlines()[0] if doc.strip() else ""
    return f"# {'-' * 16} {name}.py: {summary}\n" + kept + "\n"


def build_script(env_defaults: dict[str, str] | None = None) -> str:
    """The single-file script text. `env_defaults` become os.environ.setdefault lines at the top."""
    seen: dict[str, str] = {}
    parts = [HEADER, "from __future__ import annotations\n"]
    if env_defaults:
        parts.append("import os as _os\n\n" + "".join(f"_os.environ.setdefault({k!r}, {v!r})\n" for k, v in sorted(env_defaults.items())))
    for mod in BUNDLED_MODULES:
        tree = ast.parse((_package_dir() / f"{mod}.py").read_text(encoding="utf-8"))
        for n in _top_level_names(tree) - NOT_BUNDLED.get(mod, set()):
            if n in seen:
                raise ValueError(f"name {n!r} defined in both {seen[n]}.py and {mod}.py")
            seen[n] = mod
        parts.append(module_body(mod))
    script = "\n".join(p.rstrip("\n") + "\n" for p in parts)
    compile(script, "train_gpt.py", "exec")
    if script.count("\n") > MAX_SCRIPT_LINES:
        raise AssertionError(f"bundled script has {script.count(chr(10))} lines > {MAX_SCRIPT_LINES} (README cap)")
    if re.search(rf"^\s*(from|import)\s+{PACKAGE}\b", script, flags=re.M):
        raise AssertionError("bundled script still imports reference_impl")
    left_out = set().union(*NOT_BUNDLED.values())
    used = {n.id for n in ast.walk(ast.parse(script)) if isinstance(n, ast.Name)} & left_out
    if used:
        raise AssertionError(f"bundled code uses helpers left out of the bundle: {sorted(used)}")
    return script


def _readme(code_bytes: int) -> str:
    return (
        "# Reference submission (pgolf-audit)\n\n"
        "The project's own baseline-compatible trainer, bundled by `python -m reference_impl.bundle`.\n"
        "It trains the baseline GPT (Muon + Adam), writes `final_model.int8.ptz` (per-row int8 + zlib)\n"
        "and scores the round-tripped artifact with the challenge's val_bpb "
        "(`final_int8_zlib_roundtrip_exact`).\n\n"
        "```\ntorchrun --standalone --nproc_per_node=8 train_gpt.py\n```\n\n"
        f"Code size: {code_bytes} bytes (`train_gpt.py`, UTF-8).\n"
    )


def write_submission(
    out_dir: Path,
    *,
    env_defaults: dict[str, str] | None = None,
    name: str = "pgolf-audit reference",
    author: str = "pgolf-audit",
    github_id: str = "pgolf-audit",
    blurb: str = "Reference trainer bundled from reference_impl (baseline architecture, int8+zlib).",
    date: str | None = None,
    track: str | None = None,
) -> Path:
    """Write train_gpt.py, README.md and a submission.json skeleton (scores null until a run fills them)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    script = build_script(env_defaults)
    (out / "train_gpt.py").write_text(script, encoding="utf-8")
    code_bytes = len(script.encode("utf-8"))
    (out / "README.md").write_text(_readme(code_bytes), encoding="utf-8")
    # Optional compressors (COMPRESSOR=zstd|brotli) import these; the default zlib path needs neither.
    (out / "requirements.txt").write_text("zstandard\nbrotli\n", encoding="utf-8")
    meta: dict[str, object] = {
        "author": author,
        "github_id": github_id,
        "name": name,
        "blurb": blurb,
        "date": date or _dt.date.today().isoformat(),
        "val_loss": None,
        "val_bpb": None,
        "bytes_total": None,
        "bytes_code": code_bytes,
    }
    if track:
        meta["track"] = track
    (out / "submission.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return out


_SCORE = re.compile(r"^final_int8_zlib_roundtrip_exact val_loss:(?P<loss>[-\d.naif]+) val_bpb:(?P<bpb>[-\d.naif]+)", re.M)
_TOTAL = re.compile(r"^Total submission size int8\+zlib: (?P<n>\d+) bytes", re.M)


def complete_submission(out_dir: Path, logs: dict[str, str]) -> dict:
    """Add run logs ({file name: text}) and fill submission.json from them (mean bpb, max total bytes)."""
    out = Path(out_dir)
    meta = json.loads((out / "submission.json").read_text(encoding="utf-8"))
    losses, bpbs, totals = [], [], []
    for fname, text in logs.items():
        (out / fname).write_text(text, encoding="utf-8")
        score, total = _SCORE.search(text), _TOTAL.search(text)
        if score is None or total is None:
            raise ValueError(f"{fname}: no final score / total size line")
        losses.append(float(score["loss"]))
        bpbs.append(float(score["bpb"]))
        totals.append(int(total["n"]))
    meta["val_loss"] = round(sum(losses) / len(losses), 8)
    meta["val_bpb"] = round(sum(bpbs) / len(bpbs), 8)
    meta["bytes_total"] = max(totals)
    (out / "submission.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return meta


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Write the reference submission folder (single-file train_gpt.py).")
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="bake an env default into the script")
    args = ap.parse_args(argv)
    env = dict(kv.split("=", 1) for kv in args.env)
    out = write_submission(args.out_dir, env_defaults=env or None)
    print(out / "train_gpt.py")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
