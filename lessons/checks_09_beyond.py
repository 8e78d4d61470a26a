"""Checkers for the exercises of lesson 9, beyond.

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
    known_mistakes,
    run_check,
    seeded,
)

import tinyvae


@exercise(9, "one_hot_inputs")
def check_one_hot_inputs(fn, strict=False):
    """``fn(x (B, n), labels (B,), num_classes) -> (B, n + num_classes)``: x, then one-hot labels."""

    def test():
        rng = seeded(52)
        x, labels = rng.random((6, 5)), np.array([3, 0, 9, 3, 1, 7])
        got = fn(x.copy(), labels.copy(), 10)
        one_hot = np.eye(10)[labels]  # (B, C): row b is 1 in column labels[b]
        if np.shape(got) == (6, 6):
            raise Wrong(
                "one column was added: the label as a number says 9 is 'more' than 3. "
                "Add num_classes columns, a 1 in the label's column and 0 elsewhere."
            )
        known_mistakes(
            got,
            [
                (
                    np.concatenate([one_hot, x], axis=1),
                    "the one-hot part goes after the pixels: [x | one-hot], the order in "
                    "which tinyvae's encoder and decoder read their inputs.",
                )
            ],
        )
        expect_close(got, np.concatenate([x, one_hot], axis=1), "the inputs")
        if not np.array_equal(np.asarray(fn(x, labels, 12))[:, 5:].sum(axis=1), np.ones(6)):
            raise Wrong("use the num_classes argument: with 12 classes there are 12 columns.")
        model = tinyvae.VAE(5, hidden=(4,), latent_dim=2, num_classes=10, dtype="float64")
        mu, logvar = model.encode(x, labels)  # what the library's encoder makes of (x, labels)
        expect_close(
            model.encoder.forward(np.asarray(got, dtype=np.float64)),
            np.concatenate([mu, logvar], axis=1),
            "a conditional tinyvae.VAE's encoder output on your inputs",
        )

    run_check("one_hot_inputs", test, strict)


FREE_BITS_FLOOR = 0.25


def free_bits_inputs():
    """(mu, logvar), (6, 5) each: units 0-1 under the floor, units 2-4 above it, all by a
    margin wide enough that no finite difference crosses the kink of max (tested)."""
    rng = seeded(50)
    mu = rng.standard_normal((6, 5)) * np.array([0.1, 0.2, 1.0, 1.5, 2.0])
    logvar = rng.uniform(-0.2, 0.2, (6, 5)) * np.array([0.5, 0.5, 1, 4, 8])
    return mu, logvar


@exercise(9, "free_bits")
def check_free_bits(fn, strict=False):
    """``fn(mu (B, L), logvar (B, L), floor) -> (term, dmu, dlogvar)``: the free-bits KL term
    sum_u max(floor, mean_b KL_bu) and its gradient, judged by a gradient check."""

    def test():
        (mu, logvar), floor = free_bits_inputs(), FREE_BITS_FLOOR
        B = len(mu)
        kl = 0.5 * (np.exp(logvar) + mu**2 - 1 - logvar)  # (B, L)
        per_unit = kl.mean(axis=0)  # (L,)
        term, dmu, dlogvar = expect_tuple(
            fn(mu.copy(), logvar.copy(), floor), ("term", "dmu", "dlogvar")
        )

        def f():
            kl = 0.5 * (np.exp(logvar) + mu**2 - 1 - logvar)
            return float(np.maximum(floor, kl.mean(axis=0)).sum())

        known_mistakes(
            term,
            [
                (
                    np.maximum(floor, kl).mean(axis=0).sum(),
                    "the floor applies to each unit's KL averaged over the batch, not to "
                    "each image's KL: average over the B images first, then take the max.",
                ),
                (
                    np.maximum(floor, kl.sum(axis=0)).sum(),
                    "average each unit's KL over the batch (1/B), do not sum it.",
                ),
            ],
        )
        expect_close(term, f(), "the term")
        used = (per_unit > floor).astype(float)  # (L,): 1 where the max picks the KL
        charged = "below the floor the term is the constant floor: those units' gradient is 0."
        expect_gradient(
            dmu,
            f,
            mu,
            "dmu",
            [
                (charged, mu / B),
                ("the 1/B of the batch average is missing.", mu * used),
                (
                    "the units above the floor are the ones charged, not those below.",
                    mu * (1 - used) / B,
                ),
            ],
        )
        expect_gradient(
            dlogvar,
            f,
            logvar,
            "dlogvar",
            [
                (charged, 0.5 * (np.exp(logvar) - 1) / B),
                ("the 1/B of the batch average is missing.", 0.5 * (np.exp(logvar) - 1) * used),
            ],
        )

    run_check("free_bits", test, strict)


@exercise(9, "importance_weights")
def check_importance_weights(fn, strict=False):
    """``fn(log_w (K, B)) -> (weights (K, B), ess (B,))``: normalised importance weights, each
    column summing to 1, and the effective sample size 1 / sum_k w_k^2 of each column."""

    def test():
        rng = seeded(51)
        log_w = rng.standard_normal((6, 4)) * 2 + np.array([0.0, -1000.0, 1000.0, -5.0])
        with np.errstate(all="ignore"):
            weights, ess = expect_tuple(fn(log_w.copy()), ("weights", "ess"))
        shifted = np.exp(log_w - log_w.max(axis=0))
        want = shifted / shifted.sum(axis=0)
        if np.shape(weights) == log_w.shape:
            weights = np.asarray(weights, dtype=np.float64)
            if not np.all(np.isfinite(weights)):
                raise Wrong(
                    "some weights are NaN or infinite for log weights near -1000 and +1000: "
                    "subtract each column's largest log weight before exp."
                )
        rows = np.exp(log_w - log_w.max(axis=1, keepdims=True))
        known_mistakes(
            weights,
            [
                (
                    rows / rows.sum(axis=1, keepdims=True),
                    "normalise over the K samples of each image (axis 0): each column sums to 1.",
                )
            ],
        )
        expect_close(weights, want, "the weights", atol=1e-12)
        ess = expect_array(ess, (4,), "ess")
        known_mistakes(
            ess,
            [
                ((want**2).sum(axis=0), "ess is 1 / sum_k w_k^2: the reciprocal is missing."),
                (1 / want.sum(axis=0), "square the normalised weights: 1 / sum_k w_k^2."),
            ],
        )
        expect_close(ess, 1 / (want**2).sum(axis=0), "ess")
        equal = fn(np.full((8, 3), -7.0))[1]  # equal weights: every sample counts fully
        expect_close(equal, np.full(3, 8.0), "ess for 8 equal weights", hint="It must be K = 8.")

    run_check("importance_weights", test, strict)
