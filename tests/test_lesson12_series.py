"""Lesson 12's continuous Bernoulli: log C(a) = log(a / tanh(a/2)) and its slope
1/a - 1/sinh(a), in the solutions and the checker, against values computed with 60 digits
(Python's decimal), near 0 where both use Taylor series, and beyond."""

import runpy
import sys
from decimal import Decimal, localcontext
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "course" / "solutions"))
SOLUTION = runpy.run_path(str(ROOT / "course" / "solutions" / "12_questions.py"), run_name="s")


def exact(a):
    """(log C(a), its slope) to 60 digits, from exponentials in decimal arithmetic."""
    with localcontext() as context:
        context.prec = 60
        a = Decimal(a)
        e = a.exp()
        tanh_half = (e - 1) / (e + 1)
        sinh = (e - 1 / e) / 2
        return float((a / tanh_half).ln()), float(1 / a - 1 / sinh)


# Series points (|a| < 1e-3) and points past the switch, of both signs.
POINTS = [1e-8, 3e-5, 2e-4, 6e-4, 9e-4, 9.99e-4, 1.2e-3, 0.05, 1.0, 7.5, 40.0]


@pytest.mark.parametrize("a", POINTS + [-a for a in POINTS])
def test_the_solution_matches_high_precision_values(a):
    log_c, slope = SOLUTION["continuous_bernoulli_log_norm"](np.array([a]))
    want_log_c, want_slope = exact(abs(a))
    want_slope = np.sign(a) * want_slope
    # the series: log C within a few rounding errors (the a^4 term wrong by 6/1440 is
    # 2.7e-15 off at 9e-4); the slope's a^3 term wrong by 6/360 is 1e-7 off there.
    assert abs(log_c[0] - want_log_c) <= 1.5e-15 * want_log_c, (a, log_c[0], want_log_c)
    tolerance = 1e-12 if abs(a) < 1e-3 else 1e-9  # past the switch 1/a - 1/sinh(a) cancels
    assert abs(slope[0] - want_slope) <= tolerance * abs(want_slope), (a, slope[0], want_slope)


def test_the_checkers_series_is_the_slope_near_zero():
    sys.path.insert(0, str(ROOT / "lessons"))
    import checks_12_questions as C

    source = Path(C.__file__).read_text()
    assert "value / 6 - 7 * value**3 / 360" in source
    for a in (1e-4, 9e-4):
        series = a / 6 - 7 * a**3 / 360
        assert abs(series - exact(a)[1]) <= 1e-13 * series
        assert abs(a / 6 - a**3 / 360 - exact(a)[1]) > 1e-9 * series  # the old series is off
