"""Checkers for the exercises of lesson 3, the ELBO.

Each ``check_<exercise>(your_function)`` runs your function on test inputs, compares the
answer with tinyvae or with a reference written here, and prints one line through
``grading.run_check``: not attempted yet, not right yet (naming the usual mistake where it
is recognised), or correct. Solutions call the checkers with ``strict=True``, which raises
unless the answer passes.
"""

from __future__ import annotations

import math

import numpy as np
from lesson_utils import (
    Wrong,
    exercise,
    expect_array,
    expect_close,
    expect_tuple,
    known_mistakes,
    run_check,
    seeded,
)

from tinyvae.core import distributions as dist


def _toy_cases():
    return [(1.3, 2.0, 0.5), (-0.7, 0.5, 1.5), (2.5, -1.0, 0.8)]  # (x, w, s)


def _log_joint(z, x, w, s):
    """log p(z) + sum_i log N(x_i; w_i z, s^2) on a grid z (G,): (G,)."""
    residual = x[None, :] - w[None, :] * z[:, None]  # (G, n)
    log_lik = -0.5 * (np.log(2 * math.pi * s * s) + residual**2 / (s * s)).sum(axis=1)
    return -0.5 * (math.log(2 * math.pi) + z * z) + log_lik


@exercise(3, "toy_posterior")
def check_toy_posterior(fn, strict=False):
    """``fn(x (n,), w (n,), s) -> (mean, var)`` of p(z | x_1..x_n) for z ~ N(0, 1) and
    independent x_i | z ~ N(w_i z, s^2).

    Judged by Bayes' rule itself: log N(z; mean, var) - [log p(z) + sum_i log p(x_i | z)]
    must be the same number for every z (it is -log p(x)). Both sides are quadratics in z,
    so a wrong variance shows in the z^2 terms and a wrong mean in the z terms."""

    def test():
        cases = [
            (np.array([1.3]), np.array([2.0]), 0.5),
            (np.array([1.3, -0.4, 2.2]), np.array([2.0, -1.0, 0.5]), 0.7),
            (np.array([0.3, 0.8, -0.1, 1.1]), np.array([1.5, 1.5, 0.2, -0.8]), 1.2),
        ]
        grid = np.linspace(-3, 3, 9)
        for x, w, s in cases:
            mean, var = expect_tuple(fn(x.copy(), w.copy(), s), ("mean", "var"))
            where = f"for n = {len(x)} observation(s)"
            mean = float(expect_array(mean, (), f"the mean {where}"))
            var = float(expect_array(var, (), f"the variance {where}"))
            if var <= 0:
                raise Wrong(f"the variance {where} is not positive.")
            first = (w[0] * x[0] / (w[0] ** 2 + s * s), s * s / (w[0] ** 2 + s * s))
            if len(x) > 1 and np.allclose([mean, var], first, rtol=1e-9, atol=0):
                raise Wrong(
                    f"{where} you used only the first observation: every x_i adds its own "
                    "term to log p(z) + sum_i log p(x_i | z)."
                )
            log_q = -0.5 * (np.log(2 * math.pi * var) + (grid - mean) ** 2 / var)
            joint = _log_joint(grid, x, w, s)
            c2, c1, _ = np.polyfit(grid, log_q - joint, 2)  # must both be 0
            size = abs(np.polyfit(grid, joint, 2)[0])  # the joint's z^2 coefficient: a scale
            if abs(c2) > 1e-8 * size:
                raise Wrong(
                    f"{where} your N(mean, var) is not proportional to p(z) prod_i p(x_i | z): "
                    "their z^2 terms differ, so the variance is not right. Collect every "
                    "z^2 term of log p(z) + sum_i log p(x_i | z): 1 / var is minus twice "
                    "their coefficient."
                )
            if abs(c1) > 1e-8 * size * (1 + abs(mean)):
                raise Wrong(
                    f"{where} the z^2 terms match (the variance is right) but the z terms "
                    "do not: the mean is not right. Collect the terms linear in z; "
                    "mean / var is their coefficient."
                )

    run_check("toy_posterior", test, strict)


