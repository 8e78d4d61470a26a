"""Solutions to the exercises of lesson 5 (reparameterization). Run: python course/solutions/05_reparameterization.py"""

import numpy as np


def softplus_reparameterize_backward(dz, mu, rho, eps):
    """z = mu + softplus(rho) eps: dz/dmu = 1, dz/drho = sigmoid(rho) eps; sum over the K samples."""
    sigmoid = 0.5 * (1 + np.tanh(0.5 * rho))  # d softplus / d rho, without overflow
    return dz.sum(axis=0), (dz * sigmoid * eps).sum(axis=0)


def cholesky_reparameterize_backward(dz, mu, C, eps):
    """z_k = mu + C eps_k, i.e. z_ki = mu_i + sum_j C_ij eps_kj: dC_ij = sum_k dz_ki eps_kj,
    kept on and below the diagonal (the entries above it are not parameters)."""
    return dz.sum(axis=0), np.tril(dz.T @ eps)


def score_function_grad(f, mu, sigma, K, rng):
    """d/dmu E[f(z)] = E[f(z) d/dmu log q(z)] = E[f(z) (z - mu) / sigma^2], z ~ N(mu, sigma^2)."""
    z = mu + sigma * rng.standard_normal(K)
    return float(np.mean(f(z) * (z - mu) / sigma**2))


def check_all():
    import _path  # noqa: F401  (makes lessons/ importable)
    import checks_05_reparameterization as C

    C.check_softplus_reparameterize_backward(softplus_reparameterize_backward, strict=True)
    C.check_cholesky_reparameterize_backward(cholesky_reparameterize_backward, strict=True)
    C.check_score_function_grad(score_function_grad, strict=True)


if __name__ == "__main__":
    check_all()
