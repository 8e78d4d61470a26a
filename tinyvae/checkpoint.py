"""Checkpoints: one ``.npz`` of plain arrays plus a JSON description, written atomically.

What one holds (``np.savez``; loaded with ``allow_pickle=False``, so it can never run code)::

    params            (P,)  every model parameter, as the flat buffer of tinyvae/params.py
    optimizer.<name>  (P,)  the optimizer's arrays (Adam: m and v; SGD: velocity)
    meta              ()    a JSON string: format, model config, parameter names and shapes,
                            optimizer name and step count, training state, training config

    >>> save("run/checkpoint.npz", model, optimizer, state={"epoch": 3})   # doctest: +SKIP
    >>> ckpt = load("run/checkpoint.npz")                                  # doctest: +SKIP
    >>> model = build_model(ckpt)            # the same architecture, the saved weights

"Atomically": the file is written under a temporary name in the same folder, flushed to
disk, then renamed over the old one (``os.replace``), so a crash or Ctrl-C leaves either the
old checkpoint or the new one, never half of one. Anything that is not a complete tinyvae
checkpoint raises :class:`CheckpointError` with a one-line message.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyvae.errors import UserError
from tinyvae.model import VAE

FORMAT, VERSION = "tinyvae-checkpoint", 1
#: model.config entries that fix the architecture (a checkpoint fits only a model that agrees)
ARCHITECTURE = (
    "input_dim",
    "hidden",
    "latent_dim",
    "likelihood",
    "activation",
    "num_classes",
    "gaussian_logvar",
)


class CheckpointError(UserError):
    """A checkpoint file cannot be used; the message names it and says why."""


@dataclass
class Checkpoint:
    """A loaded checkpoint: host arrays and the decoded JSON description."""

    path: Path
    arrays: dict  # name -> np.ndarray
    meta: dict  # format, version, model, param_shapes, optimizer, state, config

    @property
    def state(self) -> dict:
        """Training state: epoch, step, history ... (whatever the trainer saved)."""
        return self.meta.get("state", {})


def atomic_write(path, write, mode="wb") -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, fsync it, rename it to ``path``."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise UserError(f"cannot write in {path.parent}: {error.strerror or error}") from None
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the name points at them
        os.replace(tmp, path)
    except BaseException as error:  # includes KeyboardInterrupt: never leave the temp file
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(error, OSError):
            raise UserError(f"cannot write {path}: {error.strerror or error}") from None
        raise


def save(path, model, optimizer=None, state=None, config=None) -> None:
    """Write ``model`` (and ``optimizer``, training ``state``, ``config``) to ``path``."""
    to_host = model.backend.to_host
    arrays = {"params": to_host(model.flat.data)}
    opt_meta = None
    if optimizer is not None:
        opt_meta = {"name": type(optimizer).__name__.lower()}
        for key, value in optimizer.state_dict().items():
            if hasattr(value, "shape"):
                arrays[f"optimizer.{key}"] = to_host(value)
            else:
                opt_meta[key] = value  # the step count t
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "model": model.config,
        "param_shapes": [[name, list(shape)] for name, shape in model.flat.shapes.items()],
        "optimizer": opt_meta,
        "state": state or {},
        "config": config or {},
    }
    arrays["meta"] = np.asarray(json.dumps(meta))  # a 0-d string array: no pickle needed
    atomic_write(path, lambda f: np.savez(f, **arrays))


def load(path) -> Checkpoint:
    """Read and check a checkpoint; every way it can be unusable is a CheckpointError."""
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.npz"
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    with open(path, "rb") as f:
        if f.read(4) != b"PK\x03\x04":
            raise CheckpointError(f"{path}: not a tinyvae checkpoint (not an .npz archive)")
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
    except ValueError as error:
        if "pickle" in str(error) or "Object arrays" in str(error):
            raise CheckpointError(
                f"{path}: holds pickled objects, which tinyvae never writes and will not load"
            ) from None
        raise CheckpointError(f"{path}: corrupt ({error})") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, KeyError) as error:
        raise CheckpointError(
            f"{path}: truncated or corrupt ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else 'no detail'}); "
            "use an earlier copy or train again"
        ) from None
    meta = _meta(path, arrays.pop("meta", None))
    _check_arrays(path, arrays, meta)
    return Checkpoint(path, arrays, meta)


def _meta(path, stored) -> dict:
    if stored is None or stored.shape != () or stored.dtype.kind != "U":
        raise CheckpointError(f"{path}: not a tinyvae checkpoint (no JSON 'meta' entry)")
    try:
        meta = json.loads(str(stored[()]))
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{path}: damaged description ({error})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a tinyvae checkpoint (format is not {FORMAT!r})")
    if meta.get("version") != VERSION:
        raise CheckpointError(
            f"{path}: checkpoint version {meta.get('version')!r}; this "
            f"tinyvae reads version {VERSION}"
        )
    for key in ("model", "param_shapes"):
        if key not in meta:
            raise CheckpointError(f"{path}: description lacks {key!r}")
    return meta


def _check_arrays(path, arrays, meta) -> None:
    """params is a float vector as long as the shapes say; optimizer arrays match it."""
    size = sum(int(np.prod(shape)) for _, shape in meta["param_shapes"])
    params = arrays.get("params")
    if params is None or params.dtype.kind != "f" or params.shape != (size,):
        got = "nothing" if params is None else f"{params.dtype} {params.shape}"
        raise CheckpointError(f"{path}: 'params' should be {size} floats, found {got}")
    for name, array in arrays.items():
        if name.startswith("optimizer.") and array.shape != (size,):
            raise CheckpointError(f"{path}: {name!r} has shape {array.shape}, expected ({size},)")
    if not np.isfinite(params).all():
        raise CheckpointError(f"{path}: parameters contain NaN or Inf")


def describe(model_config: dict) -> str:
    """``"784-400-20 relu bernoulli"``: an architecture in a few words, for messages."""
    c = model_config
    sizes = "-".join(
        str(s) for s in [c.get("input_dim"), *c.get("hidden", []), c.get("latent_dim")]
    )
    extra = f" {c['num_classes']} classes" if c.get("num_classes") else ""
    return f"{sizes} {c.get('activation')} {c.get('likelihood')}{extra}"


def restore(ckpt: Checkpoint, model, optimizer=None) -> None:
    """Copy the saved parameters (and optimizer state) into ``model`` (and ``optimizer``)."""
    saved, ours = ckpt.meta["model"], model.config
    if (
        any(saved.get(k) != ours.get(k) for k in ARCHITECTURE)
        or [[n, list(s)] for n, s in model.flat.shapes.items()] != ckpt.meta["param_shapes"]
    ):
        raise CheckpointError(
            f"{ckpt.path}: written for a {describe(saved)} model, not this {describe(ours)} one"
        )
    model.flat.data[...] = model.backend.asarray(ckpt.arrays["params"])
    if optimizer is None:
        return
    opt_meta = ckpt.meta.get("optimizer") or {}
    name = type(optimizer).__name__.lower()
    if opt_meta.get("name") != name:
        raise CheckpointError(
            f"{ckpt.path}: holds {opt_meta.get('name')} state, "
            f"not {name} (a resumed run keeps its optimizer)"
        )
    state = {k: v for k, v in opt_meta.items() if k != "name"}
    for key, value in ckpt.arrays.items():
        if key.startswith("optimizer."):
            state[key.removeprefix("optimizer.")] = model.backend.asarray(value)
    try:
        optimizer.load_state_dict(state)
    except KeyError as error:
        raise CheckpointError(f"{ckpt.path}: optimizer state lacks {error}") from None


def build_model(ckpt: Checkpoint, backend="numpy"):
    """A new VAE with the checkpoint's architecture and weights, on ``backend``."""
    try:
        model = VAE(**ckpt.meta["model"], backend=backend)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{ckpt.path}: cannot rebuild its model ({error})") from None
    restore(ckpt, model)
    return model
