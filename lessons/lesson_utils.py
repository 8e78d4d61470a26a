"""What every lesson shares: the one switch (full or quick), the data, image grids, checkers.

The switch is the environment variable ``TINYVAE_LESSON_MODE``:

* unset or ``full`` (for students): MNIST (downloaded once) and training runs long enough
  to give good pictures. If MNIST cannot be downloaded, a printed note says so and the
  lesson uses Fashion-MNIST from Debian's package when it is installed, else the bundled
  8x8 ``digits``.
* ``quick`` (for CI, or a first read-through): the bundled 8x8 ``digits`` (offline) and
  short training runs, so every lesson runs in seconds.

    >>> S = settings()          # reads TINYVAE_LESSON_MODE
    >>> data = load_data(S)     # a tinyvae.tools.data.Dataset, with a note on what was loaded

No cell of a lesson changes between the two modes: only these numbers do.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# The lessons use the tinyvae of the checkout they live in, installed or not.
ROOT = Path(__file__).resolve().parents[1]
if (ROOT / "tinyvae" / "__init__.py").is_file() and str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tinyvae.errors import UserError  # noqa: E402
from tinyvae.tools.data import SYSTEM_DIRS, load  # noqa: E402
from tinyvae.tools.threads import use_automatic_threads  # noqa: E402

MODE_VARIABLE = "TINYVAE_LESSON_MODE"
MODES = ("full", "quick")


@dataclass(frozen=True)
class Settings:
    """The numbers that differ between a student's run and a quick run."""

    mode: str  # "full" or "quick"
    dataset: str  # what load_data asks for first: "mnist", or "digits" when quick
    steps: int  # optimizer steps of each training run inside a lesson
    batch_size: int  # images per step
    hidden: int  # units in each hidden layer of the lessons' networks
    n_show: int  # images in the scatter plots and evaluations (at most the test set)
    seed: int = 0  # seeds every model and every random draw in the lessons
    channels: tuple = (32, 64)  # the convolutions of lesson 10's conv VAE (the default recipe)


def settings() -> Settings:
    """The :class:`Settings` chosen by ``TINYVAE_LESSON_MODE`` (``full`` when unset)."""
    mode = os.environ.get(MODE_VARIABLE, "full").strip().lower() or "full"
    if mode not in MODES:
        raise ValueError(
            f"{MODE_VARIABLE}={mode!r} is not a lesson mode: use 'full' (MNIST, the default) "
            "or 'quick' (the bundled 8x8 digits, short training)"
        )
    if mode == "quick":
        S = Settings("quick", "digits", steps=1500, batch_size=100, hidden=128, n_show=297,
                     channels=(16, 32))  # fmt: skip
    else:
        S = Settings("full", "mnist", steps=6000, batch_size=100, hidden=256, n_show=2000)
    print(
        f"Lesson mode {S.mode!r} ({MODE_VARIABLE}): data set {S.dataset!r}, "
        f"{S.steps} training steps of {S.batch_size} images, hidden layers of {S.hidden}."
    )
    choose_threads_once(S)
    return S


_threads = None  # (threads, why): chosen by the first settings() of this kernel


def choose_threads_once(S: Settings) -> None:
    """Give the matrix products as many threads as ``tinyvae.train`` would give a network
    of this lesson's size: one when other programs keep the CPUs busy (several threads
    would each wait for a busy CPU), more only where they are faster. Chosen once a kernel,
    so that running the cell again gives the same numbers."""
    global _threads
    if _threads is None:
        D = 784 if S.dataset != "digits" else 64  # pixels per image
        layers = [(D, S.hidden), (S.hidden, S.hidden), (S.hidden, D)]
        _threads = use_automatic_threads(layers, S.batch_size)
    print(f"Threads for the matrix products: {_threads[0]} ({_threads[1]}).")


