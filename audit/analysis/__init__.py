"""Shared static-analysis substrate: each file is parsed once and every rule asks the same facts.

How to use it from a rule (everything is memoised per submission in `ctx.memo`; `api.py` is the
only module a rule imports, and a rule never walks a tree itself):

    from audit.analysis.api import program, valflow, module_facts, evidence_line, analysis_sources

- `analysis_sources(ctx) -> list[Source]`: the code to analyse. Every `.py` file, plus the
  program hidden in self-extracting wrappers (`exec(lzma.decompress(b85decode("...")))`), as
  `Source(path, parsed, decoded_from, too_large, is_main)` (the one source type; `eval_code.CodeUnit`
  is the same class). `parsed.tree is None` when it does not parse
  (skip it; the parse-failure finding belongs to one rule) or when `too_large` (over
  `sources.MAX_ANALYSED_BYTES`, not parsed at all). Bundled C++/CUDA parts are dropped. Decoded paths look like `train_gpt.py#decoded`;
  `api.display(ctx, path)` gives the file a reviewer opens and whether lines are decoded-text lines.
- `program(ctx) -> Program` (program.py): every function of every source (`FunctionRef.facts`
  is a `FunctionFacts`, `.path` its source), call resolution `Program.callees(call, cls)`.
- `module_facts(ctx, path) -> list[FunctionFacts]`: the functions of one source, `<module>`
  body included. A `FunctionFacts` has `sites: list[Site]`, each with `kind` in
  {call, backward, step, accum, return, optim, fresh_param, save}, `line`, `order` (statement
  order in the function), `loops` (enclosing `Loop`s, outermost first, with `.node`),
  `guards` (names in enclosing `if` tests), `grad_off` (under no_grad/inference_mode) and
  `labels`: where the value comes from — `"VAL"` (validation split), `"TRAIN"`, `"P:<param>"`.
  Also `returns` (and `return_elts`, per position when every return is a tuple), `reported_names`
  (reach a return or a log), `acc_params`, `param_writes`, `free_accs` (a closure summing into
  the enclosing function's names), `method_accs` (a parameter summed into through an accumulator
  method: `totals.add(nll)`), `returns_detached` (every return computed with gradients off).
- `valflow(ctx) -> ValFlow` (valflow.py): inter-procedural validation-data flow.
  `vf.isval(ref, labels)`; `vf.scores[qualname]` (score events), `vf.updates[qualname]`
  (training updates on val data), `vf.results` (each update classified: protected |
  score_after_update | adapt_then_score | unscored | warmup | train_mix, `.slot` for SLOT-style
  fresh-tensor optimisation), `vf.calls_in(ref)`, `vf.binding(callee, site)`.
  `vf.site_off(ref, site)` / `vf.switched_off(result)`: code the logged hyperparameters switch off
  (`flags.py`: only explicit log evidence counts; a default of 0 in the source proves nothing).
- `detectors.py`: `rescoring(vf)`, `calibration_on_scored(vf)`, `val_sinks(vf)`, `log_label`.
- `chain.py`: evidence chains (source -> calls -> update -> score) for findings.
- `names.py`: the vocabulary (what counts as a val name, an optimizer, a log call, ...).
- `parse.py`: `parse_source` also reads Python 3.12 f-strings on older interpreters
  (`fstrings.py` rewrites them line-for-line; `ParsedModule.downgraded_fstrings`).

Facts are built from the stdlib `ast` (one parse per file via `ctx.parsed`), never by importing
or executing submission code. `facts.py` documents the taint model.
"""
