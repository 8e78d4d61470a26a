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


def mutual_information(z, mu, logvar):
    """(1/n) sum_i [log q(z_i | x_i) - log q(z_i)], with q(z) = (1/n) sum_j q(z | x_j): the
    n x n log densities log q(z_i | x_j) at once, then a stable log-sum-exp over j."""
    n = len(z)
    diff = z[:, None, :] - mu[None, :, :]  # (n, n, L): z_i - mu_j
    log_q = -0.5 * (np.log(2 * np.pi) + logvar[None] + diff**2 * np.exp(-logvar[None])).sum(-1)
    top = log_q.max(axis=1, keepdims=True)  # (n, 1)
    log_aggregate = top[:, 0] + np.log(np.exp(log_q - top).sum(axis=1)) - np.log(n)  # (n,)
    return float(np.mean(np.diag(log_q) - log_aggregate))


def check_all():
    import _path  # noqa: F401  (makes lessons/ importable)
    import checks_07_latent_space as C

    C.check_aggregate_moments(aggregate_moments, strict=True)
    C.check_slerp(slerp, strict=True)
    C.check_mutual_information(mutual_information, strict=True)


if __name__ == "__main__":
    check_all()
