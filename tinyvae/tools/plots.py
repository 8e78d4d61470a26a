"""The pictures a run writes: image grids, loss curves, the latent space.

Every function takes host (NumPy) arrays and writes one PNG, atomically (a temporary file
renamed into place, as checkpoints are), so a crash mid-write never leaves a picture cut
short. They use matplotlib's
object interface (``Figure``, never ``pyplot``), so they need no display, change no global
state and work the same in a script, a test or a notebook. Each also returns its figure.

    >>> save_grid("samples.png", images, (28, 28), ncols=8)    # images (64, 784) in [0, 1]

The last two functions draw what ``tinyvae.train`` writes into a run folder.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from statistics import NormalDist

import numpy as np

from tinyvae.errors import UserError

try:
    from matplotlib.figure import Figure
except ValueError as error:  # matplotlib checks its settings on import: MPLBACKEND=bogus
    raise UserError(
        f"matplotlib cannot start ({str(error).split(';')[0]}): check MPLBACKEND "
        f"(now {os.environ.get('MPLBACKEND')!r}) and matplotlibrc; the pictures need no "
        "display, so unset MPLBACKEND or set it to agg"
    ) from None
from tinyvae.tools.files import atomic_write


def tile(images, shape, ncols=8, pad=1, pad_value=1.0) -> np.ndarray:
    """(n, H*W) images -> one (rows*(H+pad)+pad, ncols*(W+pad)+pad) picture, row by row."""
    images = np.clip(np.asarray(images, dtype=np.float32), 0, 1)
    n, (H, W) = len(images), shape
    rows = max(1, math.ceil(n / ncols))
    canvas = np.full((rows * (H + pad) + pad, ncols * (W + pad) + pad), pad_value, np.float32)
    for i, image in enumerate(images.reshape(n, H, W)):
        r, c = divmod(i, ncols)
        top, left = pad + r * (H + pad), pad + c * (W + pad)
        canvas[top : top + H, left : left + W] = image
    return canvas


def picture_format(path) -> str:
    """The format a picture's name asks for (``grid.pdf`` -> "pdf"; no ending: "png"), or a
    UserError when matplotlib cannot write it."""
    image_format = Path(path).suffix.lstrip(".").lower() or "png"
    known = set(Figure().canvas.get_supported_filetypes()) - {"pgf"}  # pgf needs LaTeX
    if image_format not in known:
        raise UserError(
            f"cannot write a picture named {Path(path).name}: pictures can be written as "
            f".{', .'.join(sorted(known))}; choose a name with one of these endings"
        )
    return image_format


def save_figure(fig, path, **options):
    """``fig.savefig(path, **options)``, written atomically; the format follows the suffix."""
    image_format = picture_format(path)
    atomic_write(path, lambda f: fig.savefig(f, format=image_format, **options))


def _figure(width_px, height_px, title=None, inches=6.0):
    """A figure about ``inches`` wide whose one axes keeps the picture's aspect ratio."""
    aspect = height_px / width_px
    fig = Figure(figsize=(inches, inches * aspect + (0.4 if title else 0.1)), dpi=100)
    ax = fig.add_axes((0.01, 0.01, 0.98, 0.98 * inches * aspect / fig.get_figheight()))
    ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=10, y=0.99)
    return fig, ax


def save_grid(path, images, shape, ncols=8, title=None, row_labels=None):
    """Images (n, H*W) in [0, 1] as a grid, white-on-black, with optional labels per row."""
    canvas = tile(images, shape, ncols)
    fig, ax = _figure(canvas.shape[1], canvas.shape[0], title)
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    for r, label in enumerate(row_labels or []):  # e.g. the class of each row
        y = 1 + r * (shape[0] + 1) + shape[0] / 2
        ax.text(-1, y, str(label), ha="right", va="center", fontsize=9)
    save_figure(fig, path, bbox_inches="tight", pad_inches=0.05)  # "tight": keeps the row labels
    return fig


