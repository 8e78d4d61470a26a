"""The convolution layers and the convolutional VAE: every backward against central finite
differences of its forward, in float64, element by element; the forward against plain loops;
im2col/col2im and Conv2d/ConvTranspose2d as adjoint pairs; and mistakes that must be caught."""

import contextlib
import itertools
import json
import re

import numpy as np
import pytest
from conftest import nudged_vae

import tinyvae
import tinyvae.train as train_module
from tinyvae.core import conv
from tinyvae.core.conv import Conv2d, ConvTranspose2d, Flatten, Reshape, col2im, im2col
from tinyvae.core.gradcheck import check_gradient, directional_check
from tinyvae.errors import CheckpointError
from tinyvae.evaluate import main as evaluate_main
from tinyvae.sample import main as sample_main
from tinyvae.tools import checkpoint
from tinyvae.tools.cli import run
from tinyvae.tools.config import TrainConfig
from tinyvae.tools.data import Batches
from tinyvae.tools.training import augmentation
from tinyvae.train import main as train_main

TOL = 1e-6
#: (kernel, stride, padding, H, W): odd and uneven sizes, windows that overlap, touch or skip
GEOMETRIES = [(3, 1, 1, 5, 7), (4, 2, 1, 7, 5), (2, 2, 0, 6, 5), (5, 3, 2, 9, 8), (1, 1, 0, 3, 4)]
IDS = [f"k{k}s{s}p{p}-{h}x{w}" for k, s, p, h, w in GEOMETRIES]


def naive_conv(X, W, b, stride, padding):
    """Y[n, f, i, j] = b[f] + sum_{u, v, c} Xpad[n, c, s i + u, s j + v] W[u, v, c, f], by loops."""
    k, s = W.shape[0], stride
    Xp = np.pad(X, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    Ho, Wo = (Xp.shape[2] - k) // s + 1, (Xp.shape[3] - k) // s + 1
    Y = np.zeros((X.shape[0], W.shape[3], Ho, Wo))
    for i in range(Ho):
        for j in range(Wo):
            window = Xp[:, :, s * i : s * i + k, s * j : s * j + k]  # (N, C, k, k)
            Y[:, :, i, j] = np.einsum("ncuv,uvcf->nf", window, W) + b
    return Y


def naive_conv_transpose(X, W, b, stride, padding, out_hw):
    """Each input pixel (i, j) adds X[n, c, i, j] W[c, u, v, :] at output (s i + u - p, s j + v - p)."""
    k, s, (H, Wd) = W.shape[1], stride, out_hw
    Yp = np.zeros((X.shape[0], W.shape[3], H + 2 * padding + k, Wd + 2 * padding + k))
    for i in range(X.shape[2]):
        for j in range(X.shape[3]):
            Yp[:, :, s * i : s * i + k, s * j : s * j + k] += np.einsum(
                "nc,cuvf->nfuv", X[:, :, i, j], W
            )
    return Yp[:, :, padding : padding + H, padding : padding + Wd] + b[:, None, None]


def layer_errors(layer, X, seed=0):
    """Relative errors of dX and of each parameter's gradient, per element, for L = <Y, R>."""
    R = np.random.default_rng(seed).standard_normal(layer.forward(X).shape)
    dX = layer.backward(R)
    grads = {k: g.copy() for k, g in layer.grads.items()}
    f = lambda: float((layer.forward(X) * R).sum())
    errors = {"X": check_gradient(f, X, dX)}
    for name, p in layer.params.items():
        errors[name] = max(check_gradient(f, p, grads[name]), directional_check(f, p, grads[name]))
    return errors


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=IDS)
def test_conv2d_forward_is_the_loop_and_backward_matches_finite_differences(geometry):
    k, s, p, H, W = geometry
    rng = np.random.default_rng(1)
    layer = Conv2d(3, 4, k, s, p, rng=rng, dtype="float64")
    X = rng.standard_normal((2, 3, H, W))
    np.testing.assert_allclose(
        layer.forward(X), naive_conv(X, layer.params["W"], layer.params["b"], s, p), rtol=1e-12
    )
    errors = layer_errors(layer, X)
    assert max(errors.values()) < TOL, errors


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=IDS)
def test_conv_transpose_forward_is_the_loop_and_backward_matches_finite_differences(geometry):
    k, s, p, H, W = geometry
    rng = np.random.default_rng(2)
    small = (conv.output_size(H, k, s, p), conv.output_size(W, k, s, p))
    extra = (H - ((small[0] - 1) * s - 2 * p + k), W - ((small[1] - 1) * s - 2 * p + k))
    layer = ConvTranspose2d(4, 3, k, s, p, extra, rng=rng, dtype="float64")
    X = rng.standard_normal((2, 4, *small))
    Y = layer.forward(X)
    assert Y.shape == (2, 3, H, W)  # output_padding picks the size that maps back to H x W
    want = naive_conv_transpose(X, layer.params["W"], layer.params["b"], s, p, (H, W))
    np.testing.assert_allclose(Y, want, rtol=1e-12, atol=1e-12)
    errors = layer_errors(layer, X)
    assert max(errors.values()) < TOL, errors


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=IDS)
def test_col2im_is_the_adjoint_of_im2col(geometry):
    """<im2col(X), G> = <X, col2im(G)> for every X and G: col2im is im2col's transpose."""
    k, s, p, H, W = geometry
    rng = np.random.default_rng(3)
    X = rng.standard_normal((2, 3, H, W))
    cols = im2col(X, k, s, p)
    G = rng.standard_normal(cols.shape)
    np.testing.assert_allclose(
        (cols * G).sum(), (X * col2im(G, X.shape, k, s, p)).sum(), rtol=1e-12
    )

    # col2im(im2col(1)) counts the windows that cover each pixel: count them by hand
    def per_axis(n):  # (n,): windows covering each pixel along one side
        out = conv.output_size(n, k, s, p)
        return np.array(
            [sum(s * i + u - p == q for i in range(out) for u in range(k)) for q in range(n)]
        )

    covered = col2im(im2col(np.ones_like(X), k, s, p), X.shape, k, s, p)
    np.testing.assert_array_equal(
        covered, np.broadcast_to(np.outer(per_axis(H), per_axis(W)), X.shape)
    )


