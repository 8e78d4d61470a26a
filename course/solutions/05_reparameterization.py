"""Solutions to the exercises of lesson 5 (reparameterization). Run: python course/solutions/05_reparameterization.py"""

import numpy as np


def reparameterize(mu, logvar, eps):
    """z = mu + exp(logvar / 2) eps; eps (K, B, L) broadcasts against mu (B, L)."""
    return mu + np.exp(0.5 * logvar) * eps


def reparameterize_backward(dz, mu, logvar, eps):
    """dz (K, B, L) -> dmu = sum_k dz, dlogvar = sum_k dz * exp(logvar / 2) eps / 2; each (B, L)."""
    return dz.sum(axis=0), (dz * 0.5 * np.exp(0.5 * logvar) * eps).sum(axis=0)


def score_function_grad(f, mu, sigma, K, rng):
    """d/dmu E[f(z)] = E[f(z) d/dmu log q(z)] = E[f(z) (z - mu) / sigma^2], z ~ N(mu, sigma^2)."""
    z = mu + sigma * rng.standard_normal(K)
    return float(np.mean(f(z) * (z - mu) / sigma**2))


def check_all():
    import _path  # noqa: F401  (makes lessons/ importable)
    import lesson_checks as C

    C.check_reparameterize(reparameterize, strict=True)
    C.check_reparameterize_backward(reparameterize_backward, strict=True)
    C.check_score_function_grad(score_function_grad, strict=True)


if __name__ == "__main__":
    check_all()
