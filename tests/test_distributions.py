"""The probabilistic pieces: values, analytic gradients, Monte Carlo agreement, extremes."""

import numpy as np
import pytest

from tinyvae.core import distributions as dist
from tinyvae.core.gradcheck import check_gradient

TOL = 1e-6
rng = np.random.default_rng(0)


def test_bernoulli_log_likelihood_equals_the_textbook_formula():
    x, a = rng.random((3, 5)), rng.standard_normal((3, 5))
    p = 1 / (1 + np.exp(-a))
    expected = (x * np.log(p) + (1 - x) * np.log(1 - p)).sum(-1)
    np.testing.assert_allclose(dist.bernoulli_log_likelihood(x, a), expected, rtol=1e-12)


def test_bernoulli_gradient():
    x, a = rng.random((3, 5)), rng.standard_normal((3, 5))
    f = lambda: dist.bernoulli_log_likelihood(x, a).sum()
    assert check_gradient(f, a, dist.bernoulli_log_likelihood_grad(x, a)) < TOL


@pytest.mark.parametrize("per_pixel", [True, False])
def test_gaussian_log_likelihood_value_and_gradients(per_pixel):
    x, m = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    lv = rng.standard_normal(4) if per_pixel else -0.3
    var = np.exp(lv)
    expected = (-0.5 * np.log(2 * np.pi * var) - (x - m) ** 2 / (2 * var)).sum(-1)
    np.testing.assert_allclose(dist.gaussian_log_likelihood(x, m, lv), expected, rtol=1e-12)
    d_mean, d_lv = dist.gaussian_log_likelihood_grad(x, m, lv)
    f = lambda: dist.gaussian_log_likelihood(x, m, lv).sum()
    assert check_gradient(f, m, d_mean) < TOL
    if per_pixel:
        assert check_gradient(f, lv, d_lv.sum(0)) < TOL


def test_kl_gradients():
    mu, lv = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    d_mu, d_lv = dist.kl_standard_normal_grad(mu, lv)
    f = lambda: dist.kl_standard_normal(mu, lv).sum()
    assert check_gradient(f, mu, d_mu) < TOL
    assert check_gradient(f, lv, d_lv) < TOL


def test_closed_form_kl_agrees_with_monte_carlo():
    mu, lv = np.array([0.5, -1.0, 2.0]), np.array([0.3, -1.2, 0.8])
    eps = np.random.default_rng(1).standard_normal((400_000, 3))
    z = dist.reparameterize(mu, lv, eps)
    log_ratio = dist.diagonal_normal_log_density(z, mu, lv) - dist.standard_normal_log_density(z)
    estimate, stderr = log_ratio.mean(), log_ratio.std() / np.sqrt(len(z))
    assert abs(estimate - dist.kl_standard_normal(mu, lv)) < 4 * stderr


def test_reparameterize_backward_with_several_samples():
    mu, lv = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    eps, R = rng.standard_normal((5, 4, 3)), rng.standard_normal((5, 4, 3))
    d_mu, d_lv = dist.reparameterize_backward(R, mu, lv, eps)
    f = lambda: (dist.reparameterize(mu, lv, eps) * R).sum()
    assert check_gradient(f, mu, d_mu) < TOL
    assert check_gradient(f, lv, d_lv) < TOL


def test_reparameterized_samples_have_the_right_moments():
    mu, lv = np.array([1.0, -2.0]), np.array([np.log(4.0), np.log(0.25)])
    z = dist.reparameterize(mu, lv, np.random.default_rng(2).standard_normal((200_000, 2)))
    np.testing.assert_allclose(z.mean(0), mu, atol=0.02)
    np.testing.assert_allclose(z.std(0), [2.0, 0.5], rtol=0.01)


@pytest.mark.filterwarnings("ignore:divide by zero")
def test_logsumexp_is_stable_and_exact():
    a = np.array([[1000.0, -1000.0], [1000.0, -np.inf]])
    np.testing.assert_allclose(dist.logsumexp(a, axis=0), [1000 + np.log(2), -1000.0])
    b = rng.standard_normal((6, 3))
    np.testing.assert_allclose(dist.logsumexp(b, axis=0), np.log(np.exp(b).sum(0)), rtol=1e-12)
    assert dist.logsumexp(np.full((3, 1), -np.inf), axis=0)[0] == -np.inf


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_extreme_inputs_give_finite_values_and_gradients(dtype):
    logits = np.array([[-1e4, 1e4, 0.0, -1e4, 1e4]], dtype=dtype)
    for x in (np.zeros_like(logits), np.ones_like(logits)):
        assert np.isfinite(dist.bernoulli_log_likelihood(x, logits)).all()
        assert np.isfinite(dist.bernoulli_log_likelihood_grad(x, logits)).all()
    # Confident and right costs ~0 nats; confident and wrong costs ~1e4 nats per pixel.
    assert dist.bernoulli_log_likelihood(np.array([[1.0, 0.0]]), np.array([[1e4, -1e4]]))[0] == 0
    assert dist.bernoulli_log_likelihood(np.array([[0.0]]), np.array([[1e4]]))[0] == -1e4
    mu, lv = np.zeros((1, 2), dtype), np.array([[-50.0, 50.0]], dtype)
    values = [dist.kl_standard_normal(mu, lv), *dist.kl_standard_normal_grad(mu, lv)]
    values += [dist.reparameterize(mu, lv, np.ones_like(mu))]
    values += list(dist.reparameterize_backward(np.ones_like(mu), mu, lv, np.ones_like(mu)))
    values += list(dist.gaussian_log_likelihood_grad(np.ones((1, 2), dtype), mu, lv))
    assert all(np.isfinite(v).all() for v in values)
