"""R-SUB-JSON: submission.json is a JSON object with val_bpb and the author's identity."""

from __future__ import annotations

from collections.abc import Iterable

from audit.context import AuditContext
from audit.enforcement import enforce
from audit.findings import Evidence, Finding, Severity
from audit.rule import Invalid, Rule, Valid
from audit.seeds import seed_table, submission_claims
from rules._meta_examples import folder

IDENTITY_KEYS = ("author", "github_id", "name")


class SubJson(Rule):
    ID = "R-SUB-JSON"
    TITLE = "submission.json is valid and carries val_bpb, author, github_id, name"
    SEVERITY = Severity.ERROR
    KIND = "meta"
    SOURCE = "RULES.md R-SUB-JSON: README 'Submission Process'; https://github.com/openai/parameter-golf/pull/561"
    VALID = [
        Valid(folder(), "the conventional keys"),
    ]
    INVALID = [
        Invalid({**folder(), "submission.json": '{"author": "A", "val_bpb": 1.22,'}, "truncated JSON"),
        Invalid({**folder(), "submission.json": "[1.2243]"}, "a JSON list, not an object"),
        Invalid(folder(json_drop=("val_bpb",)), "no val_bpb at all"),
        Invalid(
            folder(json_drop=("val_bpb",), json_extra={"mean_val_bpb": 1.2243}),
            "val_bpb under a non-standard key",
            severity=Severity.WARNING,
        ),
        Invalid(folder(json_drop=("github_id",)), "no github_id", severity=Severity.WARNING),
    ]

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        yield from enforce(ctx, self._check(ctx))

    def _check(self, ctx: AuditContext) -> Iterable[Finding]:
        seed_table(ctx)
        sub = ctx.submission
        path = sub.json_path
        if path is None:
            return  # R-SUB-FILES reports the missing file
        if sub.json_error is not None or sub.json_data is None:
            yield self.finding(
                f"{sub.json_error or path + ' could not be read'} (R-SUB-JSON). submission.json must be a JSON "
                "object with author, github_id, name and val_bpb; reviewers and the leaderboard read it. Fix the "
                "file so that `json.load` returns an object.",
                path=path, key="invalid",
                evidence=[Evidence("parse of submission.json", path)],
            )
            return
        claims = submission_claims(ctx)
        yield from self._val_bpb(path, claims)
        yield from self._identity(path, sub.json_data)

    def _val_bpb(self, path: str, claims) -> Iterable[Finding]:
        value = getattr(claims, "val_bpb", None)
        key = getattr(claims, "val_bpb_key", None)
        if value is None:
            yield self.finding(
                f"{path} has no val_bpb (R-SUB-JSON). The claimed score must be given as `val_bpb` (the mean of "
                "the per-seed final scores). Add it.",
                path=path, key="no-val-bpb",
                evidence=[Evidence("keys of submission.json", path, None,
                                   ", ".join(sorted(getattr(claims, "raw", {}) or {}))[:200] or None)],
            )
            return
        if key and key != "val_bpb":
            yield self.finding(
                f"{path} gives the score under the non-standard key `{key}` ({value}) instead of `val_bpb` "
                "(R-SUB-JSON). Tools and reviewers read `val_bpb`; rename the key.",
                path=path, severity=Severity.WARNING, key="val-bpb-key",
                evidence=[Evidence(f"{key}: {value}", path)],
            )

    def _identity(self, path: str, data: dict) -> Iterable[Finding]:
        missing = [k for k in IDENTITY_KEYS if not isinstance(data.get(k), str) or not data.get(k, "").strip()]
        if not missing:
            return
        hint = " (`run_name` is present)" if "name" in missing and data.get("run_name") else ""
        yield self.finding(
            f"{path} lacks {', '.join(missing)}{hint} (R-SUB-JSON: the README asks for the author's name, GitHub "
            "ID and a submission name). Add the missing keys.",
            path=path, severity=Severity.WARNING, key="identity",
            evidence=[Evidence(f"missing key: {k}", path) for k in missing],
        )
