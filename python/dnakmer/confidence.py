"""95 % confidence intervals and how two of them compare, shared by the probes and the
study's findings: Wilson score intervals of proportions, Fisher z intervals of
correlations, and the rule that two estimates differ only when their intervals do not
overlap."""

from __future__ import annotations

import math

__all__ = ["Z95", "compare_intervals", "position", "spearman_interval", "wilson_interval"]

Z95 = 1.959963984540054
"""Standard normal quantile of a two-sided 95 % interval."""

def wilson_interval(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``successes / n``; (0, 1) when n is 0."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def spearman_interval(rho: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Fisher z interval of a correlation estimated from ``n`` independent units."""
    if n <= 3:
        return -1.0, 1.0
    r = min(max(rho, -0.999999), 0.999999)
    centre, half = math.atanh(r), z / math.sqrt(n - 3)
    return math.tanh(centre - half), math.tanh(centre + half)


def compare_intervals(a: tuple[float, float], b: tuple[float, float]) -> str:
    """``"higher"`` / ``"lower"`` when interval ``a`` lies wholly above / below ``b``,
    else ``"overlapping"``."""
    if a[0] > b[1]:
        return "higher"
    if a[1] < b[0]:
        return "lower"
    return "overlapping"


def position(value: float, interval: tuple[float, float]) -> str:
    """Where an interval lies relative to a fixed value: ``"higher"`` (wholly above),
    ``"lower"`` (wholly below) or ``"overlapping"`` (contains it)."""
    return compare_intervals(interval, (value, value))
