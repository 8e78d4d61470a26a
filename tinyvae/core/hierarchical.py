r"""A VAE with two layers of latent variables, z1 (B, L1) below z2 (B, L2), every gradient by hand.

Generative model, top-down (the IWAE paper's two stochastic layers, Burda et al. 2015):

.. math:: p(z_2) = \mathcal N(0, I), \quad
          p(z_1 \mid z_2) = \mathcal N(m(z_2), \mathrm{diag}\, e^{s(z_2)}), \quad
          p(x \mid z_1) \text{ Bernoulli or Gaussian, as in } \texttt{model.py}.

Inference, bottom-up: :math:`q(z_1 \mid x) = \mathcal N(\mu_1(x), e^{\ell_1(x)})`, then
:math:`q(z_2 \mid z_1) = \mathcal N(\mu_2(z_1), e^{\ell_2(z_1)})`. Four MLPs:

    encoder      x  (B, D)  -> hidden       -> (B, 2 L1) = [mu1 | logvar1]   q(z1|x)
    encoder_top  z1 (B, L1) -> upper_hidden -> (B, 2 L2) = [mu2 | logvar2]   q(z2|z1)
    decoder_top  z2 (B, L2) -> upper_hidden reversed -> (B, 2 L1) = [m | s]  p(z1|z2)
    decoder      z1 (B, L1) -> hidden reversed -> (B, D)                     p(x|z1)

Two reparameterizations, with K samples per image: :math:`z_1 = \mu_1 + e^{\ell_1/2}\varepsilon_1`
(K, B, L1), then :math:`z_2 = \mu_2(z_1) + e^{\ell_2(z_1)/2}\varepsilon_2` (K, B, L2). The noise
is one array ``eps`` (K, B, L1 + L2) = [eps1 | eps2], so ``latent_dim`` here is L1 + L2: the
width of the noise a training step draws, as in the one-layer model.

The new step: the KL of z1 is no longer closed-form, because the prior of z1 depends on a
sample of z2. The ELBO takes its single-sample estimate (the KL of z2 stays closed-form):

.. math:: -\mathcal L = \mathbb E_q\big[\log p(x|z_1)
          - \beta\,(\log q(z_1|x) - \log p(z_1|z_2))
          - \beta\,\mathrm{KL}(q(z_2|z_1) \,\|\, \mathcal N(0, I))\big],

and the importance-weighted bound weighs each sample by
:math:`\log w = \log p(x|z_1) + \beta [\log p(z_1|z_2) + \log p(z_2) - \log q(z_1|x) - \log q(z_2|z_1)]`.
Both are in ``hierarchical_objectives.py``. Inference is bottom-up, as in the IWAE paper,
rather than a ladder's top-down pass: the simplest posterior that has the new step.
"""

from __future__ import annotations

import math

import numpy as np

from tinyvae.core import distributions as dist
from tinyvae.core.backend import get_backend
from tinyvae.core.hierarchical_objectives import OBJECTIVES
from tinyvae.core.layers import sigmoid
from tinyvae.core.likelihood import given_or_drawn_noise, log_px_and_grads
from tinyvae.core.networks import MLP, check_architecture, check_hierarchy
from tinyvae.core.params import FlatParameters
from tinyvae.core.validation import check_call, check_latent


def log_prior_z1_grads(z1, mean, logvar):
    r"""Gradients of :math:`\log p(z_1|z_2) = \log \mathcal N(z_1; m, e^{s})` per element,
    (d/dz1, d/dm, d/ds), each (K, B, L1):

    .. math:: \frac{\partial}{\partial z_1} = -(z_1 - m) e^{-s}, \quad
              \frac{\partial}{\partial m} = (z_1 - m) e^{-s}, \quad
              \frac{\partial}{\partial s} = -\tfrac12 + \tfrac12 (z_1 - m)^2 e^{-s}.

    The first is the gradient that reaches p(z1|z2) through z1: z1 is a sample of q, so the
    prior's density pulls on the encoder's mu1 and logvar1 too."""
    d_mean, d_logvar = dist.gaussian_log_likelihood_grad(z1, mean, logvar)
    return -d_mean, d_mean, d_logvar


