"""Solutions to the exercises of lesson 6 (training). Run: python course/solutions/06_training.py"""

import numpy as np


def adam_step(theta, g, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    """m, v: moving averages of g and g^2; divided by 1 - beta^t, they are unbiased (t >= 1)."""
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
    return theta - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


def loss_parts(model, x, eps):
    """recon = mean over images of -log p(x|z), z = mu + sigma eps; kl = mean KL to N(0, I)."""
    import tinyvae.core.distributions as dist

    mu, logvar = model.encode(x)  # (B, L) each
    z = dist.reparameterize(mu, logvar, eps)  # (B, L)
    logits = model.decoder.forward(z)  # (B, D): logits, not probabilities
    recon = -dist.bernoulli_log_likelihood(x, logits).mean()
    return recon, dist.kl_standard_normal(mu, logvar).mean()


def debiased_ema(values, beta):
    """s_t = beta s_(t-1) + (1 - beta) x_t from s_0 = 0, divided by 1 - beta^t: the smoothed curve."""
    s, out = 0.0, np.empty(len(values))
    for t, value in enumerate(values, start=1):
        s = beta * s + (1 - beta) * value
        out[t - 1] = s / (1 - beta**t)
    return out


def check_all():
    import _path  # noqa: F401  (makes lessons/ importable)
    import checks_06_training as C

    C.check_adam_step(adam_step, strict=True)
    C.check_loss_parts(loss_parts, strict=True)
    C.check_debiased_ema(debiased_ema, strict=True)


if __name__ == "__main__":
    check_all()
