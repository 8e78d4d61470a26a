"""Solutions to the exercises of lesson 4 (the Gaussian KL). Run: python course/solutions/04_kl_divergence.py"""

import numpy as np


def kl_diag_gaussians(mu1, logvar1, mu2, logvar2):
    """1/2 sum_j [l2 - l1 + (e^l1 + (mu1 - mu2)^2) / e^l2 - 1], over the last axis."""
    inner = logvar2 - logvar1 + (np.exp(logvar1) + (mu1 - mu2) ** 2) / np.exp(logvar2) - 1
    return 0.5 * inner.sum(axis=-1)


def kl_diag_grad(mu1, logvar1, mu2, logvar2):
    """KL_j = 1/2 [l2 - l1 + e^(l1 - l2) + (mu1 - mu2)^2 e^(-l2) - 1], differentiated per element."""
    ratio = np.exp(logvar1 - logvar2)  # sigma1^2 / sigma2^2
    scaled = (mu1 - mu2) * np.exp(-logvar2)  # (mu1 - mu2) / sigma2^2
    dmu1 = scaled
    dlogvar1 = 0.5 * (ratio - 1)
    dlogvar2 = 0.5 * (1 - ratio - (mu1 - mu2) * scaled)
    return dmu1, dlogvar1, -dmu1, dlogvar2


def kl_monte_carlo(mu, logvar, K, rng):
    """Mean over K samples z = mu + sigma eps of log q(z) - log p(z); (B, L) -> (B,)."""
    eps = rng.standard_normal((K, *mu.shape))  # (K, B, L)
    z = mu + np.exp(0.5 * logvar) * eps
    log_q = -0.5 * (np.log(2 * np.pi) + logvar + eps**2).sum(-1)  # (z - mu)^2 / sigma^2 = eps^2
    log_p = -0.5 * (np.log(2 * np.pi) + z**2).sum(-1)
    return (log_q - log_p).mean(axis=0)


def check_all():
    import _path  # noqa: F401  (makes lessons/ importable)
    import checks_04_kl_divergence as C

    C.check_kl_diag_gaussians(kl_diag_gaussians, strict=True)
    C.check_kl_diag_grad(kl_diag_grad, strict=True)
    C.check_kl_monte_carlo(kl_monte_carlo, strict=True)


if __name__ == "__main__":
    check_all()
