"""The full model: loss_and_grads checked against finite differences for every parameter."""

import numpy as np
import pytest
from conftest import nudged_vae, worst_gradient_error

import tinyvae
from tinyvae.core import distributions as dist

TOL = 1e-6
D_IN, LATENT, BATCH = 7, 3, 5


def make_model(seed=0, **kwargs):
    return nudged_vae(D_IN, seed, **{"hidden": (6, 5), "latent_dim": LATENT, **kwargs})


def batch(seed=0, n=BATCH, samples=1):
    rng = np.random.default_rng(seed)
    x = rng.random((n, D_IN))
    return x, rng.standard_normal((samples, n, LATENT)), rng.integers(0, 3, n)


CASES = [
    dict(),
    dict(activation="leaky_relu"),
    dict(activation="tanh"),
    dict(activation="sigmoid", hidden=(6,)),
    dict(likelihood="gaussian"),  # learned per-pixel variance
    dict(likelihood="gaussian", gaussian_logvar=-1.0),  # fixed variance
    dict(num_classes=3),  # conditional
]


@pytest.mark.parametrize(
    "options", CASES, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default"
)
@pytest.mark.parametrize("objective,samples", [("elbo", 1), ("elbo", 3), ("iwae", 4)])
def test_every_parameter_gradient_matches_finite_differences(options, objective, samples):
    model = make_model(**options)
    x, eps, labels = batch(samples=samples)
    kwargs = dict(x=x, eps=eps, beta=0.7, samples=samples, objective=objective)
    if model.num_classes:
        kwargs["labels"] = labels
    worst, errors = worst_gradient_error(model, **kwargs)
    assert worst < TOL, errors


def test_a_broken_reparameterization_gradient_is_caught(monkeypatch):
    """Drop the 0.5 in d z / d logvar = 0.5 exp(logvar / 2) eps: the check must fail."""

    def wrong_backward(dz, mu, logvar, eps):
        return dz.sum(0), (dz * np.exp(0.5 * logvar) * eps).sum(0)

    model = make_model()
    x, eps, _ = batch()
    assert worst_gradient_error(model, x=x, eps=eps)[0] < TOL
    monkeypatch.setattr(dist, "reparameterize_backward", wrong_backward)
    worst, errors = worst_gradient_error(model, x=x, eps=eps)
    assert worst > 1e-3
    assert errors["decoder.0.W"] < TOL  # the decoder does not depend on that step


def test_a_broken_kl_gradient_is_caught(monkeypatch):
    model = make_model()
    x, eps, _ = batch()
    monkeypatch.setattr(dist, "kl_standard_normal_grad", lambda mu, lv: (mu, np.exp(lv) - 1))
    assert worst_gradient_error(model, x=x, eps=eps)[0] > 1e-3


def test_loss_is_the_negative_elbo_recomputed_independently():
    model = make_model()
    x, eps, _ = batch()
    loss, parts, _ = model.loss_and_grads(x, eps=eps, beta=0.5)
    # Independent forward pass with plain NumPy formulas: two ReLU MLPs, W and b by name.
    W = model.parameters()

    def mlp(h, prefix, layers=3):
        for i in range(layers):
            h = h @ W[f"{prefix}.{i}.W"] + W[f"{prefix}.{i}.b"]
            h = np.maximum(h, 0) if i < layers - 1 else h
        return h

    h = mlp(x, "encoder")
    mu, logvar = h[:, :LATENT], h[:, LATENT:]
    z = mu + np.exp(logvar / 2) * eps[0]
    p = 1 / (1 + np.exp(-mlp(z, "decoder")))
    recon = -(x * np.log(p) + (1 - x) * np.log(1 - p)).sum(1)
    kl = -0.5 * (1 + logvar - mu**2 - np.exp(logvar)).sum(1)
    np.testing.assert_allclose(parts["recon"], recon.mean(), rtol=1e-10)
    np.testing.assert_allclose(parts["kl"], kl.mean(), rtol=1e-10)
    np.testing.assert_allclose(loss, (recon + 0.5 * kl).mean(), rtol=1e-10)


