"""Adam and SGD against straightforward per-element references, clipping, and their state."""

import numpy as np
import pytest

from tinyvae import SGD, Adam, get_backend
from tinyvae.core.optim import clip_grad_norm
from tinyvae.core.params import FlatParameters


def flat_of(values):
    return FlatParameters(
        {"w": np.asarray(values, dtype="float64")}, get_backend("numpy", "float64")
    )


def reference_adam(theta, grads, lr, b1, b2, eps):
    """Adam one element at a time, in PyTorch's form (bias corrections outside the root)."""
    theta, m, v = list(theta), [0.0] * len(theta), [0.0] * len(theta)
    for t, g in enumerate(grads, start=1):
        for i in range(len(theta)):
            m[i] = b1 * m[i] + (1 - b1) * g[i]
            v[i] = b2 * v[i] + (1 - b2) * g[i] ** 2
            denom = (v[i] ** 0.5) / (1 - b2**t) ** 0.5 + eps
            theta[i] -= lr / (1 - b1**t) * m[i] / denom
    return np.array(theta)


@pytest.mark.parametrize("compiled", [False, True])  # True: falls back to NumPy without Numba
def test_adam_matches_the_per_element_reference(compiled):
    rng = np.random.default_rng(0)
    theta0, grads = rng.standard_normal(6), rng.standard_normal((5, 6))
    flat = flat_of(theta0)
    opt = Adam(flat, lr=0.01, betas=(0.8, 0.99), eps=1e-6, compiled=compiled)
    for g in grads:
        flat.grad[...] = g
        opt.step()
    np.testing.assert_allclose(
        flat.data, reference_adam(theta0, grads, 0.01, 0.8, 0.99, 1e-6), rtol=1e-12
    )


def test_sgd_momentum_matches_the_formula():
    flat = flat_of([1.0, -2.0])
    opt = SGD(flat, lr=0.1, momentum=0.5)
    velocity, theta = np.zeros(2), np.array([1.0, -2.0])
    for g in ([1.0, 2.0], [0.5, -1.0], [0.0, 3.0]):
        flat.grad[...] = g
        opt.step()
        velocity = 0.5 * velocity + np.array(g)
        theta = theta - 0.1 * velocity
    np.testing.assert_allclose(flat.data, theta, rtol=1e-12)


@pytest.mark.parametrize("make", [lambda f: Adam(f, lr=0.1), lambda f: SGD(f, lr=0.05)])
def test_optimizers_minimise_a_quadratic(make):
    target = np.array([3.0, -1.0, 0.5])
    flat = flat_of(np.zeros(3))
    opt = make(flat)
    for _ in range(500):
        flat.grad[...] = 2 * (flat.data - target)  # gradient of |theta - target|^2
        opt.step()
    np.testing.assert_allclose(flat.data, target, atol=1e-3)


def test_clipping_scales_only_large_gradients():
    g = np.array([3.0, 4.0])
    assert clip_grad_norm(g, 1.0) == 5.0
    np.testing.assert_allclose(g, [0.6, 0.8])
    small = np.array([0.3, 0.4])
    clip_grad_norm(small, 1.0)
    np.testing.assert_allclose(small, [0.3, 0.4])


def test_clip_norm_option_limits_the_step():
    flat = flat_of([0.0, 0.0])
    opt = SGD(flat, lr=1.0, momentum=0.0, clip_norm=1.0)
    flat.grad[...] = [30.0, 40.0]
    opt.step()
    np.testing.assert_allclose(flat.data, [-0.6, -0.8])


@pytest.mark.parametrize("cls", [Adam, SGD])
def test_state_round_trip_continues_identically(cls):
    rng = np.random.default_rng(1)
    grads = rng.standard_normal((6, 4))
    straight, first = flat_of(np.ones(4)), flat_of(np.ones(4))
    opt = cls(straight)
    for g in grads:
        straight.grad[...] = g
        opt.step()
    opt1 = cls(first)
    for g in grads[:3]:
        first.grad[...] = g
        opt1.step()
    state = {k: (v.copy() if hasattr(v, "copy") else v) for k, v in opt1.state_dict().items()}
    resumed = flat_of(first.data.copy())
    opt2 = cls(resumed)
    opt2.load_state_dict(state)
    for g in grads[3:]:
        resumed.grad[...] = g
        opt2.step()
    np.testing.assert_array_equal(resumed.data, straight.data)


def test_flat_parameters_are_views_into_one_buffer():
    flat = FlatParameters({"a": np.ones((2, 3)), "b": np.zeros(4)}, get_backend("numpy"))
    assert flat.size == 10 and flat.params["a"].shape == (2, 3)
    flat.data[...] = 7
    assert (flat.params["a"] == 7).all() and (flat.params["b"] == 7).all()
    flat.grads["b"][...] = 1
    assert flat.grad.sum() == 4
