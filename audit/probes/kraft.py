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
    reference: float  # what a legal evaluator of this model gives: 1, or the twin's own sum (see below)
    twin_deviation: float  # |K_twin - 1|
    repeat_noise: float  # |NLL(x) - NLL(x) again| of the evaluator under probe
    rounding: float  # float32 roundoff of a sum the size of NLL(x)

    @property
    def twin_offset(self) -> bool:
        """The twin itself is off by more than float noise: the model's own forward(x, y) is not a plain
        normalised NLL (an auxiliary z-loss term, or a forward that reads the targets)."""
        return self.reference != 1.0

    def explain(self) -> str:
        ref = (f"reference K_twin = {self.reference:.6f} (the model's own forward is not a plain NLL)"
               if self.twin_offset else "reference 1")
        return (f"{ref}; tolerance {self.value:.2e} = {TOLERANCE_FACTOR:g} x max(legal twin |K-1| "
                f"{0.0 if self.twin_offset else self.twin_deviation:.1e}, repeat noise {self.repeat_noise:.1e}, "
                f"fp32 rounding of NLL(x) {self.rounding:.1e})")


def tolerance(twin: KraftMeasure, nll_x: float, nll_x_again: float) -> Tolerance:
    """The twin's deviation from 1 is float noise when it is within the rounding scale; beyond that it
    is a property of the model's forward, and the twin's sum becomes the reference instead."""
    twin_dev = abs(twin.value - 1.0)
    repeat = abs(nll_x - nll_x_again)
    rounding = FLOAT32_EPS * abs(nll_x)
    offset = twin_dev > TOLERANCE_FACTOR * max(rounding, repeat)
    noise = max(0.0 if offset else twin_dev, repeat, rounding)
    return Tolerance(TOLERANCE_FACTOR * noise, twin.value if offset else 1.0, twin_dev, repeat, rounding)


def violated(k: KraftMeasure, tol: Tolerance) -> bool:
    return not abs(k.value - tol.reference) <= tol.value  # NaN / inf count as violations