def test_iwae_with_one_sample_equals_the_elbo_in_expectation():
    model = make_model()
    x, _, _ = batch(n=4)
    elbo = np.mean([-model.loss_and_grads(x)[0] for _ in range(4000)])
    estimates = np.stack([model.log_likelihood(x, k=1) for _ in range(4000)]).mean(1)
    stderr = estimates.std() / np.sqrt(len(estimates))
    assert abs(estimates.mean() - elbo) < 4 * stderr + 1e-3


def test_importance_weighted_estimate_does_not_decrease_with_k():
    model = make_model()
    x, _, _ = batch(n=20)
    means = [
        np.mean([model.log_likelihood(x, k=k).mean() for _ in range(20)]) for k in (1, 10, 100)
    ]
    assert means[0] < means[1] < means[2]


def test_log_likelihood_is_the_same_in_small_chunks():
    """For one image the noise is drawn in the same order either way (a generator fills
    arrays in C order), so 3000 samples at once and 15 chunks of 200 must agree exactly."""
    x, _, _ = batch(n=1)
    at_once = make_model(seed=5).log_likelihood(x, k=3000)
    in_chunks = make_model(seed=5).log_likelihood(x, k=3000, max_rows=200)
    np.testing.assert_allclose(in_chunks, at_once, rtol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_extreme_logits_and_logvars_keep_loss_and_gradients_finite(dtype):
    model = tinyvae.VAE(D_IN, hidden=(6,), latent_dim=LATENT, dtype=dtype)
    params = model.parameters()
    for x in (np.zeros((2, D_IN), dtype), np.ones((2, D_IN), dtype)):
        for logits_bias, logvar_bias in ((1e4, 50.0), (-1e4, -50.0)):
            params["decoder.1.b"][...] = logits_bias  # logits about +-1e4
            params["encoder.1.b"][LATENT:] = logvar_bias  # logvar about +-50
            loss, parts, grads = model.loss_and_grads(x)
            assert np.isfinite(loss) and np.isfinite(model.flat.grad).all()


def test_same_seed_same_model_and_noise():
    x, _, _ = batch()
    a, b = make_model(seed=3), make_model(seed=3)
    np.testing.assert_array_equal(a.flat.data, b.flat.data)
    assert a.loss_and_grads(x)[0] == b.loss_and_grads(x)[0]
    assert make_model(seed=4).loss_and_grads(x)[0] != a.loss_and_grads(x)[0]


def test_public_api_shapes():
    model = tinyvae.VAE(D_IN, hidden=(6,), latent_dim=LATENT)
    x = np.random.default_rng(0).random((4, D_IN)).astype("float32")
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (4, LATENT)
    for images in (model.decode(mu), model.sample(9), model.reconstruct(x)):
        assert images.shape[1] == D_IN and images.dtype == np.float32
        assert ((images >= 0) & (images <= 1)).all()
    assert set(model.loss_and_grads(x)[2]) == set(model.parameters())
    assert model.log_likelihood(x, k=50).shape == (4,)


@pytest.mark.parametrize(
    "x, error, words",
    [
        (np.zeros((2, 5), "float32"), ValueError, "x must have shape"),
        (np.full((2, D_IN), np.nan, "float32"), ValueError, "NaN"),
        (np.full((2, D_IN), 2.0, "float32"), ValueError, "outside \\[0, 1\\]"),
        (np.zeros((2, D_IN), "float64"), TypeError, "dtype float64"),
        ([[0.0] * D_IN], TypeError, "numpy array"),
    ],
)
def test_bad_input_names_the_argument_and_the_fix(x, error, words):
    model = tinyvae.VAE(D_IN, hidden=(6,), latent_dim=LATENT)
    with pytest.raises(error, match=words):
        model.loss_and_grads(x)


def test_conditional_model_requires_valid_labels():
    model = tinyvae.VAE(D_IN, hidden=(6,), latent_dim=LATENT, num_classes=3)
    x = np.zeros((2, D_IN), "float32")
    with pytest.raises(ValueError, match="labels is required"):
        model.loss_and_grads(x)
    with pytest.raises(ValueError, match="labels must lie in"):
        model.loss_and_grads(x, labels=np.array([0, 3]))
    assert model.sample(4, labels=np.array([0, 1, 2, 2])).shape == (4, D_IN)


def test_denoising_gradients_with_a_separate_encoder_input():
    model = make_model()
    x, eps, _ = batch()
    corrupted = x * (np.random.default_rng(9).random(x.shape) > 0.3)  # masking noise
    worst, errors = worst_gradient_error(model, x=x, eps=eps, x_input=corrupted)
    assert worst < TOL, errors
    # The encoder really sees the corrupted input: the loss differs from the clean one.
    assert (
        model.loss_and_grads(x, eps=eps, x_input=corrupted)[0]
        != model.loss_and_grads(x, eps=eps)[0]
    )


@pytest.mark.parametrize("options", [dict(), dict(likelihood="gaussian"), dict(num_classes=3)])
@pytest.mark.parametrize("objective,samples", [("elbo", 1), ("iwae", 3)])
def test_forward_only_loss_equals_loss_and_grads_and_keeps_the_gradients(
    options, objective, samples
):
    model = make_model(**options)
    x, eps, labels = batch(samples=samples)
    kwargs = dict(eps=eps, beta=0.7, samples=samples, objective=objective)
    if model.num_classes:
        kwargs["labels"] = labels
    loss, parts, grads = model.loss_and_grads(x, **kwargs)
    before = model.flat.grad.copy()
    loss2, parts2 = model.loss(x, **kwargs)
    assert loss2 == loss and parts2 == parts
    np.testing.assert_array_equal(model.flat.grad, before)


def test_pytorch_init_draws_uniform_weights_and_biases_and_he_keeps_zero_biases():
    torch_like = tinyvae.VAE(D_IN, hidden=(50,), latent_dim=LATENT, init="pytorch")
    he = tinyvae.VAE(D_IN, hidden=(50,), latent_dim=LATENT, init="he")
    for name, p in torch_like.parameters().items():
        fan_in = torch_like.parameters()[name[:-1] + "W"].shape[0]
        assert np.abs(p).max() <= 1 / np.sqrt(fan_in) and np.abs(p).max() > 0.5 / np.sqrt(fan_in)
    assert all((p == 0).all() for n, p in he.parameters().items() if n.endswith(".b"))
    assert torch_like.config["init"] == "pytorch"
    with pytest.raises(ValueError, match="unknown init 'xavier'"):
        tinyvae.VAE(D_IN, init="xavier")


def test_decoder_output_is_the_logit_of_decode_and_sample_takes_one_label():
    model = tinyvae.VAE(D_IN, hidden=(6,), latent_dim=LATENT, num_classes=3, dtype="float64")
    z, y = np.random.default_rng(0).standard_normal((4, LATENT)), np.array([0, 1, 2, 0])
    np.testing.assert_allclose(1 / (1 + np.exp(-model.decoder_output(z, y))), model.decode(z, y))
    a = tinyvae.VAE(D_IN, hidden=(6,), latent_dim=LATENT, num_classes=3, seed=2)
    b = tinyvae.VAE(D_IN, hidden=(6,), latent_dim=LATENT, num_classes=3, seed=2)
    np.testing.assert_array_equal(a.sample(5, labels=2), b.sample(5, labels=np.full(5, 2)))


def test_log_likelihood_takes_its_noise_as_loss_and_grads_does():
    model = tinyvae.VAE(64, hidden=(32,), latent_dim=4, seed=0, dtype="float64")
    x = np.random.default_rng(0).random((5, 64))
    eps = np.random.default_rng(1).standard_normal((50, 5, 4))  # (k, B, L)
    chunked = model.log_likelihood(x, k=50, eps=eps, max_rows=64)  # 12 samples per chunk
    whole = model.log_likelihood(x, k=50, eps=eps, max_rows=10**6)
    np.testing.assert_allclose(chunked, whole, rtol=1e-12)
    # the same bound as the IWAE objective with these 50 samples, image by image
    iwae, _ = model.loss(x, eps, samples=50, objective="iwae")
    np.testing.assert_allclose(-whole.mean(), iwae, rtol=1e-12)
    with pytest.raises(ValueError, match=r"eps must have shape \(50, 5, 4\)"):
        model.log_likelihood(x, k=50, eps=eps[:40])
