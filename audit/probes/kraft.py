"""The Kraft sum K(x) = sum_v exp(NLL(x) - NLL(x.v)) and its tolerance (DESIGN.md "The Kraft-sum probe").

For a causal evaluator the scores of x do not depend on what follows, so NLL(x.v) - NLL(x) is the
score of v alone; for a normalised one exp(-score) is p(v | x) and sums to 1 over the vocabulary.
Training on unscored tokens, target-keyed caches, SLOT and gates reading the realised token all
move the sum. Pure arithmetic (no torch): the driver measures NLLs, this module judges them.

The tolerance is not a constant: it is measured in the same run from the *legal twin* (the same
model with the same weights scored by a plain full-context forward, which is causal and
normalised by construction), from the evaluator's own repeatability (NLL(x) twice), and from the
float32 rounding of a sum the size of NLL(x).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

FLOAT32_EPS = 2.0 ** -23  # float32 unit roundoff: the per-token NLLs are fp32 in every evaluator we know
TOLERANCE_FACTOR = 10.0  # how far beyond the measured noise a sum must be to count as a violation


def log_kraft(nll_x: float, nll_xv: list[float]) -> float:
    """log K computed stably (log-sum-exp), so a 277x mixture and a 1e-6 deviation are both exact."""
    terms = [nll_x - n for n in nll_xv]
    top = max(terms)
    return top + math.log(sum(math.exp(t - top) for t in terms))


@dataclass(frozen=True)
class KraftMeasure:
    """One evaluator's sum: K, and the per-candidate spread (the largest and smallest p(v | x) implied)."""

    value: float
    p_max: float
    p_min: float
    candidates: int

    @classmethod
    def of(cls, nll_x: float, nll_xv: list[float]) -> KraftMeasure:
        lk = log_kraft(nll_x, nll_xv)
        ps = [math.exp(min(nll_x - n, 700.0)) for n in nll_xv]
        return cls(math.exp(lk) if lk < 700 else math.inf, max(ps), min(ps), len(nll_xv))


@dataclass(frozen=True)
class Tolerance:
    value: float
    twin_deviation: float  # |K_twin - 1|
    repeat_noise: float  # |NLL(x) - NLL(x) again| of the evaluator under probe
    rounding: float  # float32 roundoff of a sum the size of NLL(x)

    def explain(self) -> str:
        return (f"tolerance {self.value:.2e} = {TOLERANCE_FACTOR:g} x max(legal twin |K-1| {self.twin_deviation:.1e}, "
                f"repeat noise {self.repeat_noise:.1e}, fp32 rounding of NLL(x) {self.rounding:.1e})")


def tolerance(twin: KraftMeasure, nll_x: float, nll_x_again: float) -> Tolerance:
    twin_dev = abs(twin.value - 1.0)
    repeat = abs(nll_x - nll_x_again)
    rounding = FLOAT32_EPS * abs(nll_x)
    return Tolerance(TOLERANCE_FACTOR * max(twin_dev, repeat, rounding), twin_dev, repeat, rounding)


def violated(k: KraftMeasure, tol: Tolerance) -> bool:
    return not abs(k.value - 1.0) <= tol.value  # NaN / inf count as violations
