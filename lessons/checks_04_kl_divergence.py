"""Checkers for the exercises of lesson 4, the KL divergence.

Each ``check_<exercise>(your_function)`` runs your function on test inputs, compares the
answer with tinyvae or with a reference written here, and prints one line through
``grading.run_check``: not attempted yet, not right yet (naming the usual mistake where it
is recognised), or correct. Solutions call the checkers with ``strict=True``, which raises
unless the answer passes.
"""

from __future__ import annotations

import numpy as np
from lesson_utils import (
    Wrong,
    exercise,
    expect_array,
    expect_close,
    expect_gradient,
    expect_tuple,
    run_check,
    seeded,
)

from tinyvae.core import distributions as dist


def kl_diag_reference(mu1, logvar1, mu2, logvar2):
    """KL(N(mu1, e^logvar1) || N(mu2, e^logvar2)), diagonal, summed over the last axis."""
    ratio = np.exp(logvar1 - logvar2)
    return 0.5 * (logvar2 - logvar1 + ratio + (mu1 - mu2) ** 2 * np.exp(-logvar2) - 1).sum(-1)


@exercise(4, "kl_diag_gaussians")
def check_kl_diag_gaussians(fn, strict=False):
    """``fn(mu1, logvar1, mu2, logvar2) -> (B,)``: KL between two diagonal Gaussians."""

    def test():
        rng = seeded(10)
        mu1, lv1, mu2, lv2 = (rng.standard_normal((5, 3)) for _ in range(4))
        got = fn(mu1, lv1, mu2, lv2)
        if np.shape(got) == (5, 3):
            raise Wrong("sum over the latent dimensions (the last axis): one KL per example.")
        prior = expect_array(
            fn(mu1, lv1, np.zeros_like(mu2), np.zeros_like(lv2)), (5,), "the KL against N(0, I)"
        )
        expect_close(
            prior,
            dist.kl_standard_normal(mu1, lv1),
            "the KL against N(0, I)",
            hint="With mu2 = 0 and logvar2 = 0 it must equal tinyvae's kl_standard_normal.",
        )
        expect_close(got, kl_diag_reference(mu1, lv1, mu2, lv2), "the KL")
        if np.any(np.abs(np.asarray(fn(mu1, lv1, mu1, lv1), dtype=np.float64)) > 1e-9):
            raise Wrong("the KL of a distribution to itself must be 0.")

    run_check("kl_diag_gaussians", test, strict)


@exercise(4, "kl_diag_grad")
def check_kl_diag_grad(fn, strict=False):
    """``fn(mu1, logvar1, mu2, logvar2) -> (dmu1, dlogvar1, dmu2, dlogvar2)``: the gradient of
    the summed KL(N(mu1, e^logvar1) || N(mu2, e^logvar2)), judged by a gradient check."""

    def test():
        rng = seeded(11)
        mu1, lv1, mu2, lv2 = (rng.standard_normal((4, 3)) for _ in range(4))
        names = ("dmu1", "dlogvar1", "dmu2", "dlogvar2")
        out = expect_tuple(fn(mu1.copy(), lv1.copy(), mu2.copy(), lv2.copy()), names)
        for got, name in zip(out, names):
            if np.shape(got) != mu1.shape:
                raise Wrong(
                    f"{name} has shape {np.shape(got)}, should be {mu1.shape}: one derivative "
                    "per element, the KL of each example summed over its L dimensions."
                )

        def total():  # the KL of every example, summed: its gradient is the per-element one
            return float(kl_diag_reference(mu1, lv1, mu2, lv2).sum())

        d, ratio = mu1 - mu2, np.exp(lv1 - lv2)  # (B, L) each
        mean_term = d * d * np.exp(-lv2)
        expect_gradient(
            out[0],
            total,
            mu1,
            "dmu1",
            [("(mu1 - mu2)^2 is divided by e^logvar2, and so is its derivative.", d)],
        )
        expect_gradient(
            out[1],
            total,
            lv1,
            "dlogvar1",
            [
                ("the 1/2 in front of the KL is missing.", ratio - 1),
                ("-logvar1 has a derivative too, -1/2.", 0.5 * ratio),
            ],
        )
        expect_gradient(
            out[2],
            total,
            mu2,
            "dmu2",
            [("mu2 enters as -(mu1 - mu2): the sign is the opposite of dmu1's.", d * np.exp(-lv2))],
        )
        expect_gradient(
            out[3],
            total,
            lv2,
            "dlogvar2",
            [
                (
                    "the mean term (mu1 - mu2)^2 e^(-logvar2) depends on logvar2 too.",
                    0.5 * (1 - ratio),
                ),
                ("the 1/2 in front of the KL is missing.", 1 - ratio - mean_term),
            ],
        )

    run_check("kl_diag_grad", test, strict)


@exercise(4, "kl_monte_carlo")
def check_kl_monte_carlo(fn, strict=False):
    """``fn(mu, logvar, K, rng) -> (B,)``: a K-sample Monte Carlo estimate of the KL to N(0, I)."""

    def test():
        rng = seeded(12)
        mu, logvar = rng.uniform(-1, 1, (4, 3)), rng.uniform(-1, 1, (4, 3))
        exact = dist.kl_standard_normal(mu, logvar)
        got = expect_array(fn(mu, logvar, 20000, seeded(0)), (4,), "the estimate")
        if np.allclose(got, exact, rtol=0, atol=1e-12):
            raise Wrong(
                "that is the closed form itself; estimate it from samples z ~ q: "
                "the mean of log q(z) - log p(z)."
            )
        again = np.asarray(fn(mu, logvar, 20000, seeded(1)), dtype=np.float64)
        if np.array_equal(got, again):
            raise Wrong(
                "two different generators gave the same estimate: draw the samples "
                "from the rng argument."
            )
        if np.abs(got - exact).max() > 0.08:
            raise Wrong(
                "with K=20000 the estimate should lie within about 0.05 of the exact "
                "KL, and yours is further away. Sample z = mu + "
                "exp(logvar/2) eps and average log q(z) - log p(z) over the K samples."
            )

    run_check("kl_monte_carlo", test, strict)
