r"""The Variational Autoencoder: encoder, reparameterization, decoder, and the loss's gradient.

Encoder :math:`q(z \mid x) = \mathcal N(\mu(x), \mathrm{diag}\, e^{\ell(x)})`: a network (an MLP, or
convolutions: ``networks.py``) maps x (B, D) to (B, 2L), the mean ``mu`` (the first L columns)
beside the log-variance ``logvar`` (the last L). Decoder :math:`p(x \mid z)`: a network maps z
(B, L) to one output per pixel, (B, D): Bernoulli logits or Gaussian means. A conditional
model appends a one-hot label (B, C) to each network's input: [x | one-hot], [z | one-hot].

The loss is the negative ELBO in nats per example, averaged over the batch,

.. math:: \mathcal L = \frac1B \sum_b \Big[ -\frac1K \sum_k \log p(x_b \mid z_{kb})
          + \beta\, \mathrm{KL}(q(z \mid x_b) \,\|\, \mathcal N(0, I)) \Big],
          \qquad z_{kb} = \mu_b + e^{\ell_b / 2} \varepsilon_{kb},

or the negative importance-weighted bound (Burda et al. 2015). Each objective is one
function below, its forward lines followed by its backward lines; ``VAE.loss_and_grads``
then carries the gradient back through the decoder, the reparameterization and the encoder.
"""

from __future__ import annotations

import math

import numpy as np

from tinyvae.core import distributions as dist
from tinyvae.core.backend import array_module, get_backend
from tinyvae.core.layers import sigmoid
from tinyvae.core.likelihood import given_or_drawn_noise, log_px_and_grads
from tinyvae.core.networks import build_networks, check_architecture
from tinyvae.core.params import FlatParameters
from tinyvae.core.validation import check_call, check_latent


def elbo(log_px, z, mu, logvar, beta):
    """The negative ELBO from log p(x|z) (K, B), and its gradients.

    Returns ``loss, parts, (d_log_px, d_mu, d_logvar, d_z)``: the derivatives of the loss
    with respect to log p(x|z), and directly (not through z) to mu, logvar and z."""
    K, B = log_px.shape
    kl = dist.kl_standard_normal(mu, logvar)  # (B,)
    recon = -log_px.mean(axis=0)  # (B,)
    loss = (recon + beta * kl).mean()
    # Backward. Each log p(x|z_kb) enters the loss as -1/(K B) of itself; the KL is
    # closed-form, so mu and logvar reach it directly: beta/B times its gradient.
    d_log_px = -1.0 / (K * B)  # the same for every sample: a number, not a (K, B) array
    dmu_kl, dlogvar_kl = dist.kl_standard_normal_grad(mu, logvar)  # (B, L) each
    d_mu, d_logvar = (beta / B) * dmu_kl, (beta / B) * dlogvar_kl
    return loss, {"recon": recon.mean(), "kl": kl.mean()}, (d_log_px, d_mu, d_logvar, None)


def iwae(log_px, z, mu, logvar, beta):
    r"""The negative importance-weighted bound from log p(x|z) (K, B), and its gradients.

    :math:`\log w_k = \log p(x|z_k) + \beta [\log p(z_k) - \log q(z_k|x)]`, loss
    :math:`= -\log \frac1K \sum_k w_k`. Returns what :func:`elbo` returns."""
    xp, (K, B) = array_module(log_px), log_px.shape
    log_prior_ratio = dist.standard_normal_log_density(z) - dist.diagonal_normal_log_density(
        z, mu[None], logvar[None]
    )  # (K, B)
    log_w = log_px + beta * log_prior_ratio
    bound = dist.logsumexp(log_w, axis=0) - math.log(K)  # (B,)
    loss = -bound.mean()
    parts = {"recon": (-log_px.mean(axis=0)).mean(), "kl": (-log_prior_ratio.mean(axis=0)).mean()}
    # Backward: dLoss/dlog w_kb = -w_kb / (sum_k w_kb) / B, the normalised weights / B.
    iw = (xp.exp(log_w - bound - math.log(K)) / B)[..., None]  # (K, B, 1): broadcasts
    # log p(z) = -z^2/2 + c, so d(-iw beta log p(z))/dz = +iw beta z. With eps fixed,
    # -log q(z|x) = logvar/2 + c (z and mu cancel: (z - mu)^2 / var = eps^2), so it
    # reaches logvar directly, with -iw beta / 2 per sample, and mu not at all.
    d_z = (beta * iw) * z  # (K, B, L)
    d_logvar = -(0.5 * beta * iw[..., 0].sum(axis=0)[:, None])  # (B, 1): broadcasts over L
    return loss, parts, (-iw, None, d_logvar, d_z)


