"""Solutions to the exercises of lesson 11 (the capstone). Run: python course/solutions/11_capstone.py"""

import _path  # noqa: F401  (makes lessons/ importable)
import numpy as np
from checks_11_capstone import forward  # the same forward pass as the notebook's


def sigmoid_logit_grad(x, logits):
    """d/da [x a - softplus(a)] = x - sigma(a), with sigma(a) = (1 + tanh(a/2)) / 2 (no overflow)."""
    return x - 0.5 * (1 + np.tanh(0.5 * logits))


def linear_backward(X, W, dY):
    """Y = X W + b with X (..., n_in): every leading axis is a batch axis, so sum over all."""
    X2, dY2 = X.reshape(-1, X.shape[-1]), dY.reshape(-1, dY.shape[-1])  # (rows, n)
    return dY @ W.T, X2.T @ dY2, dY2.sum(axis=0)


def tanh_backward(Y, dY):
    """Y = tanh(X): dX = dY (1 - Y^2)."""
    return dY * (1 - Y * Y)


def recon_backward(x, logits):
    """recon = -(1 / KB) sum_kb log p(x_b | z_kb): d/dlogits = -(x - sigma(a)) / (K B)."""
    K, B = logits.shape[0], logits.shape[1]
    return -sigmoid_logit_grad(x, logits) / (K * B)


def decoder_backward(d_logits, cache, params):
    """logits = tanh(z W0 + b0) W1 + b1, backward: (dz, the decoder's four gradients)."""
    grads = {}
    d_h, grads["decoder.1.W"], grads["decoder.1.b"] = linear_backward(
        cache["h_dec"], params["decoder.1.W"], d_logits
    )
    d_pre = tanh_backward(cache["h_dec"], d_h)
    dz, grads["decoder.0.W"], grads["decoder.0.b"] = linear_backward(
        cache["z"], params["decoder.0.W"], d_pre
    )
    return dz, grads


def reparameterize_backward(dz, mu, logvar, eps):
    """z = mu + e^(l/2) eps: dmu = sum_k dz, dlogvar = sum_k dz e^(l/2) eps / 2."""
    return dz.sum(axis=0), (dz * 0.5 * np.exp(0.5 * logvar) * eps).sum(axis=0)


def kl_backward(mu, logvar, beta):
    """beta * mean_b 1/2 sum_j (e^l + mu^2 - 1 - l): (beta mu / B, beta (e^l - 1) / 2B)."""
    B = mu.shape[0]
    return beta * mu / B, beta * 0.5 * (np.exp(logvar) - 1) / B


def encoder_backward(d_stats, cache, params):
    """stats = tanh(x W0 + b0) W1 + b1, backward from d[mu | logvar]: the four gradients."""
    grads = {}
    d_h, grads["encoder.1.W"], grads["encoder.1.b"] = linear_backward(
        cache["h_enc"], params["encoder.1.W"], d_stats
    )
    d_pre = tanh_backward(cache["h_enc"], d_h)
    _, grads["encoder.0.W"], grads["encoder.0.b"] = linear_backward(
        cache["x"], params["encoder.0.W"], d_pre
    )
    return grads


def loss_and_grads(params, x, eps, beta=1.0):
    """Forward, then backward: likelihood, decoder, reparameterization, KL, encoder."""
    loss, cache = forward(params, x, eps, beta)
    d_logits = recon_backward(x, cache["logits"])
    dz, grads = decoder_backward(d_logits, cache, params)
    dmu, dlogvar = reparameterize_backward(dz, cache["mu"], cache["logvar"], cache["eps"])
    dmu_kl, dlogvar_kl = kl_backward(cache["mu"], cache["logvar"], beta)
    d_stats = np.concatenate([dmu + dmu_kl, dlogvar + dlogvar_kl], axis=1)  # (B, 2L)
    grads.update(encoder_backward(d_stats, cache, params))
    return loss, grads


def check_all():
    import checks_11_capstone as C

    C.check_sigmoid_logit_grad(sigmoid_logit_grad, strict=True)
    C.check_linear_backward(linear_backward, strict=True)
    C.check_tanh_backward(tanh_backward, strict=True)
    C.check_recon_backward(recon_backward, strict=True)
    C.check_decoder_backward(decoder_backward, strict=True)
    C.check_reparameterize_backward(reparameterize_backward, strict=True)
    C.check_kl_backward(kl_backward, strict=True)
    C.check_encoder_backward(encoder_backward, strict=True)
    C.check_loss_and_grads(loss_and_grads, strict=True)


if __name__ == "__main__":
    check_all()
