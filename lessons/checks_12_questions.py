"""Checkers for the exercises of lesson 12 (questions people ask): ``check_<exercise>(fn)``.

They work like those of the other lessons: each runs the student's function on test
inputs and prints one line through ``lesson_utils.run_check``. Most judge a property the
answer must have rather than compare with a stored value: a density must integrate to 1,
a derivative must match finite differences, a maximum-likelihood estimate must make the
gradient vanish, a loss written with other reductions must be reproduced for any data.
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

# --- Exercise 1: bits per dimension ---------------------------------------------------------


@exercise(12, "bits_per_dim")
def check_bits_per_dim(fn, strict=False):
    """``fn(nll, D, levels=None) -> bits per dimension``: nll in nats per image, (B,) or a
    float; levels None for binary pixels, else the number of grey levels of the data."""

    def test():
        nll = seeded(60).uniform(-50, 300, 5)  # a density's -log p can be negative
        D = 64
        coin = float(expect_array(fn(D * math.log(2), D), (), "the bits per dimension"))
        known_mistakes(
            coin,
            [
                (math.log(2), "those are nats per dimension: divide by ln 2 as well."),
                (D, "divide by the number of dimensions D as well: bits *per dimension*."),
            ],
        )
        if abs(coin - 1) > 1e-12:
            raise Wrong(
                "a model that makes every binary pixel a fair coin costs D ln 2 nats per "
                "image, which must be exactly 1 bit per dimension."
            )
        got = expect_array(fn(nll.copy(), D), nll.shape, "the bits per dimension")
        expect_close(got, nll / (D * math.log(2)), "the bits per dimension (levels=None)")
        for levels in (17, 256):
            uniform = float(expect_array(fn(0.0, D, levels), (), "the bits per dimension"))
            bits = math.log2(levels)
            known_mistakes(
                uniform,
                [
                    (
                        0.0,
                        "a density on [0, 1]^D is not a probability: the bins of the "
                        "quantised data add log2(levels) bits per dimension.",
                    ),  # fmt: skip
                    (-bits, "the bins add log2(levels) bits per dimension; you subtracted it."),
                    (math.log2(levels - 1), "there are `levels` bins of width 1 / levels."),
                ],
            )
            if abs(uniform - bits) > 1e-12:
                raise Wrong(
                    f"the uniform density on [0, 1]^D (-log p = 0) spreads each pixel evenly "
                    f"over {levels} bins, so it must cost log2({levels}) bits per dimension."
                )
            got = expect_array(fn(nll.copy(), D, levels), nll.shape, "the bits per dimension")
            expect_close(
                got, nll / (D * math.log(2)) + bits, f"the bits per dimension ({levels} levels)"
            )

    run_check("bits_per_dim", test, strict)


# --- Exercise 2: the effective beta -----------------------------------------------------------


@exercise(12, "effective_beta")
def check_effective_beta(fn, strict=False):
    """``fn(recon_reduce, kl_reduce, B, D, L) -> (scale, beta)`` such that the loss written with
    those reductions is scale * (recon + beta * KL), recon and KL as tinyvae averages them."""

    def test():
        B, D, L = 5, 12, 3
        rng = seeded(61)
        for recon_reduce in [(p, b) for p in ("sum", "mean") for b in ("sum", "mean")]:
            for kl_reduce in [(u, b) for u in ("sum", "mean") for b in ("sum", "mean")]:
                where = f"for recon reduced by {recon_reduce} and the KL by {kl_reduce}"
                out = fn(recon_reduce, kl_reduce, B, D, L)
                scale, beta = (float(v) for v in expect_tuple(out, ("scale", "beta")))
                for _ in range(2):  # two random data sets: scale and beta must fit both
                    r, k = rng.random((B, D)), rng.random((B, L))  # per pixel, per unit
                    loss = _reduce(r, *recon_reduce) + _reduce(k, *kl_reduce)
                    recon, kl = r.sum(axis=1).mean(), k.sum(axis=1).mean()
                    if abs(scale * recon - _reduce(r, *recon_reduce)) > 1e-12 * loss:
                        raise Wrong(
                            f"{where}: scale * recon is not the reconstruction part of that "
                            "loss. Count the factors 1/D and 1/B that its means introduce."
                        )
                    if abs(scale * (recon + beta * kl) - loss) > 1e-12 * loss:
                        inverse = _reduce(r, *recon_reduce) / recon / (_reduce(k, *kl_reduce) / kl)
                        if abs(beta - inverse) < 1e-9 * inverse:
                            raise Wrong(
                                f"{where}: beta is inverted. The loss is scale * (recon + "
                                "beta * KL): beta is the KL's factor divided by the "
                                "reconstruction's."
                            )
                        raise Wrong(
                            f"{where}: the scale is right but scale * (recon + beta * KL) "
                            "does not give the loss: beta is not right."
                        )

    run_check("effective_beta", test, strict)


def _reduce(values, over_last, over_batch):
    """values (B, n) reduced as a loss function would: "sum" or "mean" over each axis."""
    per_example = values.sum(axis=1) if over_last == "sum" else values.mean(axis=1)
    return float(per_example.sum() if over_batch == "sum" else per_example.mean())


# --- Exercise 3: the continuous Bernoulli's normaliser ---------------------------------------


def _integral_01(f, n=4000):
    """Simpson's rule for f on [0, 1] with n (even) intervals: error ~ f'''' / (180 n^4)."""
    x = np.linspace(0.0, 1.0, n + 1)
    weights = np.ones(n + 1)
    weights[1:-1:2], weights[2:-1:2] = 4, 2
    return float((weights * f(x)).sum() / (3 * n))


@exercise(12, "continuous_bernoulli_log_norm")
def check_continuous_bernoulli_log_norm(fn, strict=False):
    """``fn(logits) -> (log C, d log C / d logits)``, elementwise and accurate for every logit:
    with log C added, exp(x a - softplus(a) + log C(a)) must integrate to 1 over x in [0, 1]."""

    def test():
        a = np.array([-800, -30, -5, -1, -0.1, -1e-4, -1e-9, 0, 1e-9, 1e-4, 0.1, 1, 5, 30, 800.0])
        with np.errstate(all="ignore"):
            log_c, slope = expect_tuple(fn(a.copy()), ("log_c", "slope"))
        for got, name in ((log_c, "log C"), (slope, "its derivative")):
            got = np.asarray(got, dtype=np.float64)
            if got.shape == a.shape and not np.all(np.isfinite(got)):
                bad = ", ".join(f"{v:g}" for v in a[~np.isfinite(got)])
                raise Wrong(
                    f"{name} is not finite at a = {bad}. At a = 0 the closed form is 0/0: "
                    "use its Taylor series near 0. For |a| in the hundreds, keep every "
                    "intermediate (sinh, exp) from overflowing."
                )
        log_c = expect_array(log_c, a.shape, "log C")
        slope = expect_array(slope, a.shape, "the derivative")
        for value in (-30.0, -5.0, -1.0, -0.1, 0.1, 1.0, 5.0, 30.0):
            i = int(np.argmin(np.abs(a - value)))
            total = _integral_01(
                lambda x, v=value, c=log_c[i]: np.exp(x * v - dist.softplus(v) + c)
            )
            if abs(total - 1) > 1e-9:
                raise Wrong(
                    f"at a = {value:g}, x a - softplus(a) + log C(a) does not make a density "
                    f"on [0, 1]: it integrates to {total:.4f}, not 1. Work out the integral "
                    "of lambda^x (1 - lambda)^(1 - x) over x first."
                )
        at_zero = float(log_c[a == 0][0])
        if abs(at_zero - math.log(2)) > 1e-12:
            raise Wrong("at a = 0 the density is uniform on [0, 1]: log C(0) = log 2 exactly.")
        for value in (-800.0, 800.0):  # tanh(400) = 1 in float64: log C = log |a| exactly
            i = int(np.argmin(np.abs(a - value)))
            if abs(log_c[i] - math.log(800)) > 1e-12 * math.log(800):
                raise Wrong(f"log C is not right at a = {value:g}.")
            if abs(slope[i] - 1 / value) > 1e-12 / 800:
                raise Wrong(f"the derivative is not right at a = {value:g}.")
        # The derivative: central differences of the (now known right) log C, away from 0,
        h = 1e-6
        for value in (-30.0, -5.0, -1.0, -0.1, 0.1, 1.0, 5.0, 30.0):
            i = int(np.argmin(np.abs(a - value)))
            with np.errstate(all="ignore"):
                up, down = fn(np.array([value + h]))[0], fn(np.array([value - h]))[0]
            numeric = float((np.asarray(up) - np.asarray(down))[0] / (2 * h))
            if abs(slope[i] - numeric) > 1e-6 * max(abs(numeric), 1e-3):
                sign = " (it has the wrong sign)" if abs(slope[i] + numeric) < 1e-6 else ""
                raise Wrong(
                    f"the derivative at a = {value:g} does not match finite differences "
                    f"of your log C{sign}."
                )
        # and near 0, where finite differences lose their digits, its Taylor series a/6 - 7a^3/360.
        for value in (-1e-4, -1e-9, 0.0, 1e-9, 1e-4):
            i = int(np.argmin(np.abs(a - value)))
            series = value / 6 - 7 * value**3 / 360
            if abs(slope[i] - series) > 1e-6 * abs(series) + 1e-300:
                raise Wrong(
                    f"the derivative at a = {value:g} is off: 1/a - 1/sinh(a) subtracts two "
                    "huge, nearly equal numbers there. Near 0 use its Taylor series."
                )

    run_check("continuous_bernoulli_log_norm", test, strict)


# --- Exercise 4: the best variance of a Gaussian decoder --------------------------------------


@exercise(12, "best_logvar")
def check_best_logvar(fn, strict=False):
    """``fn(x (B, D), mean (B, D)) -> logvar (D,)``: the per-pixel log-variance that maximises
    sum_b log N(x_b; mean_b, diag e^logvar). Judged by the gradient at the answer: it is 0 at
    the maximum, and only there (the negative log-likelihood is convex in logvar)."""

    def test():
        rng = seeded(62)
        x = rng.random((40, 6))
        mean = x + rng.standard_normal((40, 6)) * np.array([0.01, 0.05, 0.1, 0.2, 0.3, 0.5])
        r2 = (x - mean) ** 2  # (B, D)
        got = expect_array(fn(x.copy(), mean.copy()), (6,), "logvar")
        known_mistakes(
            got,
            [
                (r2.mean(axis=0), "that is the variance itself: return its log."),
                (0.5 * np.log(r2.mean(axis=0)), "that is log sigma: return log sigma^2."),
                (
                    np.full(6, np.log(r2.mean())),
                    "one variance per pixel: average the squared residuals over the images only.",
                ),
                (np.log(np.abs(x - mean).mean(axis=0)), "average the *squared* residuals."),
            ],
        )
        # d/dlogvar_d of -sum_b log N = 1/2 sum_b (1 - r2_bd e^(-logvar_d)); 0 at the maximum
        gradient = 0.5 * (1 - r2 * np.exp(-got)).sum(axis=0)  # (D,)
        if np.any(np.abs(gradient) > 1e-9 * len(x)):
            pixel = int(np.argmax(np.abs(gradient)))
            way = "lower" if gradient[pixel] > 0 else "higher"
            raise Wrong(
                f"at your answer the log-likelihood still rises if pixel {pixel}'s logvar "
                f"goes {way}: it is not the maximum. Set the derivative with respect to "
                "logvar_d to 0 and solve."
            )

    run_check("best_logvar", test, strict)
