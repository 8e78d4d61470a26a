"""tinyvae's convolutional VAE against PyTorch's autograd: the same weights, one batch, float64.

The gradient checks of ``tests/test_conv.py`` judge tinyvae's hand-written backward passes
by finite differences. This script asks a second judge: it copies the weights of
``tinyvae.VAE(784, arch="conv")`` into ``torch_reference.ConvVAE`` (the same network in
PyTorch), feeds both the same images and the same noise, and prints the two losses and the
relative difference of every parameter's gradient. It also shows how the weight layouts
correspond:

    Conv2d           tinyvae (k, k, C_in, C_out)   PyTorch (C_out, C_in, k, k)
    ConvTranspose2d  tinyvae (C_in, k, k, C_out)   PyTorch (C_in, C_out, k, k)
    Linear           tinyvae (n_in, n_out)         PyTorch (n_out, n_in)

    python benchmarks/torch_conv_check.py

It needs one environment with PyTorch and tinyvae's own dependencies (numpy, tqdm).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]  # this checkout's tinyvae, and torch_reference

import torch  # noqa: E402
import torch_reference as ref  # noqa: E402

import tinyvae  # noqa: E402

# name in tinyvae -> (PyTorch layer, how tinyvae's W is permuted into PyTorch's weight)
LAYOUT = {"conv": (3, 2, 0, 1), "convT": (0, 3, 1, 2), "linear": (1, 0)}


def pairs(net):
    """(tinyvae name prefix, PyTorch layer, layout) for every layer with parameters."""
    enc, dec = net.enc, net.dec
    return [("encoder.0", enc[0], "conv"), ("encoder.1", enc[2], "conv"),
            ("encoder.2", enc[5], "linear"), ("decoder.0", dec[0], "linear"),
            ("decoder.1", dec[3], "convT"), ("decoder.2", dec[5], "convT")]  # fmt: skip


def main(seed=3, batch=16):
    torch.set_default_dtype(torch.float64)
    model = tinyvae.VAE(784, arch="conv", dtype="float64", seed=seed)
    net = ref.ConvVAE()
    params = model.parameters()
    with torch.no_grad():
        for name, layer, kind in pairs(net):
            W = params[f"{name}.W"].transpose(LAYOUT[kind])
            layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(W)))
            layer.bias.copy_(torch.from_numpy(params[f"{name}.b"]))
    rng = np.random.default_rng(0)
    x = rng.random((batch, 784)) * (rng.random((batch, 784)) < 0.3)  # (B, 784) in [0, 1]
    eps = rng.standard_normal((batch, 20))
    loss, _, grads = model.loss_and_grads(x, eps=eps)

    xt = torch.from_numpy(x)
    mu, logvar = net.encode(xt)
    z = mu + torch.from_numpy(eps) * torch.exp(0.5 * logvar)
    torch_loss = ref.loss_function(net.decode(z), xt, mu, logvar) / batch
    torch_loss.backward()
    print(f"loss: tinyvae {float(loss):.12f}, PyTorch {torch_loss.item():.12f}")
    worst = 0.0
    for name, layer, kind in pairs(net):
        back = np.argsort(LAYOUT[kind])  # PyTorch's layout -> tinyvae's
        for key, theirs in (("W", layer.weight.grad.numpy().transpose(back)),
                            ("b", layer.bias.grad.numpy())):  # fmt: skip
            ours = grads[f"{name}.{key}"]
            error = np.linalg.norm(ours - theirs) / np.linalg.norm(theirs)
            worst = max(worst, error)
            print(f"  {name}.{key:2s} {str(ours.shape):17s} relative difference {error:.1e}")
    print(f"largest relative difference {worst:.1e}")
    return 0 if worst < 1e-10 else 1


if __name__ == "__main__":
    sys.exit(main())