def test_conv_transpose_is_the_input_gradient_of_conv_with_the_same_numbers():
    rng = np.random.default_rng(4)
    forward = Conv2d(3, 5, 4, 2, 1, rng=rng, dtype="float64")
    X = rng.standard_normal((2, 3, 8, 6))
    dY = rng.standard_normal(forward.forward(X).shape)
    transpose = ConvTranspose2d(5, 3, 4, 2, 1, rng=rng, dtype="float64")
    transpose.params["W"][...] = forward.params["W"].transpose(3, 0, 1, 2)  # (F, k, k, C)
    transpose.params["b"][...] = 0
    np.testing.assert_allclose(transpose.forward(dY), forward.backward(dY), rtol=1e-12)
    # and as operators: <conv(X), Y> = <X, conv_transpose(Y)> without biases
    forward.params["b"][...] = 0
    assert np.isclose((forward.forward(X) * dY).sum(), (X * transpose.forward(dY)).sum())


def col2im_flip_left_out(cols, shape, kernel, stride, padding):
    """dX computed as the "full convolution of dY with W" with the kernel's flip left out:
    each window entry goes back to the mirror-image position of the window."""
    k = kernel
    flipped = cols.reshape(k, k, -1)[::-1, ::-1].reshape(cols.shape)
    return col2im(flipped, shape, kernel, stride, padding)


def im2col_flip_left_out(X, kernel, stride, padding):
    """The same mistake in the transposed convolution's backward: windows read mirrored."""
    cols = im2col(X, kernel, stride, padding)
    return cols.reshape(kernel, kernel, -1)[::-1, ::-1].reshape(cols.shape)


def test_a_kernel_flip_left_out_of_the_backward_is_caught(monkeypatch):
    rng = np.random.default_rng(5)
    layer = Conv2d(2, 3, 3, 1, 1, rng=rng, dtype="float64")
    X = rng.standard_normal((2, 2, 5, 6))
    assert max(layer_errors(layer, X).values()) < TOL
    monkeypatch.setattr(conv, "col2im", col2im_flip_left_out)
    errors = layer_errors(layer, X)
    assert errors["X"] > 1e-2, errors  # the input gradient is wrong ...
    assert errors["W"] < TOL and errors["b"] < TOL  # ... and only it


def test_a_kernel_flip_left_out_of_the_transposed_backward_is_caught(monkeypatch):
    rng = np.random.default_rng(6)
    layer = ConvTranspose2d(3, 2, 4, 2, 1, rng=rng, dtype="float64")
    X = rng.standard_normal((2, 3, 3, 4))
    assert max(layer_errors(layer, X).values()) < TOL
    monkeypatch.setattr(conv, "im2col", im2col_flip_left_out)  # only its backward uses im2col
    errors = layer_errors(layer, X)
    assert errors["X"] > 1e-2 and errors["W"] > 1e-2, errors
    assert errors["b"] < TOL


