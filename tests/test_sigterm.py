"""SIGTERM (``kill``, a job scheduler's time limit) stops a training run as Ctrl-C does.

The run finishes its step, saves a checkpoint of that exact point and exits with status 143
(128 + SIGTERM); ``--resume`` then ends with the weights, optimizer state and metrics of a
run that was never stopped, bit for bit.
"""

import json
import os
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
ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": PROJECT}
RECIPE = ["--dataset", "digits", "--epochs", "6", "--batch-size", "50", "--seed", "4",
          "--hidden", "64", "--no-progress", "--pictures-every", "100", "--checkpoint-every", "3"]  # fmt: skip
TIMING = ("seconds", "train_seconds", "images_per_s", "threads")


def train(*args, **popen):
    command = [sys.executable, "-m", "tinyvae.train", *args]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env=ENV, **popen)  # fmt: skip


def progress(folder: Path):
    """(epoch, step) of the checkpoint in ``folder``, or None while there is none."""
    try:
        state = checkpoint.load(folder).state
    except tinyvae.CheckpointError:
        return None
    return state["epoch"], state["step"]


def metrics(folder: Path) -> list:
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k not in TIMING} for row in rows]


@pytest.mark.slow
def test_sigterm_saves_the_step_and_the_run_resumes_bit_for_bit(tmp_path):
    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    assert train(*RECIPE, "--out", str(whole)).wait(timeout=300) == 0

    proc = train(*RECIPE, "--out", str(stopped))
    deadline = time.monotonic() + 120
    while (progress(stopped) or (0, 0)) < (1, 0):  # into the second epoch: mid-run
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended too soon"
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 143, proc.stderr.read()
    err = proc.stderr.read()
    assert "stopped" in err and "--resume" in err and "Traceback" not in err, err
    epoch, step = progress(stopped)
    assert (epoch, step) < (6, 0)  # it stopped before the end

    resumed = train("--out", str(stopped), "--resume")
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    a, b = checkpoint.load(whole), checkpoint.load(stopped)
    assert a.arrays.keys() == b.arrays.keys()
    for name in a.arrays:
        assert np.array_equal(a.arrays[name], b.arrays[name]), name
    assert metrics(whole) == metrics(stopped)
    assert not [n for n in os.listdir(stopped) if n.endswith(".tmp")]


def test_sigterm_before_training_exits_143_and_leaves_no_new_folder(tmp_path, capsys):
    from tinyvae.tools.cli import run
    from tinyvae.tools.run_folder import claimed

    def main(argv):  # a new run, stopped while it loads its data
        with claimed(tmp_path / "new" / "run", new=True):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(10)  # the signal arrives before this ends
        return 0

    assert run(main) == 143
    assert "terminated" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # put back as it was
