"""The run folder: making one, continuing one, and what a resumed run may change.

    config.json                  the recipe: every field of TrainConfig
    metrics.jsonl                one JSON object per epoch (losses in nats per image)
    checkpoint.npz               weights, optimizer state and position (checkpoint.py)
    *.png                        pictures (plots.py)

``metrics.jsonl`` is rewritten whole, atomically, from the history the checkpoint holds,
so the files of a run always agree with each other.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from tinyvae.errors import CheckpointError, UserError
from tinyvae.tools import checkpoint
from tinyvae.tools.config import TrainConfig, check, flag, from_dict
from tinyvae.tools.files import atomic_write
from tinyvae.tools.training import PARTS

#: flags that may change when a run is resumed; the rest of the recipe is fixed
RESUMABLE = (
    "epochs",
    "backend",
    "out",
    "resume",
    "no_progress",
    "progress_every",
    "checkpoint_every",
    "pictures_every",
)


def write_metrics(path, history) -> None:
    """metrics.jsonl, rewritten whole from the checkpoint's history: the two always agree."""
    atomic_write(path, lambda f: f.writelines(json.dumps(h) + "\n" for h in history), mode="w")


def default_folder(config) -> Path:
    return Path("runs") / f"{config.dataset}-{time.strftime('%Y%m%d-%H%M%S')}"


def new_folder(folder: Path) -> None:
    """Create the run folder; refuse one that already holds a run."""
    if (folder / "checkpoint.npz").exists():
        raise UserError(
            f"{folder} already holds a run: add --resume to continue it, or choose another --out"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(
            f"cannot create the run folder {folder} ({error.strerror or error}): choose "
            "another --out, in a folder you can write to"
        ) from None


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
        raise UserError(
            f"{folder} holds no checkpoint to resume: check --out, or start the run "
            "without --resume"
        )
    return checkpoint.load(folder)


def resumed_config(saved, given: dict) -> TrainConfig:
    """The saved recipe, with the few flags a resumed run may change taken from ``given``."""
    config = from_dict(saved.meta.get("config") or {})
    asked = check(TrainConfig(**given))  # the given flags, parsed and checked like the rest
    for name in given:
        if name in RESUMABLE:
            setattr(config, name, getattr(asked, name))
        elif getattr(asked, name) != getattr(config, name):
            show = lambda v: ",".join(map(str, v)) if isinstance(v, tuple) else v
            raise UserError(
                f"{flag(name)} {show(getattr(asked, name))} differs from this run's "
                f"{show(getattr(config, name))}: a resumed run keeps its recipe (only "
                f"--epochs, --backend and display flags may change); leave {flag(name)} "
                "out, or start a new run in another --out"
            )
    return config
