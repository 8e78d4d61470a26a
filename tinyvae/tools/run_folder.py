"""The run folder: making one, continuing one, and what a resumed run may change.

    config.json                  the recipe: every field of TrainConfig
    metrics.jsonl                one JSON object per epoch (losses in nats per image)
    checkpoint.npz               weights, optimizer state and position (checkpoint.py)
    *.png                        pictures (plots.py)

``metrics.jsonl`` is rewritten whole, atomically, from the history the checkpoint holds,
so the files of a run always agree with each other. Everything an epoch writes is written
before its checkpoint, so a checkpoint never describes files that are not there yet.

One training at a time may write into a folder: :func:`claimed` holds a lock on it (an
advisory ``flock`` on the folder itself, released by the system even after ``kill -9``).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

try:
    import fcntl  # POSIX; on Windows there is no lock and two trainings are not stopped
except ImportError:  # pragma: no cover
    fcntl = None

from tinyvae.core.optim import OPTIMIZERS
from tinyvae.errors import CheckpointError, UserError
from tinyvae.tools import checkpoint
from tinyvae.tools.config import TrainConfig, check, flag, from_dict
from tinyvae.tools.files import atomic_write, refuse_link
from tinyvae.tools.training import PARTS

#: the files a training writes into its run folder (pictures aside)
RUN_FILES = ("checkpoint.npz", "config.json", "metrics.jsonl")
#: the pictures training draws into a run folder (plots.py)
RUN_PICTURES = re.compile(
    r"(samples|reconstructions)_epoch\d+\.png|(latent|manifold|interpolation|loss)\.png"
)


def refuse_run_file(out: Path, flag: str = "--out") -> None:
    """Refuse ``out`` when it is one of the files training wrote into a run folder (one that
    holds a checkpoint.npz): a picture written there would replace the run's own, which a
    finished run does not draw again."""
    out = Path(out)
    if (out.parent / "checkpoint.npz").exists() and (
        out.name in RUN_FILES or RUN_PICTURES.fullmatch(out.name)
    ):
        raise UserError(
            f"{flag} {out} is one of the files training wrote into the run {out.parent}: "
            f"choose another name, such as {out.parent / 'samples.png'}"
        )
#: flags that may change when a run is resumed; the rest of the recipe is fixed
RESUMABLE = (
    "epochs",
    "backend",
    "threads",
    "out",
    "resume",
    "no_progress",
    "progress_every",
    "checkpoint_every",
    "pictures_every",
)


@dataclass
class Run:
    """A run folder read back (:func:`load_run`): the trained model and what made it."""

    folder: Path
    model: object  # a tinyvae VAE with the checkpoint's weights
    optimizer: object  # its Adam or SGD, with the saved state: training can go on from here
    config: TrainConfig  # the recipe (config.json's fields)
    history: list  # metrics.jsonl's rows: one dict per epoch, losses in nats per image
    epoch: int  # epochs trained
    image_shape: tuple  # (H, W): model.decode(z) rows reshape to images of this shape


def load_run(folder, backend="numpy") -> Run:
    """The run in ``folder`` (or its ``checkpoint.npz``), with its model on ``backend``::

        run = tinyvae.load_run("runs/digits")
        images = run.model.sample(16).reshape(-1, *run.image_shape)
        print(run.epoch, run.history[-1]["test_loss"], run.config.lr)

    Every problem with the folder or its checkpoint is a one-line ``CheckpointError``."""
    ckpt = checkpoint.load(folder)
    config = from_dict(ckpt.meta.get("config") or {})
    model = checkpoint.build_model(ckpt, backend)
    optimizer = OPTIMIZERS[config.optimizer](model.flat, lr=config.lr, clip_norm=config.clip_norm)
    checkpoint.restore(ckpt, model, optimizer)
    state, shape = ckpt.state, image_shape(ckpt, model.input_dim)  # as sample and export read it
    return Run(ckpt.path.parent, model, optimizer, config, list(state.get("history") or []),
               int(state.get("epoch") or 0), shape)  # fmt: skip


def image_shape(ckpt, input_dim: int) -> tuple:
    """(H, W): the conv model's own, else as the run recorded it, else the square that fits
    ``input_dim`` pixels (a checkpoint saved without a training state records none)."""
    shape = ckpt.meta["model"].get("image_shape") or ckpt.state.get("image_shape")
    if shape:
        return tuple(shape)
    side = math.isqrt(input_dim)
    return (side, side) if side * side == input_dim else (1, input_dim)


def write_metrics(path, history) -> None:
    """metrics.jsonl, rewritten whole from the checkpoint's history: the two always agree."""
    atomic_write(path, lambda f: f.writelines(json.dumps(h) + "\n" for h in history), mode="w")


def default_folder(config) -> Path:
    return Path("runs") / f"{config.dataset}-{time.strftime('%Y%m%d-%H%M%S')}"