def test_flatten_and_reshape_are_inverse_reshapes():
    X = np.arange(2 * 3 * 4 * 5, dtype=float).reshape(2, 3, 4, 5)
    flat = Flatten()
    Y = flat.forward(X)
    assert Y.shape == (2, 60) and Y[1, 21] == X[1, 1, 0, 1]  # (channel, row, column) order
    np.testing.assert_array_equal(flat.backward(Y), X)
    back = Reshape((3, 4, 5))
    np.testing.assert_array_equal(back.forward(Y), X)
    np.testing.assert_array_equal(back.backward(X), Y)


def test_conv_layers_draw_pytorch_bounds_from_their_fan_in():
    rng = np.random.default_rng(7)
    W = Conv2d(32, 64, 4, 2, 1, rng=rng).params["W"]  # fan_in = 4 * 4 * 32
    assert W.shape == (4, 4, 32, 64) and W.dtype == np.float32
    assert 0.95 / np.sqrt(512) < np.abs(W).max() <= 1 / np.sqrt(512)
    Wt = ConvTranspose2d(64, 32, 4, 2, 1, rng=rng).params["W"]  # fan_in = 4 * 4 * 32, as PyTorch
    assert Wt.shape == (64, 4, 4, 32)
    assert 0.95 / np.sqrt(512) < np.abs(Wt).max() <= 1 / np.sqrt(512)
    with pytest.raises(ValueError, match="output_padding"):
        ConvTranspose2d(2, 2, 4, 2, 1, output_padding=2)


def test_conv_layers_give_the_same_numbers_on_cupy(gpu_backend):
    rng = np.random.default_rng(8)
    X = rng.standard_normal((4, 3, 9, 7)).astype(np.float32)
    host, device = (
        Conv2d(3, 5, rng=np.random.default_rng(0)),
        Conv2d(3, 5, rng=np.random.default_rng(0)),
    )
    transpose = ConvTranspose2d(5, 2, rng=np.random.default_rng(1))
    transpose_gpu = ConvTranspose2d(5, 2, rng=np.random.default_rng(1))
    for layer in (device, transpose_gpu):
        for d in (layer.params, layer.grads):
            d.update({k: gpu_backend.asarray(v) for k, v in d.items()})
    Y = transpose.forward(host.forward(X))
    Y_gpu = transpose_gpu.forward(device.forward(gpu_backend.asarray(X)))
    assert gpu_backend.owns(Y_gpu)  # stayed on the device
    np.testing.assert_allclose(gpu_backend.to_host(Y_gpu), Y, rtol=1e-4, atol=1e-5)
    dY = rng.standard_normal(Y.shape).astype(np.float32)
    dX = host.backward(transpose.backward(dY))
    dX_gpu = device.backward(transpose_gpu.backward(gpu_backend.asarray(dY)))
    np.testing.assert_allclose(gpu_backend.to_host(dX_gpu), dX, rtol=1e-4, atol=1e-5)
    for a, b in ((host, device), (transpose, transpose_gpu)):
        for k in a.grads:
            np.testing.assert_allclose(
                gpu_backend.to_host(b.grads[k]), a.grads[k], rtol=1e-3, atol=1e-4
            )


# --- the convolutional VAE -------------------------------------------------------------------

SHAPE, LATENT, BATCH = (7, 5), 2, 3  # odd, non-square images: 7x5 -> 3x2 -> 1x1


def conv_model(seed=0, **kwargs):
    kwargs = dict(arch="conv", image_shape=SHAPE, channels=(2, 3), latent_dim=LATENT, **kwargs)
    return nudged_vae(SHAPE[0] * SHAPE[1], seed, **kwargs)


def worst_error(model, **kwargs):
    loss = lambda: model.loss_and_grads(**kwargs)[0]
    grads = {k: g.copy() for k, g in model.loss_and_grads(**kwargs)[2].items()}
    errors = {
        name: max(check_gradient(loss, p, grads[name]), directional_check(loss, p, grads[name]))
        for name, p in model.parameters().items()
    }
    return max(errors.values()), errors


