"""The fast paths give the same numbers as the plain formulas they replace.

Speed itself is measured by ``benchmarks/bench_train.py``, never here: these tests only pin
down that each shortcut (in-place activations, the fused Bernoulli likelihood, Adam's
folded and blocked update, its compiled loop, the subnormal flush) computes what the
textbook form computes.
"""

import warnings

import numpy as np
import pytest

import tinyvae
from tinyvae.core import conv
from tinyvae.core import distributions as dist
from tinyvae.core.layers import ACTIVATIONS
from tinyvae.core.networks import MLP
from tinyvae.core.optim import Adam
from tinyvae.core.params import FlatParameters
from tinyvae.fast import adam, numba_jit
from tinyvae.fast import conv as fast_conv
from tinyvae.fast.activations import IN_PLACE
from tinyvae.fast.adam import compiled_adam_loop, flush_subnormals
from tinyvae.fast.bernoulli import bernoulli_log_likelihood_and_grad

needs_numba = pytest.mark.skipif(
    compiled_adam_loop() is None, reason="Numba is not installed (pip install numba)"
)
# Adam's two CPU paths: the NumPy passes, and the compiled loop of tinyvae/fast/adam_loop.py.
ADAM_PATHS = [False, pytest.param(True, marks=needs_numba)]


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_in_place_activations_match_and_others_leave_inputs_alone(name):
    rng = np.random.default_rng(0)
    X, dY = rng.standard_normal((4, 6)), rng.standard_normal((4, 6))
    plain, fast = ACTIVATIONS[name](), IN_PLACE[name]()
    X2, dY2 = X.copy(), dY.copy()
    Y = plain.forward(X)
    dX = plain.backward(dY)
    np.testing.assert_array_equal(X, X2)  # built alone, an activation overwrites nothing
    np.testing.assert_array_equal(dY, dY2)
    Y2 = fast.forward(X2)
    dX2 = fast.backward(dY2)
    np.testing.assert_array_equal(Y2, Y)
    np.testing.assert_array_equal(dX2, dX)
    assert Y2 is X2  # the in-place version reused its input's memory


def test_mlp_in_place_activations_give_the_plain_composition():
    rng = np.random.default_rng(1)
    net = MLP([5, 7, 3], "relu", rng, "float64")
    X, G = rng.standard_normal((4, 5)), rng.standard_normal((4, 3))
    W1, b1 = net.layers[0].params["W"], net.layers[0].params["b"]
    W2, b2 = net.layers[1].params["W"], net.layers[1].params["b"]
    X_before = X.copy()
    out = net.forward(X)
    h = np.maximum(X @ W1 + b1, 0)
    np.testing.assert_allclose(out, h @ W2 + b2, rtol=1e-12)
    dX = net.backward(G)
    dh = (G @ W2.T) * (h > 0)
    np.testing.assert_allclose(dX, dh @ W1.T, rtol=1e-12)
    np.testing.assert_allclose(net.layers[0].grads["b"], dh.sum(0), rtol=1e-12)
    np.testing.assert_array_equal(X, X_before)  # the caller's input is never overwritten
    np.testing.assert_allclose(net.backward(G), dX, rtol=1e-12)  # backward twice: same answer


@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-12), ("float32", 1e-5)])
def test_fused_bernoulli_equals_the_two_plain_functions(dtype, rtol):
    rng = np.random.default_rng(2)
    x = rng.random((2, 3, 50)).astype(dtype)
    a = (8 * rng.standard_normal((2, 3, 50))).astype(dtype)
    a[0, 0, :4] = [1e4, -1e4, 80.0, -80.0]  # saturated logits
    log_p, grad = bernoulli_log_likelihood_and_grad(x, a)
    assert log_p.dtype == grad.dtype == np.dtype(dtype)
    np.testing.assert_allclose(log_p, dist.bernoulli_log_likelihood(x, a), rtol=rtol)
    np.testing.assert_allclose(grad, dist.bernoulli_log_likelihood_grad(x, a), atol=rtol)


