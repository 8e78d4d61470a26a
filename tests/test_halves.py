"""A step as two halves of the batch on two threads (``tinyvae/tools/halves.py``): the loss
and gradient of the whole batch, up to rounding; the same bits from one run to the next;
Adam by parts of the buffer the same bits as Adam whole; and ``tinyvae.train`` with two
threads resumes bit for bit."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import tinyvae
from tinyvae.tools import checkpoint
from tinyvae.tools.halves import HalfBatches, halves, shared_twin

PROJECT = str(Path(tinyvae.__file__).resolve().parent.parent)


def model_and_adam(dtype="float32", **kwargs):
    model = tinyvae.VAE(12, hidden=(9,), latent_dim=3, seed=5, dtype=dtype, **kwargs)
    return model, tinyvae.Adam(model.flat, lr=1e-2)


def test_halves_cover_the_rows_once_in_order():
    assert halves(7, 2) == [slice(0, 3), slice(3, 7)]
    assert halves(5, 3) == [slice(0, 1), slice(1, 3), slice(3, 5)]


def test_a_twin_shares_the_parameters_and_keeps_its_own_gradient():
    model, _ = model_and_adam()
    twin = shared_twin(model)
    model.flat.data[:] += 1.0
    assert np.shares_memory(twin.flat.data, model.flat.data)
    assert twin.encoder.layers[0].params["W"] is model.encoder.layers[0].params["W"]
    assert not np.shares_memory(twin.flat.grad, model.flat.grad)


@pytest.mark.parametrize("objective, samples", [("elbo", 1), ("elbo", 3), ("iwae", 4)])
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_the_halves_give_the_whole_batchs_loss_and_gradient(objective, samples, likelihood):
    """float64, B = 7 split 3 + 4: each half's mean weighed by 3/7 and 4/7. A weighting of
    1/2 each (the plain average of the halves' means) is off by far more than the tolerance."""
    whole, _ = model_and_adam("float64", likelihood=likelihood)
    split_model, adam = model_and_adam("float64", likelihood=likelihood)
    rng = np.random.default_rng(0)
    x = rng.random((7, 12))
    eps = rng.standard_normal((samples, 7, 3))
    loss, parts, _ = whole.loss_and_grads(x, eps, 0.7, samples=samples, objective=objective)
    expected = whole.flat.grad.copy()
    step = HalfBatches(split_model, adam)
    adam.step_part = lambda part, t: None  # look at the gradient before Adam moves anything
    got_loss, got_parts = step(x, eps, 0.7, samples=samples, objective=objective)
    np.testing.assert_allclose(got_loss, float(loss), rtol=1e-13)
    for k in parts:
        np.testing.assert_allclose(got_parts[k], float(parts[k]), rtol=1e-12)
    scale = np.abs(expected).max()
    assert np.abs(split_model.flat.grad - expected).max() <= 1e-13 * scale
    share_means = []  # each share's own mean gradient, from the whole model on its rows
    for r in (slice(0, 3), slice(3, 7)):
        whole.loss_and_grads(x[r], eps[:, r], 0.7, samples=samples, objective=objective)
        share_means.append(whole.flat.grad.copy())
    halves_of_means = 0.5 * (share_means[0] + share_means[1])
    assert np.abs(halves_of_means - expected).max() > 1e-3 * scale  # what a wrong weighing gives


def test_the_halves_of_a_conv_model_give_the_whole_batchs_gradient():
    def conv_model():
        return tinyvae.VAE(64, latent_dim=2, arch="conv", channels=(2, 4), image_shape=(8, 8),
                           seed=0, dtype="float64")  # fmt: skip

    whole, split_model = conv_model(), conv_model()
    rng = np.random.default_rng(4)
    x, eps = rng.random((7, 64)), rng.standard_normal((1, 7, 2))
    loss = whole.loss_and_grads(x, eps)[0]
    adam = tinyvae.Adam(split_model.flat)
    adam.step_part = lambda part, t: None
    assert HalfBatches(split_model, adam)(x, eps)[0] == pytest.approx(float(loss), rel=1e-13)
    assert np.abs(split_model.flat.grad - whole.flat.grad).max() <= 1e-13 * np.abs(whole.flat.grad).max()


def test_adam_by_parts_of_the_buffer_gives_adams_bits():
    model_a, adam_a = model_and_adam()
    model_b, adam_b = model_and_adam()
    rng = np.random.default_rng(1)
    for t in range(1, 13):  # past FLUSH_EVERY: the subnormal flush too
        g = rng.standard_normal(model_a.flat.size).astype(np.float32)
        model_a.flat.grad[:] = g
        model_b.flat.grad[:] = g
        adam_a.step()
        for part in halves(model_b.flat.size, 3):
            adam_b.step_part(part, t)
        adam_b.t = t
    assert np.array_equal(model_a.flat.data, model_b.flat.data)
    assert np.array_equal(adam_a.m, adam_b.m) and np.array_equal(adam_a.v, adam_b.v)


def test_two_runs_of_halves_give_the_same_bits():
    x = np.random.default_rng(2).random((40, 12), dtype=np.float32)
    results = []
    with threadpool_limits(1, user_api="blas"):
        for _ in range(2):
            model, adam = model_and_adam()
            step = HalfBatches(model, adam)
            losses = [step(x[i : i + 10])[0] for i in range(0, 40, 10)]
            results.append((losses, model.flat.data.copy(), adam.m.copy()))
    assert results[0][0] == results[1][0]
    assert np.array_equal(results[0][1], results[1][1]) and np.array_equal(results[0][2], results[1][2])


def test_a_clipped_step_clips_the_whole_gradient():
    model, adam = model_and_adam()
    adam.clip_norm = 1e-3
    steps = []
    adam.step_part = lambda part, t: steps.append(np.linalg.norm(model.flat.grad))
    HalfBatches(model, adam)(np.random.default_rng(3).random((6, 12), dtype=np.float32))
    assert len(steps) == 2 and steps[0] == pytest.approx(1e-3, rel=1e-5)


def test_halves_refuse_what_they_cannot_split():
    model, _ = model_and_adam()
    with pytest.raises(ValueError, match="Adam"):
        HalfBatches(model, tinyvae.SGD(model.flat, lr=0.1))


@pytest.mark.slow
def test_a_two_thread_run_stopped_and_resumed_matches_one_never_stopped(tmp_path):
    """A conv run on --threads 2 (halves, where two CPUs are allowed): --epochs 2, then --resume to 3,
    against 3 epochs at once; the same bits (the split is fixed, so the sums are too)."""
    env = {**os.environ, "PYTHONPATH": PROJECT}
    recipe = ["--dataset", "digits", "--batch-size", "50", "--arch", "conv", "--channels", "4,8",
              "--threads", "2", "--seed", "2", "--no-progress", "--pictures-every", "100"]  # fmt: skip

    def train(*args):
        done = subprocess.run([sys.executable, "-m", "tinyvae.train", *recipe, *args],
                              env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    out = train("--epochs", "3", "--out", str(tmp_path / "whole"))
    train("--epochs", "2", "--out", str(tmp_path / "parts"))
    train("--epochs", "3", "--out", str(tmp_path / "parts"), "--resume")
    a, b = checkpoint.load(tmp_path / "whole"), checkpoint.load(tmp_path / "parts")
    for name in a.arrays:
        assert np.array_equal(a.arrays[name], b.arrays[name]), name
    rows = [
        [json.loads(line)["test_loss"] for line in (tmp_path / run / "metrics.jsonl").open()]
        for run in ("whole", "parts")
    ]
    assert rows[0] == rows[1]
    from tinyvae.tools.threads import cpus_allowed

    assert ("each thread runs 1/2 of every batch" in out) == (cpus_allowed() >= 2), out