def save_reconstructions(path, originals, reconstructions, shape, ncols=8, title=None):
    """Rows of ``ncols`` originals, each row followed by the row of their reconstructions."""
    originals, reconstructions = np.asarray(originals), np.asarray(reconstructions)
    rows = []
    for start in range(0, len(originals), ncols):
        rows += [originals[start : start + ncols], reconstructions[start : start + ncols]]
    return save_grid(
        path,
        np.concatenate(rows),
        shape,
        ncols,
        title or "test images (odd rows) and their reconstructions (even rows)",
    )


def save_loss_curves(path, history):
    """Train and test loss per epoch (left) and the loss's two parts (right), in nats/image."""
    epochs = [h["epoch"] for h in history]
    fig = Figure(figsize=(10, 4), dpi=100)
    left, right = fig.subplots(1, 2)
    left.plot(epochs, [h["train_loss"] for h in history], "o-", label="train")
    left.plot(epochs, [h["test_loss"] for h in history], "s-", label="test")
    left.set(xlabel="epoch", ylabel="negative ELBO (nats / image)", title="loss")
    right.plot(epochs, [h["recon"] for h in history], "o-", label="reconstruction")
    right.plot(epochs, [h["kl"] for h in history], "s-", label="KL")
    right.set(xlabel="epoch", ylabel="nats / image", title="train loss in parts")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    save_figure(fig, path)
    return fig


def most_active_units(mu, count=2) -> list:
    """The ``count`` latent units whose posterior mean varies most over the images, most
    first: mu (n, L) -> unit numbers. A collapsed unit's mean hardly moves (variance < 0.01)."""
    variances = np.asarray(mu).var(axis=0)  # (L,)
    return [int(u) for u in np.argsort(-variances, kind="stable")[:count]]


def save_latent_scatter(path, mu, labels, title=None, class_names=()):
    """Each image's posterior mean on the two most active latent units, coloured by label.

    mu : (n, L) posterior means; labels : (n,) integers; class_names : what label i means
    (the colour bar shows these names when given). The axes name the units they show and how
    much each one's mean varies. With L = 1 the vertical axis is the label."""
    mu, labels = np.asarray(mu), np.asarray(labels)
    variances = mu.var(axis=0)  # (L,)
    units = sorted(most_active_units(mu, 2))  # the lower-numbered one across, as manifold.png
    fig = Figure(figsize=(7, 5.5), dpi=100)
    ax = fig.subplots()
    ys = mu[:, units[1]] if len(units) > 1 else labels + np.linspace(-0.3, 0.3, len(labels))
    many = len(class_names) or labels.max(initial=0) + 1
    points = ax.scatter(mu[:, units[0]], ys, c=labels, cmap="tab10" if many <= 10 else "turbo",
                        s=5, alpha=0.7, vmin=-0.5, vmax=max(9, many - 1) + 0.5)  # fmt: skip
    bar = fig.colorbar(points, ax=ax, label="class" if len(class_names) else "label")
    ticks = np.unique(labels)[:20]
    bar.set_ticks(ticks)
    if len(class_names):
        bar.set_ticklabels([class_names[t] if t < len(class_names) else str(t) for t in ticks])
    axis = lambda u: f"z[{u}]   (variance of its mean over these images: {variances[u]:.3g})"
    ax.set_xlabel(axis(units[0]))
    ax.set_ylabel(axis(units[1]) if len(units) > 1 else "label (spread a little)")
    active = int((variances > 0.01).sum())
    which = " on its two latent units" if len(variances) == 2 else (
        f"\non the two most active of its {len(variances)} latent units ({active} active)")  # fmt: skip
    ax.set_title(title or f"posterior means of the test images{which}", fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)
    return fig