CONV_CASES = [  # (model options, objective, samples): each likelihood, activation and init once,
    (dict(), "elbo", 1),  # plus several samples and IWAE (K B rows through the decoder)
    (dict(activation="leaky_relu", init="he"), "elbo", 1),
    (dict(activation="tanh"), "elbo", 3),
    (dict(likelihood="gaussian"), "elbo", 1),  # learned per-pixel variance
    (dict(likelihood="gaussian", gaussian_logvar=-1.0), "iwae", 4),
    (dict(num_classes=3), "elbo", 1),  # the label enters through the linear layers
    (dict(num_classes=3), "iwae", 4),
    (dict(), "iwae", 4),
]


@pytest.mark.parametrize(
    "options,objective,samples",
    CONV_CASES,
    ids=lambda v: (
        ",".join(f"{k}={x}" for k, x in v.items()) or "default" if isinstance(v, dict) else str(v)
    ),
)
def test_every_conv_vae_parameter_gradient_matches_finite_differences(options, objective, samples):
    model = conv_model(**options)
    rng = np.random.default_rng(9)
    x = rng.random((BATCH, SHAPE[0] * SHAPE[1]))
    kwargs = dict(x=x, eps=rng.standard_normal((samples, BATCH, LATENT)), beta=0.7,
                  samples=samples, objective=objective)  # fmt: skip
    if model.num_classes:
        kwargs["labels"] = rng.integers(0, 3, BATCH)
    if options == {}:  # a denoising step: the encoder sees a corrupted x
        kwargs["x_input"] = x * (rng.random(x.shape) > 0.3)
    worst, errors = worst_error(model, **kwargs)
    assert worst < TOL, errors


def test_conv_vae_composes_its_layers_as_documented():
    """Encoder: conv, relu, conv, relu, flatten, [| one-hot], linear; decoder the mirror image."""
    model = conv_model(num_classes=3)
    P = model.parameters()
    rng = np.random.default_rng(10)
    x, y = rng.random((BATCH, 35)), rng.integers(0, 3, BATCH)
    one_hot = np.eye(3)[y]
    h = np.maximum(
        naive_conv(x.reshape(BATCH, 1, *SHAPE), P["encoder.0.W"], P["encoder.0.b"], 2, 1), 0
    )
    h = np.maximum(naive_conv(h, P["encoder.1.W"], P["encoder.1.b"], 2, 1), 0)  # (B, 3, 1, 1)
    stats = np.concatenate([h.reshape(BATCH, -1), one_hot], 1) @ P["encoder.2.W"] + P["encoder.2.b"]
    mu, logvar = model.encode(x, y)
    np.testing.assert_allclose(np.concatenate([mu, logvar], 1), stats, rtol=1e-12)
    z = rng.standard_normal((BATCH, LATENT))
    h = np.maximum(np.concatenate([z, one_hot], 1) @ P["decoder.0.W"] + P["decoder.0.b"], 0)
    h = np.maximum(naive_conv_transpose(h.reshape(BATCH, 3, 1, 1), P["decoder.1.W"],
                                        P["decoder.1.b"], 2, 1, (3, 2)), 0)  # fmt: skip
    logits = naive_conv_transpose(h, P["decoder.2.W"], P["decoder.2.b"], 2, 1, SHAPE)
    np.testing.assert_allclose(model.decoder_output(z, y), logits.reshape(BATCH, -1), rtol=1e-12)


def test_conv_vae_shapes_names_and_config():
    model = tinyvae.VAE(784, arch="conv", latent_dim=20)  # 28x28 taken as the square
    shapes = model.flat.shapes
    assert shapes["encoder.0.W"] == (4, 4, 1, 32) and shapes["encoder.1.W"] == (4, 4, 32, 64)
    assert shapes["encoder.2.W"] == (64 * 7 * 7, 40) and shapes["decoder.0.W"] == (20, 64 * 7 * 7)
    assert shapes["decoder.1.W"] == (64, 4, 4, 32) and shapes["decoder.2.W"] == (32, 4, 4, 1)
    c = model.config
    assert (c["arch"], c["channels"], c["image_shape"], c["hidden"]) == (
        "conv",
        [32, 64],
        [28, 28],
        [],
    )
    digits = tinyvae.VAE(64, arch="conv", latent_dim=8)  # 8x8 -> 4x4 -> 2x2
    assert digits.flat.shapes["encoder.2.W"] == (64 * 2 * 2, 16)
    mlp = tinyvae.VAE(64, hidden=(8,)).config
    assert (mlp["arch"], mlp["channels"], mlp["image_shape"]) == ("mlp", None, None)


