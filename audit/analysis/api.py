"""The one analysis surface rules import: the questions a rule may ask about a submission's code.

    from audit.analysis.api import program, valflow, module_facts, evidence_line, network_calls

Rules never walk syntax trees themselves: the pattern code lives in the modules named below, one
job each, and every answer is memoised per folder in `ctx.memo`, so ten rules asking cost one
analysis. A test (tests/test_rules_ask.py) checks that no rule imports another analysis module.
"""

from __future__ import annotations

# chain.py imports these three from this module: bind them before anything imports chain.
from audit.analysis.locate import display, evidence_line, source_of

# isort: split
from audit.analysis.byte_tables import HandBuiltTable, LoadedTable, byte_table_issues
from audit.analysis.cache_order import cache_order_facts
from audit.analysis.chain import chain_evidence, primary, switched_off_message, where_note
from audit.analysis.code_functions import Function
from audit.analysis.detectors import calibration_on_scored, rescoring, val_sinks
from audit.analysis.eval_code import MAX_ANALYSED_CHARS, code_units, main_units
from audit.analysis.facts import FunctionFacts, Site
from audit.analysis.flags import default_off_flags, folder_default_off_flags, logged_flags
from audit.analysis.imports import local_imports, runtime_units
from audit.analysis.last_chunk import skips_last_chunk
from audit.analysis.native_code import NativeBuild, native_builds
from audit.analysis.network import NetworkCall, network_calls
from audit.analysis.ngram import ngram_facts
from audit.analysis.package_imports import ImportedPackage, imported_packages
from audit.analysis.ppm_mixture import PpmMixture, ppm_byte_mixtures
from audit.analysis.prev_token_mix import PrevTokenMix, unmasked_prev_token_mixes
from audit.analysis.program import Program, build_program
from audit.analysis.same_code import same_syntax
from audit.analysis.sources import Source, analysis_sources, wrapped_source, wrapper_info
from audit.analysis.syntax import nodes_of, walk
from audit.analysis.train_at_eval import TrainReadAtEval, train_reads_at_eval
from audit.analysis.valflow import Classified, Event, ValFlow, analyse
from audit.findings import Evidence

__all__ = [
    # the program and its val-data flow
    "program", "valflow", "module_facts", "unanalysed_sources", "source_of", "display", "evidence_line",
    "site_evidence", "FunctionFacts", "Site", "Program", "ValFlow", "Event", "Classified", "Function",
    # sources: one type for shipped and decoded code
    "Source", "analysis_sources", "code_units", "main_units", "MAX_ANALYSED_CHARS", "wrapper_info",
    "wrapped_source", "runtime_units", "local_imports",
    # findings' evidence chains and val-flow detectors
    "chain_evidence", "primary", "switched_off_message", "where_note", "calibration_on_scored", "rescoring",
    "val_sinks", "skips_last_chunk",
    # static-eval facts
    "Evidence", "ngram_facts", "cache_order_facts",
    # patterns
    "byte_table_issues", "LoadedTable", "HandBuiltTable", "native_builds", "NativeBuild", "network_calls",
    "NetworkCall", "imported_packages", "ImportedPackage", "ppm_byte_mixtures", "PpmMixture",
    "unmasked_prev_token_mixes", "PrevTokenMix", "train_reads_at_eval", "TrainReadAtEval", "same_syntax",
    # flags
    "default_off_flags", "logged_flags",
    # execution evidence, multi-epoch TTT, normalisation proofs, target gates
    "execution_state", "last_epoch_kept", "unproven_normalisation", "target_metadata_gates",
    # the probes: the call behind the claimed score
    "score_call",
]


def program(ctx) -> Program:
    """All parseable analysis sources (decoded wrappers included) walked to a fixpoint."""
    def build() -> Program:
        parsed = [s.parsed for s in analysis_sources(ctx) if s.parsed.tree is not None]
        return build_program(parsed)
    return ctx.memo("analysis.program", build)


def unanalysed_sources(ctx) -> list[tuple[Source, str]]:
    """Sources that parse but were left out of the val-flow analysis, with the reason."""
    out = []
    for s in analysis_sources(ctx):
        if s.too_large:
            out.append((s, s.parsed.error or "too large"))
    skipped = set(program(ctx).skipped)
    for s in analysis_sources(ctx):
        funcs = [q for q in skipped if q.startswith(s.path + ":")]
        if funcs:
            out.append((s, f"nested too deeply to analyse: {', '.join(f.split(':', 1)[1] for f in funcs[:3])}"))
    return out


def valflow(ctx) -> ValFlow:
    """Val-data flow of the submission, with code switched off by logged flags marked."""
    def build() -> ValFlow:
        vf = analyse(program(ctx))
        vf.switch_off(logged_flags(ctx.runs), folder_default_off_flags(ctx, vf.program))
        return vf
    return ctx.memo("analysis.valflow", build)


def module_facts(ctx, path: str) -> list[FunctionFacts]:
    """The functions (and `<module>` body) of one analysed source, by its analysis path."""
    return [r.facts for r in program(ctx).functions if r.path == path]


def site_evidence(ctx, ev: Event, label: str, site: Site | None = None) -> Evidence:
    s = site or ev.site
    return evidence_line(ctx, ev.path, s.line, label)


