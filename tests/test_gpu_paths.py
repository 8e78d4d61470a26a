"""Every CuPy code path, checked against NumPy.

Each test runs twice: on a real GPU (``pytest -m gpu``; skipped where there is none, failing
instead with ``TINYVAE_REQUIRE_GPU=1``) and, on every commit, on the strict stand-in for CuPy
(``tests/fake_cupy.py``, mark ``stand_in``). The stand-in proves that every path runs through
CuPy's API with no hidden copy to the host and counts the read-backs; only the GPU run
proves the numbers that cuBLAS and the compiled kernels give. ``benchmarks/gpu_check.py``
runs the GPU half, with the rest of the GPU check.
"""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import conftest
import fake_cupy
import numpy as np
import pytest
from conftest import small_config, training_parts
from device_checks import HostWaited, is_stand_in, no_wait, started, train_steps

import tinyvae
from tinyvae.core.backend import Backend
from tinyvae.cupy_check import cupy_unavailable_reason
from tinyvae.errors import UserError
from tinyvae.tools import checkpoint, plots
from tinyvae.tools.evaluation import (
    active_units,
    check_data,
    evaluate_loss,
    posterior_means,
    prepare_test_set,
)
from tinyvae.tools.training import train_epoch

ROOT = Path(__file__).resolve().parents[1]


def host(model, array):
    return model.backend.to_host(array)


# --- the loss and its gradients --------------------------------------------------------------

CASES = {  # model arguments, loss_and_grads arguments
    "relu bernoulli elbo": ({}, {}),
    "leaky_relu, learned gaussian variance": (dict(activation="leaky_relu", likelihood="gaussian"), {}),
    "tanh, fixed gaussian variance": (
        dict(activation="tanh", likelihood="gaussian", gaussian_logvar=-1.0), {}),
    "sigmoid, iwae of 3": (dict(activation="sigmoid"), dict(objective="iwae", samples=3)),
    "conditional, denoising, beta 2": (dict(num_classes=3), dict(beta=2.0, x_input=True)),
    "gaussian, 2 samples of the elbo": (
        dict(likelihood="gaussian", gaussian_logvar=0.5), dict(samples=2)),
}  # fmt: skip


def twins(gpu_backend, dtype="float32", input_dim=20, **kwargs):
    """The same VAE (weights drawn on the host from one seed) on NumPy and on CuPy."""
    kwargs = dict(hidden=(32, 16), latent_dim=4, seed=7) | kwargs
    cpu = tinyvae.VAE(input_dim, dtype=dtype, **kwargs)
    gpu = tinyvae.VAE(input_dim, dtype=dtype, backend=gpu_backend.name, **kwargs)
    np.testing.assert_array_equal(host(gpu, gpu.flat.data), cpu.flat.data)
    return cpu, gpu


def inputs(model, call, B=16, seed=0):
    """Host arrays for one call of loss_and_grads: x, eps (K, B, L), labels, x_input."""
    rng, K = np.random.default_rng(seed), call.get("samples", 1)
    x = rng.random((B, model.input_dim)).astype(model.dtype)
    eps = rng.standard_normal((K, B, model.latent_dim)).astype(model.dtype)
    labels = rng.integers(0, model.num_classes, B) if model.num_classes else None
    x_input = (x * (rng.random(x.shape) > 0.2)).astype(model.dtype) if call.get("x_input") else None
    return x, eps, labels, x_input


@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-10), ("float32", 1e-4)])
@pytest.mark.parametrize("case", list(CASES))
def test_loss_and_every_gradient_agree_with_numpy(gpu_backend, case, dtype, rtol):
    """From the same weights and noise. Tolerance: float64 agrees to ~1e-15 (only the order
    of the sums in the matrix products differs); float32 rounds at ~6e-8 per operation, and
    a gradient sums hundreds of them, so 1e-4 of the largest gradient of each parameter."""
    model_args, call = CASES[case]
    cpu, gpu = twins(gpu_backend, dtype, **model_args)
    x, eps, labels, x_input = inputs(cpu, call)
    args = {k: v for k, v in call.items() if k != "x_input"}
    loss_c, parts_c, grads_c = cpu.loss_and_grads(x, eps, labels=labels, x_input=x_input, **args)
    to = gpu.backend.asarray
    loss_g, parts_g, grads_g = gpu.loss_and_grads(
        to(x), to(eps), labels=None if labels is None else to(labels, dtype=np.int64),
        x_input=None if x_input is None else to(x_input), **args)  # fmt: skip
    np.testing.assert_allclose(float(loss_g), float(loss_c), rtol=rtol)
    for part in ("recon", "kl"):
        np.testing.assert_allclose(float(parts_g[part]), float(parts_c[part]), rtol=rtol, atol=rtol)
    for name, grad in grads_c.items():
        scale = np.abs(grad).max()
        np.testing.assert_allclose(host(gpu, grads_g[name]), grad, rtol=rtol, atol=rtol * scale,
                                   err_msg=name)  # fmt: skip


