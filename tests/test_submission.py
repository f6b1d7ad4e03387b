"""Reading a submission folder safely: bad input becomes a finding, never a traceback or a write."""

from __future__ import annotations

import base64
import hashlib
import lzma
import os
import pathlib

import pytest

import audit.submission as submission_mod
from audit.engine import audit_submission
from audit.findings import Finding, Severity
from audit.submission import MAX_TEXT_BYTES, Submission
from rules.artifact_code_count import ArtifactCodeCount
from rules.sub_files import SubFiles

LOG = "seed:42\nstep:1/10 train_loss:6.0 train_time:40ms step_avg:40.00ms\nfinal_int8_zlib_roundtrip_exact val_loss:2.0 val_bpb:1.2\n"
SCRIPT = "import os\nprint(os.getcwd())\n"


def _write(root: pathlib.Path, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_bytes(content)


def _tree_digest(root: pathlib.Path) -> str:
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in sorted(os.walk(root)):
        for name in sorted(filenames + dirnames):
            p = pathlib.Path(dirpath) / name
            st = p.lstat()
            h.update(f"{p.relative_to(root)}|{st.st_mode}|{st.st_size}|{st.st_mtime_ns}".encode())
            if p.is_file() and not p.is_symlink():
                h.update(p.read_bytes())
    return h.hexdigest()


def _findings(sub: Submission) -> list[Finding]:
    """The reader's facts as the rules report them (R-SUB-FILES; a wrapper: R-ARTIFACT-CODE-COUNT)."""
    return [f for f in audit_submission(sub, rules=[SubFiles, ArtifactCodeCount]).findings
            if any(e.label == "read of the submission folder" for e in f.evidence)]


def _messages(sub: Submission) -> list[str]:
    return [f.message for f in _findings(sub)]


def test_ordinary_folder(tmp_path):
    _write(tmp_path, {"README.md": "# x", "submission.json": '{"val_bpb": 1.2}', "train_gpt.py": SCRIPT,
                      "train_seed42.log": LOG, "logs/train1.txt": LOG, "requirements.txt": "torch\n",
                      "final_model.int8.ptz": b"\x00\x01"})
    before = _tree_digest(tmp_path)
    sub = Submission.load(tmp_path)
    assert _tree_digest(tmp_path) == before  # never writes, never touches
    assert sub.json_data == {"val_bpb": 1.2} and sub.json_error is None
    assert sorted(sub.logs) == ["logs/train1.txt", "train_seed42.log"]  # logs/ subfolder and .txt logs
    assert sub.main_script is not None and sub.main_script.path == "train_gpt.py"
    assert sub.files["final_model.int8.ptz"] == 2 and sub.readme is not None
    assert not _findings(sub)


def test_empty_folder(tmp_path):
    sub = Submission.load(tmp_path)
    assert sub.files == {} and sub.logs == {} and sub.json_data is None and not _findings(sub)
    assert sub.analysis_sources() == []


def test_path_that_is_a_file_or_missing(tmp_path):
    f = tmp_path / "train_gpt.py"
    f.write_text(SCRIPT)
    for target in (f, tmp_path / "missing"):
        sub = Submission.load(target)
        assert sub.files == {}
        assert [x.severity for x in _findings(sub)] == [Severity.ERROR]
        assert "not a directory" in _findings(sub)[0].message


def test_symlink_that_escapes_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("seed:1\nval_bpb:1.0 val_loss:2.0\n")
    (outside / "evil.py").write_text("print('x')\n")
    sub_dir = tmp_path / "sub"
    sub_dir.mkdir()
    (sub_dir / "train.log").symlink_to(outside / "secret.txt")
    (sub_dir / "train_gpt.py").symlink_to(outside / "evil.py")
    (sub_dir / "escape_dir").symlink_to(outside, target_is_directory=True)
    (sub_dir / "inside.txt").write_text(LOG)
    (sub_dir / "alias.log").symlink_to(sub_dir / "inside.txt")  # stays inside: read
    sub = Submission.load(sub_dir)
    assert "train.log" not in sub.logs and "train_gpt.py" not in sub.code
    assert "alias.log" in sub.logs and "inside.txt" in sub.logs
    escaping = [f for f in _findings(sub) if "leaves the submission folder" in f.message]
    assert {f.path for f in escaping} == {"train.log", "train_gpt.py", "escape_dir"}
    assert all(f.severity == Severity.ERROR for f in escaping)


def test_non_utf8_log_is_read_lossy_with_a_finding(tmp_path):
    _write(tmp_path, {"train.log": b"seed:42\n\xff\xfe bad bytes\nfinal_int8_zlib_roundtrip_exact val_loss:2.0 val_bpb:1.2\n"})
    sub = Submission.load(tmp_path)
    tf = sub.logs["train.log"]
    assert tf.lossy and "\ufffd" in (tf.text or "")
    assert any("not valid UTF-8" in m for m in _messages(sub))


def test_file_over_the_size_limit_is_skipped(tmp_path):
    big = tmp_path / "train.log"
    with big.open("wb") as fh:
        fh.truncate(20 * 1024 * 1024)  # sparse 20 MB file
    sub = Submission.load(tmp_path)
    assert "train.log" not in sub.logs and sub.files["train.log"] == 20 * 1024 * 1024
    assert any("over the" in m and "limit" in m for m in _messages(sub))
    mem = Submission.from_files({"train.log": b"x" * (MAX_TEXT_BYTES + 1)})
    assert "train.log" not in mem.logs and any("over the" in m for m in _messages(mem))


@pytest.mark.parametrize(
    "text,fragment",
    [("{broken", "not valid JSON"), ("[1, 2]", "not a JSON object"), ("1" * 5000, "an integer with 5000 digits"),
     ("[" * 100000 + "]" * 100000, "not valid JSON"), ("", "not valid JSON")],
    ids=["syntax", "array", "huge-int", "deep-nesting", "empty"],
)
def test_malformed_json(tmp_path, text, fragment):
    _write(tmp_path, {"submission.json": text})
    sub = Submission.load(tmp_path)
    assert sub.json_data is None and fragment in (sub.json_error or "")


def test_json_with_byte_order_mark(tmp_path):
    _write(tmp_path, {"submission.json": b'\xef\xbb\xbf{"val_bpb": 1.2}'})
    assert Submission.load(tmp_path).json_data == {"val_bpb": 1.2}


def test_variant_json_names(tmp_path):
    _write(tmp_path, {"submission_ternary.json": '{"val_bpb": 1.15}'})
    sub = Submission.load(tmp_path)
    assert sub.json_path == "submission_ternary.json" and sub.json_data == {"val_bpb": 1.15}
    _write(tmp_path, {"submission.json": '{"val_bpb": 1.1}', "submission_z.json": '{"val_bpb": 9}'})
    sub = Submission.load(tmp_path)
    assert sub.json_path == "submission.json" and sub.json_data == {"val_bpb": 1.1}
    assert sorted(sub.json_variants) == ["submission.json", "submission_ternary.json", "submission_z.json"]


def test_a_directory_named_like_a_file(tmp_path):
    (tmp_path / "train.log").mkdir()
    (tmp_path / "train.log" / "real.log").write_text(LOG)
    sub = Submission.load(tmp_path)
    assert "train.log" not in sub.files and "train.log/real.log" in sub.logs


def test_unreadable_file_becomes_a_finding(tmp_path, monkeypatch):
    _write(tmp_path, {"train.log": LOG, "train_gpt.py": SCRIPT})
    real_open = pathlib.Path.open

    def guarded_open(self, *args, **kwargs):
        if self.name == "train.log":
            raise PermissionError(13, "Permission denied")
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "open", guarded_open)
    sub = Submission.load(tmp_path)
    assert "train.log" not in sub.logs and "train_gpt.py" in sub.code
    assert any("could not be read: Permission denied" in m for m in _messages(sub))


