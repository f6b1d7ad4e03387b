"""Lay out the real-PR corpus from a local mirror of the challenge repository, for the accuracy,
speed and corpus tests (nothing it writes is ever committed: it lives outside the repository).

    python bench/corpus.py --mirror /path/to/parameter-golf.git --tsv ../shared/corpus/dev.tsv \
        --out /work/corpus

Writes `OUT/dev.tsv`, `OUT/dev/pr<N>/<submission_dir>/` (each PR's folder at its real path
`records/<track>/<date>_<name>`, taken from the PR's head commit) and
`OUT/head/records/<track>/<name>/` (every folder merged on main), plus `OUT/head/landed.tsv`:
the date each merged folder first appeared on main (its landing date, for dated rulings).
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path


def _git(mirror: Path, *args: str) -> bytes:
    return subprocess.run(["git", "--git-dir", str(mirror), *args], check=True, capture_output=True).stdout


def _has(mirror: Path, rev: str) -> bool:
    r = subprocess.run(["git", "--git-dir", str(mirror), "cat-file", "-e", rev + "^{commit}"],
                       capture_output=True)
    return r.returncode == 0


def _extract(mirror: Path, rev: str, path: str, dest: Path) -> bool:
    try:
        blob = _git(mirror, "archive", "--format=tar", rev, "--", path)
    except subprocess.CalledProcessError:
        return _extract_files(mirror, rev, path, dest)
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        members = [m for m in tar.getmembers() if m.isfile() or m.isdir()]
        tar.extractall(dest, members=members, filter="data")
    return True


def _extract_files(mirror: Path, rev: str, path: str, dest: Path) -> bool:
    """File by file, skipping blobs the mirror does not hold (its largest files may be absent)."""
    try:
        listing = _git(mirror, "ls-tree", "-r", "-z", rev, "--", path).decode("utf-8", "surrogateescape")
    except subprocess.CalledProcessError:
        return False
    got = False
    for entry in filter(None, listing.split("\0")):
        meta, name = entry.split("\t", 1)
        mode, kind, oid = meta.split()
        if kind != "blob" or mode == "120000":
            continue
        try:
            data = _git(mirror, "cat-file", "blob", oid)
        except subprocess.CalledProcessError:
            print(f"absent from the mirror: {rev[:12]}:{name}", file=sys.stderr)
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        got = True
    return got


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mirror", type=Path, required=True, help="git dir of the challenge repository")
    ap.add_argument("--tsv", type=Path, required=True, help="dev.tsv (pr, head_sha, submission_dir, ...)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--main", default="main", help="the ref whose records/ are the merged folders")
    args = ap.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(args.tsv, out / "dev.tsv")
    rows = [ln.split("\t") for ln in args.tsv.read_text(encoding="utf-8").splitlines()[1:] if ln.strip()]
    missing = []
    for row in rows:
        pr, sha, sub = row[0], row[1], row[2]
        dest = out / "dev" / f"pr{pr}"
        if dest.exists():
            shutil.rmtree(dest)
        rev = sha if _has(args.mirror, sha) else f"refs/pull/{pr}/head"
        if not _extract(args.mirror, rev, sub, dest):
            missing.append(pr)
    head = out / "head"
    if head.exists():
        shutil.rmtree(head)
    _extract(args.mirror, args.main, "records", head)
    # Landing date of each merged folder: the first commit on main's first-parent line adding it.
    log = _git(args.mirror, "log", "--first-parent", "--reverse", "--diff-filter=A", "--name-only",
               "--format=@%cs", args.main, "--", "records").decode("utf-8", "replace")
    landed: dict[str, str] = {}
    date = ""
    for line in log.splitlines():
        if line.startswith("@"):
            date = line[1:]
        elif line.startswith("records/"):
            parts = line.split("/")
            if len(parts) >= 4:
                landed.setdefault("/".join(parts[:3]), date)
    (head / "landed.tsv").write_text("".join(f"{k}\t{v}\n" for k, v in sorted(landed.items())), encoding="utf-8")
    print(f"dev: {len(rows) - len(missing)} of {len(rows)} PR folders; head: {len(landed)} merged folders",
          file=sys.stderr)
    if missing:
        print("missing: " + " ".join(missing), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