def toy_elbo_reference(x, m, v, w, s):
    """Closed-form ELBO of the toy model for q(z) = N(m, v) (lesson 3, exercise 2)."""
    expected_log_lik = -0.5 * (
        math.log(2 * math.pi * s * s) + ((x - w * m) ** 2 + w * w * v) / (s * s)
    )
    return expected_log_lik - 0.5 * (v + m * m - 1 - math.log(v))


@exercise(3, "toy_elbo")
def check_toy_elbo(fn, strict=False):
    """``fn(x, m, v, w, s) -> ELBO`` of the toy model for q(z) = N(m, v), in closed form;
    it must also touch log p(x) exactly at q = p(z | x) (section 3.4)."""

    def test():
        for (x, w, s), (m, v) in zip(_toy_cases(), [(0.4, 0.3), (-1.0, 2.0), (0.5, 0.6)]):
            got = expect_array(fn(x, m, v, w, s), (), "the ELBO")
            want = toy_elbo_reference(x, m, v, w, s)
            no_variance = want + 0.5 * w * w * v / (s * s)
            known_mistakes(
                got,
                [
                    (
                        no_variance,
                        "E_q[(x - w z)^2] = (x - w m)^2 + w^2 v: the "
                        "spread of z under q adds w^2 v.",
                    )
                ],
            )
            known_mistakes(
                got,
                [
                    (
                        want + (v + m * m - 1 - math.log(v)),
                        "The KL term enters with a minus sign: ELBO = E_q[log p(x|z)] - KL.",
                    )
                ],
            )
            m_star, v_star = w * x / (w * w + s * s), s * s / (w * w + s * s)
            log_evidence = -0.5 * (
                math.log(2 * math.pi * (w * w + s * s)) + x * x / (w * w + s * s)
            )
            tight = float(expect_array(fn(x, m_star, v_star, w, s), (), "the ELBO"))
            if abs(tight - log_evidence) > 1e-9 * abs(log_evidence):
                raise Wrong(
                    "at q = p(z | x) the ELBO must equal log p(x) exactly (the gap is the KL "
                    "from q to the posterior, section 3.4), and yours does not."
                )
            expect_close(got, want, f"the ELBO for x={x}, m={m}, v={v}, w={w}, s={s}")

    run_check("toy_elbo", test, strict)


@exercise(3, "bounds_from_log_weights")
def check_bounds_from_log_weights(fn, strict=False):
    """``fn(log_w (K, B)) -> (elbo (B,), iw (B,))``, stable for log weights of -1000."""

    def test():
        rng = seeded(9)
        log_w = rng.standard_normal((50, 4)) * 3 - np.array([1.0, 10.0, 300.0, 1000.0])
        K = log_w.shape[0]
        with np.errstate(all="ignore"):
            elbo, iw = expect_tuple(fn(log_w.copy()), ("elbo", "iw"))
        if np.shape(elbo) != (4,) or np.shape(iw) != (4,):
            raise Wrong(
                f"both answers should have shape (B,) = (4,), got {np.shape(elbo)} and "
                f"{np.shape(iw)}: reduce over the K samples, axis 0."
            )
        want_iw = dist.logsumexp(log_w, axis=0) - math.log(K)
        if not np.all(np.isfinite(np.asarray(iw, dtype=np.float64))):
            raise Wrong(
                "iw is not finite for log weights near -1000: exp underflows to 0. "
                "Subtract the largest log weight first: log sum e^a = m + log sum e^(a-m)."
            )
        known_mistakes(iw, [(want_iw + math.log(K), "iw is a log *mean*: subtract log K.")])
        expect_close(elbo, log_w.mean(axis=0), "elbo")
        expect_close(iw, want_iw, "iw")

    run_check("bounds_from_log_weights", test, strict)