# --- the optimizers, and the fused Adam kernel ---------------------------------------------

OPTIMIZERS = {
    "adam": lambda flat: tinyvae.Adam(flat, lr=1e-3),
    "adam, clipped": lambda flat: tinyvae.Adam(flat, lr=1e-3, clip_norm=20.0),
    "sgd, momentum, clipped": lambda flat: tinyvae.SGD(flat, lr=1e-2, clip_norm=20.0),
}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizer_steps_agree_with_numpy(gpu_backend, name):
    """Five steps from the same parameters and gradients (3,000 float32 numbers of size ~1).
    The CuPy Adam kernel rounds each operation in the NumPy passes' order, with no fused
    multiply-add, so it should agree to the last bit; clipping's norm is one dot product,
    summed in another order on the GPU, so allow 1e-6: far below one step's move (~1e-3)."""
    from tinyvae.core.params import FlatParameters

    rng = np.random.default_rng(1)
    theta0, grads = rng.standard_normal(3000), 3 * rng.standard_normal((5, 3000))
    runs = []
    for be in (tinyvae.get_backend("numpy"), gpu_backend):
        flat = FlatParameters({"w": theta0.astype("float32")}, be)
        opt = OPTIMIZERS[name](flat)
        for g in grads:
            flat.grad[...] = be.asarray(g)
            opt.step()
        state = {k: be.to_host(v) for k, v in opt.state_dict().items() if k != "t"}
        runs.append((be.to_host(flat.data), state))
    (theta_c, state_c), (theta_g, state_g) = runs
    np.testing.assert_allclose(theta_g, theta_c, rtol=1e-6, atol=1e-8)
    for key in state_c:
        np.testing.assert_allclose(state_g[key], state_c[key], rtol=1e-6, atol=1e-12, err_msg=key)
    assert not np.array_equal(theta_c, theta0.astype("float32"))  # the steps did move it


def test_the_adam_kernel_gives_the_numpy_update_to_the_bit(gpu_backend):
    """Without clipping, the one thing that differs is where Adam's lines run: NumPy passes
    (or the Numba loop) against one CuPy kernel. Each rounds every operation in the same
    order, the kernel compiled with --fmad=false, and float32 sqrt and division are
    correctly rounded on both; so the bits agree (no moment is subnormal here, where the
    CPU's flush would differ)."""
    from tinyvae.core.params import FlatParameters

    rng = np.random.default_rng(2)
    theta0, grads = rng.standard_normal(5000), rng.standard_normal((8, 5000))
    results = []
    for be in (tinyvae.get_backend("numpy"), gpu_backend):
        flat = FlatParameters({"w": theta0.astype("float32")}, be)
        opt = tinyvae.Adam(flat, lr=1e-2)
        for g in grads:
            flat.grad[...] = be.asarray(g)
            opt.step()
        results.append([be.to_host(a) for a in (flat.data, opt.m, opt.v)])
    for name, gpu, cpu in zip(("theta", "m", "v"), results[1], results[0]):
        np.testing.assert_array_equal(gpu, cpu, err_msg=name)


# --- a whole epoch --------------------------------------------------------------------------


def one_epoch(model, x_all, steps, batch=100, lr=1e-3, seed=2):
    """Adam over ``steps`` batches drawn on the host (the same for every backend): the loss of
    each step and the final weights, as host arrays."""
    rng, be = np.random.default_rng(seed), model.backend
    opt, losses = tinyvae.Adam(model.flat, lr=lr), []
    order = rng.permutation(len(x_all))
    for step in range(steps):
        x = x_all[order[step * batch : (step + 1) * batch]]
        eps = rng.standard_normal((batch, model.latent_dim)).astype("float32")
        loss, _, _ = model.loss_and_grads(be.asarray(x), be.asarray(eps), validate=False)
        opt.step()
        losses.append(float(loss))
    return np.array(losses), be.to_host(model.flat.data)