def test_conv_vae_trains_in_float32_and_samples():
    data = tinyvae.load("digits")
    model = tinyvae.VAE(64, arch="conv", channels=(8, 16), latent_dim=4, seed=1)
    optimizer = tinyvae.Adam(model.flat, lr=3e-3)
    batches = tinyvae.Batches(data.train_x, data.train_y, model.backend, batch_size=100)
    first = float(model.loss(model.backend.asarray(data.test_x))[0])
    for epoch in range(3):
        for x, _ in batches.epoch(epoch):
            model.loss_and_grads(x)
            optimizer.step()
    assert float(model.loss(model.backend.asarray(data.test_x))[0]) < first - 5
    images = model.sample(6)
    assert (
        images.shape == (6, 64)
        and images.dtype == np.float32
        and 0 <= images.min() <= images.max() <= 1
    )
    ll = model.log_likelihood(model.backend.asarray(data.test_x[:3]), k=50, max_rows=64)
    assert ll.shape == (3,) and np.isfinite(ll).all()


@pytest.mark.parametrize(
    "kwargs,words",
    [
        (dict(input_dim=35), "image_shape (H, W) with H * W = input_dim = 35"),
        (dict(input_dim=64, image_shape=(4, 4)), "H * W = input_dim = 64"),
        (dict(input_dim=9, image_shape=(3, 3)), "too small for arch='conv' with 2 convolutions"),
        (dict(input_dim=64, channels=()), "at least one convolution"),
        (dict(input_dim=64, channels=(8, 0)), "channels must be positive"),
        (dict(input_dim=64, arch="resnet"), "unknown arch 'resnet': choose one of mlp, conv"),
    ],
)
def test_bad_conv_arguments_say_what_to_do(kwargs, words):
    kwargs = {"arch": "conv", **kwargs}
    with pytest.raises(ValueError, match=re.escape(words)):
        tinyvae.VAE(kwargs.pop("input_dim"), **kwargs)


# --- the command line and the run folder ---------------------------------------------------

TINY_CONV = ["--dataset", "digits", "--arch", "conv", "--channels", "4,8", "--latent-dim", "4",
             "--batch-size", "100", "--no-progress", "--pictures-every", "9"]  # fmt: skip


def run_params(folder):
    return checkpoint.load(folder).arrays


def stop_after(calls):
    """A stand-in for ``ctrl_c_stops_gently`` whose stop() says yes on its ``calls``-th call:
    a Ctrl-C in the middle of an epoch."""

    @contextlib.contextmanager
    def stops():
        count = itertools.count(1)
        yield lambda: next(count) == calls

    return stops


@pytest.mark.parametrize("extra", [[], ["--augment", "--conditional", "--binarize", "dynamic"]])
def test_a_conv_run_stopped_mid_epoch_resumes_bit_for_bit(tmp_path, monkeypatch, capsys, extra):
    straight, broken = tmp_path / "straight", tmp_path / "broken"
    assert run(train_main, [*TINY_CONV, *extra, "--epochs", "2", "--out", str(straight)]) == 0
    stop = stop_after(15 + 1 + 7)  # 15 steps and the check after epoch 1, then 7 steps
    monkeypatch.setattr(train_module, "ctrl_c_stops_gently", stop)
    assert run(train_main, [*TINY_CONV, *extra, "--epochs", "2", "--out", str(broken)]) == 130
    assert checkpoint.load(broken).state["step"] == 7
    monkeypatch.undo()
    assert run(train_main, ["--out", str(broken), "--resume", "--no-progress"]) == 0
    a, b = run_params(straight), run_params(broken)
    for name in a:
        if name != "meta":
            assert np.array_equal(a[name], b[name]), name
    config = json.loads((broken / "config.json").read_text())
    assert (config["arch"], config["channels"], config["augment"]) == ("conv", [4, 8], bool(extra))
    assert checkpoint.load(broken).meta["model"]["image_shape"] == [8, 8]
    assert "model conv 8x8-4-8-4 relu bernoulli" in capsys.readouterr().out


