"""Mean kinetic temperature (USP <1079>).

MKT is the single temperature that would cause the same total degradation as a varying
temperature history, under Arrhenius kinetics:

    MKT = (ΔH/R) / ( −ln( Σ wᵢ·e^(−ΔH/(R·Tᵢ)) / Σ wᵢ ) ) − 273.15

with ΔH/R = 10 000 K (ΔH = 83.144 kJ/mol, the value USP <1079> prescribes) and Tᵢ in
kelvin. Readings equally spaced in time take equal weights; otherwise weight each reading by
the duration it represents. Because the exponential weighs warm readings more, MKT is never
below the (weighted) arithmetic mean: a short excursion costs more than its average suggests.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

ACTIVATION_OVER_R_KELVIN = 10_000.0
ZERO_CELSIUS_KELVIN = 273.15


def mean_kinetic_temperature(
    readings_c: Sequence[float], weights: Sequence[float] | None = None
) -> float:
    """The MKT in °C of temperatures in °C, equally weighted unless ``weights`` are given.

    Raises ``ValueError`` for no readings, a temperature at or below absolute zero or not
    finite, weights of another length, a negative or non-finite weight, or weights summing
    to zero.
    """
    if not readings_c:
        raise ValueError("mean kinetic temperature needs at least one reading")
    w = [1.0] * len(readings_c) if weights is None else [float(x) for x in weights]
    if len(w) != len(readings_c):
        raise ValueError(f"{len(w)} weights for {len(readings_c)} readings")
    if any(not math.isfinite(x) or x < 0 for x in w) or not math.fsum(w) > 0:
        raise ValueError("weights must be finite, non-negative and not all zero")
    kelvin = [t + ZERO_CELSIUS_KELVIN for t in readings_c]
    if any(not math.isfinite(k) or k <= 0 for k in kelvin):
        raise ValueError("temperatures must be finite and above absolute zero")
    exponents = [-ACTIVATION_OVER_R_KELVIN / k for k in kelvin]
    log_mean = _log_weighted_mean_exp(exponents, w)
    return ACTIVATION_OVER_R_KELVIN / -log_mean - ZERO_CELSIUS_KELVIN


def _log_weighted_mean_exp(exponents: Sequence[float], weights: Sequence[float]) -> float:
    """ln(Σ wᵢ·e^xᵢ / Σ wᵢ), shifted by the largest xᵢ so that no term underflows."""
    top = max(x for x, w in zip(exponents, weights, strict=True) if w > 0)
    total = math.fsum(w * math.exp(x - top) for x, w in zip(exponents, weights, strict=True))
    return top + math.log(total / math.fsum(weights))
