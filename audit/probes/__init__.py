"""Probes: prove an evaluator legal or illegal by running it (issue 11).

- `kraft`: the Kraft-sum probe (C1 + C2 at once, black box): V+1 runs of the evaluator.
- `bytes_probe`: the byte-accounting probe (R-METRIC-BPB): byte LUTs recomputed from the tokenizer.
- `port`: a libcst codemod that ports a CUDA submission to CPU keeping every line number.
- `driver`: runs *inside the sandbox* (a child process): imports the ported module, builds its
  model from its own Hyperparameters with a tiny config, drives the evaluator.
- `runner`: the lead side: picks the evaluator (static analysis), ports, launches the driver in
  the harness sandbox, turns its measurements into findings (`findings`).

Nothing here imports torch, sentencepiece or libcst at module level: the static check must stay
installable without the `[torch]` extra. `missing_extra()` says what is not installed.
"""

from __future__ import annotations

import importlib.util

NEEDED = ("torch", "sentencepiece", "libcst")


def missing_extra() -> list[str]:
    """Packages of the `[torch]` extra the probes need that are not importable here."""
    return [name for name in NEEDED if importlib.util.find_spec(name) is None]
