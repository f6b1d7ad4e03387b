"""The per-seed table and the statistics every report carries, built by the engine before the rules.

They used to be written by whichever rule ran first, so a report of selected rules could lack
them. Rules now read them: R-REC-SIGNIFICANCE turns `significance_of(ctx)` into findings.
"""

from __future__ import annotations

from typing import Any

from audit.context import AuditContext
from audit.findings import Evidence
from audit.seeds import excerpt, is_non_record, run_seed, scored_runs, seed_table, submission_claims
from audit.stats import RunSet


def fill_report_data(ctx: AuditContext) -> None:
    """ctx.runs_table, ctx.stats["seeds"] (with the claimed values) and ctx.stats["significance"]."""
    seed_table(ctx)
    claims = submission_claims(ctx)
    if claims is not None and scored_runs(ctx):
        ctx.stats.setdefault("seeds", {}).update(
            claimed_val_bpb=getattr(claims, "val_bpb", None),
            claimed_val_bpb_std=getattr(claims, "val_bpb_std", None),
        )
    sig = significance_of(ctx)
    if sig is not None:
        ctx.stats["significance"] = sig


def significance_of(ctx: AuditContext) -> dict[str, Any] | None:
    """Both tests of RULES.md §G against --sota (audit.stats.significance), or a note on why not.

    None for the non-record track, which needs no significance.
    """
    return ctx.memo("run_stats.significance", lambda: _significance(ctx))


def _significance(ctx: AuditContext) -> dict[str, Any] | None:
    from audit.sota import load_reference
    from audit.stats import significance

    if is_non_record(ctx):
        return None
    if ctx.options.sota is None:
        return {"note": "not tested: no reference run set (pass --sota FILE|DIR)"}
    ref = load_reference(ctx.options.sota)
    new, _ = new_runset(ctx)
    if not new.val_bpb:
        return {"note": "not tested: no scored run in this submission"}
    sig = significance(new, ref)
    if sig["practice"] is None:
        sig["note"] = "not tested: both run sets have a single run"
    return sig


def new_runset(ctx: AuditContext) -> tuple[RunSet, list[Evidence]]:
    """This submission's scored runs (from its logs; submission.json per-seed results as fallback)."""
    from audit.sota import distinct_runs, runset_from_json

    runs = distinct_runs(scored_runs(ctx))
    evidence = [
        Evidence(f"seed {run_seed(r)} final score {r.val_bpb:.8f} bpb", r.log_path, r.score_line,
                 excerpt(ctx, r.log_path, r.score_line))
        for r in runs if r.val_bpb is not None
    ]
    bpb = [r.val_bpb for r in runs if r.val_bpb is not None]
    if bpb:
        loss = [r.val_loss for r in runs if r.val_loss is not None]
        return RunSet(ctx.submission.name, val_bpb=tuple(bpb),
                      val_loss=tuple(loss) if len(loss) == len(bpb) else ()), evidence
    if ctx.submission.json_data is not None:
        try:
            from_json = runset_from_json(ctx.submission.json_data, ctx.submission.name)
        except ValueError:
            from_json = None
        if from_json is not None and from_json.val_bpb:
            label = f"per-seed results claimed in {ctx.submission.json_path} (no log has a final score)"
            return from_json, [Evidence(label, ctx.submission.json_path)]
    return RunSet(ctx.submission.name), evidence
