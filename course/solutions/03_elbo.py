"""Solutions to the exercises of lesson 3 (the ELBO). Run: python course/solutions/03_elbo.py"""

import math

import numpy as np


def toy_posterior(x, w, s):
    """z ~ N(0, 1), x_i | z ~ N(w_i z, s^2): each observation adds w_i^2 / s^2 to the
    precision and w_i x_i / s^2 to the coefficient of z; mean = that coefficient / precision."""
    precision = 1 + np.sum(w * w) / (s * s)
    return float(np.sum(w * x) / (s * s) / precision), float(1 / precision)


def toy_elbo(x, m, v, w, s):
    """E_q[log N(x; w z, s^2)] - KL(N(m, v) || N(0, 1)), with E_q[(x - w z)^2] = (x - w m)^2 + w^2 v."""
    expected_log_lik = -0.5 * (
        math.log(2 * math.pi * s * s) + ((x - w * m) ** 2 + w * w * v) / (s * s)
    )
    kl = 0.5 * (v + m * m - 1 - math.log(v))
    return expected_log_lik - kl


def bounds_from_log_weights(log_w):
    """log_w (K, B) -> ELBO estimate (mean of log w) and IW bound (log of the mean of w), (B,)."""
    K = log_w.shape[0]
    m = log_w.max(axis=0)  # (B,) the largest log weight, factored out before exp
    iw = m + np.log(np.exp(log_w - m).sum(axis=0)) - math.log(K)
    return log_w.mean(axis=0), iw


def check_all():
    import _path  # noqa: F401  (makes lessons/ importable)
    import checks_03_elbo as C

    C.check_toy_posterior(toy_posterior, strict=True)
    C.check_toy_elbo(toy_elbo, strict=True)
    C.check_bounds_from_log_weights(bounds_from_log_weights, strict=True)


if __name__ == "__main__":
    check_all()
