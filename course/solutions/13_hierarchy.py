"""Solutions to the exercises of lesson 13 (two layers of latent variables).
Run: python course/solutions/13_hierarchy.py"""

import _path  # noqa: F401  (makes lessons/ importable)
import numpy as np
from checks_13_hierarchy import forward, mlp_backward  # as the notebook defines them


def gaussian_log_density_grads(z, mean, logvar):
    """log N(z; m, e^l) = -1/2 [log 2 pi + l + (z - m)^2 e^-l], per element:
    d/dz = -(z - m) e^-l, d/dm = (z - m) e^-l, d/dl = -1/2 + (z - m)^2 e^-l / 2."""
    scaled = (z - mean) * np.exp(-logvar)
    return -scaled, scaled, 0.5 * (scaled * (z - mean) - 1)


def z2_reparameterize_backward(dz2, logvar2, eps2):
    """z2 = mu2 + e^(l2/2) eps2, one mu2 per sample: nothing is summed over K."""
    return dz2, dz2 * 0.5 * np.exp(0.5 * logvar2) * eps2


def hierarchical_loss_and_grads(params, x, eps, beta=1.0):
    """Forward, then backward: p(x|z1), p(z1|z2), z2's reparameterization and KL, q(z2|z1),
    then everything that reached z1, z1's reparameterization, log q(z1|x), q(z1|x)."""
    loss, c = forward(params, x, eps, beta)
    K, B = c["z1"].shape[:2]
    w = 1.0 / (K * B)  # every sample's terms are averaged over K and B
    # p(x|z1): -w (x - sigma(a)) per logit, back through the decoder to z1.
    d_logits = -w * (x - 0.5 * (1 + np.tanh(0.5 * c["logits"])))
    dz1, grads = mlp_backward(params, "decoder", d_logits, c["z1"], c["h_dec"])
    # -beta w log p(z1|z2): to its mean and log-variance, and to z1 itself.
    g_z1, g_m, g_s = gaussian_log_density_grads(c["z1"], c["m"], c["s"])
    dz1 = dz1 - beta * w * g_z1
    d_p1 = -beta * w * np.concatenate([g_m, g_s], axis=-1)  # (K, B, 2 L1)
    dz2, more = mlp_backward(params, "decoder_top", d_p1, c["z2"], c["h_dec_top"])
    grads |= more
    # z2 = mu2 + e^(l2/2) eps2, plus beta w KL(q(z2|z1) || N(0, I)) in closed form.
    dmu2, dlogvar2 = z2_reparameterize_backward(dz2, c["logvar2"], c["eps2"])
    dmu2 = dmu2 + beta * w * c["mu2"]
    dlogvar2 = dlogvar2 + beta * w * 0.5 * (np.exp(c["logvar2"]) - 1)
    d_q2 = np.concatenate([dmu2, dlogvar2], axis=-1)  # (K, B, 2 L2)
    dz1_top, more = mlp_backward(params, "encoder_top", d_q2, c["z1"], c["h_enc_top"])
    grads |= more
    dz1 = dz1 + dz1_top
    # z1 = mu1 + e^(l1/2) eps1, summed over K; beta w log q(z1|x) = -beta w l1 / 2 + const.
    dmu1 = dz1.sum(0)
    dlogvar1 = (dz1 * 0.5 * np.exp(0.5 * c["logvar1"]) * c["eps1"]).sum(0) - 0.5 * beta * w * K
    d_q1 = np.concatenate([dmu1, dlogvar1], axis=-1)  # (B, 2 L1)
    grads |= mlp_backward(params, "encoder", d_q1, c["x"], c["h_enc"])[1]
    return loss, grads


def check_all():
    import checks_13_hierarchy as C

    C.check_gaussian_log_density_grads(gaussian_log_density_grads, strict=True)
    C.check_z2_reparameterize_backward(z2_reparameterize_backward, strict=True)
    C.check_hierarchical_loss_and_grads(hierarchical_loss_and_grads, strict=True)


if __name__ == "__main__":
    check_all()
