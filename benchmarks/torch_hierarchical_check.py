"""tinyvae's two latent layers against PyTorch's autograd: the same weights, one batch, float64.

The gradient checks of ``tests/test_hierarchical.py`` judge ``HierarchicalVAE``'s hand-written
backward pass by finite differences. This script asks a second judge: it copies the weights
of ``tinyvae.core.hierarchical.HierarchicalVAE`` into ``torch_reference.HierarchicalVAE``
(the same four networks in PyTorch; tinyvae's ``W`` (n_in, n_out) is PyTorch's ``weight.T``),
feeds both the same images and the same noise [eps1 | eps2], writes both objectives in
PyTorch from the densities, lets autograd differentiate them, and prints the two losses and
the largest relative difference of the parameters' gradients, for the ELBO and the
importance-weighted bound, with one and with several samples, for a Bernoulli decoder and a
Gaussian one with a learned variance per pixel. Last, it trains both for 500 steps from the
same start (each library's own Adam, the same batches and noise) and prints how far apart
their losses and weights drift. It exits with status 1 when any difference is too large.

    /work/torchvenv/bin/python benchmarks/torch_hierarchical_check.py

It needs one environment with PyTorch and tinyvae's own dependencies (numpy, tqdm).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]  # this checkout's tinyvae, and torch_reference

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torch_reference as ref  # noqa: E402

from tinyvae.core.hierarchical import HierarchicalVAE  # noqa: E402
from tinyvae.core.optim import Adam  # noqa: E402

D, HIDDEN, LATENT, UPPER = 784, (200, 200), (100, 50), (100, 100)


def copy_weights(model, net, logvar=None):
    """tinyvae's parameters into the PyTorch module (and the pixels' log-variance tensor)."""
    ref.weights_from_tinyvae(model, net)
    if logvar is not None:
        with torch.no_grad():
            logvar.copy_(torch.from_numpy(model.parameters()["decoder.logvar"]))


def torch_loss(net, x, eps, objective, logvar=None):
    """The negative ELBO or IWAE bound, nats per image, from K samples eps (K, B, L1 + L2)."""
    L1 = net.L1
    logits, z1, mu1, lv1, mu2, lv2, m, s = net(x, eps[..., :L1], eps[..., L1:])  # (K, B, .)
    if logvar is None:  # Bernoulli
        log_px = -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none")
    else:  # Gaussian, a learned log-variance per pixel
        log_px = -0.5 * (math.log(2 * math.pi) + logvar + (x - logits) ** 2 * torch.exp(-logvar))
    log_px = log_px.sum(-1)  # (K, B)
    log_q1, log_p1 = ref.log_normal(z1, mu1, lv1), ref.log_normal(z1, m, s)
    K = eps.shape[0]
    if objective == "elbo":
        kl2 = -0.5 * torch.sum(1 + lv2 - mu2.pow(2) - lv2.exp(), dim=-1)
        return (-log_px + log_q1 - log_p1 + kl2).mean()
    z2 = mu2 + eps[..., L1:] * torch.exp(0.5 * lv2)
    log_w = log_px + log_p1 + ref.log_normal(z2, 0.0 * z2, 0.0 * z2) - log_q1
    log_w = log_w - ref.log_normal(z2, mu2, lv2)
    return -(torch.logsumexp(log_w, dim=0) - math.log(K)).mean()


def compare(likelihood, objective, samples, seed=3, batch=16):
    """Print one line; return the largest relative difference of the gradients."""
    model = HierarchicalVAE(D, HIDDEN, LATENT, UPPER, likelihood=likelihood, dtype="float64",
                            seed=seed)  # fmt: skip
    net = ref.HierarchicalVAE(HIDDEN, LATENT, UPPER)
    logvar = torch.zeros(D, requires_grad=True) if likelihood == "gaussian" else None
    if logvar is not None:
        model.parameters()["decoder.logvar"][...] = np.random.default_rng(1).normal(0, 0.3, D)
    copy_weights(model, net, logvar)
    rng = np.random.default_rng(0)
    x = rng.random((batch, D)) * (rng.random((batch, D)) < 0.3)  # (B, 784) in [0, 1]
    eps = rng.standard_normal((samples, batch, sum(LATENT)))
    loss, _, grads = model.loss_and_grads(x, eps, samples=samples, objective=objective)

    theirs = torch_loss(net, torch.from_numpy(x), torch.from_numpy(eps), objective, logvar)
    theirs.backward()
    worst = 0.0
    for name, layer in ref.tinyvae_layers(net):
        for key, grad in (("W", layer.weight.grad.numpy().T), ("b", layer.bias.grad.numpy())):
            ours_grad = grads[f"{name}.{key}"]
            worst = max(worst, np.linalg.norm(ours_grad - grad) / np.linalg.norm(grad))
    if logvar is not None:
        g = logvar.grad.numpy()
        worst = max(worst, np.linalg.norm(grads["decoder.logvar"] - g) / np.linalg.norm(g))
    print(f"{likelihood:9s} {objective:4s} K = {samples}: loss tinyvae {float(loss):.10f}, "
          f"PyTorch {theirs.item():.10f}; largest relative gradient difference {worst:.1e}")  # fmt: skip
    return worst


def trajectory(steps=500, batch=32, seed=3):
    """Train both from the same weights, on the same batches and noise, with each library's
    Adam (lr 1e-3) on the batch's mean ELBO, float64; print and return the largest relative
    difference of the losses over the steps and of the weights after the last step.

    Adam divides each gradient by its own running size, so a gradient that is nearly zero
    still moves its weight by about the learning rate: a wrong sign or a wrong scale in any
    gradient, or a different Adam, shows in the weights within a few steps."""
    model = HierarchicalVAE(D, HIDDEN, LATENT, UPPER, dtype="float64", seed=seed)
    net = ref.HierarchicalVAE(HIDDEN, LATENT, UPPER)
    copy_weights(model, net)
    ours_adam = Adam(model.flat, lr=1e-3)
    their_adam = torch.optim.Adam(net.parameters(), lr=1e-3)
    rng, worst_loss = np.random.default_rng(1), 0.0
    for _ in range(steps):
        x = rng.random((batch, D)) * (rng.random((batch, D)) < 0.3)  # (B, 784) in [0, 1]
        eps = rng.standard_normal((1, batch, sum(LATENT)))  # (1, B, L1 + L2)
        loss, _, _ = model.loss_and_grads(x, eps)
        ours_adam.step()
        their_adam.zero_grad()
        theirs = torch_loss(net, torch.from_numpy(x), torch.from_numpy(eps), "elbo")
        theirs.backward()
        their_adam.step()
        worst_loss = max(worst_loss, abs(float(loss) - theirs.item()) / abs(theirs.item()))
    twin = HierarchicalVAE(D, HIDDEN, LATENT, UPPER, dtype="float64", seed=seed)
    ref.weights_to_tinyvae(net, twin)
    ours, theirs = model.flat.data, twin.flat.data
    worst_weight = np.abs(ours - theirs).max() / np.abs(theirs).max()
    print(f"{steps} Adam steps from the same start: largest relative difference of the "
          f"losses {worst_loss:.1e}, of the weights after the last step {worst_weight:.1e}")
    return max(worst_loss, worst_weight)


def main():
    torch.set_default_dtype(torch.float64)
    cases = [("bernoulli", "elbo", 1), ("bernoulli", "elbo", 3), ("bernoulli", "iwae", 5),
             ("gaussian", "elbo", 2), ("gaussian", "iwae", 4)]  # fmt: skip
    worst = max(compare(*case) for case in cases)
    print(f"largest relative difference over all cases {worst:.1e}")
    worst_training = trajectory()
    return 0 if worst < 1e-10 and worst_training < 1e-8 else 1


if __name__ == "__main__":
    sys.exit(main())
