"""Checkpoints: one ``.npz`` of plain arrays plus a JSON description, written atomically.

What one holds (``np.savez``; loaded with ``allow_pickle=False``, so it can never run code)::

    params            (P,)  every model parameter, as the flat buffer of tinyvae/core/params.py
    optimizer.<name>  (P,)  the optimizer's arrays (Adam: m and v; SGD: velocity)
    meta              ()    a JSON string: format, model config, parameter names and shapes,
                            optimizer name and step count, training state, training config

    >>> save("run/checkpoint.npz", model, optimizer, state={"epoch": 3})   # doctest: +SKIP
    >>> ckpt = load("run/checkpoint.npz")                                  # doctest: +SKIP
    >>> model = build_model(ckpt)            # the same architecture, the saved weights

"Atomically": the file is written under a temporary name in the same folder
(``.checkpoint.npz.<pid>.<random>.tmp``), flushed to disk, then renamed over the old one
(``os.replace``), so a crash, Ctrl-C or ``kill -9`` leaves either the old checkpoint or the
new one, never half of one. A temporary file left by a process that was killed is removed
by the next save or load. Anything that is not a complete tinyvae checkpoint raises
:class:`CheckpointError` with a one-line message; nothing in the file is ever executed.
"""

from __future__ import annotations

import json
import math
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyvae.core.hierarchical import HierarchicalVAE
from tinyvae.core.model import VAE
from tinyvae.errors import CheckpointError
from tinyvae.tools.files import atomic_write, remove_stale_temporaries
from tinyvae.tools.model_description import check_model, describe

