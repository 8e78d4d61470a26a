"""The PyTorch example VAE (pytorch/examples ``vae/main.py``), as a yardstick for tinyvae.

Same model, loss and training loop as that example: a 784-400-20-400-784 MLP with ReLU,
a Bernoulli decoder (binary cross-entropy summed over pixels), the Gaussian KL term,
Adam with lr 1e-3, batch 128, seed 1. Losses are totals over the dataset divided by
the number of images (nats per image); the test pass samples ``z`` too, as the example does.

``--arch hierarchical`` is tinyvae's two latent layers (``--latent-dim 100,50``): by default
the IWAE paper's 784-200-200-z1(100)-100-100-z2(50), ReLU, with the loss tinyvae's ELBO takes
(the KL of z1 from one sample, that of z2 in closed form given z1).

``--arch conv`` swaps the MLPs for tinyvae's convolutional recipe (``tinyvae/core/networks.py``,
``--arch conv`` there): Conv2d 1->32->64 (4x4, stride 2, padding 1: 28 -> 14 -> 7), ReLU,
Linear(3136, 40) to [mu | logvar]; decoder Linear(20, 3136), ReLU, ConvTranspose2d 64->32->1
with a ReLU between; PyTorch's default initialisation, which tinyvae's "pytorch" init copies.

    python benchmarks/torch_reference.py --json          # 10 epochs on Fashion-MNIST
    python benchmarks/torch_reference.py --arch conv     # the convolutional VAE
    python benchmarks/torch_reference.py --arch hierarchical   # two latent layers, 100 and 50
    python benchmarks/torch_reference.py --synthetic     # random data, for timing only

tinyvae itself never uses PyTorch. This module imports without it, and raises an
ImportError saying what to install only when one of its functions is called.
The script exits with status 2 and a one-line message when PyTorch or the data is missing.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path

import numpy as np

try:  # optional: the guarded import keeps this module importable without PyTorch
    import torch
    import torch.nn.functional as F
    from torch import nn

    TORCH_IMPORT_ERROR: Exception | None = None
except ImportError as error:
    torch = F = nn = None
    TORCH_IMPORT_ERROR = error

DATA_DIR = "/usr/share/datasets/fashion-mnist"


def require_torch() -> None:
    """Raise a clear ImportError when PyTorch is not installed."""
    if torch is None:
        raise ImportError(
            "benchmarks/torch_reference.py needs PyTorch (tinyvae does not): "
            "install it in a separate environment, e.g. `pip install torch numpy`"
        ) from TORCH_IMPORT_ERROR


class VAE(nn.Module if nn is not None else object):  # a plain class when torch is absent
    """The example's VAE; ``decode`` returns logits (the example applies the sigmoid there)."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)  # mu
        self.fc22 = nn.Linear(400, 20)  # logvar
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def encode(self, x):  # x: (B, 784) -> mu, logvar: (B, 20)
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):  # z = mu + eps * std, eps ~ N(0, I)
        std = torch.exp(0.5 * logvar)
        eps = torch.randn_like(std)
        return mu + eps * std

    def decode(self, z):  # z: (B, 20) -> logits: (B, 784)
        h3 = F.relu(self.fc3(z))
        return self.fc4(h3)

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 784))
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


