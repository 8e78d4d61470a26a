"""The benchmark scripts that the READMEs quote run, on a few steps (their timings are not
checked here: speed is for the benchmarks themselves to show)."""

import importlib.util
from pathlib import Path

import pytest

from tinyvae.core.kernels import compiled_adam_loop

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load(name):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_profile_step_times_and_breaks_down_a_step(arch, capsys):
    assert load("profile_step").main(["--arch", arch, "--steps", "2", "--rows", "5"]) == 0
    out = capsys.readouterr().out
    assert f"{arch}: " in out and "ms per step" in out and "tottime" in out
    assert ("conv.py" if arch == "conv" else "layers.py") in out  # the layers, by name


@pytest.mark.skipif(compiled_adam_loop() is None, reason="Numba is not installed")
def test_adam_threads_times_both_loops_and_leaves_adam_as_it_was(capsys):
    from tinyvae.core import kernels

    before = kernels.compiled_adam_loop
    assert load("adam_threads").main(["--steps", "2", "--rounds", "2"]) == 0
    assert kernels.compiled_adam_loop is before
    out = capsys.readouterr().out
    assert "one core" in out and "threads" in out and out.count("median") == 2


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_profile_step_by_layer_names_every_layer_and_adam(arch, capsys):
    assert load("profile_step").main(["--arch", arch, "--steps", "2", "--by-layer"]) == 0
    out = capsys.readouterr().out
    assert "encoder.0 " in out and "Adam step" in out and "the rest" in out
    if arch == "conv":
        assert "decoder.3 ConvTranspose2d backward" in out and "encoder.5 Flatten" in out
    else:
        assert "decoder.2 Linear backward" in out and "ReLU forward" in out
