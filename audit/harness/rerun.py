"""`rerun`: every seed re-run and measured, then compared with the claims, as one Report.

The Report is the static audit of the folder plus the harness findings, so every output format
(terminal, JSON, SARIF, HTML) carries the re-run. The per-seed table and statistics of the
re-run go to `report.stats["rerun"]`, the sandbox facts to `report.facts["rerun"]`.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from audit.findings import AuditError, Evidence, Finding, Report
from audit.harness import store
from audit.harness.checks import check
from audit.harness.claims_view import ClaimSet, collect_claims
from audit.harness.compare import Limits, claim_findings, network_findings, rerun_stats, seed_findings
from audit.harness.envpolicy import screen, scrub_own_environ, trusted_path
from audit.harness.isolation import HostFacts, choose_isolation, python_paths, resolve_tool
from audit.harness.measure import SeedResult, describe_crash
from audit.harness.progress import ProgressView
from audit.harness.readme_env import applicable, declared_env
from audit.harness.runner import (
    HARNESS_OWNED,
    RerunOptions,
    Toolchain,
    config_key,
    run_one_seed,
    scratch_area,
    seed_env,
    shown_env,
)
from audit.harness.sandbox import folder_digest
from audit.harness.signals import Interrupted, interrupt_on_signals
from audit.submission import Submission


@dataclass
class RerunResult:
    report: Report
    submission: Submission
    results: list[SeedResult] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


def limits_of(opts: RerunOptions, bpb_tolerance: float = 0.001, bytes_tolerance_rel: float = 0.001) -> Limits:
    return Limits(train_s=opts.timeout_train, eval_s=opts.timeout_eval, total_s=opts.timeout_total,
                  startup_allowance_s=opts.startup_allowance, bpb_tolerance=bpb_tolerance,
                  bytes_tolerance_rel=bytes_tolerance_rel)


def seeds_from_claims(sub: Submission) -> list[int]:
    """The seeds the submission's logs and submission.json name (for --seeds-from-logs)."""
    return collect_claims(sub).seeds()


def rerun(opts: RerunOptions, *, limits: Limits | None = None, static: bool = True,
          view: ProgressView | None = None) -> RerunResult:
    """Re-run every seed of opts.seeds (skipping finished ones with opts.resume); never raises for
    anything the submission does. TERM/HUP/INT kill the run in progress, record it, remove the
    scratch folder and raise signals.Interrupted (exit 128 + signal number in the CLI)."""
    scrubbed, wiped = scrub_own_environ()  # before anything is spawned: children could read our environ
    with interrupt_on_signals():
        return _rerun(opts, limits, static, view, {"harness_env_scrubbed": scrubbed, "harness_environ_wiped": wiped})


