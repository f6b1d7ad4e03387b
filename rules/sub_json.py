"""R-SUB-JSON: submission.json is a JSON object with val_bpb and the author's identity."""

from __future__ import annotations

import math
from collections.abc import Iterable

from audit.claims import Claims
from audit.context import AuditContext
from audit.enforcement import enforce
from audit.findings import Evidence, Finding, Severity
from audit.rule import FILE, README_RULE_DATE, Invalid, Rule, RuleDoc, Valid
from audit.seeds import seed_table, submission_claims
from audit.strict_json import JsonProblemKind
from audit.submission import Submission
from rules._meta_examples import folder

IDENTITY_KEYS = ("author", "github_id", "name")
_IDENTITY = '{\n  "author": "A",\n  "github_id": "a",\n  "name": "n",\n  '


class SubJson(Rule):
    ID = "R-SUB-JSON"
    TITLE = "submission.json is valid and carries val_bpb, author, github_id, name"
    SEVERITY = Severity.ERROR
    KIND = "meta"
    SOURCE = "RULES.md R-SUB-JSON: README 'Submission Process'; https://github.com/openai/parameter-golf/pull/561"
    DOC = RuleDoc(
        why="`submission.json` must include the author's name, GitHub ID, `val_bpb`, and related "
            "metadata, so that reviewers and the leaderboard read the claim from it. A file that "
            "is not strict JSON (duplicate keys, NaN, numbers too large to represent) reads "
            "differently in different tools, so it cannot carry a claim.",
        ruling="README. Conventional fields across the 55 `submission.json` files at HEAD (44 in "
               "`track_10min_16mb`): `author`, `github_id`, `name`, `date`, `val_bpb` (53–54 of "
               "them); `blurb`, `val_loss`, `bytes_total` (~40); `track`, `seeds`, "
               "`seed_results`, `bytes_code`, `hardware`, `val_bpb_std` (~20–27).",
        date=README_RULE_DATE,
        sources=(
            "README 'Submission Process'",
            "https://github.com/openai/parameter-golf/pull/561",
            "RFC 8259 (JSON has no NaN or Infinity)",
        ),
    )
    VALID = [
        Valid(folder(), "the conventional keys"),
    ]
    INVALID = [
        Invalid({**folder(), "submission.json": '{"author": "A", "val_bpb": 1.22,'}, "truncated JSON", path="submission.json", line=1),
        Invalid({**folder(), "submission.json": "[1.2243]"}, "a JSON list, not an object", path="submission.json", line=FILE),
        Invalid(folder(json_drop=("val_bpb",)), "no val_bpb at all", path="submission.json", line=FILE),
        Invalid(
            folder(json_drop=("val_bpb",), json_extra={"mean_val_bpb": 1.2243}),
            "val_bpb under a non-standard key",
            severity=Severity.WARNING, path="submission.json", line=FILE,
        ),
        Invalid(folder(json_drop=("github_id",)), "no github_id", severity=Severity.WARNING, path="submission.json", line=FILE),
        Invalid({**folder(), "submission.json": _IDENTITY + '"val_bpb": 1.30,\n  "val_bpb": 1.05\n}'},
                "val_bpb written twice: JSON readers disagree on which one counts",
                path="submission.json", line='"val_bpb": 1.05'),
        Invalid({**folder(), "submission.json": _IDENTITY + '"val_bpb": NaN\n}'}, "a NaN score (not JSON)",
                path="submission.json", line="NaN"),
        Invalid({**folder(), "submission.json": _IDENTITY + '"val_bpb": 1.2,\n  "bytes_total": 1e400\n}'},
                "a byte count that overflows to infinity", path="submission.json", line="1e400"),
    ]

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        yield from enforce(ctx, self._check(ctx))

    def _check(self, ctx: AuditContext) -> Iterable[Finding]:
        seed_table(ctx)
        sub = ctx.submission
        path = sub.json_path
        if path is None:
            return  # R-SUB-FILES reports the missing file
        if sub.json_problems or sub.json_data is None:
            yield from self._unreadable(sub)
            return
        claims = submission_claims(ctx)
        yield from self._claim_problems(path, claims)
        yield from self._val_bpb(path, claims)
        yield from self._identity(path, sub.json_data)

    def _unreadable(self, sub: Submission) -> Iterable[Finding]:
        """The reader's JSON facts (audit.strict_json): each is an error, at its line when known."""
        path = sub.json_path or "submission.json"
        evidence = [Evidence("parse of submission.json", path)]
        if not sub.json_problems:
            yield self._invalid(f"{path} could not be read", path, evidence)
            return
        for i, p in enumerate(sub.json_problems):
            if p.kind in (JsonProblemKind.SYNTAX, JsonProblemKind.NOT_OBJECT):
                yield self._invalid(p.text, path, evidence, p.line if p.kind == JsonProblemKind.SYNTAX else None)
                continue
            yield self.finding(
                f"{p.text} (R-SUB-JSON). Every number and key in submission.json must mean the same to every "
                "reader: write each key once, and each number as a finite JSON number of ordinary size. The "
                "file's claims were not read.",
                path=path, line=p.line, key=f"json:{p.kind.value}:{i}",
                evidence=[Evidence("parse of submission.json", path, p.line)],
            )
        if sub.json_problems_dropped:
            yield self.finding(
                f"{path} has {sub.json_problems_dropped} more problem(s) of the same kinds (R-SUB-JSON).",
                path=path, key="json:more", evidence=evidence,
            )

    def _invalid(self, text: str, path: str, evidence: list[Evidence], line: int | None = None) -> Finding:
        return self.finding(
            f"{text} (R-SUB-JSON). submission.json must be a JSON object with author, github_id, name and "
            "val_bpb; reviewers and the leaderboard read it. Fix the file so that `json.load` returns an object.",
            path=path, line=line, key="invalid", evidence=evidence,
        )

    def _claim_problems(self, path: str, claims: Claims | None) -> Iterable[Finding]:
        """Values the claims reader (audit.claims) could not use: a score that is not a number, a
        byte count that is not whole, per-seed results of the wrong shape."""
        if claims is None:
            return
        for problem in claims.problems:
            if problem.startswith("no val_bpb key"):
                continue  # a BPB under val_loss: _val_bpb reports the non-standard key
            yield self.finding(
                f"{path}: {problem} (R-SUB-JSON). The value cannot be read as the number it should be, so "
                "reviewers and tools may read different claims. Write it as a plain JSON number (or the "
                "documented shape).",
                path=path, key=f"claims:{problem[:80]}",
                evidence=[Evidence("submission.json as read by audit.claims", path)],
            )
        for label, value in [("val_bpb", claims.val_bpb), ("val_loss", claims.val_loss),
                             *[(f"seed {c.key} val_bpb", c.val_bpb) for c in claims.per_seed],
                             *[(f"seed {c.key} val_loss", c.val_loss) for c in claims.per_seed]]:
            if value is not None and not math.isfinite(value):
                yield self.finding(
                    f"{path} gives {label} as {value}, which is not a finite number (R-SUB-JSON). A score must be "
                    "a number a reviewer can compare; write the measured value.",
                    path=path, key=f"non-finite:{label}",
                    evidence=[Evidence(f"{label}: {value}", path)],
                )

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
