"""Two layers of latent variables: every parameter's gradient against finite differences,
a planted error that must fail them, and the model's values recomputed independently."""

import numpy as np
import pytest
from conftest import worst_gradient_error

from tinyvae.core import hierarchical
from tinyvae.core.hierarchical import HierarchicalVAE
from tinyvae.errors import ModelError

TOL = 1e-6
D_IN, L1, L2, BATCH = 7, 3, 2, 5


def make_model(seed=0, **kwargs):
    """A float64 model whose biases are nudged off zero (no ReLU input on its kink)."""
    options = dict(hidden=(6, 5), latent_dim=(L1, L2), upper_hidden=(4,), dtype="float64")
    model = HierarchicalVAE(D_IN, seed=seed, **(options | kwargs))
    rng = np.random.default_rng(seed + 100)
    for name, p in model.parameters().items():
        if name.endswith(".b"):
            p[...] = 0.1 * rng.standard_normal(p.shape)
    return model


def batch(seed=0, n=BATCH, samples=1):
    rng = np.random.default_rng(seed)
    return rng.random((n, D_IN)), rng.standard_normal((samples, n, L1 + L2))


CASES = [
    dict(),
    dict(activation="tanh", upper_hidden=(4, 3)),
    dict(activation="leaky_relu"),
    dict(likelihood="gaussian"),  # learned per-pixel variance
    dict(likelihood="gaussian", gaussian_logvar=-1.0),  # fixed variance
]


@pytest.mark.parametrize(
    "options", CASES, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default"
)
@pytest.mark.parametrize("objective,samples", [("elbo", 1), ("elbo", 3), ("iwae", 1), ("iwae", 4)])
def test_every_parameter_gradient_matches_finite_differences(options, objective, samples):
    model = make_model(**options)
    x, eps = batch(samples=samples)
    worst, errors = worst_gradient_error(
        model, x=x, eps=eps, beta=0.7, samples=samples, objective=objective
    )
    assert worst < TOL, errors
    assert len(errors) == len(model.parameters())


def test_denoising_input_gradients_match_finite_differences():
    model = make_model()
    x, eps = batch(samples=2)
    x_in = x * (np.random.default_rng(3).random(x.shape) > 0.3)
    worst, errors = worst_gradient_error(model, x=x, eps=eps, samples=2, x_input=x_in)
    assert worst < TOL, errors


@pytest.mark.parametrize("objective", ["elbo", "iwae"])
def test_a_planted_error_in_the_gradient_through_z1_to_the_prior_is_caught(monkeypatch, objective):
    """Drop d log p(z1|z2) / d z1, the gradient that reaches p(z1|z2) through z1: the checks
    of the encoder of z1 must fail, while the networks above z1 still pass."""
    model = make_model()
    x, eps = batch(samples=3)
    kwargs = dict(x=x, eps=eps, samples=3, objective=objective)
    assert worst_gradient_error(model, **kwargs)[0] < TOL
    right = hierarchical.log_prior_z1_grads

    def without_z1(z1, mean, logvar):
        d_z1, d_mean, d_logvar = right(z1, mean, logvar)
        return 0 * d_z1, d_mean, d_logvar

    monkeypatch.setattr(hierarchical, "log_prior_z1_grads", without_z1)
    worst, errors = worst_gradient_error(model, **kwargs)
    assert worst > 1e-3
    assert errors["encoder.0.W"] > 1e-3
    assert errors["decoder.0.W"] < TOL and errors["decoder_top.0.W"] < TOL


def test_a_sign_error_in_the_prior_mean_gradient_is_caught(monkeypatch):
    model = make_model()
    x, eps = batch(samples=2)
    right = hierarchical.log_prior_z1_grads
    monkeypatch.setattr(
        hierarchical,
        "log_prior_z1_grads",
        lambda z1, m, s: (lambda g: (g[0], -g[1], g[2]))(right(z1, m, s)),
    )
    worst, errors = worst_gradient_error(model, x=x, eps=eps, samples=2)
    assert errors["decoder_top.0.W"] > 1e-3