def load_data(S: Settings):
    """Load ``S.dataset``; if MNIST cannot be had, say why and use what this machine has."""
    try:
        data = load(S.dataset)
    except UserError as error:
        if S.dataset == "digits":
            raise
        fashion = SYSTEM_DIRS.get("fashion-mnist")  # Debian's copy, readable offline
        fallback = "fashion-mnist" if fashion is not None and fashion.is_dir() else "digits"
        reason = str(error).split("; to work offline")[0]  # the tools' advice names CLI flags
        print(f"NOTE: {S.dataset} could not be loaded: {reason}.")
        what = {"fashion-mnist": "Fashion-MNIST (28x28 pictures of clothes, 10 classes)",
                "digits": "the bundled 8x8 digits"}[fallback]  # fmt: skip
        print(f"NOTE: this lesson uses {what} instead; everything else is unchanged.")
        if fallback == "fashion-mnist":
            print("NOTE: where the text says digits, read garments: the classes are clothes.")
        print(
            "NOTE: to use MNIST, run tinyvae.load('mnist') once on a machine with a network "
            "(it is kept in $TINYVAE_DATA, else ~/.cache/tinyvae), or copy its four files there."
        )
        data = load(fallback)
    print(
        f"Loaded {data.name!r}: {len(data.train_x)} training and {len(data.test_x)} test "
        f"images of {data.image_shape[0]}x{data.image_shape[1]} = {data.train_x.shape[1]} pixels."
    )
    return data


MAX_GRID_IMAGES = 10_000  # a grid of more is not a picture anyone can read


def whole_number(value, name, least):
    """``value`` as an int of at least ``least``, else a UserError that names ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise UserError(f"{name} must be a whole number of at least {least}, not {value!r}")
    return int(value)


def image_grid(images, image_shape, ncols=10, pad=1, gap=0.15):
    """(n, H*W) -> one (rows*(H+pad), ncols*(W+pad)) array for a single ``imshow``;
    the images are separated by ``pad`` pixels of the light grey level ``gap``."""
    images = np.asarray(images)
    if len(image_shape) != 2:
        raise UserError(f"image_shape must be (height, width), not {image_shape!r}")
    H, W = (whole_number(side, "each side of image_shape", 1) for side in image_shape)
    ncols, pad = whole_number(ncols, "ncols", 1), whole_number(pad, "pad", 0)
    if images.ndim == 1:  # one image
        images = images[None]
    if images.ndim != 2 or images.shape[1] != H * W:
        raise UserError(
            f"images of shape {images.shape} are not rows of {H}x{W} = {H * W} pixels: give "
            "an array (n, H*W) and the image_shape (H, W) its images have"
        )
    n = len(images)
    if not 1 <= n <= MAX_GRID_IMAGES:
        raise UserError(f"{n} images cannot make a grid: show 1 to {MAX_GRID_IMAGES:,}")
    ncols = min(ncols, n)  # no empty columns beside a short row
    nrows = -(-n // ncols)
    grid = np.full((nrows * (H + pad) - pad, ncols * (W + pad) - pad), gap, dtype=np.float32)
    for k, image in enumerate(images):
        r, c = divmod(k, ncols)
        grid[r * (H + pad) : r * (H + pad) + H, c * (W + pad) : c * (W + pad) + W] = image.reshape(
            H, W
        )
    return grid


def show_images(ax, images, image_shape, ncols=10, title=None):
    """Draw images (n, H*W) with values in [0, 1] as a grid on the matplotlib axes ``ax``."""
    ax.imshow(image_grid(images, image_shape, ncols), cmap="gray_r", vmin=0, vmax=1)
    ax.set_axis_off()
    if title:
        ax.set_title(title)


def minibatches(batches, steps):
    """Yield ``steps`` (x, y) minibatches from a tinyvae.tools.data.Batches, epoch after epoch."""
    steps = whole_number(steps, "steps", 0)
    done, epoch = 0, 0
    while done < steps:
        for x, y in batches.epoch(epoch):
            yield x, y
            done += 1
            if done == steps:
                return
        epoch += 1


# --- exercise checkers: each says what is right, what is wrong, or that nothing is there yet ---
# They live in grading.py; the lessons and their checker modules import them from here.

from grading import (  # noqa: E402, F401
    RESULTS,
    Wrong,
    call_watched,
    calls_the_answer,
    exercise,
    expect_array,
    expect_close,
    expect_gradient,
    expect_tuple,
    known_mistakes,
    require_passed,
    run_check,
    seeded,
    summary,
)
