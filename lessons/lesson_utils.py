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
    return S


def load_data(S: Settings):
    """Load ``S.dataset``; if MNIST cannot be had, say why and use what this machine has."""
    try:
        data = load(S.dataset)
    except UserError as error:
        if S.dataset == "digits":
            raise
        fashion = SYSTEM_DIRS.get("fashion-mnist")  # Debian's copy, readable offline
        fallback = "fashion-mnist" if fashion is not None and fashion.is_dir() else "digits"
        print(f"NOTE: {S.dataset} could not be loaded ({error}).")
        print(f"NOTE: this lesson uses {fallback!r} instead; everything else is unchanged.")
        data = load(fallback)
    print(
        f"Loaded {data.name!r}: {len(data.train_x)} training and {len(data.test_x)} test "
        f"images of {data.image_shape[0]}x{data.image_shape[1]} = {data.train_x.shape[1]} pixels."
    )
    return data


def image_grid(images, image_shape, ncols=10, pad=1, gap=0.15):
    """(n, H*W) -> one (rows*(H+pad), ncols*(W+pad)) array for a single ``imshow``;
    the images are separated by ``pad`` pixels of the light grey level ``gap``."""
    images = np.asarray(images)
    H, W = image_shape
    n = len(images)
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
    done, epoch = 0, 0
    while done < steps:
        for x, y in batches.epoch(epoch):
            yield x, y
            done += 1
            if done == steps:
                return
        epoch += 1


# --- exercise checkers: each says what is right, what is wrong, or that nothing is there yet ---


class Wrong(Exception):
    """Raised inside a check when the student's answer is wrong; the message says how."""


RESULTS: dict = {}  # exercise name -> True (right), False (wrong) or None (not attempted)


def run_check(name, test, strict=False):
    """Run ``test()``, print one verdict, record it in RESULTS; with ``strict``, fail loudly.

    ``test`` calls the student's function and raises :class:`Wrong` with an explanation
    when an answer is off. A ``NotImplementedError`` (the placeholder) means "not yet".
    """
    try:
        test()
    except NotImplementedError:
        RESULTS[name] = None
        print(
            f"[ ] {name}: not attempted yet. Replace `raise NotImplementedError` "
            "with your code and run this cell again."
        )
    except Wrong as error:
        RESULTS[name] = False
        print(f"[x] {name}: not right yet. {error}")
    except Exception as error:  # the student's code crashed: show why, not a traceback
        RESULTS[name] = False
        print(f"[x] {name}: your code raised {type(error).__name__}: {error}")
    else:
        RESULTS[name] = True
        print(f"[ok] {name}: correct.")
    if strict and RESULTS[name] is not True:
        raise AssertionError(f"{name} did not pass its check")
    return None


def expect_array(value, shape, what):
    """``value`` as a float64 NumPy array of ``shape``, or :class:`Wrong` saying what it is."""
    if hasattr(value, "get"):  # a CuPy array
        value = value.get()
    if not isinstance(value, (np.ndarray, np.generic, float, int)):
        raise Wrong(f"{what} should be an array of shape {shape}, got {type(value).__name__}.")
    value = np.asarray(value, dtype=np.float64)
    if value.shape != tuple(shape):
        raise Wrong(f"{what} has shape {value.shape} but should have shape {tuple(shape)}.")
    if not np.all(np.isfinite(value)):
        raise Wrong(f"{what} contains NaN or infinity.")
    return value


def expect_close(got, want, what, rtol=1e-6, atol=1e-8, hint=""):
    """:class:`Wrong` unless ``got`` matches ``want`` (checked for shape first)."""
    want = np.asarray(want, dtype=np.float64)
    got = expect_array(got, want.shape, what)
    if not np.allclose(got, want, rtol=rtol, atol=atol):
        worst = np.unravel_index(np.argmax(np.abs(got - want)), want.shape) if want.ndim else ()
        detail = f" (at index {tuple(int(i) for i in worst)})" if want.ndim else ""
        raise Wrong(
            f"{what} is off: got {got[worst]:.6g}, expected {want[worst]:.6g}{detail}."
            + (f" {hint}" if hint else "")
        )
    return got


def expect_tuple(out, names):
    """The student's tuple of ``len(names)`` results, or :class:`Wrong` saying what to return."""
    if not isinstance(out, tuple) or len(out) != len(names):
        raise Wrong(f"return a tuple ({', '.join(names)}); got {type(out).__name__}.")
    return out


def known_mistakes(got, mistakes, rtol=1e-6, atol=1e-9):
    """Raise :class:`Wrong` naming the first mistake whose wrong answer equals ``got``.

    mistakes : pairs (the value a typical mistake gives, the explanation to print).
    """
    got = np.asarray(got.get() if hasattr(got, "get") else got, dtype=np.float64)
    for wrong_value, explanation in mistakes:
        wrong_value = np.asarray(wrong_value, dtype=np.float64)
        if got.shape == wrong_value.shape and np.allclose(got, wrong_value, rtol=rtol, atol=atol):
            raise Wrong(explanation)
