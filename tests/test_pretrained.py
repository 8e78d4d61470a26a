"""The models shipped in the package: they load, draw, describe themselves, and the digits
one is trained again from its recorded command to the same parameters."""

import shlex
from fnmatch import fnmatch
from pathlib import Path

import numpy as np
import pytest

import tinyvae
from tinyvae.errors import UserError
from tinyvae.sample import main as sample_main
from tinyvae.tools import checkpoint, pretrained
from tinyvae.tools.cli import run
from tinyvae.tools.config import TrainConfig, check, from_dict, to_dict
from tinyvae.tools.flags import given_args
from tinyvae.train import main as train_main

ROOT = Path(__file__).resolve().parents[1]
NAMES = pretrained.names()


def test_the_three_models_are_shipped_and_small():
    assert {"digits-2d", "fashion-mlp", "fashion-conv"} <= set(NAMES)
    total = sum(pretrained.path_of(name).stat().st_size for name in NAMES)
    assert total < 5e6  # the package grows by at most 5 MB


@pytest.mark.parametrize("name", NAMES)
def test_each_model_loads_draws_and_says_how_it_was_made(name):
    model = tinyvae.pretrained(name)
    about = pretrained.info(name)
    H, W = about["image_shape"]
    images = model.sample(5, rng=np.random.default_rng(0))
    assert images.shape == (5, H * W) and images.min() >= 0 and images.max() <= 1
    assert images.std(axis=0).mean() > 0.01  # five different images, not one
    for key in ("command", "seed", "epochs", "test_loss", "test_loss_stored", "dataset"):
        assert key in about, key
    assert about["stored_dtype"] == "float16"
    # The stored test loss was measured again with the float16 weights: about the same
    assert abs(about["test_loss_stored"] - about["test_loss"]) < 0.01 * about["test_loss"]
    # The loaded float32 parameters are the stored float16 ones, exactly
    stored = checkpoint.load(pretrained.path_of(name)).arrays["params"]
    assert stored.dtype == np.float16
    np.testing.assert_array_equal(model.flat.data, stored.astype(np.float32))


@pytest.mark.parametrize("name", NAMES)
def test_the_recorded_command_is_the_recorded_recipe(name):
    """The command line, parsed as tinyvae.train parses it, gives the recipe the model holds."""
    about = pretrained.info(name)
    words = shlex.split(about["command"])
    assert words[:3] == ["python", "-m", "tinyvae.train"]
    config = to_dict(check(TrainConfig(**given_args(words[3:]))))
    # read as a run's saved recipe is read: a flag added since (--upper-hidden) takes its default
    recipe = to_dict(from_dict(about["recipe"]))
    for ignored in ("out", "no_progress", "resume"):  # where it ran, not what it learnt
        config.pop(ignored), recipe.pop(ignored)
    assert config == recipe
    assert about["seed"] == recipe["seed"] and about["epochs"] == recipe["epochs"]


def test_the_package_data_carries_every_model():
    """pyproject.toml declares the weights, so `pip install -e .` and a wheel both ship them."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11 and newer
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["tinyvae"]
    for name in NAMES:
        relative = pretrained.path_of(name).relative_to(ROOT / "tinyvae").as_posix()
        assert any(fnmatch(relative, p) for p in patterns), relative


def test_sample_draws_from_a_pretrained_model_and_lists_them(tmp_path, capsys, monkeypatch):
    out = tmp_path / "s.png"
    assert run(sample_main, ["--pretrained", "fashion-conv", "--n", "9", "--out", str(out)]) == 0
    assert out.stat().st_size > 1000 and "wrote 9 samples" in capsys.readouterr().out
    monkeypatch.chdir(tmp_path)  # without --out: samples.png in the current folder
    assert run(sample_main, ["--pretrained", "digits-2d", "--n", "4"]) == 0
    assert (tmp_path / "samples.png").exists()
    capsys.readouterr()
    assert run(sample_main, ["--list-pretrained"]) == 0
    listing = capsys.readouterr().out
    for name in NAMES:
        assert name in listing and pretrained.info(name)["command"] in listing


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--pretrained", "fashion-cnn"], "unknown pretrained model 'fashion-cnn' (did you mean"),
        (["--pretrained", "nothing"], "choose one of digits-2d"),
        (["--pretrained", "digits-2d", "--run", "runs/x"], "not allowed with argument"),
        ([], "one of the arguments --run --pretrained --list-pretrained is required"),
    ],
)
def test_bad_names_get_one_line_and_exit_2(argv, words, capsys):
    assert run(sample_main, argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and words in err and err.count("\n") == 1, err


def test_an_unknown_name_in_python_is_a_user_error():
    with pytest.raises(UserError, match="unknown pretrained model 'digits'"):
        tinyvae.pretrained("digits")


def test_a_package_without_its_weights_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(pretrained, "WEIGHTS", tmp_path)
    with pytest.raises(UserError, match="no pretrained models are installed here"):
        tinyvae.pretrained("fashion-conv")


@pytest.mark.slow
def test_the_digits_model_is_retrained_from_its_command_to_the_same_parameters(tmp_path):
    """The shipped weights come from the recipe: training again with the recorded command
    gives float32 parameters that round to the stored float16 ones. A float16 step is
    2**-11 of the number; a float32 result that differs in its last bits on another CPU may
    round to the neighbouring float16, so one step is allowed, and nothing more."""
    words = shlex.split(pretrained.info("digits-2d")["command"])[3:]
    words[words.index("--out") + 1] = str(tmp_path / "again")
    assert run(train_main, [*words, "--no-progress"]) == 0
    again = checkpoint.load(tmp_path / "again").arrays["params"]  # float32
    stored = checkpoint.load(pretrained.path_of("digits-2d")).arrays["params"]  # float16
    step = np.spacing(np.abs(stored)).astype(np.float32)  # one float16 step at each value
    assert np.all(np.abs(again - stored.astype(np.float32)) <= step)
    assert np.mean(again.astype(np.float16) == stored) > 0.99  # most round identically


@pytest.mark.slow
def test_the_build_script_writes_a_model_and_its_walk_frame(tmp_path, monkeypatch, capsys):
    """benchmarks/build_pretrained.py, for the digits only, into a folder of its own."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "build_pretrained", ROOT / "benchmarks" / "build_pretrained.py"
    )
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    monkeypatch.setattr(pretrained, "WEIGHTS", tmp_path / "weights")
    argv = ["--only", "digits-2d", "--runs", str(tmp_path / "runs"), "--images", str(tmp_path)]
    assert build.main(argv) == 0
    assert "digits-2d: 0.1" in capsys.readouterr().out
    assert (tmp_path / "walk-digits-2d.png").exists()
    built = checkpoint.load(tmp_path / "weights" / "digits-2d.npz")
    shipped = checkpoint.load(ROOT / "tinyvae" / "tools" / "weights" / "digits-2d.npz")
    assert built.meta["pretrained"]["command"] == shipped.meta["pretrained"]["command"]
    assert np.mean(built.arrays["params"] == shipped.arrays["params"]) > 0.99


@pytest.mark.slow
def test_the_targets_script_measures_each_target(capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "pretrained_targets", ROOT / "benchmarks" / "pretrained_targets.py"
    )
    targets = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(targets)
    assert targets.main(["--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert "s best" in out and "package growth: " in out
    assert out.count("60-frame walk of 16 tiles") == len(NAMES)