class ConvVAE(VAE if nn is not None else object):
    """tinyvae's conv recipe: 28x28 -> 14x14 -> 7x7 by strided convolutions, and back."""

    def __init__(self, channels=(32, 64), latent_dim=20):
        nn.Module.__init__(self)
        c1, c2 = channels
        self.enc = nn.Sequential(
            nn.Conv2d(1, c1, 4, 2, 1), nn.ReLU(), nn.Conv2d(c1, c2, 4, 2, 1), nn.ReLU(),
            nn.Flatten(), nn.Linear(c2 * 7 * 7, 2 * latent_dim),
        )  # fmt: skip
        self.dec = nn.Sequential(
            nn.Linear(latent_dim, c2 * 7 * 7), nn.ReLU(), nn.Unflatten(1, (c2, 7, 7)),
            nn.ConvTranspose2d(c2, c1, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(c1, 1, 4, 2, 1),
            nn.Flatten(),
        )  # fmt: skip

    def encode(self, x):  # x: (B, 784) -> mu, logvar: (B, 20)
        return self.enc(x.view(-1, 1, 28, 28)).chunk(2, dim=1)

    def decode(self, z):  # z: (B, 20) -> logits: (B, 784)
        return self.dec(z)


def mlp(sizes):
    """Linear layers with a ReLU between them (none after the last), as tinyvae's MLP."""
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


class HierarchicalVAE(nn.Module if nn is not None else object):
    """tinyvae's two latent layers (``tinyvae/core/hierarchical.py``): q(z1|x), q(z2|z1)
    bottom-up; p(z2) = N(0, I), p(z1|z2), p(x|z1) top-down; the IWAE paper's sizes by default."""

    def __init__(self, hidden=(200, 200), latent=(100, 50), upper=(100, 100)):
        super().__init__()
        (L1, L2), self.L1, self.L2 = latent, latent[0], latent[1]
        self.enc = mlp([784, *hidden, 2 * L1])  # [mu1 | logvar1]
        self.enc_top = mlp([L1, *upper, 2 * L2])  # [mu2 | logvar2]
        self.dec_top = mlp([L2, *upper[::-1], 2 * L1])  # [m | s] of p(z1|z2)
        self.dec = mlp([L1, *hidden[::-1], 784])  # logits

    def forward(self, x, eps1=None, eps2=None):
        """x (B, 784) -> (logits, z1, mu1, logvar1, mu2, logvar2, m, s); noise drawn if None."""
        mu1, logvar1 = self.enc(x).chunk(2, dim=-1)
        eps1 = torch.randn_like(mu1) if eps1 is None else eps1
        z1 = mu1 + eps1 * torch.exp(0.5 * logvar1)
        mu2, logvar2 = self.enc_top(z1).chunk(2, dim=-1)
        eps2 = torch.randn_like(mu2) if eps2 is None else eps2
        z2 = mu2 + eps2 * torch.exp(0.5 * logvar2)
        m, s = self.dec_top(z2).chunk(2, dim=-1)
        return self.dec(z1), z1, mu1, logvar1, mu2, logvar2, m, s


def log_normal(z, mean, logvar):
    """log N(z; mean, e^logvar), summed over the last axis."""
    return -0.5 * (np.log(2 * np.pi) + logvar + (z - mean) ** 2 * torch.exp(-logvar)).sum(-1)


def hierarchical_loss(outputs, x):
    """Summed negative ELBO of a batch, as tinyvae computes it: BCE, the one-sample KL of z1
    (log q(z1|x) - log p(z1|z2)), and the closed-form KL of z2 given z1."""
    logits, z1, mu1, logvar1, mu2, logvar2, m, s = outputs
    bce = F.binary_cross_entropy_with_logits(logits, x.view(-1, 784), reduction="sum")
    kl1 = (log_normal(z1, mu1, logvar1) - log_normal(z1, m, s)).sum()
    kl2 = -0.5 * torch.sum(1 + logvar2 - mu2.pow(2) - logvar2.exp())
    return bce + kl1 + kl2


def batch_loss(model, x):
    """The summed loss of one batch for any of the three models."""
    if isinstance(model, HierarchicalVAE):
        return hierarchical_loss(model(x), x)
    recon, mu, logvar = model(x)
    return loss_function(recon, x, mu, logvar)


def build_model(arch="mlp", channels=(32, 64), hidden=(200, 200), latent=(100, 50),
                upper=(100, 100)):  # fmt: skip
    """The example's VAE, the conv one or the two-layer one, with PyTorch's default
    initialisation (seed it first)."""
    require_torch()
    if arch == "hierarchical":
        return HierarchicalVAE(hidden, latent, upper)
    return ConvVAE(channels) if arch == "conv" else VAE()


def loss_function(recon_logits, x, mu, logvar):
    """Summed BCE + KL for a batch, in nats (divide by the batch size for per image).

    The example computes ``binary_cross_entropy(sigmoid(logits), x)``; the ``_with_logits``
    form is the same function evaluated stably (no log of a probability rounded to 0 or 1).
    """
    require_torch()
    bce = F.binary_cross_entropy_with_logits(recon_logits, x.view(-1, 784), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


def train_epoch(model, optimizer, x, batch_size, generator):
    """One pass over ``x`` (n, 784) in an order shuffled by ``generator``; mean loss per image."""
    require_torch()
    model.train()
    order = torch.randperm(len(x), generator=generator)
    total = 0.0
    for start in range(0, len(x), batch_size):  # the last batch may be smaller, as in the example
        batch = x[order[start : start + batch_size]]  # (B, 784)
        optimizer.zero_grad()
        loss = batch_loss(model, batch)
        loss.backward()
        total += loss.item()  # the loss before this step's update, as in the example
        optimizer.step()
    return total / len(x)


def test_loss(model, x, batch_size):
    """Mean loss per image over ``x`` (n, 784), in order, still sampling ``z``."""
    require_torch()
    model.eval()
    total = 0.0
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            batch = x[start : start + batch_size]
            total += batch_loss(model, batch).item()
    return total / len(x)


def load_images(path):
    """An IDX image file (gzip) -> float32 array (n, 784) scaled to [0, 1]."""
    with gzip.open(path, "rb") as f:
        raw = np.frombuffer(f.read(), dtype=np.uint8, offset=16)
    return raw.reshape(-1, 784).astype(np.float32) / 255.0


def load_data(data_dir, synthetic, seed):
    """(train, test) float32 tensors of shapes (60000, 784) and (10000, 784)."""
    if synthetic:  # uniform noise of the right shape: good for timing, meaningless as a loss
        g = torch.Generator().manual_seed(seed)
        return torch.rand(60000, 784, generator=g), torch.rand(10000, 784, generator=g)
    files = [Path(data_dir) / f"{s}-images-idx3-ubyte.gz" for s in ("train", "t10k")]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(
            f"no Fashion-MNIST in {data_dir} (missing {', '.join(missing)}): "
            "pass --data-dir, or --synthetic to time on random data"
        )
    return tuple(torch.from_numpy(load_images(f)) for f in files)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=["mlp", "conv", "hierarchical"], default="mlp")
    parser.add_argument("--channels", default="32,64", help="--arch conv: two channel counts")
    parser.add_argument("--hidden", default="200,200", help="--arch hierarchical: x to z1")
    parser.add_argument("--latent-dim", default="100,50", help="--arch hierarchical: L1,L2")
    parser.add_argument("--upper-hidden", default="100,100", help="--arch hierarchical: z1 to z2")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--data-dir", default=DATA_DIR)
    parser.add_argument("--synthetic", action="store_true", help="random data, for timing only")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of results")
    args = parser.parse_args(argv)

    try:
        require_torch()
        train_x, test_x = load_data(args.data_dir, args.synthetic, args.seed)
    except (ImportError, FileNotFoundError) as error:
        print(f"torch_reference: {error}", file=sys.stderr)
        return 2

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)  # weights and the reparameterisation noise
    sizes = lambda text: tuple(int(n) for n in text.split(","))
    channels = sizes(args.channels)
    model = build_model(args.arch, channels, sizes(args.hidden), sizes(args.latent_dim),
                        sizes(args.upper_hidden))  # fmt: skip
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(args.seed)  # the shuffling order

    print("epoch  train_loss  test_loss  seconds  train_s")
    history = []
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        train = train_epoch(model, optimizer, train_x, args.batch_size, generator)
        t1 = time.perf_counter()
        test = test_loss(model, test_x, args.batch_size)
        t2 = time.perf_counter()
        history.append(
            dict(epoch=epoch, train_loss=train, test_loss=test, seconds=t2 - t0, train_s=t1 - t0)
        )
        print(f"{epoch:5d}  {train:10.4f}  {test:9.4f}  {t2 - t0:7.2f}  {t1 - t0:7.2f}", flush=True)

    if args.json:
        print(
            json.dumps(
                dict(
                    final_train_loss=history[-1]["train_loss"],
                    final_test_loss=history[-1]["test_loss"],
                    seconds_per_epoch=sum(h["seconds"] for h in history) / len(history),
                    train_seconds_per_epoch=sum(h["train_s"] for h in history) / len(history),
                    epochs=args.epochs,
                    arch=args.arch,
                    channels=list(channels) if args.arch == "conv" else None,
                    sizes=[args.hidden, args.latent_dim, args.upper_hidden]
                    if args.arch == "hierarchical"
                    else None,
                    batch_size=args.batch_size,
                    seed=args.seed,
                    data="synthetic" if args.synthetic else "fashion-mnist",
                    torch=torch.__version__,
                    threads=torch.get_num_threads(),
                    history=history,
                )
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
