"""Checkers for the exercises of lesson 7, the latent space.

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


@exercise(7, "aggregate_moments")
def check_aggregate_moments(fn, strict=False):
    """``fn(mu (n, L), logvar (n, L)) -> (mean (L,), cov (L, L))`` of the aggregate posterior."""

    def test():
        rng = seeded(30)
        mu = rng.standard_normal((200, 3)) @ np.array([[1.0, 0.5, 0], [0, 1.0, 0], [0, 0, 0.3]])
        logvar = rng.uniform(-3, 0, (200, 3))
        mean, cov = expect_tuple(fn(mu.copy(), logvar.copy()), ("mean", "cov"))
        between = np.cov(mu.T, bias=True)  # (L, L) covariance of the means, divided by n
        within = np.diag(np.exp(logvar).mean(axis=0))  # (L, L) average posterior variance
        expect_close(mean, mu.mean(axis=0), "the mean")
        known_mistakes(
            cov,
            [
                (
                    between,
                    "that is only the covariance of the means. Each image's posterior also "
                    "has its own spread: add the average of exp(logvar) on the diagonal "
                    "(the law of total variance).",
                ),
                (
                    np.cov(mu.T) + within,
                    "np.cov divides by n - 1; the mixture of n components weighs each by "
                    "1/n: use np.cov(mu.T, bias=True), or divide by n yourself.",
                ),
                (
                    between + np.diag(np.exp(0.5 * logvar).mean(axis=0)),
                    "exp(logvar / 2) is the standard deviation; the variance is exp(logvar).",
                ),
            ],
        )
        expect_close(cov, between + within, "the covariance")

    run_check("aggregate_moments", test, strict)


def slerp_reference(a, b, t):
    """Spherical interpolation from a to b at the fractions t: (T,) -> (T, L)."""
    omega = math.acos(np.clip(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)), -1, 1))
    t = np.asarray(t, dtype=np.float64)[:, None]
    return (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / math.sin(omega)


@exercise(7, "slerp")
def check_slerp(fn, strict=False):
    """``fn(a (L,), b (L,), t (T,)) -> (T, L)``: spherical interpolation."""

    def test():
        rng = seeded(31)
        a, b = rng.standard_normal(16), rng.standard_normal(16) * 1.5
        t = np.linspace(0, 1, 7)
        got = expect_array(fn(a.copy(), b.copy(), t.copy()), (7, 16), "the path")
        known_mistakes(
            got,
            [
                (
                    (1 - t[:, None]) * a + t[:, None] * b,
                    "that is the straight line (1 - t) a + t b; slerp follows the arc: "
                    "weights sin((1 - t) w) / sin(w) and sin(t w) / sin(w).",
                )
            ],
        )
        expect_close(got[0], a, "the path at t = 0", hint="It must start at a.")
        expect_close(got[-1], b, "the path at t = 1", hint="It must end at b.")
        expect_close(got, slerp_reference(a, b, t), "the path")
        u = a / np.linalg.norm(a) * 4.0  # same length as w: the norm stays 4 all along the arc
        w = b / np.linalg.norm(b) * 4.0
        norms = np.linalg.norm(expect_array(fn(u, w, t), (7, 16), "the path"), axis=1)
        expect_close(norms, np.full(7, 4.0), "the norms along a path between two points of norm 4")

    run_check("slerp", test, strict)


def mutual_information_reference(z, mu, logvar):
    """(1/n) sum_i [log q(z_i | x_i) - log q(z_i)], q(z) the mixture of the n posteriors."""
    n = len(z)
    log_q = dist.diagonal_normal_log_density(z[:, None, :], mu[None], logvar[None])  # (n, n)
    log_aggregate = dist.logsumexp(log_q, axis=1) - math.log(n)  # (n,) log q(z_i)
    return float(np.mean(np.diag(log_q) - log_aggregate))


@exercise(7, "mutual_information")
def check_mutual_information(fn, strict=False):
    """``fn(z (n, L), mu (n, L), logvar (n, L)) -> float``: the estimate of I(i; z) from one
    sample z_i of each posterior N(mu_i, e^logvar_i)."""

    def test():
        rng = seeded(32)
        n, L = 40, 3
        mu, logvar = rng.standard_normal((n, L)), rng.uniform(-2, 0, (n, L))
        z = mu + np.exp(0.5 * logvar) * rng.standard_normal((n, L))
        same = np.zeros((n, L)), np.zeros((n, L))  # every posterior N(0, I)
        got = float(expect_array(fn(z.copy(), *same), (), "I for identical posteriors"))
        missing_log_n = (
            "q(z) is the *average* of the n posteriors, "
            "log q(z) = logsumexp_j log q(z | x_j) - log n: the -log n is missing."
        )
        known_mistakes(got, [(-math.log(n), missing_log_n)], rtol=1e-9)
        if abs(got) > 1e-9:
            raise Wrong(
                "when every image has the same posterior, the code says nothing about which "
                "image it was: I must be 0, and yours is not. Is log q(z) the log of the "
                "*average* of the n densities?"
            )
        offset = np.zeros((n, L))
        offset[:, 0] = 1e3 * np.arange(n)  # posteriors so far apart that each z has one source,
        tiny = logvar - 600  # and so narrow that each density is about e^900: exp overflows
        z_far = mu + offset + np.exp(0.5 * tiny) * rng.standard_normal((n, L))
        with np.errstate(all="ignore"):
            got = fn(z_far, mu + offset, tiny)
        if np.size(got) == 1 and not np.isfinite(np.asarray(got, dtype=np.float64)).all():
            raise Wrong(
                "for narrow posteriors far apart your estimate is not finite: their "
                "densities overflow (about e^900), or underflow to 0 at the other images' "
                "codes. Combine the log densities with a log-sum-exp."
            )
        got = float(expect_array(got, (), "I"))
        if abs(got - math.log(n)) > 1e-9:
            raise Wrong(
                "when the posteriors are so far apart that each code could only come from "
                "its own image, the code tells which of the n images it was: I must be "
                "log n, and yours is not."
            )
        got = float(expect_array(fn(z.copy(), mu.copy(), logvar.copy()), (), "I"))
        want = mutual_information_reference(z, mu, logvar)
        known_mistakes(
            got,
            [
                (want - math.log(n), missing_log_n),
                (
                    -want,
                    "the sign is flipped: I = E[log q(z | x_i) - log q(z)].",
                ),
            ],
            rtol=1e-9,
        )
        expect_close(got, want, "I", rtol=1e-9, atol=1e-12)

    run_check("mutual_information", test, strict)
