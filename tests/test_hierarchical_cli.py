"""Two latent layers from the command line: train, resume, sample, evaluate, and the refusals."""

import json

import numpy as np
import pytest
from test_cli import TINY, cli, metrics

from tinyvae.tools import checkpoint
from tinyvae.tools.cli import run
from tinyvae.train import main as train_main

TWO = [*TINY, "--hidden", "24", "--latent-dim", "6,3", "--upper-hidden", "8,5"]


@pytest.fixture(scope="module")
def two_layer_run(tmp_path_factory):
    """Two epochs of the IWAE bound, 2 samples, beta warming up: the flags together."""
    folder = tmp_path_factory.mktemp("runs") / "two"
    more = ["--objective", "iwae", "--samples", 2, "--beta", 0.8, "--kl-warmup", 1]
    done = cli("train", *TWO, *more, "--epochs", 2, "--out", folder)
    assert done.returncode == 0, done.stderr
    return folder, done


def test_the_run_records_both_layers_and_prints_active_units_per_layer(two_layer_run):
    folder, done = two_layer_run
    config = json.loads((folder / "config.json").read_text())
    assert config["latent_dim"] == [6, 3] and config["upper_hidden"] == [8, 5]
    assert config["objective"] == "iwae" and config["samples"] == 2
    model = checkpoint.load(folder).meta["model"]
    assert model["latent_dim"] == [6, 3] and model["upper_hidden"] == [8, 5]
    assert "model 64-24-6-8-5-3 relu bernoulli" in done.stdout
    rows = metrics(folder)
    assert rows[0]["beta"] < rows[1]["beta"] == 0.8  # warmed up over the first epoch
    lines = [line for line in done.stdout.splitlines() if line.startswith("epoch ")]
    for line, row in zip(lines, rows):
        a1, a2 = row["active_units_per_layer"]
        assert f"active z1 {a1}/6 z2 {a2}/3" in line
        assert row["active_units"] == a1 + a2


def test_sample_draws_from_the_top_and_rows_can_share_z2(two_layer_run, tmp_path):
    folder, _ = two_layer_run
    done = cli("sample", "--run", folder, "--n", 12, "--out", tmp_path / "s.png")
    assert done.returncode == 0 and (tmp_path / "s.png").stat().st_size > 0, done.stderr
    done = cli("sample", "--run", folder, "--n", 12, "--per-z2", 4, "--out", tmp_path / "g.png")
    assert done.returncode == 0 and (tmp_path / "g.png").stat().st_size > 0, done.stderr


def test_evaluate_reports_the_bound_and_active_units_per_layer(two_layer_run):
    folder, _ = two_layer_run
    done = cli("evaluate", "--run", folder, "--k", 50, "--n", 20, "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["latent_dim"] == [6, 3] and len(result["active_units_per_layer"]) == 2
    assert np.isfinite(result["nll"]) and result["nll"] <= result["test_loss"] + 1.0
    table = cli("evaluate", "--run", folder, "--k", 10, "--n", 5).stdout
    assert "active latent units" in table and "z1 " in table and "/6 z2 " in table


@pytest.mark.slow
def test_resuming_a_two_layer_run_matches_an_unbroken_run_bit_for_bit(tmp_path):
    recipe = [*TWO, "--objective", "iwae", "--samples", 2, "--kl-warmup", 2]
    straight, broken = tmp_path / "straight", tmp_path / "broken"
    assert cli("train", *recipe, "--epochs", 4, "--out", straight).returncode == 0
    assert cli("train", *recipe, "--epochs", 2, "--out", broken).returncode == 0
    resumed = cli("train", "--out", broken, "--resume", "--epochs", 4, "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert "epoch 3/4" in resumed.stdout and "epoch 2/4" not in resumed.stdout
    a, b = checkpoint.load(straight), checkpoint.load(broken)
    for name in a.arrays:
        assert np.array_equal(a.arrays[name], b.arrays[name]), name


@pytest.mark.parametrize(
    "args,words",
    [
        (["--latent-dim", "6,3", "--arch", "conv"], "works with --arch mlp only"),
        (["--latent-dim", "6,3", "--conditional"], "without --conditional"),
        (["--latent-dim", "6,3,2"], "--latent-dim must be a positive integer, or two"),
        (["--latent-dim", "6,0"], "--latent-dim must be a positive integer, or two"),
        (["--latent-dim", "6,"], "--latent-dim must be a positive integer, or two"),
        (["--latent-dim", "x"], "--latent-dim must be a positive integer"),
        (["--upper-hidden", "8"], "--upper-hidden applies only to two latent layers"),
        (["--latent-dim", "6,3", "--upper-hidden", "0"], "--upper-hidden must be positive"),
    ],
)
def test_bad_values_are_one_line_errors(tmp_path, capsys, args, words):
    assert run(train_main, [*TINY, *args, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1 and "Traceback" not in err


def test_two_layer_tools_refuse_what_they_cannot_do(two_layer_run, tmp_path):
    folder, _ = two_layer_run
    done = cli("tools.export", "--run", folder, "--out", tmp_path / "d.json")
    assert done.returncode == 2 and "two latent layers" in done.stderr
    assert done.stderr.count("\n") == 1
    one = tmp_path / "one"
    assert cli("train", *TINY, "--hidden", "8", "--latent-dim", "2", "--epochs", 1,
               "--out", one).returncode == 0  # fmt: skip
    done = cli("sample", "--run", one, "--per-z2", 4, "--out", tmp_path / "x.png")
    assert done.returncode == 2 and "--per-z2 needs a run with two latent layers" in done.stderr


@pytest.mark.parametrize(
    "change",
    [
        {"upper_hidden": None},  # two latent sizes, but no layers between them
        {"latent_dim": [6, 3, 2]},
        {"latent_dim": [6, 0]},
        {"upper_hidden": [8, "5"]},
        {"arch": "conv", "channels": [2], "image_shape": [8, 8]},
    ],
)
def test_a_damaged_two_layer_description_is_a_one_line_checkpoint_error(two_layer_run, tmp_path,
                                                                         change):  # fmt: skip
    folder, _ = two_layer_run
    with np.load(folder / "checkpoint.npz") as stored:
        arrays = {k: stored[k] for k in stored.files}
    meta = json.loads(str(arrays["meta"][()]))
    meta["model"] |= change
    arrays["meta"] = np.asarray(json.dumps(meta))
    np.savez(tmp_path / "damaged.npz", **arrays)
    with pytest.raises(checkpoint.CheckpointError, match="damaged description") as error:
        checkpoint.load(tmp_path / "damaged.npz")
    assert "\n" not in str(error.value)


def test_a_two_layer_checkpoint_rebuilds_the_same_model(two_layer_run):
    folder, _ = two_layer_run
    model = checkpoint.build_model(checkpoint.load(folder))
    assert type(model).__name__ == "HierarchicalVAE" and model.latent_dims == (6, 3)
    assert model.config["upper_hidden"] == [8, 5]