def gaussian_log_density(z, mean, logvar):
    return -0.5 * (np.log(2 * np.pi) + logvar + (z - mean) ** 2 / np.exp(logvar)).sum(-1)


def independent_log_weights(model, x, eps):
    """log p(x|z1) and the log-density ratios recomputed with plain NumPy: (K, B) each."""
    W = model.parameters()

    def mlp(h, prefix, layers):
        for i in range(layers):
            h = h @ W[f"{prefix}.{i}.W"] + W[f"{prefix}.{i}.b"]
            h = np.maximum(h, 0) if i < layers - 1 else h
        return h

    q1 = mlp(x, "encoder", 3)
    mu1, lv1 = q1[:, :L1], q1[:, L1:]
    z1 = mu1 + np.exp(lv1 / 2) * eps[..., :L1]
    q2 = mlp(z1, "encoder_top", 2)
    mu2, lv2 = q2[..., :L2], q2[..., L2:]
    z2 = mu2 + np.exp(lv2 / 2) * eps[..., L1:]
    p1 = mlp(z2, "decoder_top", 2)
    p = 1 / (1 + np.exp(-mlp(z1, "decoder", 3)))
    log_px = (x * np.log(p) + (1 - x) * np.log(1 - p)).sum(-1)
    log_q1 = gaussian_log_density(z1, mu1, lv1)
    log_p1 = gaussian_log_density(z1, p1[..., :L1], p1[..., L1:])
    log_q2 = gaussian_log_density(z2, mu2, lv2)
    log_pz2 = gaussian_log_density(z2, 0.0, 0.0)
    kl2 = 0.5 * (np.exp(lv2) + mu2**2 - 1 - lv2).sum(-1)
    return log_px, log_q1, log_p1, log_q2, log_pz2, kl2


def test_both_bounds_recomputed_independently():
    model = make_model()
    x, eps = batch(samples=4)
    log_px, log_q1, log_p1, log_q2, log_pz2, kl2 = independent_log_weights(model, x, eps)
    loss, parts = model.loss(x, eps, beta=0.5, samples=4)
    elbo = (log_px - 0.5 * (log_q1 - log_p1 + kl2)).mean(0)
    np.testing.assert_allclose(loss, -elbo.mean(), rtol=1e-10)
    np.testing.assert_allclose(parts["kl"], (log_q1 - log_p1 + kl2).mean(), rtol=1e-10)
    np.testing.assert_allclose(parts["kl2"], kl2.mean(), rtol=1e-10)
    log_w = log_px + log_p1 + log_pz2 - log_q1 - log_q2
    bound = np.log(np.exp(log_w).mean(0))
    loss, _ = model.loss(x, eps, beta=1.0, samples=4, objective="iwae")
    np.testing.assert_allclose(loss, -bound.mean(), rtol=1e-10)
    ll = model.log_likelihood(x, k=4, eps=eps)
    np.testing.assert_allclose(ll, bound, rtol=1e-10)


def test_the_two_elbo_estimates_agree_in_expectation():
    """The ELBO takes the top KL in closed form, the IWAE bound with k = 1 samples it: the
    same bound, so their means over many draws agree within the sampling error."""
    model = make_model()
    x, _ = batch(n=4)
    elbo = np.mean([-model.loss(x)[0] for _ in range(3000)])
    estimates = np.stack([model.log_likelihood(x, k=1) for _ in range(3000)]).mean(1)
    stderr = estimates.std() / np.sqrt(len(estimates))
    assert abs(estimates.mean() - elbo) < 4 * stderr + 1e-3