def _rerun(opts: RerunOptions, limits: Limits | None, static: bool, view: ProgressView | None,
           scrub_facts: dict[str, Any]) -> RerunResult:
    limits = limits or limits_of(opts)
    view = view or ProgressView(enabled=opts.show_progress)
    sub = Submission.load(opts.folder)
    report = _static_report(sub, static)
    main = sub.main_script
    if main is None:
        c = check("R-SUB-FILES.rerun-runs")
        report.findings.append(Finding(
            c.id, c.severity, "There is no train_gpt.py (nor a single top-level train*.py) to re-run. A submission "
            "ships the script that trains and evaluates it as train_gpt.py.", key="no-script", source=c.source))
        return RerunResult(report, sub)
    script = main.path
    problem = layout_problem(opts)
    tools = None if problem else _toolchain(opts)
    if problem is None and isinstance(tools, str):
        problem = tools
    if problem is not None or not isinstance(tools, Toolchain):
        report.errors.append(AuditError("harness", problem or "no toolchain"))
        return RerunResult(report, sub)
    isolation = tools.isolation
    opts, env_note, refused = _readme_env(opts, sub, script)
    digest_before = folder_digest(opts.folder)
    key = config_key(opts, digest_before, script)
    claims = collect_claims(sub)
    results: list[SeedResult] = []
    resumed: list[int] = []
    interrupted: Interrupted | None = None
    with scratch_area(opts) as scratch, view:
        for seed in dict.fromkeys(opts.seeds):
            stored = store.load_finished(opts.out, seed, key) if opts.resume else None
            if stored is not None:
                results.append(SeedResult.from_dict(stored["result"]))
                resumed.append(seed)
                view.note(f"seed {seed}: finished earlier under the same configuration, result reused (--resume)")
                continue
            try:
                result = run_one_seed(opts, seed, script, scratch, tools, view)
            except Interrupted as exc:
                interrupted = exc
                result = getattr(exc, "result", None)
            if result is not None:
                store.write_seed(opts.out, seed, key, result.to_dict())
                results.append(result)
            if interrupted is not None:
                break
    digest_after = folder_digest(opts.folder)

    findings = [f for r in results for f in seed_findings(r, script, limits)]
    findings += [env_note] if env_note is not None else []
    findings += network_findings([r for r in results if r.seed not in resumed] or results, script,
                                 isolation.network_cut, isolation.note)
    findings += claim_findings(results, claims, script, limits)
    if digest_after != digest_before:
        c = check("R-SUB-FILES.rerun-original-modified")
        findings.append(Finding(
            c.id, c.severity, "The submitted folder changed while it was being re-run (sha256 before "
            f"{digest_before[:12]}…, after {digest_after[:12]}…). The harness only runs a scratch copy, so the "
            "script (or something else on this machine) wrote to the original by absolute path; re-run on a clean "
            "checkout and inspect what changed.",
            path=script, key="original-modified", source=c.source,
            evidence=(Evidence("folder sha256 before", None, None, digest_before),
                      Evidence("folder sha256 after", None, None, digest_after))))
    errors = [AuditError("harness", f"seed {r.seed}: processes {r.survivors} survived SIGKILL of the run")
              for r in results if r.survivors]
    errors += [AuditError("harness", f"seed {r.seed}: the sandbox could not be proven, so the submission was not "
                          f"started ({_sandbox_problem(r)})") for r in results if r.status == "sandbox-error"]

    stats = rerun_stats(results, claims)
    stats["runs"] = [_row(r, claims) for r in results]
    facts = {
        "isolation": isolation.note, "sandbox_mode": isolation.mode,
        # proven inside the sandbox on every seed (a resumed seed carries its own proof), never assumed
        "network_cut": bool(results) and all(r.network_cut for r in results),
        "pid_namespace": isolation.pid_namespace, "tools": {"python": tools.python, "unshare": isolation.prefix[:1]},
        "folder_sha256_before": digest_before, "folder_sha256_after": digest_after, "config_key": key,
        "resumed_seeds": resumed, "nproc": opts.nproc, "limits": limits.__dict__, "out": str(opts.out),
        "env_dropped": sorted({n for r in results for n in r.env_dropped}), "env": shown_env(opts.env),
        "env_refused": refused,
        "readme_env": declared_env(sub.readme.text) if sub.readme is not None and sub.readme.text else {},
        "sandbox": {str(r.seed): r.sandbox for r in results}, "max_output": opts.max_output, **scrub_facts,
    }
    if interrupted is not None:
        facts["interrupted"] = interrupted.signal_name
    report.findings.extend(findings)
    report.errors.extend(errors)
    report.stats["rerun"] = stats
    report.facts["rerun"] = facts
    summary = {
        "schema": store.SCHEMA, "target": str(opts.folder), "script": script, "seeds": list(opts.seeds),
        "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "verdict": report.verdict.value,
        "stats": stats, "facts": facts, "claims": _claims_dict(claims),
        "findings": [f.to_dict() for f in findings], "errors": [e.to_dict() for e in errors],
    }
    store.write_json_atomic(store.summary_path(opts.out), summary)
    if interrupted is not None:
        raise interrupted
    return RerunResult(report, sub, results, summary)


def _sandbox_problem(r: SeedResult) -> str:
    sb = r.sandbox or {}
    bad = [f"{name}: {c.get('detail')}" for name, c in (sb.get("checks") or {}).items() if not c.get("ok")]
    return "; ".join([*sb.get("errors", []), *bad])[:500] or "no report from the sandbox"


def layout_problem(opts: RerunOptions) -> str | None:
    """Results, scratch and submission must not contain one another: a run must reach none of the others."""
    folder, out = opts.folder.resolve(), opts.out.resolve()
    places = {"the submission folder": folder, "the results folder (--out)": out}
    if opts.scratch_root is not None:
        places["the scratch folder (--scratch)"] = opts.scratch_root.resolve()
    items = list(places.items())
    for i, (a_name, a) in enumerate(items):
        for b_name, b in items[i + 1:]:
            if a == b or a in b.parents or b in a.parents:
                return f"{a_name} ({a}) and {b_name} ({b}) overlap; keep them apart so a run cannot reach the others"
    return None