def seed_derived_names(ctx) -> set[str]:
    """Lower-cased names and attributes the script assigns from the seed (`data_seed = seed + 1`,
    `self.shuffle_seed = int(os.environ.get("SEED", 0)) * 7`): logged values that differ between
    seeds of one configuration because the seed does. A value derives from the seed when it reads
    a name or attribute called like a seed, the `SEED` environment variable, or a name derived so.
    """
    import ast

    def build() -> set[str]:
        assigns: list[tuple[list[str], frozenset[str], bool]] = []
        for s in analysis_sources(ctx):
            tree = s.parsed.tree
            if tree is None or s.too_large:
                continue
            for node in nodes_of(tree, ast.Assign, ast.AnnAssign):
                if node.value is not None:
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    names = [t.id if isinstance(t, ast.Name) else t.attr for t in targets
                             if isinstance(t, (ast.Name, ast.Attribute))]
                    if names:
                        reads, seed_env = _value_reads(node.value)
                        assigns.append((names, reads, seed_env))
        derived: set[str] = set()
        for _ in range(3):  # a short fixpoint: seed -> data_seed -> loader_seed
            before = len(derived)
            for names, reads, seed_env in assigns:
                if seed_env or any("seed" in r or r in derived for r in reads):
                    derived.update(n.lower() for n in names)
            if len(derived) == before:
                break
        return derived

    return ctx.memo("analysis.seed_derived_names", build)


def _value_reads(value) -> tuple[frozenset[str], bool]:
    """The lower-cased names and attributes a value reads, and whether it names `"SEED"`, in one
    walk. `torch.manual_seed(x)` calls a seed function, and `cfg.lr` reads `lr`, not `cfg`:
    neither the called name nor the object an attribute hangs on is a value read."""
    import ast

    nodes = list(walk(value))
    skip = {id(n.func) for n in nodes if isinstance(n, ast.Call)}
    skip |= {id(n.value) for n in nodes if isinstance(n, ast.Attribute)}
    reads: set[str] = set()
    seed_env = False
    for n in nodes:
        if id(n) in skip:
            continue
        if isinstance(n, ast.Name):
            reads.add(n.id.lower())
        elif isinstance(n, ast.Attribute):
            reads.add(n.attr.lower())
        elif isinstance(n, ast.Constant) and n.value == "SEED":
            seed_env = True
    return frozenset(reads), seed_env


# -- execution evidence, multi-epoch TTT, normalisation proofs, target gates ----------------------
def execution_state(ctx, path: str | None, line: int | None):
    """Did the code at `path:line` run in the submitted runs? `Execution(state, reason, evidence)`
    with state ran | shipped but not run | unknown (execution.py; the engine applies it to every
    static finding)."""
    from audit.analysis.execution import execution_of
    return execution_of(ctx, path, line)


def last_epoch_kept(c):
    """For a classified TTT update: the epoch loop, chunk loop and the reset/guard/overwrite that
    keeps only the last epoch's scores (epochs.py), or None."""
    from audit.analysis.epochs import accumulators_of, last_epoch_only
    if c.score is None or c.score.ref is not c.event.ref:
        return None
    return last_epoch_only(c.score.site, c.event.site, accumulators_of(c.score.site))


def unproven_normalisation(ctx):
    """Scored count ratios not proven to be distributions, each with its failing step (normalisation.py)."""
    from audit.analysis.normalisation import unproven_ratios
    return unproven_ratios(ctx)


def target_metadata_gates(ctx):
    """Gates/experts whose weight reads metadata of the token being scored (target_gates.py)."""
    from audit.analysis.target_gates import target_gates
    return target_gates(ctx)


def _logged_scores(runs, claim: float | None):
    """The score labels the logs prove: the lines showing the claimed val_bpb; else, when the
    runs' final scores agree with the claim (a mean over seeds), their labels; else none (the
    logs are of another run than the claim, so they cannot say which evaluation produced it)."""
    from statistics import mean

    from audit.analysis.score_call import LoggedScores

    seen = frozenset(s.label for r in runs for s in r.scores)
    finals = [r for r in runs if r.score_label and r.val_bpb is not None]
    if claim is not None:
        matching = tuple(m.label for r in runs for m in [r.score_matching(claim)] if m is not None)
        if matching:
            return LoggedScores(matching, seen)
        if not finals or abs(mean(r.val_bpb for r in finals) - claim) > CLAIM_AGREES:
            return LoggedScores((), frozenset())
    return LoggedScores(tuple(r.score_label for r in finals), seen)


CLAIM_AGREES = 1e-3  # a claimed mean over seeds vs the runs' final scores (printed to 4-8 decimals)


def score_call(ctx):
    """The evaluator call in main behind the claimed score (for the probes), or None.

    Returns (Source, ScoreCall): the source holding main (a decoded wrapper text when the script
    is packed) and the call. Asked by audit/probes; see audit/analysis/score_call.py.
    """
    from audit.analysis.score_call import find_score_call

    def build():
        logged = _logged_scores(ctx.runs, ctx.claims.val_bpb if ctx.claims is not None else None)
        for src in analysis_sources(ctx):
            tree = src.parsed.tree
            if tree is None:
                continue
            found = find_score_call(src.path, tree, src.parsed.source, logged)
            if found is not None:
                return src, found
        return None
    return ctx.memo("analysis.score_call", build)