def test_log_likelihood_is_the_same_in_small_chunks():
    x, _ = batch(n=1)
    at_once = make_model(seed=5).log_likelihood(x, k=3000)
    in_chunks = make_model(seed=5).log_likelihood(x, k=3000, max_rows=200)
    np.testing.assert_allclose(in_chunks, at_once, rtol=1e-12)


def test_sampling_is_top_down_and_fixing_z2_fixes_the_prior_of_z1():
    model = make_model()
    noise = np.random.default_rng(1).standard_normal((6, L1 + L2))
    noise[:, L1:] = noise[0, L1:]  # one z2 for all six, six draws of z1 given it
    images = model.decode(noise)
    assert images.shape == (6, D_IN) and (images > 0).all() and (images < 1).all()
    p1 = model.decoder_top.forward(noise[:1, L1:])
    z1 = p1[:, :L1] + np.exp(p1[:, L1:] / 2) * noise[:, :L1]  # (6, L1)
    direct = 1 / (1 + np.exp(-model.decoder.forward(z1)))
    np.testing.assert_allclose(images, direct, rtol=1e-12)
    assert model.sample(3).shape == (3, D_IN)
    mu, logvar = model.encode(batch()[0])
    assert mu.shape == logvar.shape == (BATCH, L1 + L2)


def test_float32_loss_agrees_loosely_with_float64():
    x, eps = batch(samples=2)
    m64 = make_model()
    m32 = HierarchicalVAE(D_IN, hidden=(6, 5), latent_dim=(L1, L2), upper_hidden=(4,))
    m32.flat.data[...] = m64.flat.data
    l64 = m64.loss(x, eps, samples=2)[0]
    l32 = m32.loss(x.astype("float32"), eps.astype("float32"), samples=2)[0]
    assert abs(float(l32) - float(l64)) < 1e-3 * abs(float(l64))


@pytest.mark.parametrize(
    "options,words",
    [
        (dict(latent_dim=(4, 3, 2)), "two sizes"),
        (dict(latent_dim=(4, 0)), "positive"),
        (dict(arch="conv"), "arch='mlp'"),
        (dict(num_classes=10), "not conditional"),
        (dict(upper_hidden=()), "at least one layer"),
    ],
)
def test_bad_architectures_are_one_line_model_errors(options, words):
    with pytest.raises(ModelError, match=words) as error:
        HierarchicalVAE(16, **options)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("objective,samples", [("elbo", 2), ("iwae", 3)])
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_cupy_gives_numpys_loss_gradients_and_bound(gpu_backend, likelihood, objective, samples):
    """The same weights and noise on both backends, in float64 (on a GPU, or the stand-in)."""
    options = dict(hidden=(8,), latent_dim=(L1, L2), upper_hidden=(5,), likelihood=likelihood)
    cpu = HierarchicalVAE(D_IN, dtype="float64", seed=3, **options)
    gpu = HierarchicalVAE(D_IN, dtype="float64", seed=3, backend=gpu_backend.name, **options)
    x, eps = batch(samples=samples)
    to, back = gpu.backend.asarray, gpu.backend.to_host
    loss_c, _, grads_c = cpu.loss_and_grads(x, eps, 0.8, samples=samples, objective=objective)
    loss_g, _, grads_g = gpu.loss_and_grads(to(x), to(eps), 0.8, samples=samples,
                                            objective=objective)  # fmt: skip
    np.testing.assert_allclose(float(loss_g), float(loss_c), rtol=1e-10)
    for name, grad in grads_c.items():
        np.testing.assert_allclose(back(grads_g[name]), grad, rtol=1e-9, atol=1e-12, err_msg=name)
    bound_c = cpu.log_likelihood(x, k=samples, eps=eps)
    np.testing.assert_allclose(back(gpu.log_likelihood(to(x), k=samples, eps=to(eps))), bound_c,
                               rtol=1e-10)  # fmt: skip
    assert back(gpu.sample(3)).shape == (3, D_IN)
    assert back(gpu.encode(to(x))[0]).shape == (BATCH, L1 + L2)
