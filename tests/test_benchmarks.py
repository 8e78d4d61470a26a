"""The benchmark scripts that the READMEs quote run, on a few steps (their timings are not
checked here: speed is for the benchmarks themselves to show)."""

import importlib.util
import json
from pathlib import Path

import pytest

from tinyvae.errors import UserError
from tinyvae.fast.adam import compiled_adam_loop

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
    from tinyvae.fast import adam

    before = adam.compiled_adam_loop
    assert load("adam_threads").main(["--steps", "2", "--rounds", "2"]) == 0
    assert adam.compiled_adam_loop is before
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


def test_compare_runs_plots_and_summarises_run_folders(tmp_path, capsys):
    compare_runs = load("compare_runs")
    runs = []
    for name, end in (("plain", 19.0), ("augmented", 18.0)):
        run = tmp_path / name
        run.mkdir()
        rows = [{"epoch": e, "train_loss": 30.0 - e, "test_loss": max(end, 31.0 - e)}
                for e in range(1, 21)]  # fmt: skip
        (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        runs.append(str(run))
    out = tmp_path / "curves.png"
    assert compare_runs.main([*runs, "--last", "5", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = capsys.readouterr().out
    assert "plain" in table and "19.000" in table and "18.000 (ep 13)" in table
    with pytest.raises(UserError, match="metrics.jsonl not found"):
        compare_runs.main([str(tmp_path)])
