"""Checkers for the exercises of lesson 5, the reparameterization trick.

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
    expect_gradient,
    expect_tuple,
    run_check,
    seeded,
)

from tinyvae.core import distributions as dist
from tinyvae.core.layers import sigmoid

SUM_THE_SAMPLES = "the K samples' contributions add up: sum them, do not average."


def _expect_dmu(dmu, loss, mu, dz):
    """z = mu + (something) eps for each of K samples: dmu, the sum of the samples' dz,
    judged by a gradient check of ``loss`` (naming the average in place of the sum)."""
    expect_gradient(dmu, loss, mu, "dmu", [(SUM_THE_SAMPLES, dz.mean(0))])


@exercise(5, "softplus_reparameterize_backward")
def check_softplus_reparameterize_backward(fn, strict=False):
    """``fn(dz (K, B, L), mu, rho, eps) -> (dmu, drho)``, each (B, L), for
    z = mu + softplus(rho) eps, judged by a gradient check."""

    def test():
        rng = seeded(13)
        mu, rho = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
        eps, dz = rng.standard_normal((2, 4, 3)), rng.standard_normal((2, 4, 3))
        dmu, drho = expect_tuple(fn(dz.copy(), mu.copy(), rho.copy(), eps.copy()), ("dmu", "drho"))
        if np.shape(dmu) != (4, 3) or np.shape(drho) != (4, 3):
            raise Wrong(
                f"dmu and drho should have mu's shape (4, 3), got {np.shape(dmu)} and "
                f"{np.shape(drho)}: every one of the K samples uses the same mu and rho, so "
                "sum the K contributions (axis 0)."
            )

        def loss():  # sum(z * dz), whose gradient with respect to z is dz
            return float(((mu + dist.softplus(rho) * eps) * dz).sum())

        slope = sigmoid(rho)  # d softplus / d rho
        _expect_dmu(dmu, loss, mu, dz)
        expect_gradient(
            drho,
            loss,
            rho,
            "drho",
            [
                (
                    "d/drho softplus(rho) is sigmoid(rho), not softplus(rho): differentiate "
                    "sigma as a function of rho.",
                    (dz * dist.softplus(rho) * eps).sum(0),
                ),
                (
                    "that is the log-variance version's derivative, exp(l/2) / 2. Here "
                    "sigma = softplus(rho), whose derivative is sigmoid(rho).",
                    (dz * 0.5 * np.exp(0.5 * rho) * eps).sum(0),
                ),
                ("the factor eps is missing: d z / d sigma = eps.", (dz * slope).sum(0)),
                (
                    SUM_THE_SAMPLES,
                    (dz * slope * eps).mean(0),
                ),
            ],
        )

    run_check("softplus_reparameterize_backward", test, strict)


@exercise(5, "cholesky_reparameterize_backward")
def check_cholesky_reparameterize_backward(fn, strict=False):
    """``fn(dz (K, n), mu (n,), C (n, n), eps (K, n)) -> (dmu (n,), dC (n, n))`` for
    z_k = mu + C eps_k with C lower triangular; judged by a gradient check over the
    entries that are parameters (on and below the diagonal; dC is 0 above it)."""

    def test():
        rng = seeded(14)
        n, K = 3, 5
        mu = rng.standard_normal(n)
        factor = np.tril(rng.standard_normal((n, n)))
        factor[np.diag_indices(n)] = np.abs(factor[np.diag_indices(n)]) + 0.5
        eps, dz = rng.standard_normal((K, n)), rng.standard_normal((K, n))
        dmu, dC = expect_tuple(fn(dz.copy(), mu.copy(), factor.copy(), eps.copy()), ("dmu", "dC"))

        def loss():  # sum(z * dz) with z_k = mu + C eps_k; only C's lower triangle is used
            return float(((mu + eps @ np.tril(factor).T) * dz).sum())

        _expect_dmu(dmu, loss, mu, dz)
        full = dz.T @ eps  # (n, n): what every entry of C would get if it were a parameter
        expect_gradient(
            dC,
            loss,
            factor,
            "dC",
            [
                (
                    "the entries above the diagonal are not parameters (C is lower "
                    "triangular, they are always 0): their gradient is 0 (np.tril).",
                    full,
                ),
                (
                    "dC is transposed: z_ki = mu_i + sum_j C_ij eps_kj, so dC_ij sums "
                    "dz_ki eps_kj over the samples.",
                    np.tril(full.T),
                ),
                (
                    SUM_THE_SAMPLES,
                    np.tril(full) / K,
                ),
            ],
        )

    run_check("cholesky_reparameterize_backward", test, strict)


@exercise(5, "score_function_grad")
def check_score_function_grad(fn, strict=False):
    """``fn(f, mu, sigma, K, rng) -> float``: the score-function estimate of d/dmu E[f(z)]."""

    def test():
        cases = [
            (lambda z: z * z, 1.5, 0.8, 2 * 1.5),  # E[z^2] = mu^2 + sigma^2
            (
                np.sin,
                0.3,
                1.2,
                math.cos(0.3) * math.exp(-(1.2**2) / 2),
            ),  # E[sin z] = sin(mu) e^(-s^2/2)
        ]
        for f, mu, sigma, want in cases:
            got = float(expect_array(fn(f, mu, sigma, 400_000, seeded(0)), (), "the estimate"))
            if abs(got - want) > 0.05:
                raise Wrong(
                    f"for mu={mu}, sigma={sigma} your estimate is further from the exact "
                    "gradient than 400,000 samples allow. The estimator averages f(z) times the "
                    "score, d/dmu log N(z; mu, sigma^2), over z ~ N(mu, sigma^2): check that "
                    "derivative, and that z is drawn with this mu and sigma."
                )

    run_check("score_function_grad", test, strict)
