r"""Latent walks as animations: a closed path through z, decoded frame by frame.

    python -m tinyvae.sample --pretrained fashion-conv --walk --out walk.gif
    python -m tinyvae.sample --run runs/cvae --walk --label all --out classes.gif

**A great circle.** Two independent draws u, v ~ N(0, I) of shape (n, L) give n paths

.. math:: z(t) = \cos(t)\, u + \sin(t)\, v, \qquad t = 2\pi k / F, \quad k = 0 \dots F-1.

Each z(t) is itself a draw from the prior N(0, I) (cos² t + sin² t = 1), so every frame
looks like a sample, and the path closes on itself: the animation loops without a jump.

**Between classes** (a conditional model with ``--label all``): each of the n tiles keeps
its own z (its "style") and the label travels 0 → 1 → ... → C-1 → 0, given to the decoder
as a mix of two neighbouring one-hot vectors, (1 - s) e_k + s e_(k+1), in place of e_k.

**Smoothness.** The step between two frames is the mean over all pixels of
|frame_(k+1) - frame_k| (pixels in [0, 1]; the last frame is followed by the first).
:func:`smoothness` gives the largest step and the average one.

Frames are written by matplotlib's animation writers: PillowWriter for ``.gif``,
FFMpegWriter for ``.mp4`` where ``ffmpeg`` is on the PATH.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np
from matplotlib import animation

from tinyvae.core.layers import sigmoid
from tinyvae.errors import UserError
from tinyvae.tools.plots import Figure, tile

WRITERS = {".gif": "pillow", ".mp4": "ffmpeg"}  # the file's ending -> matplotlib's writer
MAX_FRAMES = 1000  # --frames: 1,000 frames are already 40 s at 25 per second
MAX_IMAGES = 100_000  # frames x tiles decoded for one walk
CHUNK = 1024  # images decoded at once: bounds the memory a long walk takes
SIDE_PX = 240  # a frame is scaled up by whole pixels to about this many pixels across


def check_output(path) -> str:
    """The writer for an animation named ``path`` ("pillow" or "ffmpeg"), or a UserError."""
    suffix = Path(path).suffix.lower()
    if suffix not in WRITERS:
        raise UserError(
            f"cannot write an animation named {Path(path).name}: a walk is written as .gif "
            "(or .mp4 where ffmpeg is installed); choose a name with one of these endings"
        )
    if not animation.writers.is_available(WRITERS[suffix]):
        raise UserError(
            f"writing {Path(path).name} needs ffmpeg, which is not on the PATH here: "
            "install ffmpeg, or write a .gif"
        )
    return WRITERS[suffix]


def check_size(frames: int, n: int) -> None:
    """A walk decodes frames x n images: refuse one too large before decoding anything."""
    if frames * n > MAX_IMAGES:
        raise UserError(
            f"--frames {frames} with --n {n} asks for {frames * n:,} images, more than the "
            f"{MAX_IMAGES:,} one walk may decode: give fewer frames or a smaller --n"
        )


# --- the paths ----------------------------------------------------------------------------


def great_circle(n: int, latent_dim: int, frames: int, rng) -> np.ndarray:
    """n closed paths through the prior: (frames, n, latent_dim), z(t) = cos t u + sin t v."""
    u, v = rng.standard_normal((2, n, latent_dim))  # (n, L) each
    t = 2 * np.pi * np.arange(frames) / frames  # (F,), the last step leads back to t = 0
    return np.cos(t)[:, None, None] * u + np.sin(t)[:, None, None] * v  # (F, n, L)


def class_path(num_classes: int, frames: int) -> np.ndarray:
    """Label weights (frames, C) going 0 -> 1 -> ... -> C-1 -> 0: each row is
    (1 - s) e_k + s e_(k+1), a point on the segment between two one-hot vectors."""
    position = num_classes * np.arange(frames) / frames  # (F,) in [0, C)
    k = np.floor(position).astype(int)
    s = position - k  # how far from class k towards class k + 1
    weights = np.zeros((frames, num_classes))
    weights[np.arange(frames), k] = 1 - s
    weights[np.arange(frames), (k + 1) % num_classes] += s
    return weights


def decode_mixed(model, z, weights):
    """z (B, L) and label weights (B, C) -> images (B, D): the decoder given [z | weights].
    One-hot weights give exactly ``model.decode(z, labels)``."""
    inputs = model.xp.concatenate([z, weights], axis=1).astype(model.dtype)  # (B, L + C)
    out = model.decoder.forward(inputs)  # (B, D) logits or Gaussian means
    return sigmoid(out) if model.likelihood == "bernoulli" else out


def walk_images(model, n: int, frames: int, seed: int = 0, label=None) -> np.ndarray:
    """The decoded walk: host images (frames, n, D) in [0, 1].

    ``label``: None for a model that is not conditional, a class K (every tile is of class
    K while z walks a great circle), or "all" (z stays, the class walks round)."""
    rng, L = np.random.default_rng(seed), model.latent_dim
    if label == "all":
        z = np.broadcast_to(rng.standard_normal((n, L)), (frames, n, L))  # each tile stays
        weights = np.repeat(class_path(model.num_classes, frames), n, axis=0)  # (F*n, C)
    else:
        z = great_circle(n, L, frames, rng)  # (F, n, L)
    z = z.reshape(frames * n, L)
    out = []
    for start in range(0, len(z), CHUNK):
        rows = slice(start, start + CHUNK)
        zs = model.backend.asarray(z[rows].astype(model.dtype))
        if label == "all":
            images = decode_mixed(model, zs, model.backend.asarray(weights[rows]))
        else:
            labels = None if label is None else np.full(len(zs), int(label))
            images = model.decode(zs, labels)
        out.append(model.backend.to_host(images))
    return np.clip(np.concatenate(out), 0, 1).reshape(frames, n, -1)  # (F, n, D)


def smoothness(frames) -> tuple:
    """(largest, average) step between consecutive frames (F, ...): mean |Δ pixel|."""
    frames = np.asarray(frames, dtype=np.float64)
    steps = np.abs(np.roll(frames, -1, axis=0) - frames).reshape(len(frames), -1).mean(axis=1)
    return float(steps.max()), float(steps.mean())


# --- writing ------------------------------------------------------------------------------


def canvases(images, shape, ncols: int) -> np.ndarray:
    """(F, n, H*W) -> (F, height, width): each frame's tiles in one picture."""
    return np.stack([tile(frame, shape, ncols) for frame in images])


