"""Solutions to the exercises of lesson 12 (questions people ask). Run: python course/solutions/12_questions.py"""

import math

import numpy as np


def bits_per_dim(nll, D, levels=None):
    """nats per image -> bits per pixel: / (D ln 2). A density on [0, 1]^D fitted to data
    quantised to `levels` values (dequantised: each value spread over a bin of width 1/levels)
    gives the bin probability p(x) / levels^D, so each dimension costs log2(levels) bits more."""
    bits = np.asarray(nll, dtype=np.float64) / (D * math.log(2))
    return bits if levels is None else bits + math.log2(levels)


def effective_beta(recon_reduce, kl_reduce, B, D, L):
    """sum over the batch of per-image sums = B * (tinyvae's batch mean); each "mean" divides by
    the size of its axis. The loss is a R + b K = a (R + (b / a) K): scale a, beta b / a."""

    def factor(over_last, over_batch, size):
        return B * (1 / size if over_last == "mean" else 1) * (1 / B if over_batch == "mean" else 1)

    a, b = factor(*recon_reduce, D), factor(*kl_reduce, L)
    return a, b / a


def continuous_bernoulli_log_norm(logits):
    """log C(a) = log(a / tanh(a / 2)), since the integral over [0, 1] of lambda^x (1 - lambda)^(1 - x)
    is (2 lambda - 1) / a with 2 lambda - 1 = tanh(a / 2); its derivative 1/a - 1/sinh(a).
    Near 0 (0/0, and a cancellation): log 2 + a^2/12 - 7a^4/1440 and a/6 - 7a^3/360."""
    a = np.asarray(logits, dtype=np.float64)
    small = np.abs(a) < 1e-3
    safe = np.where(small, 1.0, np.abs(a))  # |a|: both functions are even / odd in a
    log_c = np.log(safe) - np.log(np.tanh(safe / 2))
    # 1/sinh(|a|) = 2 e^(-|a|) / (1 - e^(-2|a|)): no overflow for large |a|
    slope = np.sign(a) * (1 / safe - 2 * np.exp(-safe) / -np.expm1(-2 * safe))
    a2 = a * a
    log_c = np.where(small, math.log(2) + a2 / 12 - 7 * a2 * a2 / 1440, log_c)
    slope = np.where(small, a / 6 - 7 * a * a2 / 360, slope)
    return log_c, slope


def best_logvar(x, mean):
    """d/dl sum_b -log N(x_b; m_b, e^l) = 1/2 sum_b (1 - r_b^2 e^(-l)) = 0 at e^l = mean_b r_b^2."""
    return np.log(((x - mean) ** 2).mean(axis=0))


def check_all():
    import _path  # noqa: F401  (makes lessons/ importable)
    import checks_12_questions as C

    C.check_bits_per_dim(bits_per_dim, strict=True)
    C.check_effective_beta(effective_beta, strict=True)
    C.check_continuous_bernoulli_log_norm(continuous_bernoulli_log_norm, strict=True)
    C.check_best_logvar(best_logvar, strict=True)


if __name__ == "__main__":
    check_all()
