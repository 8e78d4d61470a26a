"""Checkers for the exercises of lesson 6, training a VAE end to end.

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
    expect_tuple,
    known_mistakes,
    run_check,
    seeded,
)

import tinyvae
from tinyvae.core import distributions as dist
from tinyvae.core.params import FlatParameters


def adam_reference(theta, g, m, v, t, lr, beta1, beta2, eps, correct=True):
    """One Adam step in the textbook form; ``correct=False`` leaves out the bias corrections."""
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    m_hat = m / (1 - beta1**t) if correct else m
    v_hat = v / (1 - beta2**t) if correct else v
    return theta - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


@exercise(6, "adam_step")
def check_adam_step(fn, strict=False):
    """``fn(theta, g, m, v, t, lr, beta1, beta2, eps) -> (theta, m, v)``: one Adam step."""

    def test():
        rng = seeded(21)
        lr, beta1, beta2, eps = 1e-2, 0.9, 0.999, 1e-8
        scales = np.array([1e-3, 1.0, 100.0, 1.0, 5.0, 0.1])  # very different sizes
        theta0 = rng.standard_normal(6)
        grads = [rng.standard_normal(6) * scales for _ in range(5)]
        # tinyvae.Adam over a flat float64 buffer: the answer to compare with.
        flat = FlatParameters({"theta": theta0}, tinyvae.get_backend("numpy", "float64"))
        library = tinyvae.Adam(flat, lr=lr, betas=(beta1, beta2), eps=eps)
        theta, m, v = theta0.copy(), np.zeros(6), np.zeros(6)
        bare = (theta0.copy(), np.zeros(6), np.zeros(6))  # the same steps, no bias correction
        for t, g in enumerate(grads, start=1):
            flat.grad[...] = g
            library.step()
            with np.errstate(all="ignore"):
                out = expect_tuple(
                    fn(theta.copy(), g.copy(), m.copy(), v.copy(), t, lr, beta1, beta2, eps),
                    ("theta", "m", "v"),
                )
            got = np.asarray(out[0], dtype=np.float64)
            if got.shape == (6,) and not np.all(np.isfinite(got)):
                raise Wrong(
                    f"theta is not finite at step t = {t}: t counts from 1, so that "
                    "1 - beta^t is never 0."
                )
            bare = adam_reference(bare[0], g, *bare[1:], t, lr, beta1, beta2, eps, correct=False)
            if t == 1:
                known_mistakes(
                    got,
                    [
                        (
                            bare[0],
                            "without the bias corrections the first step is about "
                            "0.1 / sqrt(0.001) = 3.2 times too long: divide m by 1 - beta1^t "
                            "and v by 1 - beta2^t.",
                        ),
                        (
                            theta - lr * g / np.sqrt(g * g + eps),
                            "epsilon goes outside the square root: m_hat / (sqrt(v_hat) + eps).",
                        ),
                    ],
                )
            expect_close(out[1], library.m, f"m after step {t}", rtol=1e-10, atol=1e-14)
            expect_close(
                out[2],
                library.v,
                f"v after step {t}",
                rtol=1e-10,
                atol=1e-14,
                hint="v averages the *squared* gradients, g * g.",
            )
            theta, m, v = (np.asarray(a, dtype=np.float64) for a in out)
            expect_close(theta, flat.data, f"theta after step {t}", rtol=1e-9, atol=1e-12)

    run_check("adam_step", test, strict)


@exercise(6, "loss_parts")
def check_loss_parts(fn, strict=False):
    """``fn(model, x, eps) -> (recon, kl)``: the two parts of the loss, averaged over the batch."""

    def test():
        model = tinyvae.VAE(12, hidden=(6,), latent_dim=3, dtype="float64", seed=4)
        x = (seeded(22).random((5, 12)) < 0.5).astype(np.float64)
        eps = seeded(23).standard_normal((5, 3))
        recon, kl = expect_tuple(fn(model, x.copy(), eps.copy()), ("recon", "kl"))
        _, parts, _ = model.loss_and_grads(x, eps=eps)
        mu, logvar = model.encode(x)
        probabilities = model.decode(dist.reparameterize(mu, logvar, eps))
        known_mistakes(
            recon,
            [
                (
                    -dist.bernoulli_log_likelihood(x, probabilities).mean(),
                    "model.decode returns probabilities sigmoid(logits); "
                    "bernoulli_log_likelihood wants the logits: model.decoder.forward(z).",
                ),
                (
                    parts["recon"] / x.shape[1],
                    "sum -log p(x|z) over the pixels of each image, then average over images.",
                ),
            ],
        )
        known_mistakes(
            kl,
            [
                (
                    dist.kl_standard_normal(mu, logvar).sum(),
                    "the KL should be averaged over the batch, not summed.",
                )
            ],
        )
        expect_close(recon, parts["recon"], "recon", rtol=1e-9)
        expect_close(kl, parts["kl"], "kl", rtol=1e-9)

    run_check("loss_parts", test, strict)


def ema_reference(values, beta, correct=True):
    """Exponential moving average from s_0 = 0; divided by 1 - beta^t when ``correct``."""
    s, out = 0.0, []
    for t, value in enumerate(values, start=1):
        s = beta * s + (1 - beta) * value
        out.append(s / (1 - beta**t) if correct else s)
    return np.array(out)


@exercise(6, "debiased_ema")
def check_debiased_ema(fn, strict=False):
    """``fn(values (T,), beta) -> (T,)``: the bias-corrected exponential moving average."""

    def test():
        constant = np.full(50, 5.0)
        got = expect_array(fn(constant.copy(), 0.9), (50,), "the average of a constant")
        known_mistakes(
            got,
            [
                (
                    ema_reference(constant, 0.9, correct=False),
                    "the early values are pulled towards the zero start: divide s_t by "
                    "1 - beta^t, so that the average of a constant is that constant.",
                )
            ],
        )
        expect_close(got, constant, "the average of a constant 5", hint="It must be 5 throughout.")
        values = seeded(24).standard_normal(40).cumsum() + 100
        got = expect_array(fn(values.copy(), 0.95), (40,), "the average")
        started = [values[0]]
        for value in values[1:]:
            started.append(0.95 * started[-1] + 0.05 * value)
        known_mistakes(
            got,
            [
                (
                    np.array(started) / (1 - 0.95 ** np.arange(1, 41)),
                    "start from s_0 = 0: the correction 1 / (1 - beta^t) assumes it. "
                    "Starting from the first value *and* dividing counts it twice.",
                )
            ],
        )
        expect_close(got, ema_reference(values, 0.95), "the average")

    run_check("debiased_ema", test, strict)
