"""The command-line tools, run as a user runs them: in a subprocess, on the bundled digits."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from tinyvae.cupy_check import cupy_unavailable_reason
from tinyvae.evaluate import main as evaluate_main
from tinyvae.sample import main as sample_main
from tinyvae.tools import checkpoint
from tinyvae.tools.cli import run
from tinyvae.tools.run_folder import claimed
from tinyvae.train import main as train_main

# One BLAS thread: these matrices are small, and the timing stays steady on a busy machine.
ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
TINY = ["--dataset", "digits", "--no-progress"]


def cli(tool, *args, timeout=120, env=None):
    """Run ``python -m tinyvae.<tool> args...``; return the finished process."""
    command = [sys.executable, "-m", f"tinyvae.{tool}", *map(str, args)]
    env = {**ENV, **(env or {})}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)


def metrics(folder):
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """A tiny training: the bundled digits, 2 epochs, the default model otherwise."""
    folder = tmp_path_factory.mktemp("runs") / "digits"
    done = cli("train", *TINY, "--epochs", 2, "--out", folder)
    assert done.returncode == 0, done.stderr
    return folder, done


def test_a_tiny_training_writes_its_run_folder_and_the_loss_falls(digits_run):
    folder, done = digits_run
    for name in [
        "config.json",
        "metrics.jsonl",
        "checkpoint.npz",
        "loss.png",
        "latent.png",
        "interpolation.png",
        "samples_epoch01.png",
        "samples_epoch02.png",
        "reconstructions_epoch01.png",
        "reconstructions_epoch02.png",
    ]:
        assert (folder / name).stat().st_size > 0, name
    rows = metrics(folder)
    assert [r["epoch"] for r in rows] == [1, 2]
    for key in ("train_loss", "test_loss", "recon", "kl", "seconds", "active_units"):
        assert all(np.isfinite(r[key]) for r in rows), key
    assert rows[1]["train_loss"] < rows[0]["train_loss"]
    assert rows[1]["test_loss"] < rows[0]["test_loss"]
    config = json.loads((folder / "config.json").read_text())
    assert config["dataset"] == "digits" and config["epochs"] == 2 and config["hidden"] == [400]
    lines = done.stdout.splitlines()
    assert sum(line.startswith("epoch ") for line in lines) == 2 and "img/s" in lines[-2]
    assert checkpoint.load(folder).state["epoch"] == 2


@pytest.mark.parametrize(
    "resume_env",
    [
        {},
        # The second half with Adam's NumPy passes, the first with its compiled loop (when
        # Numba is installed): the two give the same bits, so the runs still match.
        pytest.param({"TINYVAE_KERNELS": "numpy"}, id="other-adam"),
    ],
)
@pytest.mark.slow
def test_resuming_after_3_of_6_epochs_matches_an_unbroken_run_bit_for_bit(tmp_path, resume_env):
    straight, broken = tmp_path / "straight", tmp_path / "broken"
    assert cli("train", *TINY, "--epochs", 6, "--out", straight).returncode == 0
    assert cli("train", *TINY, "--epochs", 3, "--out", broken).returncode == 0
    resumed = cli(
        "train", "--out", broken, "--resume", "--epochs", 6, "--no-progress", env=resume_env
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "epoch 4/6" in resumed.stdout and "epoch 3/6" not in resumed.stdout
    assert "BLAS threads: 1 (kept from the start of this run" in resumed.stdout
    a, b = checkpoint.load(straight), checkpoint.load(broken)
    assert a.arrays.keys() == b.arrays.keys()
    for name in a.arrays:
        assert np.array_equal(a.arrays[name], b.arrays[name]), name
    keep = lambda rows: [
        {k: v for k, v in r.items() if "second" not in k and "/s" not in k and k != "images_per_s"}
        for r in rows
    ]
    assert keep(metrics(straight)) == keep(metrics(broken))


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_and_resume_finishes_the_run(tmp_path):
    folder = tmp_path / "run"
    command = [sys.executable, "-m", "tinyvae.train", *TINY, "--epochs", 500, "--out", folder]
    proc = subprocess.Popen(
        list(map(str, command)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV
    )
    try:
        for line in proc.stdout:  # wait until training is under way
            if line.startswith("epoch "):
                break
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "stopped" in err and "--resume" in err and "Traceback" not in err
    state = checkpoint.load(folder).state
    epochs = state["epoch"] + 1
    done = cli("train", "--out", folder, "--resume", "--epochs", epochs, "--no-progress")
    assert done.returncode == 0, done.stderr
    assert [r["epoch"] for r in metrics(folder)] == list(range(1, epochs + 1))


def test_sample_and_evaluate_read_the_run(digits_run, tmp_path):
    folder, _ = digits_run
    picture = tmp_path / "grid.png"
    done = cli("sample", "--run", folder, "--n", 16, "--out", picture)
    assert done.returncode == 0, done.stderr
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    done = cli("evaluate", "--run", folder, "--k", 20, "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["images"] == 297 and result["epoch"] == 2 and result["k"] == 20
    # log p(x) >= ELBO, so the importance-weighted NLL lies below the test loss (up to noise)
    assert 0 < result["nll"] < result["test_loss"] + 1
    assert 0 <= result["active_units"] <= result["latent_dim"] == 20


def test_conditional_denoising_iwae_run_samples_one_class_and_every_class(tmp_path, capsys):
    folder = tmp_path / "cvae"
    argv = [
        *TINY,
        "--epochs",
        1,
        "--out",
        folder,
        "--conditional",
        "--latent-dim",
        2,
        "--denoise",
        0.3,
        "--objective",
        "iwae",
        "--samples",
        2,
        "--kl-warmup",
        1,
    ]
    assert run(train_main, list(map(str, argv))) == 0
    assert run(sample_main, ["--run", str(folder), "--label", "7", "--n", "8"]) == 0
    assert (
        run(
            sample_main,
            [
                "--run",
                str(folder),
                "--label",
                "all",
                "--n",
                "4",
                "--out",
                str(tmp_path / "all.png"),
            ],
        )
        == 0
    )
    assert (folder / "samples.png").exists() and (tmp_path / "all.png").exists()
    assert run(evaluate_main, ["--run", str(folder), "--k", "5", "--n", "20", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["images"] == 20


def test_a_two_dimensional_gaussian_run_draws_the_manifold(tmp_path):
    folder = tmp_path / "gauss"
    argv = [
        *TINY,
        "--epochs",
        1,
        "--out",
        folder,
        "--latent-dim",
        2,
        "--hidden",
        "32,16",
        "--likelihood",
        "gaussian",
        "--gaussian-logvar",
        -2,
    ]
    assert run(train_main, list(map(str, argv))) == 0
    assert (folder / "manifold.png").exists()
    assert checkpoint.load(folder).meta["model"]["gaussian_logvar"] == -2.0


def test_help_lists_the_flags():
    done = cli("train", "--help")
    assert done.returncode == 0
    for name in [
        "--backend",
        "--dataset",
        "--data-dir",
        "--epochs",
        "--batch-size",
        "--latent-dim",
        "--hidden",
        "--activation",
        "--likelihood",
        "--binarize",
        "--beta",
        "--lr",
        "--optimizer",
        "--seed",
        "--out",
        "--resume",
        "--kl-warmup",
        "--conditional",
        "--samples",
        "--objective",
        "--denoise",
        "--noise",
        "--gaussian-logvar",
        "--clip-norm",
    ]:
        assert name in done.stdout, name


@pytest.mark.parametrize(
    "args, words",
    [
        (["--epochs", "0"], "--epochs must be a positive integer"),
        (["--hidden", "400,,x"], "--hidden must be positive layer sizes"),
        (["--optimizer", "sgd", "--lr", "1e12", "--epochs", "1"], "in epoch 1 by step"),
    ],
)
def test_user_errors_print_one_line_and_exit_2(args, words, tmp_path):
    done = cli("train", *TINY, "--out", tmp_path / "run", *args)
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and words in done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    if "by step" in words:  # the checkpoint written before training is intact
        assert checkpoint.load(tmp_path / "run").state["epoch"] == 0


def test_more_user_errors(digits_run, tmp_path, capsys):
    folder, _ = digits_run
    blocker = tmp_path / "file"
    blocker.write_text("")
    cases = [
        (train_main, [*TINY, "--out", str(folder)], "already holds a run"),
        (train_main, ["--out", str(folder), "--resume", "--lr", "0.1"], "--lr 0.1 differs"),
        (train_main, ["--out", str(tmp_path / "none"), "--resume"], "no checkpoint to resume"),
        (train_main, [*TINY, "--out", str(blocker / "run")], "cannot create the run folder"),
        (sample_main, ["--run", str(folder), "--label", "3"], "needs a conditional run"),
        (sample_main, ["--run", str(folder), "--n", "0"], "must be a positive integer"),
        (evaluate_main, ["--run", str(blocker)], "not an .npz"),
        (evaluate_main, ["--run", str(folder), "--k", "x"], "must be a positive integer"),
    ]
    if cupy_unavailable_reason() is not None:
        cases.append((train_main, [*TINY, "--backend", "cupy"], "CuPy"))
    for main, argv, words in cases:
        assert run(main, argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and words in err and err.count("\n") == 1, (argv, err)


def test_a_folder_of_idx_files_trains_too(tmp_path):
    from tinyvae.tools.idx import write_idx

    data, rng = tmp_path / "idx", np.random.default_rng(0)
    data.mkdir()
    for prefix, n in (("train", 60), ("t10k", 20)):
        write_idx(
            data / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 4, 5), np.uint8)
        )
        write_idx(data / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 3, n, dtype=np.uint8))
    folder = tmp_path / "run"
    argv = ["--data-dir", str(data), "--out", str(folder), "--epochs", "2", "--batch-size", "16"]
    assert run(train_main, [*argv, "--no-progress", "--conditional", "--hidden", "8"]) == 0
    rows = metrics(folder)
    assert len(rows) == 2 and checkpoint.load(folder).meta["model"]["num_classes"] == 3
    assert checkpoint.load(folder).state["image_shape"] == [4, 5]


@pytest.mark.parametrize(
    "every, epochs, expected", [("3", 7, [3, 6, 7]), ("0", 25, [3, 6, 9, 12, 15, 18, 21, 24, 25])]
)
@pytest.mark.slow
def test_pictures_every_n_epochs_and_always_the_last(tmp_path, every, epochs, expected):
    folder = tmp_path / "run"
    args = ["--hidden", "16", "--latent-dim", "2", "--batch-size", "500", "--epochs", epochs]
    done = cli("train", *TINY, *args, "--pictures-every", every, "--out", folder)
    assert done.returncode == 0, done.stderr
    drawn = sorted(int(p.stem[-2:]) for p in folder.glob("samples_epoch*.png"))
    assert drawn == expected
    assert len(metrics(folder)) == epochs  # every epoch is still measured and logged


# --- what a newcomer tripped on -------------------------------------------------------------


def reader_gone(tool, *args, stderr_too=False):
    """Run a tool whose output's reader has gone before the first line (as ``| head -0``):
    return (status, what it wrote on stderr)."""
    command = [sys.executable, "-m", f"tinyvae.{tool}", *map(str, args)]
    stderr = subprocess.STDOUT if stderr_too else subprocess.PIPE
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, env=ENV, text=True)
    proc.stdout.close()
    err = "" if stderr_too else proc.stderr.read()
    return proc.wait(timeout=120), err


@pytest.mark.slow
def test_a_closed_output_pipe_stops_no_tool_and_prints_no_traceback(digits_run, tmp_path):
    folder = tmp_path / "piped"  # stdout and stderr (the progress bar) both closed
    status, _ = reader_gone("train", "--dataset", "digits", "--epochs", 2, "--hidden", 16,
                            "--out", folder, stderr_too=True)  # fmt: skip
    assert status == 0  # an error, or Python's own at exit, would give 1 or 120
    assert [r["epoch"] for r in metrics(folder)] == [1, 2]  # the run went on to the end
    assert (folder / "latent.png").exists() and checkpoint.load(folder).state["epoch"] == 2
    status, err = reader_gone("sample", "--run", digits_run[0], "--out", tmp_path / "s.png")
    assert status == 0 and "Traceback" not in err and (tmp_path / "s.png").exists(), err
    status, err = reader_gone("evaluate", "--run", digits_run[0], "--k", 2, "--n", 5)
    assert status == 0 and "Traceback" not in err, err


def snapshot(folder):
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def test_resuming_a_finished_run_changes_nothing_in_it(digits_run):
    folder, _ = digits_run
    before = snapshot(folder)
    done = cli("train", "--out", folder, "--resume", "--epochs", 1, "--no-progress")
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "already has 2 epochs, more than --epochs 1" in done.stderr
    assert "nothing was changed" in done.stderr
    for more in ([], ["--epochs", 2, "--threads", 1]):
        done = cli("train", "--out", folder, "--resume", "--no-progress", *more)
        assert done.returncode == 0, done.stderr
        assert "nothing to do: give --epochs N above 2" in done.stdout
    assert snapshot(folder) == before  # not a byte, not a time stamp


def test_evaluate_counts_active_units_over_the_whole_test_set(digits_run):
    folder, _ = digits_run
    trained = metrics(folder)[-1]["active_units"]  # as training counted them, on 297 images
    assert trained > 0  # else the comparison below could not fail
    done = cli("evaluate", "--run", folder, "--n", 1, "--k", 2, "--json")
    result = json.loads(done.stdout)
    assert result["images"] == 1 and result["active_units_images"] == 297
    assert result["active_units"] == trained


def test_one_training_at_a_time_in_a_folder(tmp_path):
    folder = tmp_path / "run"
    command = [sys.executable, "-m", "tinyvae.train", *TINY, "--epochs", 500, "--out", folder]
    first = subprocess.Popen(list(map(str, command)), stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True, env=ENV)  # fmt: skip
    try:
        for line in first.stdout:  # wait until it trains
            if line.startswith("epoch "):
                break
        for more in ([*TINY, "--epochs", 2], ["--resume", "--epochs", 600, "--no-progress"]):
            done = cli("train", "--out", folder, *more)
            assert done.returncode == 2 and "another training is writing into" in done.stderr
    finally:
        first.kill()
        first.wait()
    with claimed(folder, new=False):  # the lock went with the killed process
        assert checkpoint.load(folder).state["epoch"] >= 1


def test_the_thread_count_is_recorded(digits_run, tmp_path):
    folder = tmp_path / "run"
    args = ["--epochs", 1, "--hidden", 8, "--threads", 1, "--out", folder]
    assert cli("train", *TINY, *args).returncode == 0
    assert json.loads((folder / "config.json").read_text())["threads"] == 1
    assert metrics(folder)[0]["threads"] == 1 and checkpoint.load(folder).state["threads"] == 1
    auto, done = digits_run  # no --threads: chosen, within OPENBLAS_NUM_THREADS=1
    assert json.loads((auto / "config.json").read_text())["threads"] is None
    assert "BLAS threads: 1 (automatic: " in done.stdout
    assert metrics(auto)[0]["threads"] == 1 == checkpoint.load(auto).state["threads"]


def test_a_trained_run_loads_in_python(digits_run, tmp_path):
    import tinyvae

    folder, _ = digits_run
    run = tinyvae.load_run(folder)
    assert run.epoch == 2 and run.history == metrics(folder) and run.image_shape == (8, 8)
    assert run.config.dataset == "digits" and run.folder == folder
    saved = checkpoint.load(folder)
    assert np.array_equal(run.model.flat.data, saved.arrays["params"])
    assert run.optimizer.t == saved.meta["optimizer"]["t"] == 2 * 12  # 12 steps per epoch
    assert np.array_equal(run.optimizer.m, saved.arrays["optimizer.m"])
    assert run.model.sample(3).shape == (3, 64)
    with pytest.raises(tinyvae.CheckpointError, match="no such checkpoint"):
        tinyvae.load_run(tmp_path / "nothing")


def test_a_checkpoint_without_an_image_shape_loads_with_the_square_one(tmp_path):
    """Checkpoints written before runs recorded the image shape: the square, as sample reads it."""
    import tinyvae

    model = tinyvae.VAE(64, hidden=(8,), latent_dim=2)
    checkpoint.save(tmp_path / "checkpoint.npz", model, tinyvae.Adam(model.flat), state={},
                    config={"dataset": "digits"})  # fmt: skip
    run = tinyvae.load_run(tmp_path)
    assert run.image_shape == (8, 8)
    assert run.model.sample(2).reshape(-1, *run.image_shape).shape == (2, 8, 8)


def test_the_usage_guide_covers_every_flag():
    import re
    from pathlib import Path

    from tinyvae.tools.flags import build_parser

    guide = (Path(__file__).resolve().parents[1] / "docs" / "usage.md").read_text()
    flags = [o for o in build_parser()._option_string_actions if o.startswith("--")]
    missing = [f for f in flags if f != "--help" and not re.search(re.escape(f) + r"(?![\w-])", guide)]
    assert missing == [], f"docs/usage.md does not mention {', '.join(missing)}"