OBJECTIVES = {"elbo": elbo, "iwae": iwae}  # what loss_and_grads(objective=...) takes


class VAE:
    """A VAE whose every gradient is written by hand.

    Parameters
    ----------
    input_dim : pixels per image, D (784 for MNIST).
    hidden : hidden layer sizes of the encoder; the decoder mirrors them.
    latent_dim : L, the size of z.
    likelihood : "bernoulli" (pixels in [0, 1]) or "gaussian" (any real values).
    activation : "relu", "leaky_relu", "tanh" or "sigmoid".
    backend : "numpy", "cupy", or a ``Backend`` already built (of this dtype).
    dtype : "float32" to train, "float64" for gradient checks.
    seed : seeds the weights (drawn on the host: NumPy and CuPy start equal) and ``self.rng``.
    num_classes : > 0 makes a conditional VAE: a one-hot label joins both networks' inputs.
    gaussian_logvar : Gaussian decoder only: None learns a log-variance per pixel
        (the parameter ``decoder.logvar``, (D,)), a float fixes it (0.0: unit variance).
    init : "pytorch" or "he": how the layers draw their weights (``networks.layer_inits``).
    arch : "mlp", or "conv" (``networks.py``): ``channels`` of each convolution, for images
        of ``image_shape`` (H, W) (default: square); ``hidden`` is for "mlp" only.
    ``networks.check_architecture`` checks them all, once. Parameters are named
    ``encoder.i.W``/``encoder.i.b`` for the encoder's i-th layer with parameters (and so for
    the decoder); a Linear layer's ``W`` is (n_in, n_out).
    """

    def __init__(self, input_dim, hidden=(400,), latent_dim=20, likelihood="bernoulli",
                 activation="relu", backend="numpy", dtype="float32", seed=0, num_classes=0,
                 gaussian_logvar=None, init="pytorch", arch="mlp", channels=(32, 64),
                 image_shape=None):  # fmt: skip
        hidden, channels, image_shape = check_architecture(input_dim, hidden, latent_dim,
            likelihood, activation, init, arch, channels, image_shape)  # fmt: skip
        self.config = dict(input_dim=int(input_dim), hidden=hidden, latent_dim=int(latent_dim),
                           likelihood=likelihood, activation=activation, dtype=str(dtype),
                           seed=int(seed), num_classes=int(num_classes), gaussian_logvar=gaussian_logvar,
                           init=init, arch=arch, channels=channels, image_shape=image_shape)  # fmt: skip
        self.backend = get_backend(backend, dtype)
        self.xp, self.dtype = self.backend.xp, self.backend.dtype
        self.input_dim, self.latent_dim = int(input_dim), int(latent_dim)
        self.likelihood, self.num_classes = likelihood, int(num_classes)

        host_rng = np.random.default_rng(seed)  # the weights, drawn once, the same everywhere
        self.encoder, self.decoder = build_networks(arch, input_dim, hidden, latent_dim, num_classes,
                                                    activation, host_rng, dtype, init, channels,
                                                    image_shape)  # fmt: skip
        named = {**self.encoder.named_params("encoder"), **self.decoder.named_params("decoder")}
        self.learn_logvar = likelihood == "gaussian" and gaussian_logvar is None
        if self.learn_logvar:  # one learned log-variance per pixel, shape (D,)
            named["decoder.logvar"] = np.zeros(input_dim, dtype=dtype)
        self.flat = FlatParameters(named, self.backend)
        self.encoder.bind("encoder", self.flat)
        self.decoder.bind("decoder", self.flat)
        self.rng = self.backend.rng(seed)

    def parameters(self):
        """name -> the live parameter array (a view into one flat buffer ``self.flat.data``)."""
        return self.flat.params

    def gradients(self):
        """name -> gradient array, as the last ``loss_and_grads`` wrote it (a live view)."""
        return self.flat.grads

    # --- forward: x -> (mu, logvar) -> z -> decoder output -> log p(x|z) -------------------

    def _encode(self, x, labels):
        """x (B, D) -> mu, logvar: (B, L) each."""
        stats = self.encoder.forward(self._with_labels(x, labels))  # (B, 2L) = [mu | logvar]
        return stats[:, : self.latent_dim], stats[:, self.latent_dim :]

    def _decode(self, z, labels):
        """z (K, B, L) -> decoder outputs (K, B, D): logits or Gaussian means."""
        K, B, L = z.shape
        if labels is not None and self.num_classes:
            labels = self.xp.tile(labels, K)  # the same label for each of the K samples
        out = self.decoder.forward(self._with_labels(z.reshape(K * B, L), labels))
        return out.reshape(K, B, self.input_dim)

    def _with_labels(self, inputs, labels):
        """[inputs | one-hot labels]: (B, n) -> (B, n + C) for a conditional model."""
        if not self.num_classes:
            return inputs
        one_hot = self.xp.eye(self.num_classes, dtype=self.dtype)[labels]  # row y of I: e_y
        return self.xp.concatenate([inputs, one_hot], axis=1)

    def _log_px(self, x, out, with_grad):
        """log p(x|z) per sample (K, B) from decoder outputs (K, B, D), and with_grad its
        gradients: (d/dout (K, B, D), d/dlogvar per pixel (K, B, D) or None)."""
        return log_px_and_grads(self, x, out, with_grad)

    def _noise(self, eps, shape, rng=None):
        """eps (K, B, L): as given ((B, L) means K = 1), or drawn from rng (``self.rng``)."""
        return given_or_drawn_noise(self, eps, shape, rng)

    # --- the loss and its gradient --------------------------------------------------------

    def loss_and_grads(self, x, eps=None, beta=1.0, labels=None, samples=1, objective="elbo",
                       validate=True, x_input=None, need_grad=True):  # fmt: skip
        """Negative ELBO (or IWAE bound) per example, its parts, and its gradient.

        x : (B, D) data on this model's backend. eps : optional noise, (B, L) or
        (samples, B, L); drawn from ``self.rng`` when None. labels : (B,) ints for a
        conditional model. validate : check x's shape and values (the trainer checks the
        whole dataset once and turns this off). x_input : what the encoder sees, if not x
        (a denoising VAE encodes a corrupted image and scores the clean one, x).

        Returns ``(loss, parts, grads)``: loss a 0-d array (nats per example), parts
        ``{"recon": ..., "kl": ...}`` (their weighted sum is the ELBO loss), grads: views into
        ``self.flat.grad``, where an optimizer built on ``self.flat`` reads them, under the names
        of ``parameters()``; the next call overwrites them. ``need_grad=False``: grads is None.
        """
        if validate:
            labels = check_call(self, x, labels, x_input, objective, OBJECTIVES)
        xp, B, K, L = self.xp, x.shape[0], int(samples), self.latent_dim
        # Forward: x -> (mu, logvar) -> z (K, B, L) -> decoder outputs (K, B, D) -> log p(x|z).
        mu, logvar = self._encode(x if x_input is None else x_input, labels)
        eps = self._noise(eps, (K, B, L))
        z = dist.reparameterize(mu, logvar, eps)
        out = self._decode(z, labels)
        log_px, likelihood_grads = self._log_px(x, out, with_grad=need_grad)
        # The objective, forward then backward: the loss and its direct gradients.
        loss, parts, grads = OBJECTIVES[objective](log_px, z, mu, logvar, beta)
        d_log_px, d_mu, d_logvar, d_z = grads
        if not need_grad:
            return loss, parts, None

        # Backward through the likelihood: dLoss/dout = dLoss/dlog p * dlog p/dout, (K, B, D).
        d_out, d_logvar_pixel = likelihood_grads
        if self.learn_logvar:  # the decoder's log-variance, summed over samples and batch: (D,)
            d_lv = (d_log_px * d_logvar_pixel).reshape(-1, self.input_dim).sum(0)
            self.flat.grads["decoder.logvar"][...] = d_lv
        d_out *= d_log_px
        # Backward through the decoder to z; keep only the latent part of its input.
        dz = self.decoder.backward(d_out.reshape(K * B, self.input_dim))
        dz = dz[:, :L].reshape(K, B, L)
        if d_z is not None:  # the objective's own use of z (IWAE's log p(z))
            dz += d_z
        # Backward through z = mu + exp(logvar / 2) eps, then add the direct gradients,
        # into one (B, 2L) array [dLoss/dmu | dLoss/dlogvar] for the encoder.
        dmu, dlogvar = dist.reparameterize_backward(dz, mu, logvar, eps)
        d_stats = xp.empty((B, 2 * L), dtype=self.dtype)
        if d_mu is None:
            d_stats[:, :L] = dmu
        else:
            xp.add(dmu, d_mu, out=d_stats[:, :L])
        xp.add(dlogvar, d_logvar, out=d_stats[:, L:])
        self.encoder.backward(d_stats, need_input_grad=False)
        return loss, parts, self.flat.grads

    def loss(self, x, eps=None, beta=1.0, labels=None, samples=1, objective="elbo", x_input=None):
        """The loss and its parts as ``loss_and_grads`` computes them, without the backward
        pass (for evaluation): the gradient buffer is left as it was."""
        return self.loss_and_grads(x, eps, beta, labels, samples, objective,
                                   x_input=x_input, need_grad=False)[:2]  # fmt: skip

    # --- using a trained model ------------------------------------------------------------

    def encode(self, x, labels=None):
        """x (B, D) -> (mu, logvar), each (B, L): the approximate posterior q(z|x)."""
        return self._encode(x, check_call(self, x, labels))

    def decoder_output(self, z, labels=None):
        """z (B, L) -> (B, D) the decoder's raw output: Bernoulli logits or Gaussian means
        (what ``distributions.bernoulli_log_likelihood`` and friends take)."""
        z, labels = check_latent(self, z, labels)
        return self._decode(z[None], labels)[0]

    def decode(self, z, labels=None):
        """z (B, L) -> (B, D) pixel probabilities (Bernoulli) or means (Gaussian)."""
        out = self.decoder_output(z, labels)
        return sigmoid(out) if self.likelihood == "bernoulli" else out

    def sample(self, n, labels=None, rng=None):
        """n images from the prior: z ~ N(0, I) drawn from ``rng`` (default ``self.rng``),
        then decoded: (n, D). For a conditional model, labels is one class for all n
        (``labels=7``) or one per image, (n,)."""
        n, rng = int(n), self.rng if rng is None else rng
        if labels is not None and np.ndim(labels) == 0:
            labels = np.full(n, int(labels))
        return self.decode(rng.standard_normal((n, self.latent_dim), dtype=self.dtype), labels)

    def reconstruct(self, x, labels=None):
        """Decode the posterior mean: x (B, D) -> (B, D)."""
        return self.decode(self.encode(x, labels)[0], labels)  # mu, the posterior mean

    def log_likelihood(self, x, k=5000, labels=None, max_rows=None, rng=None, eps=None):
        r"""Importance-weighted estimate of log p(x) per example, (B,), in nats.

        .. math:: \log p(x) \approx \log \frac1k \sum_{i=1}^k
                  \frac{p(x \mid z_i)\, p(z_i)}{q(z_i \mid x)}, \qquad z_i \sim q(z \mid x)

        (Burda et al. 2015), z = mu + sigma eps, eps (k, B, L) given or drawn from ``rng``
        (``self.rng``); decoded in chunks of at most ``max_rows`` rows merged with log-sum-exp,
        so memory stays bounded: 1024 on NumPy (3 MB at D = 784, in the CPU cache), 16384 on CuPy.
        """
        labels, rng, L, k = check_call(self, x, labels), rng or self.rng, self.latent_dim, int(k)
        eps = None if eps is None else self._noise(eps, (k, len(x), L))  # given: checked here
        max_rows = max_rows or (16384 if self.backend.name == "cupy" else 1024)
        per_image = max(1, max_rows // k)  # images per group
        results = []
        for start in range(0, len(x), per_image):
            xb, group = x[start : start + per_image], slice(start, start + per_image)
            yb = None if labels is None else labels[group]
            mu, logvar = self._encode(xb, yb)
            chunk = max(1, max_rows // len(xb))  # samples per chunk
            partial = []  # log-sum-exp of each chunk, (B,)
            for done in range(0, k, chunk):
                kk = min(chunk, k - done)
                given = None if eps is None else eps[done : done + kk, group]
                z = dist.reparameterize(mu, logvar, self._noise(given, (kk, len(xb), L), rng))
                log_w = (
                    self._log_px(xb, self._decode(z, yb), with_grad=False)[0]
                    + dist.standard_normal_log_density(z)
                    - dist.diagonal_normal_log_density(z, mu[None], logvar[None])
                )  # (kk, B)
                partial.append(dist.logsumexp(log_w, axis=0))
            results.append(dist.logsumexp(self.xp.stack(partial), axis=0) - math.log(k))
        return self.xp.concatenate(results)
