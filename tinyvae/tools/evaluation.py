"""How well a model fits a set of images: the measurements training and evaluation share.

    test_x, test_y = prepare_test_set(dataset, config, model.backend)
    evaluate_loss(model, test_x, test_y)      # {"loss": ..., "recon": ..., "kl": ...} nats/image
    active_units(model, test_x, test_y)       # latent units the encoder uses
    mean_log_likelihood(model, test_x, test_y, k=5000)   # importance-weighted log p(x)

Every function runs the forward pass only: the model's weights and gradients stay as they
are, and each draws its noise from a generator of its own, seeded by ``seed``, so a number
is reproducible and measuring never disturbs training's random numbers.
"""

from __future__ import annotations

import numpy as np
from tqdm import tqdm

from tinyvae.core.validation import check_input
from tinyvae.errors import UserError
from tinyvae.tools.data import binarize


def prepare_test_set(dataset, config, backend):
    """The test split on the device, (n, D) and (n,), binarized once with a fixed seed (for
    ``--binarize dynamic``), so every epoch and ``tinyvae.evaluate`` score the same images."""
    x = binarize(dataset.test_x, config.binarize, np.random.default_rng(config.seed))
    return backend.asarray(x), backend.asarray(dataset.test_y, dtype=np.int64)


def check_data(model, x, config, name: str, labels=None) -> None:
    """Check a whole data split once (so that each step can skip the check), as a one-line
    UserError: the images must suit the model (width, values in [0, 1] for Bernoulli), and
    for a conditional model the labels must be classes it knows. A label outside them would
    raise an IndexError on NumPy but wrap around silently on CuPy."""
    if model.num_classes and labels is not None and len(labels):
        ends = model.backend.to_host(model.xp.stack([labels.min(), labels.max()]))  # one read
        low, high = int(ends[0]), int(ends[1])
        if low < 0 or high >= model.num_classes:
            raise UserError(
                f"{name.replace('images', 'labels')} hold classes {low} to {high}, but this "
                f"conditional model knows 0 to {model.num_classes - 1}: use the data set the "
                "run was trained on"
            )
    if x.ndim == 2 and x.shape[1] != model.input_dim:
        raise UserError(
            f"{name} have {x.shape[1]} pixels but this model takes {model.input_dim}: use "
            "the data set the run was trained on"
        )
    try:
        check_input(model, x, name)
    except (TypeError, ValueError) as error:
        raise UserError(f"{error} (--likelihood {config.likelihood})") from None


def evaluate_loss(model, x, labels=None, batch_size=1000, seed=0, samples=1) -> dict:
    """Mean negative ELBO (beta = 1) over x (n, D), and its recon and KL, in nats per image.

    z is sampled (as in the PyTorch example) from a generator seeded by ``seed``, so the
    number is reproducible and evaluating never disturbs training's random numbers. It runs
    the forward pass only (``model.loss``): the gradient buffer is left as it was.
    """
    xp, L = model.xp, model.latent_dim
    rng = model.backend.rng(seed)
    totals = {k: xp.zeros((), dtype=xp.float64) for k in ("loss", "recon", "kl")}
    for start in range(0, len(x), batch_size):
        xb = x[start : start + batch_size]  # (B, D)
        yb = labels[start : start + batch_size] if model.num_classes else None
        eps = rng.standard_normal((samples, len(xb), L), dtype=model.dtype)
        loss, parts = model.loss(xb, eps, 1.0, yb, samples)
        totals["loss"] += loss * len(xb)
        totals["recon"] += parts["recon"] * len(xb)
        totals["kl"] += parts["kl"] * len(xb)
    return {k: float(v) / len(x) for k, v in totals.items()}


def posterior_means(model, x, labels=None, batch_size=1000):
    """The encoder's mean mu(x) for every row of x: (n, L) on the device."""
    chunks = []
    for start in range(0, len(x), batch_size):
        yb = labels[start : start + batch_size] if model.num_classes else None
        chunks.append(model.encode(x[start : start + batch_size], yb)[0])
    return model.xp.concatenate(chunks)


def active_units(model, x, labels=None, threshold=0.01) -> int:
    r"""Latent dimensions the model uses: :math:`\mathrm{Var}_x\, \mathbb E_q[z_u] > 0.01`
    (Burda et al. 2015). A unit whose posterior mean ignores x carries no information."""
    mu = posterior_means(model, x, labels)  # (n, L)
    return int((mu.var(axis=0) > threshold).sum())


def active_units_per_layer(model, x, labels=None, threshold=0.01) -> list:
    """Active units of each latent layer, bottom first: ``[a]`` for one layer, ``[a1, a2]``
    for two (z1, then z2 taken at z1's posterior mean, as ``HierarchicalVAE.encode`` gives it)."""
    active = posterior_means(model, x, labels).var(axis=0) > threshold  # (L,)
    sizes = getattr(model, "latent_dims", (model.latent_dim,))
    ends = np.cumsum((0, *sizes))
    return [int(active[a:b].sum()) for a, b in zip(ends[:-1], ends[1:])]


def layer_counts(per_layer, model) -> str:
    """``"12/20"``, or for two layers ``"z1 30/100 z2 4/50"``: active units in words."""
    sizes = getattr(model, "latent_dims", (model.latent_dim,))
    if len(sizes) == 1:
        return f"{per_layer[0]}/{sizes[0]}"
    return " ".join(f"z{i} {a}/{n}" for i, (a, n) in enumerate(zip(per_layer, sizes), start=1))


def mean_log_likelihood(model, x, labels, k: int, seed=0, progress=False) -> float:
    """Mean importance-weighted log p(x) over the rows of x, with a progress bar per image."""
    per_call = max(1, 65536 // k)  # images per call: a few seconds of work each
    rng = model.backend.rng(seed)  # the importance samples
    total = model.xp.zeros((), dtype=model.xp.float64)
    with tqdm(total=len(x), desc=f"log p(x), k={k}", unit="image", disable=not progress) as bar:
        for start in range(0, len(x), per_call):
            xb = x[start : start + per_call]
            yb = labels[start : start + per_call] if model.num_classes else None
            total += model.log_likelihood(xb, k=k, labels=yb, rng=rng).sum()
            bar.update(len(xb))
    return float(total) / len(x)