def test_fifo_is_never_opened(tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this platform")
    os.mkfifo(tmp_path / "train.log")  # opening it for reading would block forever
    sub = Submission.load(tmp_path)
    assert "train.log" not in sub.files


def test_from_files_rejects_paths_outside_the_folder():
    sub = Submission.from_files({"../escape.py": SCRIPT, "/etc/passwd.txt": LOG, "": "x", "a/./b.py": SCRIPT,
                                 "ok.py": SCRIPT})
    assert sorted(sub.code) == ["a/b.py", "ok.py"]
    assert len([f for f in _findings(sub) if "not a relative path" in f.message]) == 3


def _wrapper(source: str) -> str:
    payload = lzma.compress(source.encode(), format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2}])
    return ('import lzma as L,base64 as B\nexec(L.decompress(B.b85decode("'
            + base64.b85encode(payload).decode() + '"),format=L.FORMAT_RAW,filters=[{"id":L.FILTER_LZMA2}]))\n')


def test_analysis_sources_replace_a_wrapper_by_its_decoded_source():
    inner = "import torch\n\ndef eval_val(model, val_tokens):\n    return model(val_tokens)\n"
    sub = Submission.from_files({"train_gpt.py": _wrapper(inner), "helper.py": SCRIPT})
    sources = {tf.path: tf for tf in sub.analysis_sources()}
    assert sorted(sources) == ["helper.py", "train_gpt.py"]
    decoded = sources["train_gpt.py"]
    assert decoded.text == inner and decoded.decoded_from == "train_gpt.py"
    assert decoded.sha256 == hashlib.sha256(inner.encode()).hexdigest()
    assert sources["helper.py"].decoded_from is None
    assert sub.python_files()[1].text != inner  # the shipped file is still the wrapper
    assert not _findings(sub)


