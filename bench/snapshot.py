"""Snapshot the static check's JSON over a corpus, and compare two snapshots.

Refactors must not change what the tool says. `snapshot` audits every folder of the corpus (the
dev PRs and the merged folders at HEAD, as laid out by `bench/corpus.py`) and stores each folder's
result normalised: findings sorted, fingerprints and timings dropped. `compare` prints every
difference between two snapshots and exits 1 if there is one.

    python bench/snapshot.py snapshot --corpus /work/corpus --out /tmp/before
    python bench/snapshot.py compare /tmp/before /tmp/after
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

DROP_FINDING_KEYS = {"fingerprint"}


def corpus_folders(corpus: Path) -> list[tuple[str, Path]]:
    """(name, folder) for every dev PR folder and every merged folder, at their real paths."""
    out: list[tuple[str, Path]] = []
    for pr in sorted((corpus / "dev").glob("pr*")):
        for folder in sorted(pr.glob("records/*/*")):
            if folder.is_dir():
                out.append((f"dev/{pr.name}", folder))
    for folder in sorted((corpus / "head").glob("records/*/*")):
        if folder.is_dir():
            out.append((f"head/{folder.parent.name}/{folder.name}", folder))
    return out


def normalise(result: dict) -> dict:
    findings = [{k: v for k, v in f.items() if k not in DROP_FINDING_KEYS} for f in result.get("findings", [])]
    findings.sort(key=lambda f: json.dumps(f, sort_keys=True))
    out = {k: result.get(k) for k in ("verdict", "summary", "runs", "stats")}
    out["findings"] = findings
    out["errors"] = result.get("errors", [])
    return out


def snapshot(corpus: Path, out: Path, exe: str, extra: list[str]) -> int:
    out.mkdir(parents=True, exist_ok=True)
    for name, folder in corpus_folders(corpus):
        proc = subprocess.run([exe, "check", str(folder), "--format", "json", "--exit-zero", *extra],
                              capture_output=True, text=True)
        target = out / (name.replace("/", "__") + ".json")
        if proc.returncode != 0:
            target.write_text(json.dumps({"crash": proc.returncode, "stderr": proc.stderr[-2000:]}, indent=1))
            print(f"{name}: exit {proc.returncode}", file=sys.stderr)
            continue
        doc = json.loads(proc.stdout)
        target.write_text(json.dumps(normalise(doc["results"][0]), indent=1, sort_keys=True))
    return 0


def compare(a: Path, b: Path) -> int:
    names = sorted({p.name for p in a.glob("*.json")} | {p.name for p in b.glob("*.json")})
    differ = 0
    for n in names:
        pa, pb = a / n, b / n
        if not pa.exists() or not pb.exists():
            print(f"{n}: only in {'first' if pa.exists() else 'second'}")
            differ += 1
            continue
        da, db = json.loads(pa.read_text()), json.loads(pb.read_text())
        if da == db:
            continue
        differ += 1
        print(f"{n}:")
        for key in sorted(set(da) | set(db)):
            if da.get(key) == db.get(key):
                continue
            if key == "findings":
                fa = {json.dumps(f, sort_keys=True) for f in da[key]}
                fb = {json.dumps(f, sort_keys=True) for f in db[key]}
                for f in sorted(fa - fb):
                    print(f"  - {f[:300]}")
                for f in sorted(fb - fa):
                    print(f"  + {f[:300]}")
            else:
                print(f"  {key}: {json.dumps(da.get(key))[:300]} -> {json.dumps(db.get(key))[:300]}")
    print(f"{len(names)} folders, {differ} differ")
    return 1 if differ else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("snapshot")
    s.add_argument("--corpus", type=Path, default=Path(os.environ.get("PGOLF_CORPUS", "/work/corpus")))
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--exe", default=str(Path(sys.executable).with_name("pgolf-audit")))
    s.add_argument("extra", nargs="*", help="extra options for pgolf-audit check")
    c = sub.add_parser("compare")
    c.add_argument("a", type=Path)
    c.add_argument("b", type=Path)
    args = ap.parse_args(argv)
    if args.cmd == "snapshot":
        return snapshot(args.corpus, args.out, args.exe, args.extra)
    return compare(args.a, args.b)


if __name__ == "__main__":
    sys.exit(main())
