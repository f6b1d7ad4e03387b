"""Probe bench (issue 11): the mutant table, coverage on real submissions, and the probe's cost.

    python bench/probe_bench.py mutants [--all] [--json out/probe-mutants.json]
    python bench/probe_bench.py corpus [--limit N] [--match pr1413/ ...] [--workers 2] [--json out/probe-corpus.json]
    python bench/probe_bench.py table out/probe-mutants.json      # re-print a saved run as Markdown

`mutants`: every base mutant of fixtures/mutants (`--all`: every renaming/indirection variant too)
-> static verdict, Kraft probe, byte probe, and which illegal variants the static classifier
passes. `corpus`: every dev.tsv PR folder and every merged folder at HEAD -> how many the probe
can drive, the reasons for the rest by category, and the probe's verdict beside the static
verdict and the maintainers' label. Cost: wall seconds per submission, and the same as a ratio
to one plain evaluation of the same tiny model measured in the same run.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MUTANTS = ROOT / "fixtures" / "mutants"
CORPUS = Path("/work/corpus")


# The static rules about evaluation legality: the mutants ship no logs, so the meta rules would
# fail every one of them for reasons that have nothing to do with their evaluator.
LEGALITY = ["R-TTT", "R-EVAL-C", "R-NGRAM", "R-SLOT", "R-GPTQ", "R-PPM", "R-DATA-NO-VAL", "R-METRIC-BPB", "R-BOS"]


def static_verdict(folder: Path, select: list[str] | None = None) -> tuple[str, list[str]]:
    from audit.commands.batch import Job, audit_folder
    from audit.commands.check import select_rules
    from audit.context import Options

    select = select or []
    result = audit_folder(folder, Job(tuple(select_rules(select, [])), Options(), tuple(select), ()))
    errors = sorted({f.rule_id for f in result.report.findings if f.severity.value in ("error", "warning")})
    return result.report.verdict.value, errors


def probe_row(folder: Path, timeout: float) -> dict:
    from audit.probes.runner import ProbeOutcome, run_probe

    t0 = time.perf_counter()
    try:
        o = run_probe(folder, timeout_s=timeout)
    except Exception as exc:  # noqa: BLE001 - a bug of ours on one folder must not end the bench
        o = ProbeOutcome(str(folder), "not-applicable", "probe error", f"{type(exc).__name__}: {exc}")
    wall = time.perf_counter() - t0
    k = o.kraft or {}
    b = o.bytes or {}
    per_run = (o.timings.get("kraft_runs_s", 0) / max(k.get("candidates", 1), 1)) if o.status == "ok" else None
    return {
        "status": o.status, "category": o.category, "reason": o.reason[:200],
        "kraft": k.get("value"), "kraft_violated": k.get("violated"), "tolerance": k.get("tolerance"),
        "twin": k.get("twin"), "bytes": ("ok" if b.get("ok") else "wrong") if b.get("status") == "ok" else "n/a",
        "bytes_reason": b.get("reason"), "rewrites": len(o.rewrites), "wall_s": wall,
        "plain_eval_s": per_run, "cost_ratio": (wall / per_run) if per_run else None,
    }


def kraft_cell(r: dict) -> str:
    if r["status"] != "ok":
        return f"n/a ({r['category']})"
    return f"FAIL K={r['kraft']:.6g}" if r["kraft_violated"] else f"pass K={r['kraft']:.7f}"


def _append(jsonl: Path | None, row: dict) -> None:
    """One line per finished folder, so a long run that is stopped still leaves its rows."""
    if jsonl is not None:
        jsonl.parent.mkdir(parents=True, exist_ok=True)
        with jsonl.open("a") as fh:
            fh.write(json.dumps(row) + "\n")


def static_misses() -> str:
    """Static legality verdicts of every mutant in every shape (no probe): which shapes it misses."""
    expected = json.loads((MUTANTS / "expected.json").read_text())
    missed: dict[str, list[str]] = {}
    flagged = []
    for name, exp in sorted(expected.items()):
        verdict, _ = static_verdict(MUTANTS / name, LEGALITY)
        if not exp["legal"] and verdict == "PASS":
            missed.setdefault(exp["behaviour"], []).append(exp["variant"])
        if exp["legal"] and verdict == "FAIL":
            flagged.append(name)
    lines = [f"- {b}: {', '.join(v)}" for b, v in sorted(missed.items())]
    return ("Illegal mutants the static classifier passes (legality rules), by shape:\n" + ("\n".join(lines) or "- none")
            + f"\nLegal mutants it fails: {', '.join(flagged) or 'none'}.")


def run_mutants(all_variants: bool, timeout: float, jsonl: Path | None = None) -> list[dict]:
    expected = json.loads((MUTANTS / "expected.json").read_text())
    rows = []
    slow = ("ttt", "score_after_update")  # adapting evaluators train in every one of the V+1 runs: last
    for name, exp in sorted(expected.items(), key=lambda kv: (any(w in kv[0] for w in slow), kv[0])):
        if not all_variants and exp["variant"] != "base":
            continue
        verdict, rules = static_verdict(MUTANTS / name, LEGALITY)
        row = {"name": name, **exp, "static": verdict, "static_rules": rules, **probe_row(MUTANTS / name, timeout)}
        rows.append(row)
        _append(jsonl, row)
        print(f"{name:34s} legal={exp['legal']!s:5s} static={verdict:6s} kraft={kraft_cell(row):28s} "
              f"bytes={row['bytes']:5s} {row['wall_s']:6.1f}s", flush=True)
    return rows


def mutant_table(rows: list[dict]) -> str:
    lines = ["| mutant | variant | legal | static verdict (legality rules) | Kraft probe | byte probe |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['behaviour']} | {r['variant']} | {'yes' if r['legal'] else 'no'} | {r['static']} | "
                     f"{kraft_cell(r)} | {r['bytes']} |")
    missed = [f"{r['behaviour']}/{r['variant']}" for r in rows if not r["legal"] and r["static"] == "PASS"]
    flagged = [f"{r['behaviour']}/{r['variant']}" for r in rows if r["legal"] and r["static"] == "FAIL"]
    probe_wrong = [r["name"] for r in rows if r["status"] == "ok" and r["kraft_violated"] == r["legal"]]
    lines.append("")
    lines.append(f"Illegal variants the static classifier passes: {', '.join(missed) or 'none'}.")
    lines.append(f"Legal mutants the static classifier fails: {', '.join(flagged) or 'none'}.")
    lines.append(f"Kraft probe disagreements with the truth: {', '.join(probe_wrong) or 'none'}.")
    return "\n".join(lines)


def corpus_folders(limit: int | None, only: str | None = None, match: list[str] | None = None) -> list[tuple[Path, str, str]]:
    out = []
    with (CORPUS / "dev.tsv").open() as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            folder = CORPUS / "dev" / f"pr{row['pr']}" / row["submission_dir"]
            if folder.is_dir():
                out.append((folder, f"PR {row['pr']}", row["verdict"]))
    for folder in sorted((CORPUS / "head" / "records").glob("*/*")):
        if folder.is_dir():
            out.append((folder, "merged", "legal (merged)"))
    if only is not None:
        out = [o for o in out if (o[1] == "merged") == (only == "head")]
    if match:  # a folder is kept when any pattern is a substring of its corpus path (`pr1413/`, `VarLenAttn`)
        out = [o for o in out if any(m in str(o[0].relative_to(CORPUS)) + "/" for m in match)]
    return out[:limit] if limit else out


def saved_static(folder: Path, saved: Path) -> tuple[str, list[str]] | None:
    """The static verdict from a `bench/snapshot.py` directory (dev__pr<N>.json, head__<track>__<name>.json)."""
    rel = folder.relative_to(CORPUS).parts
    name = f"dev__{rel[1]}.json" if rel[0] == "dev" else f"head__{rel[-2]}__{rel[-1]}.json"
    path = saved / name
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    rules = sorted({f["rule_id"] for f in data.get("findings", []) if f.get("severity") in ("error", "warning")})
    return data.get("verdict", "?"), rules


def _corpus_row(item: tuple[Path, str, str, float, Path | None]) -> dict:
    folder, origin, label, timeout, static_from = item
    saved = saved_static(folder, static_from) if static_from else None
    verdict, rules = saved or static_verdict(folder)
    return {"folder": str(folder.relative_to(CORPUS)), "origin": origin, "label": label, "static": verdict,
            "static_rules": rules, **probe_row(folder, timeout)}


def run_corpus(limit: int | None, timeout: float, jsonl: Path | None = None, static_from: Path | None = None,
               only: str | None = None, match: list[str] | None = None, workers: int = 1) -> list[dict]:
    """One row per folder; `workers` folders probed at once (each probe is one single-threaded child)."""
    done = {}
    if jsonl is not None and jsonl.is_file():  # resume a stopped run
        done = {r["folder"]: r for r in map(json.loads, jsonl.read_text().splitlines()) if r}
    folders = corpus_folders(limit, only, match)
    todo = [(f, o, lab, timeout, static_from) for f, o, lab in folders if str(f.relative_to(CORPUS)) not in done]
    fresh: dict[str, dict] = {}

    def report(row: dict) -> None:
        fresh[row["folder"]] = row
        _append(jsonl, row)
        print(f"{row['origin']:8s} {Path(row['folder']).name[:48]:48s} label={row['label']:15s} "
              f"static={row['static']:6s} kraft={kraft_cell(row)[:60]:60s} bytes={row['bytes']} {row['wall_s']:.0f}s",
              flush=True)
    if workers > 1:
        # processes, not threads: the harness's deadline and process-group clean-up are per process
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            for row in pool.map(_corpus_row, todo):
                report(row)
    else:
        for item in todo:
            report(_corpus_row(item))
    return [done.get(str(f.relative_to(CORPUS))) or fresh[str(f.relative_to(CORPUS))] for f, _o, _lab in folders]


def corpus_table(rows: list[dict]) -> str:
    driven = [r for r in rows if r["status"] == "ok"]
    cats = Counter(r["category"] for r in rows if r["status"] != "ok")
    lines = [f"Driven: {len(driven)} of {len(rows)} folders.", "", "| reason not driven | folders |", "|---|---|"]
    lines += [f"| {c} | {n} |" for c, n in cats.most_common()]
    lines += ["", "| folder | origin | label | static | Kraft probe | byte probe |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {Path(r['folder']).name} | {r['origin']} | {r['label']} | {r['static']} | {kraft_cell(r)} | "
                     f"{r['bytes']} |")
    costs = [r for r in driven if r.get("cost_ratio")]
    if costs:
        walls = sorted(r["wall_s"] for r in costs)
        ratios = sorted(r["cost_ratio"] for r in costs)
        lines.append("")
        lines.append(f"Cost per driven submission: median {walls[len(walls) // 2]:.0f} s wall "
                     f"(max {walls[-1]:.0f} s), median {ratios[len(ratios) // 2]:.0f}x one plain evaluation.")
    return "\n".join(lines)


def cost_line(rows: list[dict]) -> str:
    costs = [r for r in rows if r.get("cost_ratio")]
    if not costs:
        return "no driven submission: no cost measured"
    walls = sorted(r["wall_s"] for r in costs)
    ratios = sorted(r["cost_ratio"] for r in costs)
    under = sum(1 for w in walls if w < 60)
    return (f"probe cost: median {walls[len(walls) // 2]:.1f} s wall per submission (max {walls[-1]:.1f} s; "
            f"{under}/{len(walls)} under 60 s), median {ratios[len(ratios) // 2]:.0f}x one plain evaluation "
            "of the same tiny model")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("mutants")
    m.add_argument("--all", action="store_true", help="every renaming/indirection variant, not only base")
    m.add_argument("--static-shapes", action="store_true",
                   help="also list, over every shape, the illegal mutants the static classifier passes")
    c = sub.add_parser("corpus")
    c.add_argument("--limit", type=int)
    c.add_argument("--only", choices=("dev", "head"), help="only the dev.tsv PRs or only the merged folders")
    c.add_argument("--match", nargs="+", metavar="TEXT",
                   help="only folders whose corpus path contains one of these (e.g. pr1413/ VarLenAttn)")
    c.add_argument("--workers", type=int, default=1, help="folders probed at once")
    c.add_argument("--static-from", type=Path, metavar="DIR",
                   help="static verdicts from a bench/snapshot.py directory instead of auditing again")
    t = sub.add_parser("table")
    t.add_argument("json_file", type=Path, help="a --json file, or a --jsonl file of a partial run")
    for p in (m, c):
        p.add_argument("--json", type=Path)
        p.add_argument("--jsonl", type=Path, help="append each row as it finishes")
        p.add_argument("--timeout", type=float, default=600.0)
    a = ap.parse_args(argv)
    if a.cmd == "table":
        text = a.json_file.read_text()
        if a.json_file.suffix == ".jsonl":
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
            data = {"kind": "mutants" if rows and "behaviour" in rows[0] else "corpus", "rows": rows}
        else:
            data = json.loads(text)
        print(mutant_table(data["rows"]) if data["kind"] == "mutants" else corpus_table(data["rows"]))
        print(cost_line(data["rows"]))
        return 0
    rows = run_mutants(a.all, a.timeout, a.jsonl) if a.cmd == "mutants" else run_corpus(a.limit, a.timeout, a.jsonl, a.static_from, a.only, a.match, a.workers)
    print()
    print(mutant_table(rows) if a.cmd == "mutants" else corpus_table(rows))
    print(cost_line(rows))
    if a.cmd == "mutants" and a.static_shapes:
        print(static_misses())
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({"kind": a.cmd, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
