"""Models that ship with tinyvae, ready to draw from without training or data files.

    >>> import tinyvae
    >>> model = tinyvae.pretrained("fashion-conv")     # a VAE with the shipped weights
    >>> images = model.sample(16)                       # (16, 784) pixel probabilities
    >>> [m["name"] for m in tinyvae.pretrained_models()]
    ['digits-2d', 'fashion-conv', 'fashion-mlp']

    python -m tinyvae.sample --pretrained fashion-conv --out samples.png
    python -m tinyvae.sample --list-pretrained

Each model is one checkpoint (``tools/checkpoint.py``'s pickle-free format) in
``tinyvae/tools/weights/NAME.npz``, with its parameters stored as float16 (half the bytes
of float32; they are cast back to the model's float32 when loaded) and no optimizer state.
Its description carries one more entry, ``meta["pretrained"]``: the name, what it was
trained on, the command that trained it, its seed, epochs and test loss. The recipe is
``meta["config"]``, as in any run's checkpoint. ``benchmarks/build_pretrained.py`` trains
them all again with ``python -m tinyvae.train`` and writes these files with :func:`write`.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import numpy as np

from tinyvae.errors import UserError
from tinyvae.tools import checkpoint
from tinyvae.tools.files import atomic_write

WEIGHTS = Path(__file__).with_name("weights")  # where the shipped models live
STORED_DTYPE = "float16"  # what their parameters are stored as


def names() -> list:
    """The shipped models' names, sorted: ``["digits-2d", "fashion-conv", ...]``."""
    return sorted(p.stem for p in WEIGHTS.glob("*.npz"))


def path_of(name: str) -> Path:
    """The file of model ``name``; an unknown name is a one-line UserError."""
    known = names()
    if not known:
        raise UserError(
            f"no pretrained models are installed here ({WEIGHTS} holds none): reinstall "
            "tinyvae, or rebuild them with python benchmarks/build_pretrained.py"
        )
    if name not in known:
        close = difflib.get_close_matches(str(name), known, 1, 0.6)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise UserError(
            f"unknown pretrained model {name!r}{hint}: choose one of {', '.join(known)} "
            "(python -m tinyvae.sample --list-pretrained describes them)"
        )
    return WEIGHTS / f"{name}.npz"


def load_checkpoint(name: str) -> checkpoint.Checkpoint:
    """Model ``name``'s checkpoint: its arrays and description (``meta["pretrained"]``)."""
    return checkpoint.load(path_of(name))


def pretrained(name: str, backend: str = "numpy"):
    """A VAE with the weights of the shipped model ``name``, on ``backend``.

    Its images are ``info(name)["image_shape"]`` (H, W): ``model.sample(n)`` returns
    (n, H*W) rows."""
    return checkpoint.build_model(load_checkpoint(name), backend)


def info(name: str) -> dict:
    """What model ``name`` is and how it was made (``meta["pretrained"]``), plus its file's
    ``bytes`` and the ``image_shape`` its rows reshape to."""
    ckpt = load_checkpoint(name)
    return ckpt.meta["pretrained"] | {
        "bytes": ckpt.path.stat().st_size,
        "image_shape": tuple(ckpt.state["image_shape"]),
        "recipe": ckpt.meta["config"],
    }


def pretrained_models() -> list:
    """:func:`info` of every shipped model, by name."""
    return [info(name) for name in names()]


def listing() -> str:
    """The table ``--list-pretrained`` prints: one line per model, then how each was made."""
    rows = [f"{'name':<14}{'size':>9}  {'test loss':>9}  what"]
    for m in pretrained_models():
        rows.append(
            f"{m['name']:<14}{m['bytes'] / 1e6:>7.2f} MB  {m['test_loss']:>9.2f}  "
            f"{m['description']}"
        )
    rows.append("\ntest loss: the negative ELBO on the test set, nats per image. Made with:")
    rows += [f"  {m['name']}: {m['command']}" for m in pretrained_models()]
    return "\n".join(rows)


def write(run_checkpoint, out, about: dict) -> None:
    """Store a trained run's checkpoint as a shipped model in ``out``.

    ``run_checkpoint``: the run's ``checkpoint.load(...)``; ``about``: name, description,
    dataset, command, seed, epochs, test_loss (and anything else worth keeping). The
    parameters are rounded to float16 and the optimizer state is left out."""
    meta = dict(run_checkpoint.meta)
    params = run_checkpoint.arrays["params"]
    if np.abs(params).max() > np.finfo(STORED_DTYPE).max:
        raise UserError(f"{out}: a parameter is too large for {STORED_DTYPE}")
    meta["optimizer"] = None
    meta["pretrained"] = about | {"stored_dtype": STORED_DTYPE}
    arrays = {"params": params.astype(STORED_DTYPE), "meta": np.asarray(json.dumps(meta))}
    atomic_write(out, lambda f: np.savez_compressed(f, **arrays))
