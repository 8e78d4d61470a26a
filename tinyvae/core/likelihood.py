"""log p(x|z) from the decoder's outputs, and the noise eps: what both models share.

``VAE`` (``model.py``) and ``HierarchicalVAE`` (``hierarchical.py``) decode the same way at the
bottom, p(x|z) or p(x|z1), and take or draw their noise the same way; their methods
``_log_px`` and ``_noise`` call these two functions.
"""

from __future__ import annotations

from tinyvae.core import distributions as dist
from tinyvae.core.validation import check_noise
from tinyvae.fast.bernoulli import bernoulli_log_likelihood_and_grad


def log_px_and_grads(model, x, out, with_grad):
    """log p(x|z) per sample (K, B) from decoder outputs (K, B, D), and with_grad its
    gradients: (d/dout (K, B, D), d/dlogvar per pixel (K, B, D) or None)."""
    if model.likelihood == "bernoulli":  # dist.bernoulli_log_likelihood and its _grad, fused
        log_px, d_out = bernoulli_log_likelihood_and_grad(x, out, with_grad)
        return log_px, (d_out, None)
    fixed = model.config["gaussian_logvar"]
    logvar = model.flat.params["decoder.logvar"] if model.learn_logvar else float(fixed)
    log_px = dist.gaussian_log_likelihood(x, out, logvar)
    return log_px, dist.gaussian_log_likelihood_grad(x, out, logvar) if with_grad else None


def given_or_drawn_noise(model, eps, shape, rng=None):
    """eps of ``shape`` (K, B, L): as given ((B, L) means K = 1), checked and on the model's
    device in its dtype, or drawn from ``rng`` (default ``model.rng``) when None."""
    if eps is None:
        return (rng or model.rng).standard_normal(shape, dtype=model.dtype)
    return check_noise(model.xp.asarray(eps, dtype=model.dtype), shape)
