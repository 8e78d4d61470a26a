"""``kill -9`` at any moment, then ``--resume``: nothing is lost and nothing changes.

A training run on the bundled digits writes its checkpoint after every step
(``--checkpoint-every 1``). It is killed with SIGKILL several times, at different moments:
while Python starts, the instant a checkpoint is being written (a temporary checkpoint file
of that process has appeared), and at random times during training. After each kill the
checkpoint must load (or not exist yet, if no checkpoint was ever completed), and the run's
progress never goes backwards. The run is then resumed until it finishes, and its final
weights, optimizer state and metrics must equal, bit for bit, those of a run that was never
interrupted. No temporary file may be left behind.
"""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import tinyvae
from tinyvae.tools import checkpoint

PROJECT = str(Path(tinyvae.__file__).resolve().parent.parent)
ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
ENV["PYTHONPATH"] = os.pathsep.join(p for p in (PROJECT, os.environ.get("PYTHONPATH")) if p)
RECIPE = ["--dataset", "digits", "--epochs", "5", "--batch-size", "50", "--seed", "3"]
RECIPE += ["--no-progress"]
#: the moments to kill at, in order (see kill_at); the k of ("write", k) are drawn at random
PLAN = ["startup", "write", "random", "write", "random", "write", "random", "write"]
TIMING = ("seconds", "train_seconds", "images_per_s")


def launch(folder: Path, resume: bool, extra=()):
    args = ["--out", str(folder), "--resume"] if resume else [*RECIPE, "--out", str(folder)]
    command = [sys.executable, "-m", "tinyvae.train", *args, *extra]
    return subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV
    )


def temporaries(folder: Path, pid=None) -> list:
    """Temporary files in the run folder (of process ``pid`` only, if given)."""
    mark = "" if pid is None else f".{pid}."
    try:
        return [n for n in os.listdir(folder) if n.endswith(".tmp") and mark in n]
    except FileNotFoundError:
        return []


def checkpoint_writes(proc, folder: Path):
    """Yield each time ``proc`` is seen writing a checkpoint: a new temporary checkpoint file
    of it appears (or, for a writer without temporary files, the checkpoint changes)."""
    prefix, seen = f".checkpoint.npz.{proc.pid}.", set()
    last = None
    deadline = time.monotonic() + 60
    while proc.poll() is None:
        assert time.monotonic() < deadline, "the training run stopped writing checkpoints"
        try:
            names = set(os.listdir(folder))
            info = os.stat(folder / "checkpoint.npz")
            now = (info.st_ino, info.st_mtime_ns, info.st_size)
        except FileNotFoundError:
            names, now = set(), None
        new = {n for n in names if n.startswith(prefix)} - seen
        if new or (not seen and last is not None and now != last):
            yield
        seen |= new
        last = now
        time.sleep(0.0002)


def kill_at(moment, proc, folder: Path, rng: random.Random) -> bool:
    """SIGKILL ``proc`` at ``moment``; False if it had finished first.

    "startup": a random instant in its first quarter second; ("write", k): the instant its
    k-th checkpoint write begins; "random": a random instant after its first write."""
    if moment == "startup":
        time.sleep(rng.uniform(0.02, 0.25))
    else:
        wanted = moment[1] if moment != "random" else 1
        for count, _ in enumerate(checkpoint_writes(proc, folder), start=1):
            if count == wanted:
                break
        else:
            return False
        if moment == "random":
            time.sleep(rng.uniform(0.0, 0.5))
    if proc.poll() is not None:
        return False
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    return True


def check_what_a_kill_left(folder: Path, scratch: Path):
    """The run folder after a kill: a checkpoint that loads (or none yet); returns
    (epoch, step) of the checkpoint, or None. Reads a copy, so as to leave any stale
    temporary file for the next run of the tool to clean."""
    if not (folder / "checkpoint.npz").exists():
        return None
    shutil.copy(folder / "checkpoint.npz", scratch)
    state = checkpoint.load(scratch).state
    if (folder / "config.json").exists():
        json.loads((folder / "config.json").read_text())
    if (folder / "metrics.jsonl").exists():
        rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
        assert [r["epoch"] for r in rows] == list(range(1, len(rows) + 1))
    return state["epoch"], state["step"]


def without_timing(rows):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


@pytest.mark.slow
def test_sigkill_at_any_moment_then_resume_ends_exactly_like_an_unbroken_run(tmp_path):
    straight, broken, scratch = tmp_path / "straight", tmp_path / "broken", tmp_path / "c.npz"
    reference = launch(straight, resume=False)  # runs alongside the kills
    rng = random.Random(20240607)
    kills, mid_write, progress = [], 0, (-1, -1)
    plan = list(PLAN)
    while plan:
        moment = plan.pop(0)
        if moment == "write":
            moment = ("write", rng.randint(1, 60))
        had_checkpoint = (broken / "checkpoint.npz").exists()
        proc = launch(broken, resume=had_checkpoint, extra=["--checkpoint-every", "1"])
        if not kill_at(moment, proc, broken, rng):
            assert proc.returncode == 0, proc.stderr.read()
            continue
        stale = temporaries(broken, proc.pid)
        mid_write += any(n.startswith(".checkpoint.npz.") for n in stale)
        where = check_what_a_kill_left(broken, scratch)
        if where is not None:
            assert where >= progress, (moment, where, progress)  # progress is never lost
            progress = where
        kills.append((moment, where, stale))
        if not plan and mid_write == 0 and len(kills) < len(PLAN) + 6:
            plan.append("write")  # not one kill has landed inside a write yet: again

    final = launch(broken, resume=(broken / "checkpoint.npz").exists())
    _, err = final.communicate(timeout=120)
    assert final.returncode == 0, err
    assert reference.wait(timeout=120) == 0, reference.stderr.read()

    print(f"\nkills (moment, (epoch, step) after it, temporary files left): {kills}")
    assert len(kills) >= 5, kills
    assert mid_write >= 1, kills  # at least one kill interrupted a checkpoint write
    assert temporaries(broken) == [], "temporary files were left behind"
    a, b = checkpoint.load(straight), checkpoint.load(broken)
    assert a.arrays.keys() == b.arrays.keys() == {"params", "optimizer.m", "optimizer.v"}
    for name in a.arrays:
        assert np.array_equal(a.arrays[name], b.arrays[name]), name
    assert a.meta["optimizer"] == b.meta["optimizer"]  # the same step count t
    assert b.state["epoch"] == 5 and b.state["step"] == 0
    assert without_timing(a.state["history"]) == without_timing(b.state["history"])
    metrics = lambda f: [
        json.loads(line) for line in (f / "metrics.jsonl").read_text().splitlines()
    ]
    assert without_timing(metrics(straight)) == without_timing(metrics(broken))
    for epoch in range(1, 6):  # every epoch's pictures exist and are whole PNGs
        for kind in ("samples", "reconstructions"):
            png = (broken / f"{kind}_epoch{epoch:02d}.png").read_bytes()
            assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[-8:] == b"IEND\xaeB`\x82", kind
