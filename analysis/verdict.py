"""The one-sentence verdict that opens the app's Overview: is DRGI better than the base run?

Built from the paired test the Overview already runs (:func:`analysis.stats.paired_summary`:
the per-query difference DRGI − base and its two-sided paired sign-flip p-value) and the
fixed / broken counts of :mod:`analysis.query_table`. Four wordings:

- significant, positive: "DRGI is better than base: …"
- significant, negative: "DRGI is worse than base: …"
- not significant, positive: "DRGI is not significantly better than base: …"
- not significant, zero or negative: "DRGI is not better than base: …"
"""

from __future__ import annotations

import math

MINUS = "\u2212"  # typographic minus sign


def signed(x: float, digits: int = 2) -> str:
    """``+1.25`` / ``−0.40`` (a real minus sign); zero reads ``±0.00``."""
    text = f"{abs(x):.{digits}f}"
    if float(text) == 0.0:
        return f"±{text}"
    return f"+{text}" if x > 0 else f"{MINUS}{text}"


def p_text(p: float) -> str:
    """``p = 0.63`` / ``p = 0.004`` / ``p < 0.001``."""
    if p < 0.001:
        return "p < 0.001"
    return f"p = {p:.2f}" if p >= 0.01 else f"p = {p:.3f}"


def _queries(n: int) -> str:
    return f"{n} {'query' if n == 1 else 'queries'}"


def verdict(
    diff: float,
    p_value: float,
    fixed: int,
    broken: int,
    *,
    metric: str = "t2v R@1",
    unit: str = "pp",
    alpha: float = 0.05,
    test: str = "paired sign-flip test",
    names: tuple[str, str] = ("DRGI", "base"),
) -> str:
    """One sentence saying whether DRGI beats the base run, with the evidence.

    Args:
        diff: DRGI − base on ``metric`` (percentage points for R@K).
        p_value: the two-sided p-value of ``test``.
        fixed, broken: queries DRGI fixes (base fails, DRGI does not) and breaks.
        metric, unit: what ``diff`` measures, e.g. ``"t2v R@1"`` in ``"pp"``.
        alpha: significance level.
        test: the test's name, in parentheses after the p-value.
        names: how the two runs are called.

    Example:
        ``"DRGI is not better than base: −0.40 pp t2v R@1, p = 0.63 (paired sign-flip
        test); 12 queries fixed, 15 broken."``

    Raises:
        ValueError: a non-finite difference or p-value, a p-value outside [0, 1], negative
            counts, or ``alpha`` outside (0, 1).
    """
    if not (math.isfinite(diff) and math.isfinite(p_value)) or not 0.0 <= p_value <= 1.0:
        raise ValueError(f"diff={diff!r}, p_value={p_value!r}: expected a finite difference "
                         "and a p-value in [0, 1]")
    if int(fixed) < 0 or int(broken) < 0:
        raise ValueError(f"fixed={fixed!r}, broken={broken!r}: expected counts >= 0")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha={alpha!r}: expected a value strictly between 0 and 1")
    new, old = names
    significant = p_value < alpha
    if significant and diff > 0:
        claim = f"{new} is better than {old}"
    elif significant and diff < 0:
        claim = f"{new} is worse than {old}"
    elif diff > 0:
        claim = f"{new} is not significantly better than {old}"
    else:
        claim = f"{new} is not better than {old}"
    return (f"{claim}: {signed(diff)} {unit} {metric}, {p_text(p_value)} ({test}); "
            f"{_queries(int(fixed))} fixed, {int(broken)} broken.")
