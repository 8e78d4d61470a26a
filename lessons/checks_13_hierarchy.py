"""Checkers for lesson 13, two layers of latent variables: your backward pass, judged by a
gradient check.

As in the capstone (lesson 11), nothing is compared with stored answers: the forward pass is
run with one input nudged up and down by h (central differences, float64), and the slope is
compared with your gradient. The whole model's forward pass is tinyvae's own,
``HierarchicalVAE.loss``, on a small float64 model with tanh units. When a gradient is
wrong the check names the array and, where it can, the mistake, without printing the right
numbers.
"""

from __future__ import annotations

import numpy as np
from checks_11_capstone import judge, shape_of_error
from lesson_utils import Wrong, exercise, expect_array, expect_tuple, run_check

from tinyvae.core import distributions as dist
from tinyvae.core import hierarchical
from tinyvae.core.gradcheck import numerical_gradient, relative_error

B, K, D, H, L1, U, L2 = 4, 3, 6, 5, 3, 4, 2  # batch, samples, pixels, hidden, z1, upper, z2
TOLERANCE = 1e-6


def small_model(seed=0):
    """The model every check uses, float64 and tanh, and its data: (model, x, eps)."""
    model = hierarchical.HierarchicalVAE(D, hidden=(H,), latent_dim=(L1, L2), upper_hidden=(U,),
                                         activation="tanh", dtype="float64", seed=seed)  # fmt: skip
    rng = np.random.default_rng(seed + 100)
    return model, rng.random((B, D)), rng.standard_normal((K, B, L1 + L2))


def mlp(P, name, h):
    """Linear, tanh, Linear: h (..., n_in) -> (output (..., n_out), hidden (..., H))."""
    hidden = np.tanh(h @ P[f"{name}.0.W"] + P[f"{name}.0.b"])
    return hidden @ P[f"{name}.1.W"] + P[f"{name}.1.b"], hidden


def forward(params, x, eps, beta=1.0):
    """The loss of lesson 13, step by step (the same as the notebook's): (loss, cache)."""
    P = params
    L1, L2 = P["encoder_top.0.W"].shape[0], P["decoder_top.0.W"].shape[0]
    q1, h_enc = mlp(P, "encoder", x)  # (B, 2 L1) = [mu1 | logvar1]
    mu1, logvar1 = q1[:, :L1], q1[:, L1:]
    eps1, eps2 = eps[..., :L1], eps[..., L1:]  # (K, B, L1), (K, B, L2)
    z1 = mu1 + np.exp(0.5 * logvar1) * eps1  # (K, B, L1)
    q2, h_enc_top = mlp(P, "encoder_top", z1)  # (K, B, 2 L2) = [mu2 | logvar2]
    mu2, logvar2 = q2[..., :L2], q2[..., L2:]
    z2 = mu2 + np.exp(0.5 * logvar2) * eps2  # (K, B, L2)
    p1, h_dec_top = mlp(P, "decoder_top", z2)  # (K, B, 2 L1) = [m | s]: p(z1|z2)
    m, s = p1[..., :L1], p1[..., L1:]
    logits, h_dec = mlp(P, "decoder", z1)  # (K, B, D)
    recon = -dist.bernoulli_log_likelihood(x, logits).mean()  # mean over K and B
    kl1 = (dist.diagonal_normal_log_density(z1, mu1, logvar1)
           - dist.diagonal_normal_log_density(z1, m, s)).mean()  # fmt: skip
    kl2 = dist.kl_standard_normal(mu2, logvar2).mean()  # closed form, given z1
    cache = dict(x=x, h_enc=h_enc, mu1=mu1, logvar1=logvar1, eps1=eps1, z1=z1,
                 h_enc_top=h_enc_top, mu2=mu2, logvar2=logvar2, eps2=eps2, z2=z2,
                 h_dec_top=h_dec_top, m=m, s=s, h_dec=h_dec, logits=logits)  # fmt: skip
    return recon + beta * (kl1 + kl2), cache


def mlp_backward(P, name, d_out, h_in, hidden):
    """Backward through :func:`mlp` (lesson 11's steps): d_out (..., n_out) -> (d_in, grads)."""
    rows = lambda a: a.reshape(-1, a.shape[-1])  # every leading axis is a batch axis
    grads = {f"{name}.1.W": rows(hidden).T @ rows(d_out), f"{name}.1.b": rows(d_out).sum(0)}
    d_pre = (d_out @ P[f"{name}.1.W"].T) * (1 - hidden * hidden)
    grads |= {f"{name}.0.W": rows(h_in).T @ rows(d_pre), f"{name}.0.b": rows(d_pre).sum(0)}
    return d_pre @ P[f"{name}.0.W"].T, grads


# --- the pieces, in the order of the lesson --------------------------------------------------