def new_folder(folder: Path) -> list:
    """Create the run folder (and its parents); return the folders it made, deepest last."""
    for path in [*reversed(folder.parents), folder]:
        if path.exists() and not path.is_dir():  # mkdir would say "File exists" or worse
            raise UserError(
                f"cannot create the run folder {folder}: {path} is a file, not a folder; "
                "choose another --out"
            )
    made = [p for p in [*reversed(folder.parents), folder] if not p.exists()]
    for path in made:
        if path.is_symlink():  # mkdir would say "File exists"
            raise UserError(
                f"cannot create the run folder {folder}: {path} is a symbolic link to "
                f"{os.readlink(path)}, which does not exist; remove the link or choose "
                "another --out"
            )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(
            f"cannot create the run folder {folder} ({error.strerror or error}): choose "
            "another --out, in a folder you can write to"
        ) from None
    return made


@contextlib.contextmanager
def claimed(folder: Path, new: bool):
    """Hold ``folder`` for one training: create it if ``new``, and lock it.

    A second training into the same folder, new or resumed, is refused while this one runs.
    A new run writes nothing into the folder before its first checkpoint; if it fails before
    that (no network, a bad flag value found once the data are loaded, Ctrl-C), the folders
    it made are removed again, so no empty run folder is left behind."""
    if not new and not (folder / "checkpoint.npz").exists():
        raise nothing_to_resume(folder)
    made = new_folder(folder) if new else []
    for path in [*(folder / name for name in RUN_FILES), *folder.glob("*.png")]:
        refuse_link(path)  # said before any work is done, not at the end of an epoch
    lock = _lock(folder)
    try:
        if new and (folder / "checkpoint.npz").exists():
            raise UserError(
                f"{folder} already holds a run: add --resume to continue it, or choose "
                "another --out"
            )
        yield
    except BaseException:
        if not (folder / "checkpoint.npz").exists():
            for path in reversed(made):
                with contextlib.suppress(OSError):
                    path.rmdir()  # only if empty: nothing of anyone else's is removed
        raise
    finally:
        if lock is not None:
            os.close(lock)


def _lock(folder: Path):
    """An open descriptor of ``folder`` holding its exclusive lock (None where there are no
    locks); a UserError when another process holds it."""
    if fcntl is None:
        return None
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError as error:
        raise UserError(f"cannot open the run folder {folder} ({error.strerror or error})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise UserError(
            f"another training is writing into {folder} right now: wait until it has "
            "finished (then add --resume to continue it), or choose another --out"
        ) from None
    return fd


def resumed_state(saved, steps_per_epoch: int) -> dict:
    """The saved training state, checked: where the run stopped, and its history."""
    state = saved.state
    epoch, step, sums, history = (state.get(k) for k in ("epoch", "step", "sums", "history"))
    number = lambda v: type(v) in (int, float)
    ok = (
        type(epoch) is int
        and type(step) is int
        and epoch >= 0
        and 0 <= step < steps_per_epoch
        and isinstance(history, list)
        and len(history) == epoch
        and all(isinstance(h, dict) for h in history)
        and (step == 0) == (sums is None)
        and (sums is None or (isinstance(sums, dict) and all(number(sums.get(k)) for k in PARTS)))
    )
    if not ok:
        raise CheckpointError(
            f"{saved.path}: its training state is damaged or does not fit this data; use an "
            "earlier copy, or start a new run"
        )
    return {"epoch": epoch, "step": step, "sums": sums, "history": history}


def resumed_checkpoint(folder: Path):
    """The checkpoint that ``--resume`` continues from."""
    if not (folder / "checkpoint.npz").exists():
        raise nothing_to_resume(folder)
    return checkpoint.load(folder)


def nothing_to_resume(folder) -> UserError:
    return UserError(
        f"{folder} holds no checkpoint to resume: check --out, or start the run without --resume"
    )


def already_trained(folder, saved, config) -> bool:
    """Whether the run in ``folder`` has trained all of ``config.epochs`` already: then there is
    nothing to do, and nothing is written. Asking for fewer epochs than it has is a UserError:
    a resume only ever trains further, and never changes what a finished run holds."""
    epoch, step = saved.state.get("epoch"), saved.state.get("step")
    if type(epoch) is not int or type(step) is not int:
        return False  # a damaged state: resumed_state says so
    has = f"{epoch} epochs" + (f" and {step} steps of epoch {epoch + 1}" if step else "")
    if config.epochs < epoch or (config.epochs == epoch and step):
        raise UserError(
            f"{folder} already has {has}, more than --epochs {config.epochs}: a resumed run "
            f"only trains further; give --epochs N above {epoch} (nothing was changed)"
        )
    return config.epochs == epoch


def resumed_config(saved, given: dict) -> TrainConfig:
    """The saved recipe, with the few flags a resumed run may change taken from ``given``."""
    config = from_dict(saved.meta.get("config") or {})
    asked = check(TrainConfig(**given))  # the given flags, parsed and checked like the rest
    unused = {"mlp": "channels", "conv": "hidden"}.get(config.arch)  # check_arch_flags says it
    for name in given:
        if name == unused:
            continue
        if name in RESUMABLE:
            setattr(config, name, getattr(asked, name))
        elif getattr(asked, name) != getattr(config, name):
            show = lambda v: ",".join(map(str, v)) if isinstance(v, tuple) else v
            raise UserError(
                f"{flag(name)} {show(getattr(asked, name))} differs from this run's "
                f"{show(getattr(config, name))}: a resumed run keeps its recipe (only "
                f"--epochs, --backend, --threads and display flags may change); leave {flag(name)} "
                "out, or start a new run in another --out"
            )
    return config