def test_augment_moves_the_images_the_same_way_in_every_replay_and_is_off_by_default():
    data = tinyvae.load("digits")
    backend = tinyvae.get_backend("numpy")
    moved = lambda: Batches(data.train_x, data.train_y, backend, 50, 1, **augmentation((8, 8)))
    plain = Batches(data.train_x, data.train_y, backend, 50, 1)
    (x_plain, y_plain), (x_moved, y_moved) = next(plain.epoch(3)), next(moved().epoch(3))
    np.testing.assert_array_equal(y_plain, y_moved)  # the same images, in the same order ...
    assert not np.array_equal(x_plain, x_moved)  # ... moved and turned
    np.testing.assert_array_equal(next(moved().epoch(3))[0], x_moved)  # epoch 3 again: equal
    assert not np.array_equal(next(moved().epoch(4))[0], x_moved)  # another epoch: other moves
    assert augmentation((28, 28)) == {"shift": 2, "rotate": 10.0, "image_shape": (28, 28)}
    assert augmentation((8, 8))["shift"] == 0  # one pixel is an eighth of these: turns only
    assert TrainConfig().augment is False


def test_sample_and_evaluate_read_a_conv_run(tmp_path, capsys):
    folder = tmp_path / "run"
    assert run(train_main, [*TINY_CONV, "--epochs", "1", "--out", str(folder)]) == 0
    for name in ("samples_epoch01.png", "reconstructions_epoch01.png", "latent.png"):
        assert (folder / name).stat().st_size > 0
    assert (
        run(sample_main, ["--run", str(folder), "--n", "9", "--out", str(tmp_path / "s.png")]) == 0
    )
    capsys.readouterr()
    assert run(evaluate_main, ["--run", str(folder), "--k", "20", "--n", "30", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["images"] == 30 and np.isfinite(result["nll"])
    assert result["nll"] <= result["test_loss"] + 1.0  # the bound is (nearly) tighter


@pytest.mark.parametrize(
    "argv,words",
    [
        (["--arch", "cnn"], "unknown --arch 'cnn': choose one of mlp, conv"),
        (["--channels", "0"], "--channels must be positive layer sizes"),
        (["--channels", "32,x"], "--channels must be positive layer sizes"),
        (["--arch", "conv", "--channels", "2,2,2,2"], "8x8 are too small for arch='conv' with 4"),
    ],
)
def test_bad_conv_flags_print_one_line(argv, words, tmp_path, capsys):
    assert run(train_main, ["--dataset", "digits", "--out", str(tmp_path / "r"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and words in err and err.count("\n") == 1, err


def test_checkpoints_know_the_arch_and_older_ones_are_mlps(tmp_path):
    conv_model_ = tinyvae.VAE(64, arch="conv", channels=(2, 3), latent_dim=2)
    checkpoint.save(tmp_path / "conv.npz", conv_model_)
    again = checkpoint.build_model(checkpoint.load(tmp_path / "conv.npz"))
    assert again.config == conv_model_.config
    np.testing.assert_array_equal(again.flat.data, conv_model_.flat.data)
    with pytest.raises(CheckpointError, match="conv 8x8-2-3-2 relu bernoulli"):
        checkpoint.restore(checkpoint.load(tmp_path / "conv.npz"), tinyvae.VAE(64, latent_dim=2))
    # a version-2 file written before the conv networks: no arch, channels, image_shape
    mlp = tinyvae.VAE(64, hidden=(5,), latent_dim=2)
    checkpoint.save(tmp_path / "old.npz", mlp)
    with np.load(tmp_path / "old.npz") as stored:
        arrays = {k: stored[k] for k in stored.files}
    meta = json.loads(str(arrays["meta"][()]))
    for key in ("arch", "channels", "image_shape"):
        del meta["model"][key]
    arrays["meta"] = np.asarray(json.dumps(meta))
    np.savez(tmp_path / "old.npz", **arrays)
    old = checkpoint.build_model(checkpoint.load(tmp_path / "old.npz"))
    assert old.config == mlp.config and old.config["arch"] == "mlp"
    # a damaged conv description is refused before any model is built
    meta = json.loads(str(np.load(tmp_path / "conv.npz")["meta"][()]))
    for damage in ({"image_shape": [8, 9]}, {"image_shape": [8]}, {"channels": []},
                   {"arch": "resnet"}, {"image_shape": [2**40, 1]}):  # fmt: skip
        arrays = dict(np.load(tmp_path / "conv.npz"))
        arrays["meta"] = np.asarray(json.dumps(meta | {"model": meta["model"] | damage}))
        np.savez(tmp_path / "bad.npz", **arrays)
        with pytest.raises(CheckpointError, match="damaged description"):
            checkpoint.load(tmp_path / "bad.npz")