def _figure(canvas):
    """A figure exactly the canvas's size, scaled up by whole pixels, holding only it."""
    height, width = canvas.shape
    scale = max(1, round(SIDE_PX / max(height, width)))
    fig = Figure(figsize=(width * scale / 100, height * scale / 100), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    picture = ax.imshow(canvas, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    return fig, picture


def save_animation(path, frames, seconds: float) -> None:
    """Write the canvases (F, height, width) as ``path`` (.gif or .mp4), ``seconds`` long.

    Written under a temporary name beside ``path`` and renamed into place when complete."""
    path = Path(path)
    writer_name = check_output(path)
    fig, picture = _figure(frames[0])
    fps = len(frames) / seconds
    writer = animation.writers[writer_name](fps=fps)
    movie = animation.FuncAnimation(
        fig, lambda k: [picture.set_data(frames[k])], frames=len(frames), blit=False
    )
    temporary = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        movie.save(temporary, writer=writer, dpi=100)
        os.replace(temporary, path)
    except OSError as error:
        raise UserError(f"cannot write {path} ({error.strerror or error})") from None
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink()


def save_frame(path, canvas) -> None:
    """One frame as a still picture (PNG), the size it has in the animation."""
    fig, _ = _figure(canvas)
    fig.savefig(path, dpi=100)