def agree_to_float32_rounding(w_a, w_b, lr, steps):
    """How two float32 trainings from the same start compare after ``steps`` Adam steps.

    Rounding (another summation order in the matrix products) changes a gradient by ~1e-6 of
    itself, and so an update by ~lr * 1e-6: after 15 steps, weights differ by ~1e-7. A rare
    gradient that is ~0 may change sign, and Adam then moves that weight by up to about
    3 lr the other way; so the bound is on the 99.9th percentile (1e-5, 100 times the
    expected ~1e-7), and the largest difference must stay under 3.2 lr per step, Adam's
    own bound on a step. A 1 % change of the learning rate breaks the first bound
    (test_the_epoch_tolerance_catches_a_one_percent_change)."""
    diff = np.abs(w_a - w_b)
    return float(np.quantile(diff, 0.999)) <= 1e-5 and float(diff.max()) <= 3.2 * lr * steps


def test_a_whole_epoch_agrees_with_numpy(gpu_backend, digits):
    cpu, gpu = twins(gpu_backend, input_dim=64, hidden=(64,), latent_dim=8)
    losses_c, w_c = one_epoch(cpu, digits.train_x, steps=15)
    losses_g, w_g = one_epoch(gpu, digits.train_x, steps=15)
    np.testing.assert_allclose(losses_g, losses_c, rtol=1e-4)  # each step's loss
    assert losses_c[-1] < losses_c[0]  # it did train
    assert agree_to_float32_rounding(w_g, w_c, lr=1e-3, steps=15)


def test_the_epoch_tolerance_catches_a_one_percent_change(digits):
    runs = []
    for lr in (1e-3, 1.01e-3):
        model = tinyvae.VAE(64, hidden=(64,), latent_dim=8, seed=7)
        runs.append(one_epoch(model, digits.train_x, steps=15, lr=lr)[1])
    assert not agree_to_float32_rounding(runs[0], runs[1], lr=1e-3, steps=15)
    assert agree_to_float32_rounding(runs[0], runs[0].copy(), lr=1e-3, steps=15)


# --- checkpoints: GPU -> CPU -> GPU -----------------------------------------------------------


def small(**changes):
    return small_config(**({"backend": "cupy", "progress_every": 5} | changes))


@pytest.mark.parametrize("changes", [{}, dict(conditional=True, denoise=0.1, optimizer="sgd")])
def test_a_checkpoint_goes_gpu_cpu_gpu_and_resumes_bit_for_bit(gpu_backend, digits, tmp_path,
                                                             changes):  # fmt: skip
    config = small(**changes)
    straight, opt, batches = training_parts(config, digits)
    for epoch in (1, 2):
        train_epoch(straight, opt, batches, config, epoch)

    model, opt, batches = training_parts(config, digits)
    train_epoch(model, opt, batches, config, 1)
    calls = iter(range(100))
    stopped = train_epoch(model, opt, batches, config, 2, should_stop=lambda: next(calls) == 5)
    checkpoint.save(tmp_path / "gpu.npz", model, opt, {"sums": stopped["sums"]})

    cpu_config = small(**changes, backend="numpy")  # the CPU reads it, and writes it again
    on_cpu, cpu_opt, _ = training_parts(cpu_config, digits)
    checkpoint.restore(checkpoint.load(tmp_path / "gpu.npz"), on_cpu, cpu_opt)
    assert np.array_equal(on_cpu.flat.data, host(model, model.flat.data))
    checkpoint.save(tmp_path / "cpu.npz", on_cpu, cpu_opt, {"sums": stopped["sums"]})

    fresh, opt, batches = training_parts(config, digits)  # back on the GPU, as a new process would
    saved = checkpoint.load(tmp_path / "cpu.npz")
    checkpoint.restore(saved, fresh, opt)
    train_epoch(fresh, opt, batches, config, 2, stopped["steps"], saved.state["sums"])
    assert np.array_equal(host(fresh, fresh.flat.data), host(straight, straight.flat.data))


