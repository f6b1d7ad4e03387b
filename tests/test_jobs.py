"""`-j N`: many folders in worker processes give, per folder, exactly what a run on it alone gives."""

from __future__ import annotations

import json

from report_helpers import SEEDS, make_folder

from audit import cli

LOG = ("seed: {seed}\nstep:100/100 val_loss:2.0000 val_bpb:1.1000\n"
       "final_int8_zlib_roundtrip_exact val_loss:2.00000000 val_bpb:{bpb:.8f}\n")


def _folders(tmp_path):
    a = make_folder(tmp_path, "2026-04-01_A", seeds=SEEDS)
    b = make_folder(tmp_path, "2026-04-02_B", code="import os\nval = open('fineweb_val_000.bin').read()\n")
    c = make_folder(tmp_path, "2026-04-03_C")
    for seed, bpb in ((42, 1.1), (1337, 1.1002)):
        (c / f"train_seed{seed}.log").write_text(LOG.format(seed=seed, bpb=bpb), encoding="utf-8")
    return [a, b, c]


def _json(capsys, *argv: str) -> tuple[int, dict]:
    code = cli.main(["--format", "json", "--exit-zero", *argv])
    return code, json.loads(capsys.readouterr().out)


def test_jobs_output_per_folder_identical_to_single_runs(tmp_path, capsys):
    folders = _folders(tmp_path)
    code, many = _json(capsys, "-j", "2", *map(str, folders))
    assert code == 0 and len(many["results"]) == 3
    for folder, result in zip(folders, many["results"], strict=True):
        _, alone = _json(capsys, str(folder))
        assert result == alone["results"][0]
    _, serial = _json(capsys, "-j", "1", *map(str, folders))
    assert serial["results"] == many["results"]


def test_select_keeps_the_seed_table_and_statistics(tmp_path, capsys):
    """The engine builds them, so a report of one unrelated rule still has them."""
    folder = _folders(tmp_path)[2]
    _, doc = _json(capsys, "--select", "R-TTT-PREQUANT", str(folder))
    result = doc["results"][0]
    assert sorted(r["seed"] for r in result["runs"]) == [42, 1337]
    assert result["stats"]["seeds"]["n_scored"] == 2 and "significance" in result["stats"]
    assert all(f["rule_id"].startswith("R-TTT-PREQUANT") for f in result["findings"])
