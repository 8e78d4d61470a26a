"""Every layer's backward against central finite differences of its forward, in float64."""

import numpy as np
import pytest

import tinyvae
from tinyvae.core.gradcheck import check_gradient, directional_check
from tinyvae.core.layers import ACTIVATIONS, Linear
from tinyvae.core.networks import MLP
from tinyvae.errors import ModelError, UserError

TOL = 1e-6


def scalar_loss(layer, X, R):
    """L = sum(forward(X) * R): its gradient w.r.t. the output is exactly R."""
    return float((layer.forward(X) * R).sum())


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_backward_matches_finite_differences(name):
    rng = np.random.default_rng(1)
    layer = ACTIVATIONS[name]()
    X, R = rng.standard_normal((5, 7)), rng.standard_normal((5, 7))
    layer.forward(X)
    dX = layer.backward(R)
    assert check_gradient(lambda: scalar_loss(layer, X, R), X, dX) < TOL


def test_linear_backward_matches_finite_differences():
    rng = np.random.default_rng(2)
    layer = Linear(6, 4, rng=rng, dtype="float64")
    layer.params["b"][...] = rng.standard_normal(4)
    X, R = rng.standard_normal((5, 6)), rng.standard_normal((5, 4))
    layer.forward(X)
    dX = layer.backward(R)
    grads = {k: g.copy() for k, g in layer.grads.items()}
    f = lambda: scalar_loss(layer, X, R)
    assert check_gradient(f, X, dX) < TOL
    for k, p in layer.params.items():
        assert check_gradient(f, p, grads[k]) < TOL
        assert directional_check(f, p, grads[k]) < TOL


def test_backward_assigns_gradients_instead_of_accumulating():
    rng = np.random.default_rng(3)
    layer = Linear(3, 2, rng=rng, dtype="float64")
    X, R = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    layer.forward(X)
    layer.backward(R)
    first = layer.grads["W"].copy()
    layer.forward(X)
    layer.backward(R)
    np.testing.assert_array_equal(layer.grads["W"], first)


@pytest.mark.parametrize("hidden", [(), (8,), (8, 6, 5)])
def test_mlp_of_any_depth_backpropagates_correctly(hidden):
    rng = np.random.default_rng(4)
    net = MLP([5, *hidden, 3], "tanh", rng, "float64")
    X, R = rng.standard_normal((4, 5)), rng.standard_normal((4, 3))
    assert len(net.layers) == len(hidden) + 1 and len(net.steps) == 2 * len(hidden) + 1
    assert list(net.named_params("net"))[-2:] == [f"net.{len(hidden)}.W", f"net.{len(hidden)}.b"]
    net.forward(X)
    dX = net.backward(R)
    params, grads = (
        net.named_params("net"),
        {k: g.copy() for k, g in net.named_grads("net").items()},
    )
    f = lambda: float((net.forward(X) * R).sum())
    assert check_gradient(f, X, dX) < TOL
    for k, p in params.items():
        assert check_gradient(f, p, grads[k]) < TOL, k


def test_he_init_keeps_relu_activations_at_unit_scale():
    rng = np.random.default_rng(5)
    net = MLP([400, 400, 400, 400, 10], "relu", rng, "float64", init="he")
    X = rng.standard_normal((2000, 400))
    h = X
    for step in net.steps[:-1]:  # up to the last ReLU
        h = step.forward(h)
    # He init: Var(W) = 2 / n_in doubles the pre-activation variance and ReLU halves the
    # mean square, so E[h^2] stays at E[x^2] = 1 after every ReLU (a small-init net would shrink).
    assert 0.8 < float((h**2).mean()) < 1.25


@pytest.mark.parametrize("arch", ["mlp", "conv"])
@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(activation="swish"), "unknown activation 'swish': choose one of relu, leaky_relu, tanh, sigmoid"),
        (dict(init="xavier"), "unknown init 'xavier': choose one of pytorch, he"),
        (dict(likelihood="poisson"), "unknown likelihood 'poisson': choose one of bernoulli, gaussian"),
    ],
)
def test_one_gate_gives_every_arch_the_same_one_line_error(arch, kwargs, message):
    with pytest.raises(ModelError) as caught:
        tinyvae.VAE(64, hidden=(4,), channels=(2,), latent_dim=2, arch=arch, **kwargs)
    assert str(caught.value) == message
    assert isinstance(caught.value, UserError) and isinstance(caught.value, ValueError)