def test_undecodable_wrapper_is_a_finding_and_stays_in_analysis_sources():
    wrapper = "import lzma,base64\nexec(lzma.decompress(base64.b85decode('@@@@')))\n"
    sub = Submission.from_files({"train_gpt.py": wrapper})
    assert [tf.text for tf in sub.analysis_sources()] == [wrapper]
    (finding,) = _findings(sub)
    assert finding.rule_id == "R-ARTIFACT-CODE-COUNT" and finding.line == 2


def test_decompression_bomb_wrapper_is_not_expanded(monkeypatch):
    import zlib

    import audit.codesize as codesize

    monkeypatch.setattr(codesize, "MAX_DECODED_BYTES", 1 << 20)
    bomb = base64.b85encode(zlib.compress(b"#" * (4 << 20), 9)).decode()
    sub = Submission.from_files({"train_gpt.py": f"import zlib,base64\nexec(zlib.decompress(base64.b85decode('{bomb}')))\n"})
    assert not sub.decoded
    assert any("exceeds" in m for m in _messages(sub))


def test_file_limit(monkeypatch, tmp_path):
    monkeypatch.setattr(submission_mod, "MAX_FILES", 3)
    _write(tmp_path, {f"f{i}.bin": b"x" for i in range(6)})
    sub = Submission.load(tmp_path)
    assert len(sub.files) == 3 and any("more than 3 files" in m for m in _messages(sub))


def test_unlistable_subfolder_becomes_a_finding(tmp_path, monkeypatch):
    _write(tmp_path, {"train.log": LOG, "logs/train1.txt": LOG})
    real_scandir = os.scandir

    def failing_scandir(path):
        if str(path).endswith("logs"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(submission_mod.os, "scandir", failing_scandir)
    sub = Submission.load(tmp_path)
    assert "train.log" in sub.logs and "logs/train1.txt" not in sub.logs
    assert any(f.path == "logs" and "could not be listed" in f.message for f in _findings(sub))