# --- evaluation, samples and pictures -------------------------------------------------------


class HostNoise:
    """A generator that draws normal noise on the host and copies it to the device: the same
    numbers on every backend (CuPy's own generator draws others)."""

    def __init__(self, backend, seed):
        self.backend, self.rng = backend, np.random.default_rng(seed)

    def standard_normal(self, shape, dtype):
        return self.backend.asarray(self.rng.standard_normal(shape).astype(dtype))


def test_log_likelihood_and_evaluation_agree_with_numpy(gpu_backend, digits):
    cpu, gpu = twins(gpu_backend, input_dim=64, hidden=(32,), latent_dim=4, num_classes=10)
    x, y = digits.test_x[:40], digits.test_y[:40]
    xg, yg = gpu.backend.asarray(x), gpu.backend.asarray(y, dtype=np.int64)

    log_px = [m.backend.to_host(m.log_likelihood(xx, k=50, labels=yy, rng=HostNoise(m.backend, 0),
                                                 max_rows=1000))
              for m, xx, yy in ((cpu, x, y), (gpu, xg, yg))]  # fmt: skip
    assert log_px[1].shape == (40,) and np.isfinite(log_px[1]).all()
    np.testing.assert_allclose(log_px[1], log_px[0], rtol=1e-5)

    # evaluate_loss draws its noise from the backend's generator: give NumPy the same draws
    seed, L = 3, gpu.latent_dim
    eps = gpu.backend.to_host(gpu.backend.rng(seed).standard_normal((1, 40, L), dtype=np.float32))
    expected_loss, expected_parts = cpu.loss(x, eps=eps, labels=y)
    got = evaluate_loss(gpu, xg, yg, batch_size=40, seed=seed)
    np.testing.assert_allclose(got["loss"], float(expected_loss), rtol=1e-5)
    np.testing.assert_allclose(got["kl"], float(expected_parts["kl"]), rtol=1e-5)

    variances = [m.backend.to_host(posterior_means(m, xx, yy)).var(axis=0)
                 for m, xx, yy in ((cpu, x, y), (gpu, xg, yg))]  # fmt: skip
    np.testing.assert_allclose(variances[1], variances[0], rtol=1e-4)
    threshold = float(np.median(variances[0]))  # so that some units are active, some not
    active = [active_units(m, xx, yy, threshold) for m, xx, yy in ((cpu, x, y), (gpu, xg, yg))]
    assert active[1] == active[0] and 0 < active[0] < L


def test_samples_and_pictures_from_a_cupy_model(gpu_backend, digits, tmp_path):
    cpu, gpu = twins(gpu_backend, input_dim=64, hidden=(32,), latent_dim=2)
    z = np.random.default_rng(5).standard_normal((16, 2))
    np.testing.assert_allclose(host(gpu, gpu.decode(gpu.backend.asarray(z))), cpu.decode(z),
                               rtol=1e-5, atol=1e-6)  # fmt: skip
    drawn = gpu.sample(16)
    assert gpu.backend.owns(drawn) and drawn.shape == (16, 64)
    drawn = host(gpu, drawn)
    assert (drawn >= 0).all() and (drawn <= 1).all()

    x, y = prepare_test_set(digits, small(), gpu.backend)
    history = [dict(epoch=1, train_loss=30.0, test_loss=31.0, recon=28.0, kl=2.0)]
    plots.save_epoch_pictures(tmp_path, gpu, 1, gpu.backend.asarray(z), None, x, y, (8, 8), history)
    mu = host(gpu, posterior_means(gpu, x))
    plots.save_final_pictures(tmp_path, gpu, mu, digits.test_x[:8], digits.test_y, (8, 8))
    names = ("samples_epoch01", "reconstructions_epoch01", "loss", "latent", "manifold",
             "interpolation")  # fmt: skip
    for name in names:
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


# --- no waiting for the device inside a step ------------------------------------------------

STEP_CASES = {
    "adam": {},
    "conditional, denoising, iwae": dict(conditional=True, denoise=0.2, objective="iwae", samples=3),
    "sgd, clipped, fixed gaussian variance": dict(optimizer="sgd", clip_norm=5.0, lr=1e-3,
                                                  likelihood="gaussian", gaussian_logvar=0.0),
}  # fmt: skip