def _toolchain(opts: RerunOptions) -> Toolchain | str:
    """Absolute paths of everything a seed runs, fixed before the first seed; or why there are none."""
    python = resolve_tool(opts.python, trusted_path(os.environ.get("PATH")))
    if python is None:
        return f"--python {opts.python}: not found as an executable"
    isolation = choose_isolation(opts.allow_network, opts.unsafe, python)
    if isolation.mode == "unavailable":
        return (f"the re-run sandbox is not available here: {isolation.note}. The submission was not run. "
                "Use a host that allows user namespaces (or run as root), or pass --unsafe to run it without any "
                "sandbox (only for code you trust: see the threat model in the README).")
    env, _, _, _ = seed_env(opts, 0, "probe", Path(tempfile.gettempdir()))
    return Toolchain(python, tuple(python_paths(python, env)), isolation, HostFacts.gather())


def _readme_env(opts: RerunOptions, sub: Submission, script: str
                ) -> tuple[RerunOptions, Finding | None, dict[str, str]]:
    """Apply the README's run environment when asked, minus what steers the sandbox (refused, listed);
    note what of it this run leaves out."""
    declared = declared_env(sub.readme.text) if sub.readme is not None and sub.readme.text else {}
    usable, skipped = applicable(declared, HARNESS_OWNED)
    usable, refused = screen(usable, HARNESS_OWNED)
    refused.update({k: "set by the harness" for k in skipped if k in HARNESS_OWNED})
    given, refused_given = screen(opts.env, HARNESS_OWNED)
    refused = {**{k: f"README: {v}" for k, v in refused.items()}, **{k: f"--env: {v}" for k, v in refused_given.items()}}
    opts = replace(opts, env={**usable, **given} if opts.env_from_readme else given)
    left_out = {k: v for k, v in declared.items() if k not in opts.env and k not in HARNESS_OWNED}
    if not left_out:
        return opts, None, refused
    c = check("R-REC-REPRODUCIBLE.rerun-env")
    shown = " ".join(f"{k}={v}" for k, v in list(left_out.items())[:12]) + (" …" if len(left_out) > 12 else "")
    never = sorted(k for k in left_out if k in refused)
    return opts, Finding(
        c.id, c.severity,
        f"The README's run command sets {len(left_out)} variable(s) this re-run did not ({shown}); the script's "
        "defaults were used for them. If the claim depends on them, re-run with --env-from-readme (relative paths "
        "are not applied: pass them as absolute paths with --env)."
        + (f" Never applied, because they steer program lookup, loading or the sandbox: {', '.join(never)}."
           if never else ""),
        path="README.md", key="readme-env", source=c.source,
        evidence=(Evidence("README run command", "README.md", None, shown),)), refused


def _static_report(sub: Submission, static: bool) -> Report:
    target = str(sub.root) if sub.root is not None else sub.name
    if not static:
        from rules.sub_files import SubFiles

        return Report(target=target, findings=list(SubFiles().reader_findings(sub)))
    from audit.engine import audit_submission

    report = audit_submission(sub)
    report.target = target
    return report


def _row(r: SeedResult, claims: ClaimSet) -> dict[str, Any]:
    c = claims.per_seed.get(r.seed)
    claimed = c.val_bpb if c else None
    return {
        "seed": r.seed, "status": r.status, "exit_code": r.exit_code,
        "reason": describe_crash(r.crash_reason) if r.crash_reason else None,
        "network_cut": r.network_cut, "output_bytes": r.output_bytes, "output_truncated": r.output_truncated,
        "val_bpb": r.val_bpb, "claimed_val_bpb": claimed,
        "delta_bpb": (r.val_bpb - claimed) if r.val_bpb is not None and claimed is not None else None,
        "val_loss": r.val_loss, "score_label": r.score_label,
        "artifact_bytes_raw": r.artifact_bytes_raw, "artifact_bytes_counted": r.artifact_bytes_counted,
        "claimed_artifact_bytes": c.artifact_bytes if c else None, "log_artifact_bytes": r.log_artifact_bytes,
        "model_file": r.model_file, "model_file_bytes": r.model_file_bytes,
        "train_time_ms": r.train_time_ms, "eval_time_ms": r.eval_time_ms, "total_eval_time_s": r.total_eval_time_s,
        "wall_s": r.wall_s, "train_phase_wall_s": r.train_phase_wall_s, "eval_phase_wall_s": r.eval_phase_wall_s,
        "log_file": r.log_file,
    }


def _claims_dict(claims: ClaimSet) -> dict[str, Any]:
    return {"mean_bpb": claims.mean_bpb, "bytes_total": claims.bytes_total, "notes": claims.notes,
            "per_seed": {str(s): c.__dict__ for s, c in sorted(claims.per_seed.items())}}