def reference_adam(theta, grads, lr, b1, b2, eps):
    """Whole-array Adam in PyTorch's textbook form."""
    theta, m, v = theta.copy(), np.zeros_like(theta), np.zeros_like(theta)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        theta -= lr / (1 - b1**t) * m / (np.sqrt(v) / np.sqrt(1 - b2**t) + eps)
    return theta


@pytest.mark.parametrize("compiled", ADAM_PATHS)
def test_adam_matches_the_textbook_form_across_block_edges(compiled):
    rng = np.random.default_rng(3)
    size = 2 * adam.BLOCK + 123  # three blocks, the last one short
    theta0, grads = rng.standard_normal(size), rng.standard_normal((12, size))
    grads[:, :1000] = 0  # a region whose moments stay 0
    flat = FlatParameters({"w": theta0}, tinyvae.get_backend("numpy", "float64"))
    opt = Adam(flat, lr=0.01, compiled=compiled)
    for g in grads:
        flat.grad[...] = g
        opt.step()
    np.testing.assert_allclose(
        flat.data, reference_adam(theta0, grads, 0.01, 0.9, 0.999, 1e-8), rtol=1e-12
    )


def test_flush_subnormals_zeroes_only_subnormals():
    tiny = np.finfo(np.float32).tiny
    a = np.array([tiny / 8, -tiny / 2, tiny, -2 * tiny, 1e-20, 0.5, 0.0], dtype=np.float32)
    flush_subnormals(a, np.empty_like(a))
    expected = np.array([0, 0, tiny, -2 * tiny, 1e-20, 0.5, 0], dtype=np.float32)
    np.testing.assert_array_equal(a, expected)


