"""Solutions to the exercises of lesson 7 (the latent space). Run: python course/solutions/07_latent_space.py"""

import numpy as np


def aggregate_moments(mu, logvar):
    """q(z) = (1/n) sum_i N(mu_i, diag e^logvar_i): mean = mean of mu; by the law of total
    variance, cov = covariance of the means (divided by n) + the average posterior variance."""
    mean = mu.mean(axis=0)  # (L,)
    centred = mu - mean  # (n, L)
    between = centred.T @ centred / len(mu)  # (L, L)
    return mean, between + np.diag(np.exp(logvar).mean(axis=0))


def slerp(a, b, t):
    """Along the arc: sin((1 - t) w) / sin(w) a + sin(t w) / sin(w) b, w the angle from a to b."""
    cos = a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    t = np.asarray(t, dtype=np.float64)[:, None]  # (T, 1)
    if omega < 1e-6:  # (almost) the same direction: the straight line is the arc
        return (1 - t) * a + t * b
    return (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)


def mask_corrupt(x, p, rng):
    """Each pixel independently set to 0 with probability p; x itself is untouched."""
    keep = rng.random(x.shape) >= p  # (B, D): True with probability 1 - p
    return x * keep


def check_all():
    import _path  # noqa: F401  (makes lessons/ importable)
    import lesson_checks_more as C

    C.check_aggregate_moments(aggregate_moments, strict=True)
    C.check_slerp(slerp, strict=True)
    C.check_mask_corrupt(mask_corrupt, strict=True)


if __name__ == "__main__":
    check_all()