@pytest.mark.parametrize("case", list(STEP_CASES))
def test_training_steps_never_wait_for_the_device(gpu_backend, digits, case):
    config = small(**STEP_CASES[case])
    model, optimizer, batches = training_parts(config, digits)
    rng = model.backend.rng(1)
    train_steps(model, optimizer, batches.epoch(1), config, 1, rng)  # compile, grow the pool
    epoch = started(batches.epoch(2))
    with no_wait(gpu_backend):
        total, grad_sq = train_steps(model, optimizer, epoch, config, 3, rng)
    assert math.isfinite(float(total)) and float(grad_sq) > 0


def test_the_no_wait_check_catches_a_read_back(gpu_backend, digits):
    config = small()
    model, optimizer, batches = training_parts(config, digits)
    rng = model.backend.rng(1)
    train_steps(model, optimizer, batches.epoch(1), config, 1, rng)
    epoch = started(batches.epoch(2))
    with pytest.raises((HostWaited, fake_cupy.ReadBackForbidden)):
        with no_wait(gpu_backend):
            total, _ = train_steps(model, optimizer, epoch, config, 1, rng)
            float(total)  # the host waits here


@pytest.mark.parametrize("every, reads", [(4, 5), (20, 2), (1, 16)])
def test_an_epoch_reads_back_once_per_progress_update(gpu_backend, digits, monkeypatch,
                                                      every, reads):  # fmt: skip
    """15 steps: a read at every ``every``-th step and at the last (4, 8, 12, 15), one more
    for the epoch's sums, and one wait at its end. On the stand-in every read-back of any
    kind is counted, so nothing else may read; on a GPU only tinyvae's own are."""
    config = small(progress_every=every)
    model, optimizer, batches = training_parts(config, digits)
    counted = {"to_host": 0, "synchronize": 0}
    for method in counted:
        original = getattr(Backend, method)

        def counting(self, *args, _original=original, _method=method):
            counted[_method] += 1
            return _original(self, *args)

        monkeypatch.setattr(Backend, method, counting)
    fake_cupy.reset_counts()
    train_epoch(model, optimizer, batches, config, 1)
    assert counted == {"to_host": reads, "synchronize": 1}
    if is_stand_in(gpu_backend):
        assert fake_cupy.counts["read_back"] == reads, fake_cupy.reads
        assert fake_cupy.counts["sync"] == 1


# --- float32 stays float32; labels checked once ---------------------------------------------

LIKELIHOODS = {
    "bernoulli": {},
    "gaussian, learned variance": dict(likelihood="gaussian"),
    "gaussian, fixed variance 0": dict(likelihood="gaussian", gaussian_logvar=0.0),
    "gaussian, fixed variance -2": dict(likelihood="gaussian", gaussian_logvar=-2.0),
}


@pytest.mark.parametrize("objective, samples", [("elbo", 1), ("iwae", 2)])
@pytest.mark.parametrize("setting", list(LIKELIHOODS))
def test_float32_stays_float32_for_every_likelihood(backend, setting, objective, samples):
    """A fixed log-variance used to make the loss, the decoder's gradient and its backward
    pass float64 (xp.exp of a Python float is a float64 scalar, which is not "weak")."""
    model = tinyvae.VAE(12, hidden=(8,), latent_dim=3, backend=backend, **LIKELIHOODS[setting])
    x = backend.asarray(np.random.default_rng(0).random((5, 12)))
    loss, parts, grads = model.loss_and_grads(x, samples=samples, objective=objective)
    out = model._decode(model.rng.standard_normal((1, 5, 3), dtype=model.dtype), None)
    log_px, (d_out, d_logvar) = model._log_px(x, out, with_grad=True)
    arrays = [loss, parts["recon"], parts["kl"], log_px, d_out, *grads.values(),
              model.log_likelihood(x, k=4), model.decode(x[:, :3])]  # fmt: skip
    arrays += [] if d_logvar is None else [d_logvar]
    assert {str(a.dtype) for a in arrays} == {"float32"}


