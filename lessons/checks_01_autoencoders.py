"""Checkers for the exercises of lesson 1, autoencoders.

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


@exercise(1, "tied_autoencoder")
def check_tied_autoencoder(fn, strict=False):
    """``fn(x, W) -> (loss, dW)`` for the linear autoencoder xhat = x W W^T (tied weights)."""

    def test():
        rng = seeded(1)
        x, W = rng.random((5, 7)), rng.standard_normal((7, 3)) * 0.5  # B = 5, D = 7, L = 3
        loss, dW = expect_tuple(fn(x.copy(), W.copy()), ("loss", "dW"))
        B, D = x.shape

        def f():  # the loss of section 1.3 for this autoencoder; W is nudged in place
            return float(((x @ W @ W.T - x) ** 2).sum(axis=1).mean())

        want_loss = f()
        known_mistakes(
            loss,
            [
                (
                    want_loss / D,
                    "You averaged over the pixels as well: sum over the D pixels of "
                    "each image, then average over the B images.",
                ),
                (want_loss * B, "You summed over the batch: average over the B images."),
            ],
        )
        expect_close(loss, want_loss, "loss")
        z = x @ W  # (B, L)
        G = 2 * (z @ W.T - x) / B  # (B, D): d loss / d xhat
        expect_gradient(
            dW,
            f,
            W,
            "dW",
            [
                (
                    "only the decoder's use of W is counted. W also makes the code z = x W, "
                    "and the gradient that reaches W along that path adds to it.",
                    G.T @ z,
                ),
                (
                    "only the encoder's use of W is counted. The decoder xhat = z W^T uses W "
                    "too, and the gradient that reaches W along that path adds to it.",
                    x.T @ (G @ W),
                ),
                ("the factor 2 of d/du u^2 = 2u is missing.", (G.T @ z + x.T @ (G @ W)) / 2),
                ("the 1/B of the batch average is missing.", (G.T @ z + x.T @ (G @ W)) * B),
            ],
        )

    run_check("tied_autoencoder", test, strict)


def _pca_reference(x, L):
    mean = x.mean(axis=0)
    _, _, Vt = np.linalg.svd(x - mean, full_matrices=False)
    V = Vt[:L].T  # (D, L) top principal directions
    return mean + (x - mean) @ V @ V.T


@exercise(1, "pca_reconstruction")
def check_pca_reconstruction(fn, strict=False):
    """``fn(x, L) -> xhat``: the best reconstruction through an L-dimensional linear code."""

    def test():
        rng = seeded(3)
        x = rng.standard_normal((60, 6)) * np.array([5.0, 3.0, 2.0, 1.0, 0.5, 0.2]) + 4.0
        x = x @ np.linalg.qr(rng.standard_normal((6, 6)))[0]  # rotate: axes are not the answer
        for L in (1, 3):
            got = fn(x.copy(), L)
            got = expect_array(got, x.shape, f"the reconstruction for L={L}")
            no_centre = x @ np.linalg.svd(x, full_matrices=False)[2][:L].T
            no_centre = no_centre @ np.linalg.svd(x, full_matrices=False)[2][:L]
            known_mistakes(
                got,
                [
                    (
                        no_centre,
                        "Centre the data first (subtract the mean image), project, then add "
                        "the mean back: a linear code cannot store the mean for free.",
                    ),
                ],
            )
            want = _pca_reference(x, L)
            error, best = ((got - x) ** 2).sum(), ((want - x) ** 2).sum()
            if error < best * (1 - 1e-6) - 1e-9:
                raise Wrong(
                    f"for L={L} your squared error is lower than the best any "
                    f"{L}-dimensional linear code can reach: the "
                    f"reconstruction must pass through a code of {L} number(s) per image."
                )
            if error > best * (1 + 1e-6) + 1e-9:
                raise Wrong(
                    f"for L={L} your squared error is larger than the smallest possible. "
                    "Use the L directions of largest variance (the first L "
                    "rows of Vt from an SVD of the centred data)."
                )
            expect_close(got, want, f"the reconstruction for L={L}", rtol=1e-5, atol=1e-7)

    run_check("pca_reconstruction", test, strict)


@exercise(1, "fraction_near")
def check_fraction_near(fn, strict=False):
    """``fn(samples, codes, radius) -> float``: share of samples with a code within radius."""

    def test():
        rng = seeded(4)
        codes = rng.standard_normal((30, 2))
        samples = np.concatenate([codes[:5] + 0.01, rng.uniform(-6, 6, (15, 2))])  # (20, 2)
        distances = np.sqrt(((samples[:, None, :] - codes[None, :, :]) ** 2).sum(-1))  # (20, 30)
        for radius in (0.05, 0.5, 2.0):
            want = float((distances.min(axis=1) <= radius).mean())
            got = float(
                expect_array(
                    fn(samples.copy(), codes.copy(), radius),
                    (),
                    f"the fraction for radius {radius}",
                )
            )
            wrong_way = float((distances.min(axis=0) <= radius).mean())
            if abs(got - want) > 1e-9 and abs(got - wrong_way) < 1e-9:
                raise Wrong(
                    "you measured the codes' distance to the samples; the question is, "
                    "for each *sample*, is some code within the radius?"
                )
            if abs(got - want) > 1e-9:
                raise Wrong(
                    f"for radius {radius} your fraction ({got:.3f}) is not right. "
                    "Take each sample's nearest code (min over codes) and compare it "
                    "with the radius; the answer is a fraction between 0 and 1."
                )

    run_check("fraction_near", test, strict)
