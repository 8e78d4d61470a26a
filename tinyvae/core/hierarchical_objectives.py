r"""The two bounds of :class:`~tinyvae.core.hierarchical.HierarchicalVAE`, forward then backward.

Each takes log p(x|z1) (K, B) and the forward pass's values ``s`` (``HierarchicalVAE._forward``:
z1, z2, the posteriors' and the prior's means and log-variances, log q(z1|x), log p(z1|z2)),
and returns the loss, its parts, each sample's weight c in the loss, and the direct
gradients of the top layer's terms; the model then carries them back through the networks.
"""

from __future__ import annotations

import math

from tinyvae.core import distributions as dist
from tinyvae.core.arrays import array_module


def elbo(log_px, s, beta):
    r"""The negative ELBO from log p(x|z1) (K, B) and the forward's values ``s``.

    Returns ``loss, parts, c, (d_mu2, d_logvar2, d_z2)``: c, the weight of each sample's
    terms in the loss (here 1/(K B), a number), and the direct gradients of the top layer's
    KL, (K, B, L2) each or None. KL(q(z2|z1) || N(0, I)) is closed-form given z1:
    :math:`\partial / \partial \mu_2 = \mu_2`, :math:`\partial / \partial \ell_2 = (e^{\ell_2} - 1)/2`."""
    K, B = log_px.shape
    kl1 = s["log_q1"] - s["log_p1"]  # (K, B): a single-sample estimate per z1
    kl2 = dist.kl_standard_normal(s["mu2"], s["logvar2"])  # (K, B): closed-form given z1
    recon = -log_px.mean(axis=0)  # (B,)
    loss = (recon + beta * (kl1 + kl2).mean(axis=0)).mean()
    parts = {"recon": recon.mean(), "kl": (kl1 + kl2).mean(), "kl1": kl1.mean(), "kl2": kl2.mean()}
    # Backward: every sample's terms enter the loss with weight c = 1/(K B).
    c = 1.0 / (K * B)
    d_mu2, d_logvar2 = dist.kl_standard_normal_grad(s["mu2"], s["logvar2"])
    return loss, parts, c, ((beta * c) * d_mu2, (beta * c) * d_logvar2, None)


def iwae(log_px, s, beta):
    r"""The negative importance-weighted bound from log p(x|z1) (K, B); returns what
    :func:`elbo` returns, c being now the normalised weights / B, (K, B).

    With eps2 fixed, :math:`\log q(z_2|z_1) = -\tfrac12 \sum (\log 2\pi + \ell_2 + \varepsilon_2^2)`
    reaches only logvar2 (-1/2 each), and :math:`-\log p(z_2) = z_2^2/2 + c` reaches z2 (+z2)."""
    xp, (K, B) = array_module(log_px), log_px.shape
    log_q2 = dist.diagonal_normal_log_density(s["z2"], s["mu2"], s["logvar2"])  # (K, B)
    log_pz2 = dist.standard_normal_log_density(s["z2"])  # (K, B)
    log_ratio = s["log_p1"] + log_pz2 - s["log_q1"] - log_q2  # (K, B)
    log_w = log_px + beta * log_ratio
    bound = dist.logsumexp(log_w, axis=0) - math.log(K)  # (B,)
    loss = -bound.mean()
    kl1, kl2 = s["log_q1"] - s["log_p1"], log_q2 - log_pz2
    parts = {"recon": (-log_px.mean(axis=0)).mean(), "kl": (-log_ratio.mean(axis=0)).mean(),
             "kl1": kl1.mean(), "kl2": kl2.mean()}  # fmt: skip
    # Backward: dLoss/dlog w_kb = -c_kb, c the normalised weights / B.
    c = xp.exp(log_w - bound - math.log(K)) / B  # (K, B)
    bc = (beta * c)[..., None]  # (K, B, 1): broadcasts over L2
    return loss, parts, c, (None, -0.5 * bc, bc * s["z2"])


OBJECTIVES = {"elbo": elbo, "iwae": iwae}  # what HierarchicalVAE.loss_and_grads takes