FORMAT, VERSION = "tinyvae-checkpoint", 2  # version 1 is read too, and converted
#: model.config entries that fix the architecture (a checkpoint fits only a model that agrees)
ARCHITECTURE = ("input_dim", "hidden", "latent_dim", "likelihood", "activation", "num_classes",
                "gaussian_logvar", "arch", "channels", "image_shape", "upper_hidden")  # fmt: skip


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
    remove_stale_temporaries(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint: check the name of the run folder")
    try:
        with open(path, "rb") as f:
            start = f.read(4)
    except OSError as error:
        raise CheckpointError(f"{path}: cannot read ({error.strerror or error})") from None
    if start != b"PK\x03\x04":
        raise CheckpointError(
            f"{path}: not a tinyvae checkpoint (not an .npz archive); give the run folder "
            "or its checkpoint.npz"
        )
    arrays = _read_arrays(path)
    meta = _meta(path, arrays.pop("meta", None))
    _check_arrays(path, arrays, meta)
    return Checkpoint(path, arrays, meta)


#: What reading a damaged archive can raise, from zipfile, zlib and numpy's .npy parser.
DAMAGE = (OSError, EOFError, ValueError, KeyError, IndexError, TypeError, OverflowError,
          MemoryError, SyntaxError,  # SyntaxError: a damaged .npy header dict
          NotImplementedError,  # a zip member stored with a compression zipfile does not know
          RuntimeError,  # an encrypted zip member
          struct.error, zipfile.BadZipFile, zlib.error)  # fmt: skip


def _read_arrays(path) -> dict:
    """The archive's arrays, read with ``allow_pickle=False``: name -> np.ndarray."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
    except ValueError as error:
        if "pickle" in str(error) or "Object arrays" in str(error):
            raise CheckpointError(
                f"{path}: holds pickled objects, which could run code when loaded; tinyvae "
                "never writes them and will not load them: use a checkpoint that tinyvae wrote"
            ) from None
        raise _damaged(path, error) from None
    except DAMAGE as error:
        raise _damaged(path, error) from None
    for name, array in arrays.items():
        if not isinstance(array, np.ndarray):  # a member that is not an .npy file
            raise CheckpointError(
                f"{path}: not a tinyvae checkpoint (its entry {name!r} is not an array)"
            )
    return arrays


def _damaged(path, error) -> CheckpointError:
    detail = str(error).splitlines()[0] if str(error).strip() else "no detail"
    return CheckpointError(
        f"{path}: truncated or corrupt ({type(error).__name__}: {detail[:200]}); "
        "use an earlier copy or train again"
    )


def _meta(path, stored) -> dict:
    if stored is None or stored.shape != () or stored.dtype.kind != "U":
        raise CheckpointError(f"{path}: not a tinyvae checkpoint (no JSON 'meta' entry)")
    try:
        meta = json.loads(str(stored[()]))
    except (ValueError, RecursionError) as error:  # JSONDecodeError is a ValueError
        raise CheckpointError(f"{path}: damaged description ({error})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a tinyvae checkpoint (format is not {FORMAT!r})")
    if meta.get("version") not in (1, VERSION):
        raise CheckpointError(
            f"{path}: checkpoint version {meta.get('version')!r}; this "
            f"tinyvae reads versions 1 and {VERSION}: use the tinyvae that wrote it"
        )
    for key in ("model", "param_shapes"):
        if key not in meta:
            raise CheckpointError(f"{path}: description lacks {key!r}")
    kinds = {"model": dict, "param_shapes": list, "optimizer": (dict, type(None))}
    for key, kind in (kinds | {"state": dict, "config": dict}).items():
        if key in meta and not isinstance(meta[key], kind):
            raise CheckpointError(f"{path}: damaged description ({key!r} has the wrong type)")
    for entry in meta["param_shapes"]:
        if not (
            isinstance(entry, list)
            and len(entry) == 2
            and isinstance(entry[0], str)
            and isinstance(entry[1], list)
            and all(type(n) is int and 0 <= n < 2**31 for n in entry[1])
        ):
            raise CheckpointError(f"{path}: damaged description (parameter shape {entry!r})")
    if meta["version"] == 1:
        meta = _from_version_1(meta)
    older = {"arch": "mlp", "channels": None, "image_shape": None}  # older checkpoints: MLPs
    meta["model"] = older | meta["model"]
    check_model(path, meta["model"], meta["param_shapes"])
    step = (meta.get("optimizer") or {}).get("t", 0)
    if type(step) is not int or step < 0:
        raise CheckpointError(f"{path}: damaged description (optimizer step {step!r})")
    return meta


def _from_version_1(meta: dict) -> dict:
    """Version 1 numbered layers with the activations counted (``encoder.0``, ``encoder.2``,
    ...); version 2 numbers the Linear layers only (``encoder.0``, ``encoder.1``, ...). The
    flat buffer's order is the same, so renaming converts it."""

    def renamed(name):
        part, index, rest = name.split(".", 2) if name.count(".") == 2 else (name, "", "")
        whole = index.isascii() and index.isdigit()
        return f"{part}.{int(index) // 2}.{rest}" if whole else name

    shapes = [[renamed(name), shape] for name, shape in meta["param_shapes"]]
    return meta | {"version": VERSION, "param_shapes": shapes}


def _check_arrays(path, arrays, meta) -> None:
    """params is a float vector as long as the shapes say; optimizer arrays match it."""
    size = sum(math.prod(shape) for _, shape in meta["param_shapes"])
    params = arrays.get("params")
    if params is None or params.dtype.kind != "f" or params.shape != (size,):
        got = "nothing" if params is None else f"{params.dtype} {params.shape}"
        raise CheckpointError(f"{path}: 'params' should be {size} floats, found {got}")
    for name, array in arrays.items():
        if name.startswith("optimizer.") and (array.shape != (size,) or array.dtype.kind != "f"):
            raise CheckpointError(
                f"{path}: {name!r} is {array.dtype} {array.shape}, expected ({size},) floats"
            )
    if not np.isfinite(params).all():
        raise CheckpointError(f"{path}: parameters contain NaN or Inf")


def restore(ckpt: Checkpoint, model, optimizer=None) -> None:
    """Copy the saved parameters (and optimizer state) into ``model`` (and ``optimizer``)."""
    saved, ours = ckpt.meta["model"], model.config
    if (
        any(saved.get(k) != ours.get(k) for k in ARCHITECTURE)
        or [[n, list(s)] for n, s in model.flat.shapes.items()] != ckpt.meta["param_shapes"]
    ):
        raise CheckpointError(
            f"{ckpt.path}: written for a {describe(saved)} model, not this {describe(ours)} "
            "one: use it with the data and recipe it was trained on, or start a new run"
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
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{ckpt.path}: damaged optimizer state ({error})") from None


def build_model(ckpt: Checkpoint, backend="numpy"):
    """A new VAE with the checkpoint's architecture and weights, on ``backend``."""
    try:
        kind = HierarchicalVAE if "upper_hidden" in ckpt.meta["model"] else VAE
        model = kind(**ckpt.meta["model"], backend=backend)
    except (TypeError, ValueError, KeyError) as error:
        raise CheckpointError(f"{ckpt.path}: cannot rebuild its model ({error})") from None
    restore(ckpt, model)
    return model
