"""The command line: exit codes, formats, outputs, rule selection, --changed-since, rules, rerun."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
from report_helpers import SEEDS, TEST_RULES, make_folder

from audit import cli
from audit.commands import check as check_cmd
from audit.layout import record_folder
from audit.report import output
from rules.sub_folder import SubFolder


@pytest.fixture(autouse=True)
def test_registry(monkeypatch):
    monkeypatch.setattr("audit.registry.all_rules", lambda: (*TEST_RULES, SubFolder))
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- exit codes -----------------------------------------------------------------------------------
def test_pass_exits_0_and_prints_verdict(tmp_path, capsys):
    folder = make_folder(tmp_path, "2026-04-01_Clean")
    code, out, _ = run(capsys, str(folder))
    assert code == 0
    assert "PASS" in out and "2026-04-01_Clean" in out
    assert "\x1b[" not in out  # captured stdout is not a terminal: no ANSI


def test_explicit_check_subcommand(tmp_path, capsys):
    folder = make_folder(tmp_path, "x")
    assert run(capsys, "check", str(folder))[0] == 0


def test_warning_is_review_exit_1_unless_fail_on_error(tmp_path, capsys):
    folder = make_folder(tmp_path, "w", code="x = 1  # FLAG:warning\n")
    code, out, _ = run(capsys, str(folder))
    assert code == 1 and "REVIEW" in out and "R-TEST-FLAG" in out
    assert run(capsys, "--fail-on", "error", str(folder))[0] == 0
    assert run(capsys, "--exit-zero", str(folder))[0] == 0


def test_error_is_fail_exit_1_even_with_fail_on_error(tmp_path, capsys):
    folder = make_folder(tmp_path, "e", code="x = 1\ny = 2  # FLAG:error\n")
    code, out, _ = run(capsys, "--fail-on", "error", str(folder))
    assert code == 1 and "FAIL" in out
    assert "train_gpt.py:2" in out
    assert "↳ the mark" in out  # the evidence chain, indented under the finding


def test_info_only_passes(tmp_path, capsys):
    folder = make_folder(tmp_path, "i", code="x = 1  # FLAG:info\n")
    assert run(capsys, str(folder))[0] == 0


def test_rule_crash_exits_2_with_message_not_traceback(tmp_path, capsys):
    folder = make_folder(tmp_path, "c", code="# CRASH\n")
    code, out, err = run(capsys, str(folder))
    assert code == 2
    assert "R-TEST-CRASH crashed" in err and "boom" in err
    assert "Traceback" not in err + out
    assert "AUDIT INCOMPLETE" in out
    assert run(capsys, "--exit-zero", str(folder))[0] == 2


def test_nonexistent_path_exits_2(tmp_path, capsys):
    code, out, err = run(capsys, str(tmp_path / "nope"))
    assert code == 2 and "no such file or directory" in err and "Traceback" not in err


def test_file_instead_of_folder_exits_2(tmp_path, capsys):
    f = tmp_path / "a.txt"
    f.write_text("x")
    code, _, err = run(capsys, str(f))
    assert code == 2 and "not a directory" in err


def test_no_path_exits_2(capsys):
    code, _, err = run(capsys)
    assert code == 2 and "no PATH" in err


def test_unknown_option_exits_2(tmp_path, capsys):
    code, _, err = run(capsys, "--no-such-option", str(tmp_path))
    assert code == 2 and "usage" in err


def test_keyboard_interrupt_exits_130(monkeypatch, tmp_path, capsys):
    def interrupted(ns):
        raise KeyboardInterrupt

    monkeypatch.setattr(check_cmd, "run", interrupted)
    code, _, err = run(capsys, str(tmp_path))
    assert code == 130 and "interrupted" in err


def test_unexpected_exception_exits_2_without_traceback(monkeypatch, tmp_path, capsys):
    def broken(ns):
        raise ValueError("unexpected")

    monkeypatch.setattr(check_cmd, "run", broken)
    code, _, err = run(capsys, str(tmp_path))
    assert code == 2 and "internal error: ValueError: unexpected" in err and "Traceback" not in err


def test_help_exits_0(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "check" in out and "exit codes" in out


# -- many folders ---------------------------------------------------------------------------------
def test_many_folders_summary_table(tmp_path, capsys):
    a = make_folder(tmp_path, "2026-04-01_A", seeds=SEEDS)
    b = make_folder(tmp_path, "2026-04-02_B", code="x = 1  # FLAG:error\n")
    code, out, _ = run(capsys, str(a), str(b))
    assert code == 1
    summary = out[out.index("Summary"):]
    for col in ("folder", "verdict", "errors", "warnings", "seeds", "mean bpb"):
        assert col in summary
    assert "2026-04-01_A" in summary and "2026-04-02_B" in summary
    mean = (1.0801 + 1.0812 + 1.0795) / 3
    assert f"{mean:.5f}" in summary
    # per-seed table, tolerant of rows with missing keys
    assert "Seeds" in out and "1.08010000" in out and "15,990,000" in out


def test_same_folder_twice_is_audited_once(tmp_path, capsys):
    a = make_folder(tmp_path, "A")
    code, out, _ = run(capsys, "--format", "json", str(a), str(a) + "/")
    assert code == 0 and len(json.loads(out)["results"]) == 1


# -- formats and outputs --------------------------------------------------------------------------
def test_json_to_stdout(tmp_path, capsys):
    folder = make_folder(tmp_path, "j", code="x = 1  # FLAG:warning\n", seeds=SEEDS)
    code, out, _ = run(capsys, "--format", "json", str(folder))
    doc = json.loads(out)
    assert code == 1
    assert doc["summary"]["verdict"] == "REVIEW"
    assert doc["results"][0]["findings"][0]["rule_id"] == "R-TEST-FLAG"
    assert doc["results"][0]["stats"]["seeds"]["odd"] is None  # NaN became null


def test_out_dir_gets_every_file_format(tmp_path, capsys):
    folder = make_folder(tmp_path, "d", code="x = 1  # FLAG:error\n")
    out_dir = tmp_path / "out"
    code, out, err = run(capsys, "--format", "json,sarif,html,terminal", "--out", str(out_dir), str(folder))
    assert code == 1
    assert json.loads((out_dir / "report.json").read_text())["schema_version"]
    assert json.loads((out_dir / "report.sarif").read_text())["version"] == "2.1.0"
    assert "<!DOCTYPE html>" in (out_dir / "report.html").read_text()
    assert "FAIL" in out and "wrote" in err


def test_out_file_for_single_format(tmp_path, capsys):
    folder = make_folder(tmp_path, "f")
    dest = tmp_path / "x" / "audit.sarif"
    assert run(capsys, "--format", "sarif", "--out", str(dest), str(folder))[0] == 0
    assert json.loads(dest.read_text())["runs"][0]["tool"]["driver"]["name"] == "pgolf-audit"


def test_html_out_dir_writes_report_html(tmp_path, capsys):
    folder = make_folder(tmp_path, "h")
    assert run(capsys, "--format", "html", "--out", str(tmp_path / "site"), str(folder))[0] == 0
    assert (tmp_path / "site" / "report.html").is_file()


def test_two_machine_formats_on_stdout_is_a_usage_error(tmp_path, capsys):
    folder = make_folder(tmp_path, "u")
    code, _, err = run(capsys, "--format", "json,sarif", str(folder))
    assert code == 2 and "--out" in err


def test_github_with_sarif_file(tmp_path, capsys, monkeypatch):
    folder = make_folder(tmp_path, "g", code="x = 1  # FLAG:error\n")
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    code, out, _ = run(capsys, "--format", "github,sarif", "--out", str(tmp_path / "r"), str(folder))
    assert code == 1
    assert out.startswith("::error file=")
    assert (tmp_path / "r" / "report.sarif").is_file()
    assert "| g | FAIL | 1 | 0 |" in summary.read_text()


def test_unknown_format_exits_2(tmp_path, capsys):
    code, _, err = run(capsys, "--format", "xml", str(tmp_path))
    assert code == 2 and "--format" in err


def test_out_without_file_format_exits_2(tmp_path, capsys):
    code, _, err = run(capsys, "--out", str(tmp_path / "o"), str(tmp_path))
    assert code == 2 and "--out" in err


# -- rule selection -------------------------------------------------------------------------------
def test_ignore_and_select(tmp_path, capsys):
    folder = make_folder(tmp_path, "s", code="x = 1  # FLAG:error\n# CRASH\n")
    assert run(capsys, "--ignore", "R-TEST-CRASH,R-TEST-FLAG", str(folder))[0] == 0
    assert run(capsys, "--select", "R-TEST-FLAG", str(folder))[0] == 1
    assert run(capsys, "--select", "R-TEST-RUNS", str(folder))[0] == 0


def test_select_by_also_reported_id_runs_the_rule(tmp_path):
    names = [r.ID for r in check_cmd.select_rules(["R-TEST-RUNS-ALSO"], [])]
    assert names == ["R-TEST-RUNS"]


def test_unknown_rule_prefix_exits_2(tmp_path, capsys):
    code, _, err = run(capsys, "--select", "R-NOPE", str(make_folder(tmp_path, "n")))
    assert code == 2 and "R-NOPE" in err


def test_bad_sota_exits_2(tmp_path, capsys):
    bad = tmp_path / "sota.json"
    bad.write_text("{not json")
    code, _, err = run(capsys, "--sota", str(bad), str(make_folder(tmp_path, "b")))
    assert code == 2 and "sota" in err
    code, _, err = run(capsys, "--sota", str(tmp_path / "missing.json"), str(tmp_path))
    assert code == 2 and "no such file" in err


# -- report: re-render a saved JSON report --------------------------------------------------------
def test_report_round_trip_check_json_report_sarif(tmp_path, capsys):
    a = make_folder(tmp_path, "2026-04-01_A", code="x = 1  # FLAG:error\ny = 2  # FLAG:warning\n", seeds=SEEDS)
    b = make_folder(tmp_path, "2026-04-02_B", code="z = 3  # FLAG:info\n")
    out_dir = tmp_path / "out"
    code, _, _ = run(capsys, str(a), str(b), "--format", "json,sarif", "--out", str(out_dir))
    assert code == 1
    direct = json.loads((out_dir / "report.sarif").read_text())
    code, out, err = run(capsys, "report", str(out_dir / "report.json"), "--format", "sarif")
    assert code == 1, err
    again = json.loads(out)
    keys = ("ruleId", "level", "message", "locations", "partialFingerprints", "relatedLocations")
    assert [{k: r.get(k) for k in keys} for r in again["runs"][0]["results"]] == \
           [{k: r.get(k) for k in keys} for r in direct["runs"][0]["results"]]
    assert len(again["runs"][0]["results"]) == 3
    assert again["runs"][0]["tool"]["driver"]["rules"] == direct["runs"][0]["tool"]["driver"]["rules"]


def test_report_renders_terminal_html_and_github(tmp_path, capsys, monkeypatch):
    folder = make_folder(tmp_path, "2026-04-01_A", code="x = 1  # FLAG:warning\n", seeds=SEEDS)
    saved = tmp_path / "r.json"
    assert run(capsys, str(folder), "--format", "json", "--out", str(saved))[0] == 1
    code, out, _ = run(capsys, "report", str(saved))
    assert code == 1 and "REVIEW" in out and "R-TEST-FLAG" in out and "1.08010000" in out
    assert run(capsys, "report", str(saved), "--fail-on", "error")[0] == 0
    code, out, _ = run(capsys, "report", str(saved), "--format", "github", "--exit-zero")
    assert code == 0 and out.startswith("::warning file=")
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "report", str(saved), "--format", "html", "--out", "page.html")
    assert code == 1 and "wrote page.html" in err
    page = (tmp_path / "page.html").read_text()
    assert "R-TEST-FLAG" in page and "x = 1  # FLAG:warning" in page  # the saved evidence excerpt


def test_report_saved_crash_exits_2(tmp_path, capsys):
    folder = make_folder(tmp_path, "c", code="# CRASH\n")
    saved = tmp_path / "r.json"
    assert run(capsys, str(folder), "--format", "json", "--out", str(saved))[0] == 2
    code, _, err = run(capsys, "report", str(saved))
    assert code == 2 and "R-TEST-CRASH crashed" in err


@pytest.mark.parametrize("content, message", [
    ('{"schema_version": "2.0", "tool": {"name": "pgolf-audit", "version": "3.1"}, "results": []}',
     "schema_version '2.0' is not supported"),
    ("{not json", "not valid JSON"),
    ('{"schema_version": "1.0", "results": [{"target": 5}]}', "results[0].target: expected a string"),
    ('{"schema_version": "1.0", "results": [{"target": "t", "findings": [{"rule_id": "R-X"}]}]}',
     "findings[0].severity"),
])
def test_report_refuses_bad_input_without_traceback(tmp_path, capsys, content, message):
    path = tmp_path / "r.json"
    path.write_text(content, encoding="utf-8")
    code, out, err = run(capsys, "report", str(path))
    assert code == 2 and message in err and "Traceback" not in err and out == ""


def test_report_usage_errors(tmp_path, capsys):
    code, _, err = run(capsys, "report", str(tmp_path / "missing.json"))
    assert code == 2 and "no such file" in err
    code, _, err = run(capsys, "report")
    assert code == 2 and "REPORT.json" in err
    code, _, err = run(capsys, "report", str(tmp_path), "--format", "pdf")
    assert code == 2 and "--format" in err


# -- rules ----------------------------------------------------------------------------------------
def test_rules_lists_every_rule(capsys):
    code, out, _ = run(capsys, "rules")
    assert code == 0
    for rid in ("R-TEST-FLAG", "R-TEST-CRASH", "R-TEST-RUNS", "R-TEST-RUNS-ALSO", "R-SUB-FOLDER"):
        assert rid in out


def test_rules_lists_the_harness_checks(capsys):
    code, out, _ = run(capsys, "rules", "--markdown")
    assert code == 0
    assert any(line.startswith("| `R-REC-REPRODUCIBLE.rerun-mean` | error | runtime |") for line in out.splitlines())


def test_rules_markdown(capsys):
    code, out, _ = run(capsys, "rules", "--markdown")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "| ID | severity | kind | title | source |"
    assert any(line.startswith("| `R-TEST-FLAG` | error | static |") for line in lines)


# -- rerun ----------------------------------------------------------------------------------------
def test_rerun_without_harness_exits_2(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "audit.harness.cli", None)
    code, _, err = run(capsys, "rerun", "somewhere")
    assert code == 2 and "rerun" in err and "Traceback" not in err


def test_rerun_delegates_to_harness(monkeypatch, capsys):
    seen = {}
    fake = types.ModuleType("audit.harness.cli")

    def add_parser(subparsers, common):
        parser = subparsers.add_parser("rerun")
        parser.add_argument("folder")
        parser.add_argument("--seeds", nargs="+", type=int)

    def run_(args):
        seen.update(vars(args))
        return 0

    fake.add_parser = add_parser
    fake.run = run_
    monkeypatch.setitem(sys.modules, "audit.harness.cli", fake)
    import audit.harness

    monkeypatch.setattr(audit.harness, "cli", fake, raising=False)
    code, _, _ = run(capsys, "rerun", "dir", "--seeds", "42", "1337")
    assert code == 0 and seen == {"command": "rerun", "folder": "dir", "seeds": [42, 1337]}


# -- --changed-since ------------------------------------------------------------------------------
def _git(repo: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_SYSTEM": os.devnull}
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, env=env)


@pytest.fixture
def repo(tmp_path, monkeypatch):
    make_folder(tmp_path, "2026-03-01_Old")
    (tmp_path / "README.md").write_text("leaderboard\n")
    _git(tmp_path, "init", "-q", "-b", "main")
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-q", "-m", "base")
    _git(tmp_path, "checkout", "-q", "-b", "pr")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_changed_since_audits_the_added_folder(repo, capsys):
    make_folder(repo, "2026-04-01_New", code="x = 1  # FLAG:warning\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "new record")
    code, out, _ = run(capsys, "--changed-since", "main", "--format", "json")
    doc = json.loads(out)
    assert code == 1
    assert [r["name"] for r in doc["results"]] == ["2026-04-01_New"]
    assert doc["results"][0]["verdict"] == "REVIEW"


def test_changed_since_flags_two_folders_and_outside_files(repo, capsys):
    make_folder(repo, "2026-04-01_New")
    (repo / "records" / "track_10min_16mb" / "2026-03-01_Old" / "README.md").write_text("edited\n")
    (repo / "README.md").write_text("leaderboard + my row\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "new record and more")
    code, out, _ = run(capsys, "--changed-since", "main", "--format", "json")
    doc = json.loads(out)
    assert code == 1
    diff = [r for r in doc["results"] if r["kind"] == "diff"]
    assert len(diff) == 1 and diff[0]["verdict"] == "FAIL"
    messages = " ".join(f["message"] for f in diff[0]["findings"])
    assert {f["rule_id"] for f in diff[0]["findings"]} == {"R-SUB-FOLDER"}
    assert "2 submission folders" in messages and "outside" in messages and "existed before" in messages
    assert sorted(r["name"] for r in doc["results"] if r["kind"] == "folder") == ["2026-03-01_Old", "2026-04-01_New"]


def test_changed_since_warns_on_a_misnamed_new_folder(repo, capsys):
    make_folder(repo, "MyRecord")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "new record, no date")
    _, out, _ = run(capsys, "--changed-since", "main", "--format", "json")
    diff = [r for r in json.loads(out)["results"] if r["kind"] == "diff"]
    assert len(diff) == 1 and diff[0]["verdict"] == "REVIEW"
    assert "YYYY-MM-DD_description" in diff[0]["findings"][0]["message"]


def test_changed_since_nothing_changed(repo, capsys):
    code, _, err = run(capsys, "--changed-since", "main")
    assert code == 0 and "no record folder changed" in err


def test_changed_since_bad_ref_exits_2(repo, capsys):
    code, _, err = run(capsys, "--changed-since", "no-such-ref")
    assert code == 2 and "git" in err


def test_record_folder_of_paths():
    assert record_folder("records/track_10min_16mb/2026_X/train_gpt.py") == "records/track_10min_16mb/2026_X"
    assert record_folder("records/track_10min_16mb/README.md") is None
    assert record_folder("README.md") is None


# -- start-up -------------------------------------------------------------------------------------
def test_import_cli_is_light():
    code = ("import sys, audit.cli; heavy = [m for m in ('torch', 'scipy', 'rich', 'jinja2', 'rules') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_piped_output_has_no_ansi(tmp_path):
    folder = make_folder(tmp_path, "p", code="x = 1  # FLAG:error\n")
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    env["PYTHONPATH"] = str(Path(__file__).parent)
    code = ("import sys, audit.registry as reg, report_helpers as h; reg.all_rules = lambda: h.TEST_RULES; "
            "from audit.cli import main; sys.exit(main(sys.argv[1:]))")
    proc = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True, env=env)
    assert proc.returncode == 1, proc.stderr
    assert "FAIL" in proc.stdout and "\x1b[" not in proc.stdout


def test_from_files_audits_the_folders_of_changed_files(tmp_path, monkeypatch, capsys):
    a = make_folder(tmp_path, "2026-04-01_A", code="x = 1  # FLAG:warning\n")
    make_folder(tmp_path, "2026-04-02_B")
    monkeypatch.chdir(tmp_path)
    files = [f"records/track_10min_16mb/{a.name}/train_gpt.py", f"records/track_10min_16mb/{a.name}/README.md",
             "README.md"]
    code, out, _ = run(capsys, "--from-files", "--format", "json", *files)
    doc = json.loads(out)
    assert code == 1 and [r["name"] for r in doc["results"]] == ["2026-04-01_A"]
    code, _, err = run(capsys, "--from-files", "README.md")
    assert code == 0 and "no submission folder" in err


def test_hook_and_workflow_commands_parse():
    """The pre-commit hooks and the CI example call options that exist."""
    import shlex

    yaml = pytest.importorskip("yaml")
    root = Path(__file__).parents[1]
    commands = [h["entry"] for h in yaml.safe_load((root / ".pre-commit-hooks.yaml").read_text())]
    workflow = yaml.safe_load((root / "ci" / "github-workflow-example.yml").read_text())
    for step in workflow["jobs"]["audit"]["steps"]:
        if "pgolf-audit check" in step.get("run", ""):
            commands.append(step["run"].replace("\\\n", " ").replace('"origin/${{ github.base_ref }}"', "origin/main"))
    assert len(commands) == 3
    for command in commands:
        argv = shlex.split(command)
        assert argv[0] == "pgolf-audit"
        ns = cli.build_parser().parse_args(argv[1:])
        assert ns.command == "check"
        output.plan_outputs(output.parse_formats(ns.format), ns.out)


def test_rerun_without_harness_module_exits_2(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "audit.harness.cli", None)
    code, _, err = run(capsys, "rerun", "x")
    assert code == 2 and "`rerun` is not available" in err


@pytest.mark.parametrize("formats, out, expected", [
    ("json", "r.json", {"json": "r.json"}),
    ("json", "results", {"json": "results/report.json"}),
    ("json", "results/", {"json": "results/report.json"}),
    ("html", "page.html", {"html": "page.html"}),
    ("html", "site.d", {"html": "site.d/report.html"}),
    ("json,sarif", "o.json", {"json": "o.json/report.json", "sarif": "o.json/report.sarif"}),
    ("terminal,html", None, {"terminal": None, "html": "report.html"}),
    ("github,json", None, "usage"),
    ("terminal,sarif", None, "usage"),
    ("sarif", None, {"sarif": None}),
])
def test_plan_outputs(tmp_path, monkeypatch, formats, out, expected):
    monkeypatch.chdir(tmp_path)
    if expected == "usage":
        with pytest.raises(output.UsageError):
            output.plan_outputs(output.parse_formats(formats), out)
        return
    plan = output.plan_outputs(output.parse_formats(formats), out)
    assert {k: (v.as_posix() if v else None) for k, v in plan.items()} == expected


def test_out_names_an_existing_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reports.json").mkdir()
    plan = output.plan_outputs(["json"], "reports.json")
    assert plan["json"] == Path("reports.json") / "report.json"


# -- the subcommand registration point (how `probe` plugs in) ----------------------------------------
def test_a_registered_subcommand_gets_the_shared_options_and_the_one_way_out(monkeypatch, capsys, tmp_path):
    from audit.findings import Finding, Report, Severity
    from audit.report.model import TargetResult

    fake = types.ModuleType("fake_probe_cli")

    def add_parser(subparsers, common):
        parser = subparsers.add_parser("probe", parents=[common], help="fake probe")
        parser.add_argument("folder")
        output.add_out_option(parser)
        return parser

    def run_(args):
        finding = Finding("R-TEST-FLAG", Severity.WARNING, f"probed {args.folder}")
        return [TargetResult(Report(target=args.folder, findings=[finding]))]

    fake.add_parser, fake.run = add_parser, run_
    monkeypatch.setitem(sys.modules, "fake_probe_cli", fake)
    monkeypatch.setitem(cli.SUBCOMMANDS, "probe", "fake_probe_cli")
    code, out, _ = run(capsys, "probe", "somewhere", "--format", "json")
    doc = json.loads(out)
    assert code == 1 and doc["results"][0]["findings"][0]["message"] == "probed somewhere"
    code, _, _ = run(capsys, "probe", "somewhere", "--format", "json", "--fail-on", "error")
    assert code == 0
    code, _, err = run(capsys, "probe", "x", "--format", "json,sarif")  # planned before any work
    assert code == 2 and "--out" in err
    code, _, _ = run(capsys, "probe", "x", "--format", "sarif,json", "--out", str(tmp_path / "o"))
    assert code == 1 and (tmp_path / "o" / "report.sarif").is_file()


def test_probe_is_not_offered_until_its_module_exists(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "audit.probes.cli", None)
    code, _, err = run(capsys, "probe", "x")
    assert code == 2 and "`probe` is not available" in err