@exercise(13, "gaussian_log_density_grads")
def check_gaussian_log_density_grads(fn, strict=False):
    """``fn(z, mean, logvar) -> (dz, dmean, dlogvar)`` of log N(z; mean, e^logvar), per element."""

    def test():
        rng = np.random.default_rng(1)
        z, mean, logvar = (rng.standard_normal((K, B, L1)) for _ in range(3))
        got = expect_tuple(fn(z.copy(), mean.copy(), logvar.copy()), ("dz", "dmean", "dlogvar"))
        f = lambda: dist.diagonal_normal_log_density(z, mean, logvar).sum()
        flipped = ("the sign is flipped: z and the mean enter as (z - m)^2, so their "
                   "gradients are opposite.", lambda g: -g)  # fmt: skip
        judge(got[0], f, z, "dz", [flipped])
        judge(got[1], f, mean, "dmean", [flipped])
        half = ("the -1/2 from log e^l is missing.", lambda g: g + 0.5)
        judge(got[2], f, logvar, "dlogvar", [half])

    run_check("gaussian_log_density_grads", test, strict)


@exercise(13, "z2_reparameterize_backward")
def check_z2_reparameterize_backward(fn, strict=False):
    """``fn(dz2, logvar2, eps2) -> (dmu2, dlogvar2)``, each (K, B, L2): one mu2 per sample."""

    def test():
        rng = np.random.default_rng(2)
        dz2, mu2, logvar2, eps2 = (rng.standard_normal((K, B, L2)) for _ in range(4))
        got = fn(dz2.copy(), logvar2.copy(), eps2.copy())
        dmu2, dlogvar2 = expect_tuple(got, ("dmu2", "dlogvar2"))
        for name, value in (("dmu2", dmu2), ("dlogvar2", dlogvar2)):
            if np.shape(value) == (B, L2):
                raise Wrong(
                    f"{name} has the shape (B, L2) of lesson 11's mu: here every sample of z1 "
                    "has its own mu2 and logvar2, (K, B, L2), so nothing is summed over K."
                )
        f = lambda: (dz2 * (mu2 + np.exp(0.5 * logvar2) * eps2)).sum()  # dL/dz2 = dz2
        judge(dmu2, f, mu2, "dmu2")
        judge(dlogvar2, f, logvar2, "dlogvar2", [
            ("the standard deviation is e^(l/2): its derivative carries a 1/2.", lambda g: 2 * g),
            ("z2 moves with the standard deviation e^(l/2), not the variance e^l.",
             lambda g: g * 2 * np.exp(0.5 * logvar2)),
        ])  # fmt: skip

    run_check("z2_reparameterize_backward", test, strict)


def library_gradients(model, x, eps, beta, without_z1_path=False):
    """tinyvae's gradients, or with the prior's gradient through z1 dropped (a mistake)."""
    right = hierarchical.log_prior_z1_grads
    if without_z1_path:
        hierarchical.log_prior_z1_grads = lambda z1, m, s: (0 * z1, *right(z1, m, s)[1:])
    try:
        grads = model.loss_and_grads(x, eps, beta, samples=K)[2]
        return {name: g.copy() for name, g in grads.items()}
    finally:
        hierarchical.log_prior_z1_grads = right


@exercise(13, "hierarchical_loss_and_grads")
def check_hierarchical_loss_and_grads(fn, strict=False):
    """``fn(params, x, eps, beta) -> (loss, grads)``: the two-layer model, against its ``loss``."""

    def test():
        model, x, eps = small_model(10)
        params, beta = model.parameters(), 0.8
        names = list(params)
        loss, grads = expect_tuple(fn(params, x.copy(), eps.copy(), beta), ("loss", "grads"))
        real = float(model.loss(x, eps=eps, beta=beta, samples=K)[0])
        if abs(float(expect_array(loss, (), "loss")) - real) > 1e-9 * max(1, abs(real)):
            raise Wrong("your loss is not tinyvae's HierarchicalVAE.loss: check the forward pass.")
        if not isinstance(grads, dict) or sorted(grads) != sorted(names):
            raise Wrong(f"grads should be a dict with the keys {names}.")
        got = {n: expect_array(grads[n], params[n].shape, n) for n in names}
        f = lambda: float(model.loss(x, eps=eps, beta=beta, samples=K)[0])
        numeric = {n: numerical_gradient(f, params[n], h=1e-6) for n in names}
        bad = [n for n in names if relative_error(got[n], numeric[n]) > TOLERANCE]
        if not bad:
            return
        no_path = library_gradients(model, x, eps, beta, without_z1_path=True)
        if all(relative_error(got[n], no_path[n]) < TOLERANCE for n in names):
            raise Wrong(
                "the decoders and the encoder of z2 are right, but the encoder of z1 is not: "
                "log p(z1|z2) also depends on z1 itself, a sample of q(z1|x), so its gradient "
                "with respect to z1 must join the two others that reach z1."
            )
        order = ["decoder", "decoder_top", "encoder_top", "encoder"]  # the order of the backward
        n = min(bad, key=lambda n: order.index(n.rsplit(".", 2)[0]))
        raise Wrong(
            f"{', '.join(bad)} fail the gradient check; the first on the way back is {n}: "
            f"{shape_of_error(got[n], numeric[n])}"
        )

    run_check("hierarchical_loss_and_grads", test, strict)
