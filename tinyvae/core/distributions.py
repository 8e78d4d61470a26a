r"""The probabilistic pieces of a VAE, each beside its analytic gradient.

Notation (shapes): ``B`` examples, ``D`` pixels, ``L`` latent dimensions.

* likelihood :math:`\log p(x \mid z)` from the decoder's output (Bernoulli or Gaussian);
* the closed-form :math:`\mathrm{KL}(\mathcal N(\mu, e^{\ell}) \,\|\, \mathcal N(0, I))`;
* the reparameterization :math:`z = \mu + e^{\ell/2} \varepsilon`, :math:`\varepsilon \sim \mathcal N(0, I)`;
* diagonal-Gaussian log densities and a stable log-sum-exp for the importance-weighted bound.

Every function works on NumPy and CuPy arrays alike and sums over the last axis, so
``(B, D) -> (B,)`` and ``(K, B, D) -> (K, B)``.
"""

from __future__ import annotations

import math

from tinyvae.core.arrays import array_module

LIKELIHOODS = ("bernoulli", "gaussian")  # the decoder's p(x | z): the two sections below
LOG_2PI = math.log(2 * math.pi)


def softplus(a):
    r"""Stable :math:`\log(1 + e^{a}) = \max(a, 0) + \log(1 + e^{-|a|})`: no overflow at a = 1e4."""
    xp = array_module(a)
    return xp.maximum(a, 0) + xp.log1p(xp.exp(-xp.abs(a)))


# --- Bernoulli decoder: pixels are coin flips with probability sigmoid(logit) --------------


def bernoulli_log_likelihood(x, logits):
    r"""Sum over pixels of :math:`\log p(x \mid \text{logits})`, computed from logits.

    With :math:`p = \sigma(a)`: :math:`x \log p + (1 - x) \log(1 - p) = x a - \mathrm{softplus}(a)`,
    which never takes the log of 0, even for logits of :math:`\pm 10^4`.
    Works for grey levels :math:`x \in [0, 1]` too (the continuous relaxation of binary
    cross-entropy). x, logits: (..., D) -> (...,).
    """
    return (x * logits - softplus(logits)).sum(axis=-1)


def bernoulli_log_likelihood_grad(x, logits):
    r""":math:`\partial / \partial a\,[x a - \mathrm{softplus}(a)] = x - \sigma(a)`. Shape (..., D).

    :math:`\sigma(a) = \tfrac12 (1 + \tanh(a/2))`, the stable form ``layers.sigmoid`` uses."""
    return x - 0.5 * (array_module(logits).tanh(0.5 * logits) + 1)


# Training calls both at once, from one tanh per pixel: ``tinyvae/fast/bernoulli.py``.


# --- Gaussian decoder: pixels are N(mean, exp(logvar)) ------------------------------------


def gaussian_log_likelihood(x, mean, logvar):
    r"""Sum over pixels of :math:`\log \mathcal N(x; m, e^{\ell})
    = -\tfrac12 [\log 2\pi + \ell + (x - m)^2 e^{-\ell}]`.

    ``logvar`` is an array broadcastable to x (per pixel, learned) or a float (fixed).
    """
    return -0.5 * (LOG_2PI + logvar + (x - mean) ** 2 * inverse_variance(logvar)).sum(axis=-1)


def gaussian_log_likelihood_grad(x, mean, logvar):
    r"""Gradients per pixel, (d/dmean, d/dlogvar):

    .. math:: \frac{\partial}{\partial m} = (x - m) e^{-\ell}, \qquad
              \frac{\partial}{\partial \ell} = -\tfrac12 + \tfrac12 (x - m)^2 e^{-\ell}
    """
    scaled = (x - mean) * inverse_variance(logvar)  # (x - m) / var
    return scaled, 0.5 * (scaled * (x - mean) - 1)


def inverse_variance(logvar):
    r""":math:`e^{-\ell}`: an array for an array, a Python float for a number.

    A fixed log-variance is a Python float on purpose: NumPy and CuPy treat a Python
    number as "weak", so float32 data times it stays float32. ``xp.exp(-0.0)`` would be
    a float64 scalar, which turns the loss and the whole backward pass into float64."""
    if isinstance(logvar, (int, float)):
        return math.exp(-logvar)
    return array_module(logvar).exp(-logvar)


# --- The prior and the approximate posterior ---------------------------------------------


def kl_standard_normal(mu, logvar):
    r"""Closed-form :math:`\mathrm{KL}(\mathcal N(\mu, e^{\ell}) \| \mathcal N(0, I))`, summed over L:

    .. math:: \tfrac12 \sum_j \left(e^{\ell_j} + \mu_j^2 - 1 - \ell_j\right)

    mu, logvar: (..., L) -> (...,). Lesson 4 derives it and checks it by Monte Carlo.
    """
    xp = array_module(mu)
    return 0.5 * (xp.exp(logvar) + mu * mu - 1 - logvar).sum(axis=-1)


def kl_standard_normal_grad(mu, logvar):
    r"""(dKL/dmu, dKL/dlogvar) = :math:`(\mu,\ \tfrac12 (e^{\ell} - 1))`, each (..., L)."""
    xp = array_module(mu)
    return mu, 0.5 * (xp.exp(logvar) - 1)


def reparameterize(mu, logvar, eps):
    r""":math:`z = \mu + e^{\ell/2} \varepsilon`: a sample of :math:`\mathcal N(\mu, e^{\ell})` that
    is a differentiable function of :math:`(\mu, \ell)`. eps (..., L) broadcasts against mu (B, L).
    """
    xp = array_module(mu)
    return mu + xp.exp(0.5 * logvar) * eps


def reparameterize_backward(dz, mu, logvar, eps):
    r"""Chain rule through :math:`z = \mu + e^{\ell/2}\varepsilon` with :math:`\varepsilon` held fixed:

    .. math:: \frac{\partial L}{\partial \mu} = \frac{\partial L}{\partial z}, \qquad
              \frac{\partial L}{\partial \ell} = \frac{\partial L}{\partial z}\,
              \tfrac12 e^{\ell/2} \varepsilon

    dz has the shape of z, (..., B, L); leading sample axes are summed so the results
    have the shape of mu (B, L).
    """
    xp = array_module(mu)
    dmu = dz
    dlogvar = dz * (0.5 * xp.exp(0.5 * logvar)) * eps
    while dmu.ndim > mu.ndim:  # several samples per example: sum their contributions
        dmu, dlogvar = dmu.sum(axis=0), dlogvar.sum(axis=0)
    return dmu, dlogvar


def standard_normal_log_density(z):
    r""":math:`\log \mathcal N(z; 0, I) = -\tfrac12 \sum_j (\log 2\pi + z_j^2)`; (..., L) -> (...,)."""
    return -0.5 * (LOG_2PI + z * z).sum(axis=-1)


def diagonal_normal_log_density(z, mu, logvar):
    r""":math:`\log \mathcal N(z; \mu, e^{\ell}) = -\tfrac12 \sum_j [\log 2\pi + \ell_j + (z_j - \mu_j)^2 e^{-\ell_j}]`."""
    return gaussian_log_likelihood(z, mu, logvar)


def logsumexp(a, axis=0):
    r"""Stable :math:`\log \sum_i e^{a_i} = m + \log \sum_i e^{a_i - m}` with :math:`m = \max_i a_i`."""
    xp = array_module(a)
    m = a.max(axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0)  # all -inf: the answer is -inf, not nan
    return (m + xp.log(xp.exp(a - m).sum(axis=axis, keepdims=True))).squeeze(axis)
