"""benchmarks/gpu_check.py, the one command that proves --backend cupy on a GPU, kept working
on every commit: on a CPU it must report each GPU part as skipped, with a one-line reason;
and its GPU parts are rehearsed on the stand-in for CuPy (tests/fake_cupy.py), so that a bug
in the script itself is found here, not in the few minutes of a GPU run. The rehearsal's
numbers mean nothing: only a run on a GPU measures anything."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
GPU_PARTS = ("gpu_tests", "sync", "cli", "speed", "loglik", "lesson08", "conv")


def gpu_check(tmp_path, *args, env=None):
    env = os.environ | {"PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"} | (env or {})
    done = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path), *args],
                          capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    report = json.loads((tmp_path / "report.json").read_text())
    return done, report


def test_on_a_cpu_every_gpu_part_is_skipped_with_a_one_line_reason(tmp_path):
    # CUDA_VISIBLE_DEVICES="" hides any GPU, so this is the CPU mode on every machine
    done, report = gpu_check(tmp_path, env={"CUDA_VISIBLE_DEVICES": ""})
    assert done.returncode == 0, done.stdout + done.stderr
    parts = report["parts"]
    assert list(parts) == ["environment", *GPU_PARTS]
    assert parts["environment"]["status"] == "passed" and parts["environment"]["numpy"]
    for name in GPU_PARTS:
        reason = parts[name]["reason"]
        assert parts[name]["status"] == "skipped" and reason.startswith("no usable GPU: ")
        assert "\n" not in reason and "CuPy" in reason, reason
    assert report["mode"].startswith("cpu")
    log = (tmp_path / "gpu_check.log").read_text()
    assert all(f"{name:12s} skipped" in log for name in GPU_PARTS)


@pytest.mark.slow
def test_the_gpu_parts_rehearsed_on_the_stand_in(tmp_path):
    parts = "environment,sync,speed,loglik"
    done, report = gpu_check(tmp_path, "--stand-in", "--quick", "--parts", parts)
    assert done.returncode == 0, done.stdout + done.stderr
    assert report["mode"] == "stand-in" and "proves nothing about a GPU" in report["note"]
    got = report["parts"]
    assert got["environment"]["stand_in"] is True
    sync = got["sync"]  # 24 steps of 128 random images, a read every 20 steps
    assert (sync["read_backs"], sync["waits"], sync["steps"]) == (3, 1, 24)
    assert sync["five_steps_without_waiting"] and sync["stand_in_counts"]["read_back"] >= 3
    assert got["speed"]["batch_1024"]["tinyvae_images_per_s"] > 0
    assert got["loglik"]["run"]["k"] == 100 and got["loglik"]["run"]["images"] == 20


def test_parts_without_the_environment_still_find_out_whether_there_is_a_gpu(tmp_path):
    done, report = gpu_check(tmp_path, "--parts", "cli", "--budget", "100",
                             env={"CUDA_VISIBLE_DEVICES": ""})  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert list(report["parts"]) == ["environment", "cli"]  # the environment ran first
    assert report["mode"].startswith("cpu") and report["parts"]["cli"]["status"] == "skipped"