def save_manifold(path, images, shape, values, title=None):
    """The decoded latent grid (n*n, H*W), rows from high z[1] (top) to low, columns from low
    z[0] to high, with the z value of every few rows and columns on the axes."""
    n = len(values)
    canvas = tile(images, shape, ncols=n)
    fig = Figure(figsize=(9, 9.6), dpi=100)
    ax = fig.add_axes((0.1, 0.08, 0.86, 0.84))
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    H, W = shape
    shown = sorted({0, n // 4, n // 2, 3 * n // 4, n - 1})
    ax.set_xticks([1 + c * (W + 1) + W / 2 for c in shown], [f"{values[c]:.2f}" for c in shown])
    ax.set_yticks([1 + r * (H + 1) + H / 2 for r in shown], [f"{values[n - 1 - r]:.2f}" for r in shown])
    ax.set(xlabel="z[0]", ylabel="z[1]")
    ax.set_title(title or "the decoder's mean image at each point of a grid over the 2-D latent "
                 "space\n(standard-normal quantiles 0.05 to 0.95: where the prior puts its mass)",
                 fontsize=10)  # fmt: skip
    save_figure(fig, path)
    return fig


def manifold_values(n=20, quantile=0.05) -> np.ndarray:
    """n standard-normal quantiles from ``quantile`` to ``1 - quantile``, evenly spaced in
    prior probability: the coordinates of the manifold's grid, low to high."""
    return np.array([NormalDist().inv_cdf(p) for p in np.linspace(quantile, 1 - quantile, n)])


def manifold_latents(n=20, quantile=0.05) -> np.ndarray:
    """An n x n grid of 2-D latent points, (n*n, 2), evenly spaced in prior probability.

    Coordinates are :func:`manifold_values`, so the grid covers where the prior puts its
    mass (Kingma & Welling 2014, figure 4). Rows run from high z[1] (top) to low; columns
    from low z[0] to high.
    """
    values = manifold_values(n, quantile)
    return np.array([[x, y] for y in values[::-1] for x in values], dtype=np.float32)


def interpolation_latents(z_a, z_b, steps=10) -> np.ndarray:
    """``steps`` points on the straight line from z_a to z_b (both ends included): (steps, L)."""
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]  # (steps, 1)
    return (1 - t) * np.asarray(z_a)[None] + t * np.asarray(z_b)[None]


# --- the pictures of a run (tinyvae.train) -------------------------------------------------


def save_epoch_pictures(folder, model, epoch, z, labels, test_x, test_y, shape, history):
    """samples_epochNN.png (the fixed draws z decoded), reconstructions_epochNN.png, loss.png."""
    to_host = model.backend.to_host
    row_labels = None if labels is None else [int(k) for k in labels[::8]]
    save_grid(
        Path(folder) / f"samples_epoch{epoch:02d}.png",
        to_host(model.decode(z, labels)),
        shape,
        ncols=8,
        title=f"samples from the prior after epoch {epoch}",
        row_labels=row_labels,
    )
    x, y = test_x[:32], test_y[:32] if model.num_classes else None
    recon = model.reconstruct(x, y)
    save_reconstructions(
        Path(folder) / f"reconstructions_epoch{epoch:02d}.png", to_host(x), to_host(recon), shape
    )
    save_loss_curves(Path(folder) / "loss.png", history)


def save_final_pictures(folder, model, mu, test_x, test_y, shape, class_names=()):
    """latent.png, manifold.png (2-D latent, unconditional) and interpolation.png.

    mu : (n, L) host array of the test images' posterior means; test_x : (at least 8, D) host
    test images; test_y : (n,) host labels; class_names : what each label means, if not itself.
    """
    folder, decode = Path(folder), lambda z, y=None: model.backend.to_host(model.decode(z, y))
    save_latent_scatter(folder / "latent.png", mu, test_y, class_names=class_names)
    if model.latent_dim == 2 and not model.num_classes:
        save_manifold(folder / "manifold.png", decode(manifold_latents(20)), shape,
                      manifold_values(20))  # fmt: skip
    rows, steps = [], 10
    for a in range(0, min(8, len(mu) - 1), 2):  # pairs of test images: 0-1, 2-3, 4-5, 6-7
        labels = np.repeat(test_y[a : a + 1], steps) if model.num_classes else None
        line = decode(interpolation_latents(mu[a], mu[a + 1], steps), labels)  # (steps, D)
        rows += [test_x[a : a + 1], line, test_x[a + 1 : a + 2]]
    save_grid(
        folder / "interpolation.png",
        np.concatenate(rows),
        shape,
        ncols=steps + 2,
        title=f"left and right: two test images; between: {steps} points on the straight line "
        "between their codes, decoded",
    )