class HierarchicalVAE:
    """A VAE with latent layers z1 (L1) and z2 (L2); ``latent_dim`` is the pair (L1, L2).

    ``hidden``: sizes between x and z1 (the decoder mirrors them); ``upper_hidden``: sizes
    between z1 and z2 (encoder_top, and decoder_top mirrored). Other arguments as
    :class:`~tinyvae.core.model.VAE`; arch must be "mlp" and the model is not conditional.
    Parameters are named ``encoder.i.W``, ``encoder_top.i.W``, ``decoder_top.i.W``,
    ``decoder.i.W`` (and ``.b``), plus ``decoder.logvar`` for a learned Gaussian variance.
    After construction ``self.latent_dim`` is L1 + L2, the width of the noise [eps1 | eps2].
    """

    def __init__(self, input_dim, hidden=(200, 200), latent_dim=(100, 50),
                 upper_hidden=(100, 100), likelihood="bernoulli", activation="relu",
                 backend="numpy", dtype="float32", seed=0, num_classes=0, gaussian_logvar=None,
                 init="pytorch", arch="mlp", channels=None, image_shape=None):  # fmt: skip
        (L1, L2), upper_hidden = check_hierarchy(latent_dim, upper_hidden, arch, num_classes)
        hidden = check_architecture(input_dim, hidden, L1, likelihood, activation, init, arch,
                                    channels, image_shape)[0]  # fmt: skip
        self.config = dict(input_dim=int(input_dim), hidden=hidden, latent_dim=[L1, L2],
                           upper_hidden=upper_hidden, likelihood=likelihood, activation=activation,
                           dtype=str(dtype), seed=int(seed), num_classes=0,
                           gaussian_logvar=gaussian_logvar, init=init, arch="mlp", channels=None,
                           image_shape=None)  # fmt: skip
        self.backend = get_backend(backend, dtype)
        self.xp, self.dtype = self.backend.xp, self.backend.dtype
        self.input_dim, self.latent_dims, self.latent_dim = int(input_dim), (L1, L2), L1 + L2
        self.likelihood, self.num_classes = likelihood, 0

        rng, D, act = np.random.default_rng(seed), int(input_dim), activation
        self.encoder = MLP([D, *hidden, 2 * L1], act, rng, dtype, init)  # q(z1|x)
        self.encoder_top = MLP([L1, *upper_hidden, 2 * L2], act, rng, dtype, init)  # q(z2|z1)
        self.decoder_top = MLP([L2, *upper_hidden[::-1], 2 * L1], act, rng, dtype, init)  # p(z1|z2)
        self.decoder = MLP([L1, *hidden[::-1], D], act, rng, dtype, init)  # p(x|z1)
        self.networks = {"encoder": self.encoder, "encoder_top": self.encoder_top,
                         "decoder_top": self.decoder_top, "decoder": self.decoder}  # fmt: skip
        named = {k: v for n, net in self.networks.items() for k, v in net.named_params(n).items()}
        self.learn_logvar = likelihood == "gaussian" and gaussian_logvar is None
        if self.learn_logvar:
            named["decoder.logvar"] = np.zeros(D, dtype=dtype)
        self.flat = FlatParameters(named, self.backend)
        for name, net in self.networks.items():
            net.bind(name, self.flat)
        self.rng = self.backend.rng(seed)

    def parameters(self):
        """name -> the live parameter array (a view into one flat buffer ``self.flat.data``)."""
        return self.flat.params

    def gradients(self):
        """name -> gradient array, as the last ``loss_and_grads`` wrote it (a live view)."""
        return self.flat.grads

    # --- forward: x -> z1 -> z2, then p(z1|z2) and p(x|z1) ----------------------------------

    def _decode(self, z1):
        """z1 (K, B, L1) -> the decoder's outputs (K, B, D): logits or Gaussian means."""
        K, B, L1 = z1.shape
        return self.decoder.forward(z1.reshape(K * B, L1)).reshape(K, B, self.input_dim)

    def _log_px(self, x, out, with_grad):
        """log p(x|z1) (K, B) from the decoder's outputs (K, B, D), as ``VAE._log_px``; with_grad:
        also (d/dout (K, B, D), d/dlogvar per pixel (K, B, D) or None)."""
        return log_px_and_grads(self, x, out, with_grad)

    def _noise(self, eps, shape, rng=None):
        """eps (K, B, L1 + L2): as given ((B, L1 + L2) means K = 1), or drawn from rng."""
        return given_or_drawn_noise(self, eps, shape, rng)

    def _forward(self, x, x_enc, eps, with_grad):
        """Every value the objectives and the backward pass need, in a dict, and log p(x|z1)
        (K, B) with its gradients. eps (K, B, L1 + L2) = [eps1 | eps2]."""
        (L1, L2), (K, B) = self.latent_dims, eps.shape[:2]
        e1, e2 = eps[..., :L1], eps[..., L1:]  # (K, B, L1), (K, B, L2)
        q1 = self.encoder.forward(x_enc)  # (B, 2 L1)
        mu1, logvar1 = q1[:, :L1], q1[:, L1:]
        z1 = dist.reparameterize(mu1, logvar1, e1)  # (K, B, L1)
        q2 = self.encoder_top.forward(z1.reshape(K * B, L1)).reshape(K, B, 2 * L2)
        mu2, logvar2 = q2[..., :L2], q2[..., L2:]  # (K, B, L2) each
        z2 = dist.reparameterize(mu2, logvar2, e2)  # (K, B, L2)
        p1 = self.decoder_top.forward(z2.reshape(K * B, L2)).reshape(K, B, 2 * L1)
        m, s = p1[..., :L1], p1[..., L1:]  # p(z1|z2)'s mean and log-variance, (K, B, L1)
        out = self._decode(z1)  # (K, B, D): logits or means
        log_px, likelihood_grads = self._log_px(x, out, with_grad)
        values = dict(e1=e1, e2=e2, mu1=mu1, logvar1=logvar1, z1=z1, mu2=mu2, logvar2=logvar2,
                      z2=z2, m=m, s=s,
                      log_q1=dist.diagonal_normal_log_density(z1, mu1[None], logvar1[None]),
                      log_p1=dist.diagonal_normal_log_density(z1, m, s))  # fmt: skip
        return values, log_px, likelihood_grads

    # --- the loss and its gradient ----------------------------------------------------------

    def loss_and_grads(self, x, eps=None, beta=1.0, labels=None, samples=1, objective="elbo",
                       validate=True, x_input=None, need_grad=True):  # fmt: skip
        r"""As :meth:`VAE.loss_and_grads`, with eps (K, B, L1 + L2) = [eps1 | eps2].

        Backward, with c (K, B) each sample's weight (``hierarchical_objectives``); the loss
        holds :math:`c\,[-\log p(x|z_1) + \beta \log q(z_1|x) - \beta \log p(z_1|z_2)]` plus
        the top layer's terms:

        1. p(x|z1): dLoss/dout = -c dlog p/dout (K, B, D), back through ``decoder`` to z1.
        2. p(z1|z2): dLoss/d[m | s] = -beta c (d/dm, d/ds) (K, B, 2 L1) back through
           ``decoder_top`` to z2 (K, B, L2); and -beta c d/dz1 straight to z1
           (:func:`log_prior_z1_grads`).
        3. z2 = mu2 + exp(logvar2 / 2) eps2, per sample, so nothing is summed over K:
           dLoss/dmu2 = dLoss/dz2, dLoss/dlogvar2 = dLoss/dz2 exp(logvar2 / 2) eps2 / 2, plus
           the top layer's direct gradients; back through ``encoder_top`` to z1 (K, B, L1).
        4. z1 = mu1 + exp(logvar1 / 2) eps1: z1's three gradients (1, 2, 3) summed, then summed
           over the K samples into (B, L1). With eps1 fixed, log q(z1|x) =
           :math:`-\tfrac12 \sum (\log 2\pi + \ell_1 + \varepsilon_1^2)` reaches logvar1 only:
           -beta c / 2 per sample. Then back through ``encoder``.
        """
        if validate:
            check_call(self, x, labels, x_input, objective, OBJECTIVES)
        xp, B, K, (L1, L2) = self.xp, x.shape[0], int(samples), self.latent_dims
        eps = self._noise(eps, (K, B, L1 + L2))
        s, log_px, likelihood_grads = self._forward(x, x if x_input is None else x_input, eps,
                                                    need_grad)  # fmt: skip
        loss, parts, c, (d_mu2, d_logvar2, d_z2) = OBJECTIVES[objective](log_px, s, beta)
        if not need_grad:
            return loss, parts, None
        cb = c[..., None] if isinstance(c, xp.ndarray) else c  # (K, B, 1) or a number

        # 1. p(x|z1), through the decoder to z1.
        d_out, d_logvar_pixel = likelihood_grads  # (K, B, D) each (the second: None or learned)
        if self.learn_logvar:
            d_lv = -(cb * d_logvar_pixel).reshape(-1, self.input_dim).sum(0)  # (D,)
            self.flat.grads["decoder.logvar"][...] = d_lv
        d_out = -cb * d_out
        dz1 = self.decoder.backward(d_out.reshape(K * B, self.input_dim)).reshape(K, B, L1)

        # 2. p(z1|z2): to its mean and log-variance, and through z1.
        g_z1, g_m, g_s = log_prior_z1_grads(s["z1"], s["m"], s["s"])  # (K, B, L1) each
        dz1 += -beta * cb * g_z1
        d_p1 = xp.concatenate([-beta * cb * g_m, -beta * cb * g_s], axis=-1)  # (K, B, 2 L1)
        dz2 = self.decoder_top.backward(d_p1.reshape(K * B, 2 * L1)).reshape(K, B, L2)
        if d_z2 is not None:
            dz2 += d_z2

        # 3. z2 = mu2 + exp(logvar2 / 2) eps2, then the encoder of z2, back to z1.
        dmu2, dlogvar2 = dist.reparameterize_backward(dz2, s["mu2"], s["logvar2"], s["e2"])
        if d_mu2 is not None:
            dmu2 = dmu2 + d_mu2
        dlogvar2 = dlogvar2 + d_logvar2
        d_q2 = xp.concatenate([dmu2, dlogvar2], axis=-1).reshape(K * B, 2 * L2)
        dz1 += self.encoder_top.backward(d_q2).reshape(K, B, L1)

        # 4. z1 = mu1 + exp(logvar1 / 2) eps1, summed over samples; log q(z1|x) to logvar1.
        dmu1, dlogvar1 = dist.reparameterize_backward(dz1, s["mu1"], s["logvar1"], s["e1"])
        c_sum = c.sum(axis=0)[:, None] if isinstance(c, xp.ndarray) else K * c  # (B, 1)
        dlogvar1 = dlogvar1 - 0.5 * beta * c_sum
        self.encoder.backward(xp.concatenate([dmu1, dlogvar1], axis=1), need_input_grad=False)
        return loss, parts, self.flat.grads

    def loss(self, x, eps=None, beta=1.0, labels=None, samples=1, objective="elbo", x_input=None):
        """The loss and its parts, without the backward pass: the gradients stay as they were."""
        return self.loss_and_grads(x, eps, beta, labels, samples, objective,
                                   x_input=x_input, need_grad=False)[:2]  # fmt: skip

    # --- using a trained model ----------------------------------------------------------------

    def encode(self, x, labels=None):
        """x (B, D) -> (mu, logvar), each (B, L1 + L2): [q(z1|x) | q(z2|mu1)], the upper
        layer's posterior taken at z1's mean (what active units per layer measure)."""
        check_call(self, x, labels)
        L1, L2 = self.latent_dims
        q1 = self.encoder.forward(x)
        q2 = self.encoder_top.forward(q1[:, :L1])
        xp = self.xp
        return (xp.concatenate([q1[:, :L1], q2[:, :L2]], axis=1),
                xp.concatenate([q1[:, L1:], q2[:, L2:]], axis=1))  # fmt: skip

    def decoder_output(self, z, labels=None):
        """noise (B, L1 + L2) = [eps1 | z2] -> (B, D), top-down: z2 as given (a draw of
        p(z2) = N(0, I)), z1 = m(z2) + exp(s(z2) / 2) eps1, then p(x|z1)'s logits or means.
        Fixing the z2 columns and redrawing eps1 shows what each layer holds."""
        z, _ = check_latent(self, z, labels)
        L1 = self.latent_dims[0]
        p1 = self.decoder_top.forward(z[:, L1:])  # (B, 2 L1)
        z1 = dist.reparameterize(p1[:, :L1], p1[:, L1:], z[:, :L1])
        return self._decode(z1[None])[0]

    def decode(self, z, labels=None):
        """noise (B, L1 + L2) -> (B, D) pixel probabilities (Bernoulli) or means (Gaussian)."""
        out = self.decoder_output(z, labels)
        return sigmoid(out) if self.likelihood == "bernoulli" else out

    def sample(self, n, labels=None, rng=None):
        """n images drawn from the top: [eps1 | z2] ~ N(0, I) from ``rng`` (default
        ``self.rng``), then :meth:`decode`: (n, D)."""
        rng = self.rng if rng is None else rng
        return self.decode(rng.standard_normal((int(n), self.latent_dim), dtype=self.dtype))

    def reconstruct(self, x, labels=None):
        """Decode q(z1|x)'s mean: x (B, D) -> (B, D)."""
        out = self._decode(self.encode(x)[0][None, :, : self.latent_dims[0]])[0]
        return sigmoid(out) if self.likelihood == "bernoulli" else out

    def log_likelihood(self, x, k=5000, labels=None, max_rows=None, rng=None, eps=None):
        r"""Importance-weighted estimate of log p(x) per example, (B,), in nats, with
        :math:`w = p(x|z_1) p(z_1|z_2) p(z_2) / (q(z_1|x) q(z_2|z_1))` and k samples of
        (z1, z2) ~ q; chunked as :meth:`VAE.log_likelihood`. eps (k, B, L1 + L2) or None."""
        check_call(self, x, labels)
        rng, L, k = rng or self.rng, self.latent_dim, int(k)
        eps = None if eps is None else self._noise(eps, (k, len(x), L))
        max_rows = max_rows or (16384 if self.backend.name == "cupy" else 1024)
        per_image, results = max(1, max_rows // k), []
        for start in range(0, len(x), per_image):
            xb, group = x[start : start + per_image], slice(start, start + per_image)
            chunk, partial = max(1, max_rows // len(xb)), []
            for done in range(0, k, chunk):
                kk = min(chunk, k - done)
                given = None if eps is None else eps[done : done + kk, group]
                e = self._noise(given, (kk, len(xb), L), rng)
                s, log_px, _ = self._forward(xb, xb, e, with_grad=False)
                log_w = (
                    log_px
                    + s["log_p1"]
                    - s["log_q1"]
                    + (
                        dist.standard_normal_log_density(s["z2"])
                        - dist.diagonal_normal_log_density(s["z2"], s["mu2"], s["logvar2"])
                    )
                )  # (kk, B)
                partial.append(dist.logsumexp(log_w, axis=0))
            results.append(dist.logsumexp(self.xp.stack(partial), axis=0) - math.log(k))
        return self.xp.concatenate(results)