def test_labels_out_of_range_are_refused_once_with_the_data(backend):
    model = tinyvae.VAE(6, hidden=(5,), latent_dim=2, num_classes=3, backend=backend)
    x = backend.asarray(np.full((3, 6), 0.5))
    bad = backend.asarray([0, 1, 5], dtype=np.int64)
    with pytest.raises(UserError, match=r"the training labels hold classes 0 to 5, but this "
                                        r"conditional model knows 0 to 2"):  # fmt: skip
        check_data(model, x, small(), "the training images", bad)
    check_data(model, x, small(), "the training images", backend.asarray([0, 2], dtype=np.int64))
    # Why once, with the data: a step does not check (validate=False), and there the index
    # wraps around on CuPy, silently another class, where NumPy raises.
    if backend.name == "numpy":
        with pytest.raises(IndexError):
            model.loss_and_grads(x, labels=bad, validate=False)
    elif is_stand_in(backend):
        model.loss_and_grads(x, labels=bad, validate=False)


# --- the command line, end to end -----------------------------------------------------------


@pytest.fixture(params=[conftest.CUPY, conftest.STAND_IN])
def cupy_command(request, tmp_path_factory):
    """Runs ``python -m tinyvae.<tool> ... --backend cupy`` in a subprocess, with the real
    CuPy or (PYTHONPATH first) the stand-in as ``cupy``."""
    paths = [str(ROOT)]
    if request.param == "stand-in":
        paths.insert(0, str(fake_cupy.install(tmp_path_factory.mktemp("stand-in"))))
    else:
        reason = cupy_unavailable_reason()
        if reason is not None:
            if os.environ.get(conftest.REQUIRE_GPU) == "1":
                pytest.fail(f"{conftest.REQUIRE_GPU}=1 but CuPy cannot run: {reason}")
            pytest.skip(f"CuPy backend unavailable: {reason}")
    env = os.environ | {"PYTHONPATH": os.pathsep.join(paths), "OPENBLAS_NUM_THREADS": "1"}

    def command(tool, *args):
        done = subprocess.run([sys.executable, "-m", f"tinyvae.{tool}", *map(str, args)],
                              capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    command.stand_in = request.param == "stand-in"
    return command


def test_train_sample_and_evaluate_on_cupy(cupy_command, tmp_path):
    run = tmp_path / "run"
    tiny = ["--dataset", "digits", "--hidden", "32", "--latent-dim", "2", "--batch-size", "100",
            "--no-progress", "--backend", "cupy", "--progress-every", "5", "--out", run]  # fmt: skip
    out = cupy_command("train", *tiny, "--epochs", "3")
    assert "64-32-2 relu bernoulli" in out and ", cupy; run folder" in out, out
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3] and rows[-1]["train_loss"] < rows[0][
        "train_loss"
    ]
    for name in ("samples_epoch03", "reconstructions_epoch03", "loss", "latent", "manifold",
                 "interpolation"):  # fmt: skip
        assert (run / f"{name}.png").stat().st_size > 1000, name
    assert "wrote 16 samples" in cupy_command("sample", "--run", run, "--n", "16", "--backend",
                                              "cupy", "--out", tmp_path / "s.png")  # fmt: skip
    result = json.loads(cupy_command("evaluate", "--run", run, "--k", "20", "--n", "50",
                                     "--backend", "cupy", "--json"))  # fmt: skip
    assert result["images"] == 50 and math.isfinite(result["nll"])
    assert result["nll"] >= result["test_loss"] - 5  # log p(x) is above the ELBO, up to noise
    on_cpu = checkpoint.build_model(checkpoint.load(run), "numpy")  # a GPU run loads on a CPU
    assert np.isfinite(on_cpu.flat.data).all()


def test_a_run_moved_to_another_backend_resumes_with_a_note(gpu_backend, tmp_path, capsys):
    from tinyvae.train import main as train_main

    tiny = ["--dataset", "digits", "--hidden", "16", "--latent-dim", "2", "--batch-size", "500",
            "--no-progress", "--out", str(tmp_path / "run")]  # fmt: skip
    assert train_main([*tiny, "--epochs", "1"]) == 0  # on NumPy
    assert train_main([*tiny, "--epochs", "2", "--resume", "--backend", "cupy"]) == 0
    err = capsys.readouterr().err
    assert "note: this run trained on numpy and continues on cupy" in err
    assert "not bit for bit" in err
    assert train_main([*tiny, "--epochs", "3", "--resume", "--backend", "cupy"]) == 0
    assert "note:" not in capsys.readouterr().err  # the same backend: bit for bit, no note