def gradients_down_to_subnormal(dtype, steps, size=2 * adam.BLOCK + 77, seed=5):
    """(steps, size) gradients whose sizes span 1e-25 to 10, plus two regions whose moments
    pass through the subnormal numbers (below ~1e-38 in float32) during the run: one where
    a tiny gradient stops after the first step (m decays by beta1 per step), and one where
    g * g is itself subnormal at every step (v starts there)."""
    rng = np.random.default_rng(seed)
    grads = rng.standard_normal((steps, size)) * np.logspace(-25, 1, size)
    grads[:, :300] = 0
    grads[0, :300] = 1e-34  # m = 1e-35 after step 1, subnormal from step ~30 in float32
    grads[:, 300:600] = 3e-21  # g^2 ~ 1e-41
    return grads.astype(dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("eps", [1e-8, 1e-30])  # 1e-30: theta feels even a subnormal v
@needs_numba
def test_compiled_adam_gives_the_same_bits_as_the_numpy_passes_at_every_step(dtype, eps):
    grads = gradients_down_to_subnormal(dtype, steps=45)
    theta0 = np.random.default_rng(6).standard_normal(grads.shape[1]).astype(dtype)
    runs = []
    for compiled in (False, True):
        flat = FlatParameters({"w": theta0.copy()}, tinyvae.get_backend("numpy", dtype))
        runs.append((flat, Adam(flat, lr=0.01, betas=(0.8, 0.99), eps=eps, compiled=compiled)))
    tiny = np.finfo(dtype).tiny
    saw_subnormal = False
    for g in grads:
        for flat, opt in runs:
            flat.grad[...] = g
            opt.step()
        (numpy_flat, numpy_opt), (compiled_flat, compiled_opt) = runs
        saw_subnormal |= bool(((numpy_opt.m != 0) & (np.abs(numpy_opt.m) < tiny)).any())
        np.testing.assert_array_equal(compiled_opt.m, numpy_opt.m, err_msg=f"m, step {opt.t}")
        np.testing.assert_array_equal(compiled_opt.v, numpy_opt.v, err_msg=f"v, step {opt.t}")
        np.testing.assert_array_equal(compiled_flat.data, numpy_flat.data, err_msg=f"step {opt.t}")
    assert saw_subnormal == (dtype == "float32")  # the test did pass through subnormals


@pytest.mark.parametrize("compiled", [False, pytest.param(True, marks=needs_numba)])
def test_a_gradient_whose_square_overflows_stops_its_weight_without_a_warning(compiled):
    """|g| = 1e20 squares past float32's largest number: v is inf, the step is 0, no NaN."""
    flat = FlatParameters({"w": np.ones(3, "float32")}, tinyvae.get_backend("numpy"))
    opt = Adam(flat, compiled=compiled)
    flat.grad[...] = np.array([1e20, -1e20, 0.5], "float32")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt.step()
    np.testing.assert_array_equal(opt.v[:2], np.inf)
    np.testing.assert_array_equal(flat.data[:2], 1.0)  # m / inf = 0: the weight stays
    assert flat.data[2] < 1.0


def test_adam_rounds_betas_given_as_numpy_floats_like_python_floats():
    grads = gradients_down_to_subnormal("float32", steps=3, size=1000)
    results = []
    for betas in ((0.9, 0.999), (np.float64(0.9), np.float64(0.999))):
        flat = FlatParameters({"w": np.ones(1000, "float32")}, tinyvae.get_backend("numpy"))
        opt = Adam(flat, betas=betas, compiled=False)
        for g in grads:
            flat.grad[...] = g
            opt.step()
        results.append(flat.data.copy())
    np.testing.assert_array_equal(results[1], results[0])


def test_the_environment_variable_turns_the_compiled_loop_off(monkeypatch):
    monkeypatch.setenv("TINYVAE_KERNELS", "numpy")
    compiled_adam_loop.cache_clear()
    try:
        assert compiled_adam_loop() is None
    finally:
        compiled_adam_loop.cache_clear()  # look again, with the variable restored


@pytest.mark.parametrize("compiled", ADAM_PATHS)
def test_adam_keeps_decaying_moments_out_of_the_subnormal_range(compiled):
    """Gradients that stop after step 1, so the moments only decay. Element 0: m shrinks by
    beta1 per step from 1e-4 and is subnormal from step 743 (float32: 1e-4 * 0.9^742 =
    1.1e-38 < tiny = 1.2e-38) until about step 900, where it would underflow to 0 by
    itself. Element 1: v = (1 - beta2) g^2 = 1e-39 is subnormal from step 1 and, shrinking
    by 0.1 % per step, would stay so for thousands of steps. Each 10th step clears both,
    so no moment is subnormal then, and m[0] is 0 from step 750 on."""
    flat = FlatParameters({"w": np.ones(2, "float32")}, tinyvae.get_backend("numpy"))
    opt = Adam(flat, lr=1e-3, compiled=compiled)
    flat.grad[...] = [1e-3, 1e-18]
    opt.step()
    flat.grad[...] = 0
    tiny, first_zero = np.finfo(np.float32).tiny, None
    for _ in range(1000):
        opt.step()
        if opt.t % adam.FLUSH_EVERY == 0:
            assert not ((opt.m != 0) & (np.abs(opt.m) < tiny)).any(), opt.t
            assert not ((opt.v != 0) & (opt.v < tiny)).any(), opt.t
            if first_zero is None and opt.m[0] == 0:
                first_zero = opt.t
    assert first_zero == 750
    assert np.isfinite(flat.data).all()


class NoReadBack(np.ndarray):
    """An array that refuses to become a Python number: on a GPU each such read is a sync."""

    def __float__(self):
        raise AssertionError("a value was read back during the step")

    __bool__ = __int__ = __index__ = __float__


def test_a_training_step_reads_no_value_back():
    model = tinyvae.VAE(12, hidden=(8,), latent_dim=3)
    x = np.random.default_rng(4).random((5, 12)).astype("float32").view(NoReadBack)
    for objective, samples in (("elbo", 1), ("elbo", 2), ("iwae", 3)):
        loss, parts, _ = model.loss_and_grads(
            x, samples=samples, objective=objective, validate=False
        )
        assert isinstance(loss, NoReadBack)  # the loss stays an array, never a float
        assert loss.dtype == parts["kl"].dtype == model.flat.grad.dtype == np.float32
    tinyvae.Adam(model.flat).step()


def numpy_passes(monkeypatch):
    """Turn every compiled loop off for the context ``monkeypatch`` patches (through
    ``TINYVAE_KERNELS=numpy``): conv.py's im2col and col2im run their NumPy passes."""
    monkeypatch.setenv("TINYVAE_KERNELS", "numpy")


def same_bits(fast, slow):
    """The same values in the same layout, -0.0 and 0.0 told apart, NaN equal to NaN."""
    assert fast.strides == slow.strides  # the same layout: later sums run in one order
    assert np.ascontiguousarray(fast).tobytes() == np.ascontiguousarray(slow).tobytes()


# (H, W, kernel, stride, padding, channels, batch): odd sizes, kernels that overlap, that
# leave gaps (stride > kernel), wide padding
CONV_GEOMETRIES = [(28, 28, 4, 2, 1, 1, 7), (14, 14, 4, 2, 1, 32, 5), (7, 9, 3, 1, 1, 3, 4),
                   (9, 8, 3, 2, 0, 2, 3), (8, 8, 5, 3, 2, 2, 2), (5, 5, 2, 3, 0, 1, 3)]  # fmt: skip


@needs_numba
@pytest.mark.parametrize("geometry", CONV_GEOMETRIES)
@pytest.mark.parametrize("batch_innermost", [True, False])
def test_compiled_im2col_and_col2im_give_the_numpy_bits(geometry, batch_innermost, monkeypatch):
    H, W, k, s, p, C, B = geometry
    rng = np.random.default_rng(sum(geometry))
    X = rng.standard_normal((C, H, W, B)).astype("float32").transpose(3, 0, 1, 2)
    if not batch_innermost:
        X = np.ascontiguousarray(X)  # the usual layout: im2col keeps to NumPy for it
    assert (fast_conv.im2col(X, k, s, p, numba_jit.compiled) is not None) == (
        batch_innermost or B == 1
    )
    cols = conv.im2col(X, k, s, p)
    G = rng.standard_normal(cols.shape).astype("float32")  # a gradient for col2im
    compiled = cols, conv.col2im(G, X.shape, k, s, p)
    with monkeypatch.context() as patch:
        numpy_passes(patch)
        plain = conv.im2col(X, k, s, p), conv.col2im(G, X.shape, k, s, p)
    for fast, slow in zip(compiled, plain):
        np.testing.assert_array_equal(fast, slow)
        same_bits(fast, slow)


@needs_numba
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_a_conv_vae_trains_to_the_same_bits_with_and_without_the_compiled_loops(
    likelihood, monkeypatch
):
    """Three Adam steps of a small conv VAE (odd image size: the decoder's output padding)."""
    x = np.random.default_rng(3).random((16, 11 * 9)).astype("float32")
    finals, losses = [], []
    for plain in (False, True):
        with monkeypatch.context() as patch:
            if plain:
                numpy_passes(patch)
            model = tinyvae.VAE(99, latent_dim=3, arch="conv", channels=(4, 6),
                                image_shape=(11, 9), likelihood=likelihood, seed=2)  # fmt: skip
            opt = Adam(model.flat, compiled=False)
            for _ in range(3):
                loss, _, _ = model.loss_and_grads(x, eps=np.full((16, 3), 0.5, "float32"))
                losses.append(float(loss))
                opt.step()
            finals.append(model.flat.data.copy())
    assert finals[0].tobytes() == finals[1].tobytes()
    assert losses[:3] == losses[3:]


def test_without_numba_the_conv_layers_keep_to_numpy(monkeypatch):
    monkeypatch.setattr(numba_jit, "numba_module", lambda: None)
    assert not numba_jit.available() and numba_jit.compiled(fast_conv.col2im_loop) is None
    cols = np.zeros((2, 2, 3, 2, 2, 2), "float32")
    assert fast_conv.col2im(cols, (2, 3, 4, 4), 2, 2, 0, numba_jit.compiled) is None
    monkeypatch.undo()
    monkeypatch.setenv("TINYVAE_KERNELS", "numpy")
    assert fast_conv.col2im(cols, (2, 3, 4, 4), 2, 2, 0, numba_jit.compiled) is None
