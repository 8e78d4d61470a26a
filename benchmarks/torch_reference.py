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
    python benchmarks/torch_reference.py --arch hierarchical --same-start   # see below

``--same-start`` (two latent layers only) starts PyTorch where tinyvae starts with the same
seed: tinyvae's initial weights, its batches in its order and its reparameterisation noise,
step by step (so it imports tinyvae from this checkout, and the PyTorch environment needs
tinyvae's numpy and tqdm). The two runs then differ only in
how each library rounds its float32 arithmetic. Each epoch's test loss is also scored by
tinyvae's own evaluation (its test noise for that seed and epoch) on PyTorch's weights, so
it is the number tinyvae's ``metrics.jsonl`` records for its own weights.

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


def batch_loss(model, x, noise=None):
    """The summed loss of one batch for any of the three models; ``noise`` (eps1, eps2) for
    the two-layer one, or None to draw it."""
    if isinstance(model, HierarchicalVAE):
        return hierarchical_loss(model(x, *(noise or (None, None))), x)
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


def shuffled_batches(x, batch_size, generator):
    """The batches of one pass over ``x`` (n, 784), in an order shuffled by ``generator``, as
    (batch, None): the noise is drawn inside the model. The last batch may be smaller."""
    order = torch.randperm(len(x), generator=generator)
    for start in range(0, len(x), batch_size):
        yield x[order[start : start + batch_size]], None  # (B, 784)


def train_epoch(model, optimizer, x, batch_size, generator, batches=None):
    """One pass over ``x`` (n, 784) in an order shuffled by ``generator``; mean loss per image.

    ``batches``: (batch, noise) pairs instead (noise None or (eps1, eps2)), and each step then
    takes the batch's mean loss, as tinyvae does, not its sum, as the example does. The two
    have the same minimum, but Adam's steps tell them apart: Adam divides each gradient by
    the root of its running square plus 1e-8, and that 1e-8 weighs B times more against a
    mean's gradient than against a sum's, where gradients are small.
    """
    require_torch()
    model.train()
    total = 0.0
    for batch, noise in batches or shuffled_batches(x, batch_size, generator):
        optimizer.zero_grad()
        loss = batch_loss(model, batch, noise)
        (loss / len(batch) if batches else loss).backward()
        total += loss.item()  # the loss before this step's update, as in the example
        optimizer.step()
    return total / len(x)


TINYVAE_NETWORKS = {"encoder": "enc", "encoder_top": "enc_top", "decoder_top": "dec_top",
                    "decoder": "dec"}  # tinyvae's HierarchicalVAE network -> HierarchicalVAE's here


def tinyvae_layers(net):
    """(tinyvae's name of a layer, e.g. "encoder.0", the PyTorch Linear) for every layer of
    the two-layer model ``net``; tinyvae's ``W`` (n_in, n_out) is PyTorch's ``weight.T``."""
    for ours, theirs in TINYVAE_NETWORKS.items():
        linears = [layer for layer in getattr(net, theirs) if isinstance(layer, nn.Linear)]
        for i, layer in enumerate(linears):
            yield f"{ours}.{i}", layer


def weights_from_tinyvae(tiny, net):
    """Copy tinyvae's two-layer model ``tiny``'s weights into the PyTorch one ``net``."""
    params = tiny.parameters()
    with torch.no_grad():
        for name, layer in tinyvae_layers(net):
            layer.weight.copy_(torch.from_numpy(params[name + ".W"].T.copy()))
            layer.bias.copy_(torch.from_numpy(params[name + ".b"]))


def weights_to_tinyvae(net, tiny):
    """Copy the PyTorch model ``net``'s weights into tinyvae's ``tiny``, in place."""
    params = tiny.parameters()
    for name, layer in tinyvae_layers(net):
        params[name + ".W"][...] = layer.weight.detach().numpy().T
        params[name + ".b"][...] = layer.bias.detach().numpy()


class SameStart:
    """``--same-start``: tinyvae's two-layer model for this seed, as a twin of ``net``.

    Its initial weights are copied into ``net``; :meth:`batches` yields tinyvae's batches
    and noise of an epoch, drawn from the generators ``tinyvae.tools.training.train_epoch``
    uses; :meth:`test_loss` copies ``net``'s weights back into the twin and scores them
    with tinyvae's ``evaluate_loss``, with the test noise tinyvae's trainer uses.
    """

    def __init__(self, net, train_x, batch_size, seed, hidden, latent, upper):
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's tinyvae
        from tinyvae.core.hierarchical import HierarchicalVAE as TinyHierarchical
        from tinyvae.tools.data import Batches

        self.twin = TinyHierarchical(784, hidden=hidden, latent_dim=latent, upper_hidden=upper,
                                     seed=seed)  # fmt: skip
        self.net, self.seed, self.L1 = net, seed, latent[0]
        labels = np.zeros(len(train_x), dtype=np.int64)  # unused by the model
        self.data = Batches(train_x.numpy(), labels, self.twin.backend, batch_size, seed)
        weights_from_tinyvae(self.twin, net)

    def batches(self, epoch):
        """(x (B, 784), (eps1 (B, L1), eps2 (B, L2))) for every step of ``epoch`` (from 1)."""
        from tinyvae.tools.training import NOISE, stream_rng

        rng, L1 = stream_rng(self.twin.backend, self.seed, epoch, NOISE), self.L1
        for x, _ in self.data.epoch(epoch):
            eps = rng.standard_normal((1, len(x), self.twin.latent_dim), dtype=np.float32)[0]
            yield torch.from_numpy(x), (torch.from_numpy(eps[:, :L1]), torch.from_numpy(eps[:, L1:]))

    def test_loss(self, test_x, epoch):
        """tinyvae's test loss of ``net``'s weights, with tinyvae's noise for this epoch."""
        from tinyvae.tools.data import seed_for
        from tinyvae.tools.evaluation import evaluate_loss
        from tinyvae.tools.training import EVAL

        weights_to_tinyvae(self.net, self.twin)
        test = evaluate_loss(self.twin, test_x.numpy(), seed=seed_for(self.seed, epoch, EVAL))
        return test["loss"]


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
    parser.add_argument("--same-start", action="store_true",
                        help="--arch hierarchical: tinyvae's initial weights, batches and noise")
    args = parser.parse_args(argv)
    if args.same_start and (args.arch != "hierarchical" or args.synthetic):
        parser.error("--same-start needs --arch hierarchical and the real data")

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
    same = None
    if args.same_start:
        same = SameStart(model, train_x, args.batch_size, args.seed, sizes(args.hidden),
                         sizes(args.latent_dim), sizes(args.upper_hidden))  # fmt: skip

    print("epoch  train_loss  test_loss  seconds  train_s" + ("  tinyvae_test" if same else ""))
    history = []
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        batches = same.batches(epoch) if same else None
        train = train_epoch(model, optimizer, train_x, args.batch_size, generator, batches)
        t1 = time.perf_counter()
        test = test_loss(model, test_x, args.batch_size)
        t2 = time.perf_counter()
        history.append(
            dict(epoch=epoch, train_loss=train, test_loss=test, seconds=t2 - t0, train_s=t1 - t0)
        )
        line = f"{epoch:5d}  {train:10.4f}  {test:9.4f}  {t2 - t0:7.2f}  {t1 - t0:7.2f}"
        if same:  # the number tinyvae's metrics.jsonl would record for these weights
            history[-1]["tinyvae_test_loss"] = same.test_loss(test_x, epoch)
            line += f"  {history[-1]['tinyvae_test_loss']:12.4f}"
        print(line, flush=True)

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
                    same_start=args.same_start,
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
