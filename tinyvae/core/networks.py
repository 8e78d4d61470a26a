"""The encoder and decoder networks a VAE is built from, and the one gate for its arguments.

:func:`check_architecture` checks everything that chooses a model's shape (likelihood,
activation, init, arch, sizes, channels, image shape), once, with one-line errors;
:func:`build_networks` then builds, without checking again, two MLPs (``arch="mlp"``) or
two convolutional networks (``arch="conv"``):

    encoder  x (B, D) -> (B, 1, H, W) -> [Conv2d 4x4 stride 2, activation] per entry of
             ``channels`` -> flatten, [| one-hot] -> Linear -> (B, 2L) = [mu | logvar]
    decoder  [z | one-hot] (B, L + C) -> Linear, activation -> (B, channels[-1], h, w)
             -> [ConvTranspose2d 4x4 stride 2, activation] ... -> (B, 1, H, W) logits -> (B, D)

Each convolution halves the image (28 -> 14 -> 7 with channels (32, 64); 8 -> 4 -> 2 for
the bundled digits) and each transposed convolution doubles it back, the decoder being the
encoder's mirror image. A conditional model's label enters through the linear layers only.

Every network is a :class:`Network`: a list of ``steps`` (layers, activations, reshapes)
run in order, and backward in reverse. Parameters are named ``encoder.i.W``,
``encoder.i.b`` for the i-th step that has parameters, counted from 0. The activations
between two layers are ``tinyvae/fast/activations.py``'s, which write over their input:
the same numbers as ``layers.py``'s, without new arrays.
"""

from __future__ import annotations

import math

import numpy as np

from tinyvae.core.arrays import array_module
from tinyvae.core.conv import Conv2d, ConvTranspose2d, Flatten, Reshape, output_size
from tinyvae.core.distributions import LIKELIHOODS
from tinyvae.core.layers import ACTIVATIONS, Linear
from tinyvae.errors import ModelError
from tinyvae.fast.activations import IN_PLACE

ARCHS = ("mlp", "conv")  # what VAE(arch=...) and --arch take
INITS = ("pytorch", "he")  # a network's: "he" is He (Glorot before tanh or sigmoid), Glorot last
KERNEL, STRIDE, PADDING = 4, 2, 1  # every convolution of the conv recipe


# --- the gate -------------------------------------------------------------------------------


def check_architecture(input_dim, hidden, latent_dim, likelihood, activation, init, arch,
                       channels, image_shape) -> tuple:  # fmt: skip
    """The arguments that choose a model's shape, checked once. Returns ``(hidden,
    channels, image_shape)`` as the model records them: for arch "conv", hidden is
    [] (unused) and image_shape defaults to the square of input_dim pixels; for "mlp",
    channels and image_shape are None. Raises :class:`ModelError` naming the argument."""
    for name, value, choices in (("likelihood", likelihood, LIKELIHOODS),
                                 ("activation", activation, tuple(ACTIVATIONS)),
                                 ("init", init, INITS), ("arch", arch, ARCHS)):  # fmt: skip
        if value not in choices:
            raise ModelError(f"unknown {name} {value!r}: choose one of {', '.join(choices)}")
    for name, value in (("input_dim", input_dim), ("latent_dim", latent_dim)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ModelError(f"{name} must be a positive integer, got {value!r}")
    if arch == "mlp":
        return positive_sizes("hidden sizes", hidden), None, None
    channels = positive_sizes("channels", channels or ())
    if not channels:
        raise ModelError("channels must name at least one convolution, like (32, 64)")
    if image_shape is None:
        side = math.isqrt(input_dim)
        image_shape = (side, side) if side * side == input_dim else None
    if image_shape is None or len(image_shape) != 2 or int(np.prod(image_shape)) != input_dim:
        raise ModelError(
            f"arch='conv' needs image_shape (H, W) with H * W = input_dim = {input_dim}, "
            f"got {image_shape!r}"
        )
    (H, W), n = positive_sizes("image_shape", image_shape), len(channels)
    if min(H, W) < 2**n:  # each convolution halves a side, rounding down
        raise ModelError(
            f"images of {H}x{W} are too small for arch='conv' with {n} convolutions (channels "
            f"{','.join(map(str, channels))}): each halves the image, so they must be at least "
            f"{2**n}x{2**n}; use fewer channels, or arch='mlp'"
        )
    return [], channels, [H, W]


def check_hierarchy(latent_dim, upper_hidden, arch, num_classes) -> tuple:
    """Two layers of latent variables: ``latent_dim`` (L1, L2), bottom first, and the hidden
    sizes between them. Returns ``((L1, L2), upper_hidden)`` as lists of ints; a ModelError
    names what is wrong (a conv or conditional model has one latent layer only)."""
    dims = positive_sizes("latent_dim", latent_dim)
    if len(dims) != 2:
        raise ModelError(f"latent_dim must be two sizes, bottom first, like (100, 50); got {dims}")
    if arch != "mlp":
        raise ModelError(
            f"two latent layers need arch='mlp': the {arch} encoder and decoder have one "
            "latent layer; give one latent size, or use arch='mlp'"
        )
    if num_classes:
        raise ModelError("two latent layers are not conditional: leave num_classes at 0")
    upper = positive_sizes("upper_hidden sizes", upper_hidden)
    if not upper:
        raise ModelError("upper_hidden must name at least one layer between z1 and z2, like (100,)")
    return dims, upper


def positive_sizes(name, sizes) -> list:
    """``sizes`` as a list of positive ints, or a ModelError naming ``name``."""
    sizes = [int(n) for n in sizes]
    if any(n < 1 for n in sizes):
        raise ModelError(f"{name} must be positive integers, got {sizes}")
    return sizes


# --- building the networks --------------------------------------------------------------------


def build_networks(arch, input_dim, hidden, latent_dim, num_classes, activation, rng, dtype,
                   init, channels=(), image_shape=None):  # fmt: skip
    """(encoder, decoder) for a VAE, from arguments :func:`check_architecture` has passed;
    the weights are drawn from ``rng``, encoder first."""
    L, C = latent_dim, num_classes
    if arch == "mlp":
        encoder = MLP([input_dim + C, *hidden, 2 * L], activation, rng, dtype, init)
        decoder = MLP([L + C, *hidden[::-1], input_dim], activation, rng, dtype, init)
        return encoder, decoder
    sizes, inits = conv_sizes(image_shape, len(channels)), layer_inits(init, activation)
    encoder = ConvEncoder(sizes, channels, C, 2 * L, activation, rng, dtype, inits)
    decoder = ConvDecoder(sizes, channels, L + C, activation, rng, dtype, inits)
    return encoder, decoder


def conv_sizes(image_shape, layers: int) -> list:
    """[(H, W), (H1, W1), ...]: the image's size before and after each of ``layers``
    convolutions."""
    sizes = [tuple(image_shape)]
    for _ in range(layers):
        sizes.append(tuple(output_size(n, KERNEL, STRIDE, PADDING) for n in sizes[-1]))
    return sizes


def layer_inits(init: str, activation: str):
    """(init of a layer followed by an activation, init of a last layer): "pytorch" draws
    every layer as PyTorch does; "he" draws He before a ReLU, else Glorot, and Glorot last."""
    if init == "pytorch":
        return "pytorch", "pytorch"
    return ("he" if activation in ("relu", "leaky_relu") else "glorot"), "glorot"


def run_forward(steps, X):
    """X through every step, first to last."""
    for step in steps:
        X = step.forward(X)
    return X


def run_backward(steps, dY, need_input_grad=True):
    """Backpropagate dY through ``steps``, last to first; returns dX, or None when the
    input needs no gradient (then the first step with parameters skips computing it)."""
    first = next(i for i, step in enumerate(steps) if step.params)  # before it: reshapes
    for i in range(len(steps) - 1, -1, -1):
        if not steps[i].params:
            dY = steps[i].backward(dY)
        elif i > first or need_input_grad:
            dY = steps[i].backward(dY, True)
        else:
            return steps[i].backward(dY, need_input_grad=False)
    return dY


class Network:
    """``self.steps`` run in order; ``self.layers`` are the steps with parameters, and
    layer i's parameters are named ``prefix.i.W`` / ``prefix.i.b``."""

    def forward(self, X):
        return run_forward(self.steps, X)

    def backward(self, dY, need_input_grad: bool = True):
        """dY -> dX, or None when the input needs no gradient."""
        return run_backward(self.steps, dY, need_input_grad)

    def named_params(self, prefix: str):
        """``{"prefix.0.W": W, "prefix.0.b": b, "prefix.1.W": ...}``: layers with weights numbered."""
        return {
            f"{prefix}.{i}.{k}": v for i, l in enumerate(self.layers) for k, v in l.params.items()
        }

    def named_grads(self, prefix: str):
        return {
            f"{prefix}.{i}.{k}": v for i, l in enumerate(self.layers) for k, v in l.grads.items()
        }

    def bind(self, prefix: str, flat):
        """Point every layer's params and grads at their views in a FlatParameters buffer."""
        for i, layer in enumerate(self.layers):
            for k in layer.params:
                layer.params[k] = flat.params[f"{prefix}.{i}.{k}"]
                layer.grads[k] = flat.grads[f"{prefix}.{i}.{k}"]


class MLP(Network):
    """Linear layers with an activation between them (none after the last).

    ``MLP([784, 400, 40], "relu")`` is Linear(784, 400) -> ReLU -> Linear(400, 40): X (B, 784)
    -> (B, 40). Deeper networks are one argument away: ``MLP([784, 512, 256, 40], "tanh")``.
    ``init``: "pytorch" or "he", as :func:`layer_inits` reads it.
    """

    def __init__(self, sizes, activation="relu", rng=None, dtype="float32", init="pytorch"):
        rng = rng if rng is not None else np.random.default_rng(0)
        inits, self.steps = layer_inits(init, activation), []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            last = i == len(sizes) - 2
            self.steps.append(Linear(n_in, n_out, inits[1] if last else inits[0], rng, dtype))
            if not last:
                self.steps.append(IN_PLACE[activation]())
        self.layers = self.steps[::2]


class ConvEncoder(Network):
    """[x | extra] (B, D + E) -> (B, n_out): the image x through the convolutions, then its
    features and the E extra columns (a one-hot label, or none) through one Linear layer."""

    def __init__(self, sizes, channels, extra, n_out, activation, rng, dtype, inits):
        (H, W), (h, w) = sizes[0], sizes[-1]
        self.image_dim, self.steps = H * W, [Reshape((1, H, W))]
        for c_in, c_out in zip((1, *channels[:-1]), channels):
            conv = Conv2d(c_in, c_out, KERNEL, STRIDE, PADDING, inits[0], rng, dtype)
            self.steps += [conv, IN_PLACE[activation]()]
        self.steps.append(Flatten())  # (B, channels[-1] * h * w)
        self.head = Linear(channels[-1] * h * w + extra, n_out, inits[1], rng, dtype)
        self.n_features = channels[-1] * h * w
        self.layers = [step for step in self.steps if step.params] + [self.head]

    def forward(self, X):
        """X (B, D + E) -> (B, n_out)."""
        features = run_forward(self.steps, X[:, : self.image_dim])  # (B, F)
        if X.shape[1] > self.image_dim:  # the extra columns join the features
            features = array_module(X).concatenate([features, X[:, self.image_dim :]], axis=1)
        return self.head.forward(features)

    def backward(self, dY, need_input_grad: bool = True):
        """dY (B, n_out) -> dX (B, D + E), or None when the input needs no gradient."""
        d_features = self.head.backward(dY)  # (B, F + E): the features, then the extra columns
        d_image = run_backward(self.steps, d_features[:, : self.n_features], need_input_grad)
        if not need_input_grad:
            return None
        xp = array_module(dY)
        return xp.concatenate([d_image, d_features[:, self.n_features :]], axis=1)


class ConvDecoder(Network):
    """[z | extra] (B, n_in) -> (B, D): a Linear layer and the activation, reshaped into
    (B, channels[-1], h, w), then transposed convolutions back up to (B, 1, H, W): the
    mirror image of :class:`ConvEncoder`. The last layer has no activation (logits)."""

    def __init__(self, sizes, channels, n_in, activation, rng, dtype, inits):
        (h, w), k, s, p = sizes[-1], KERNEL, STRIDE, PADDING
        linear = Linear(n_in, channels[-1] * h * w, inits[0], rng, dtype)
        self.steps = [linear, IN_PLACE[activation](), Reshape((channels[-1], h, w))]
        outs = (*channels[-2::-1], 1)  # 64 -> 32 -> 1 for channels (32, 64)
        for i, (c_in, c_out) in enumerate(zip(channels[::-1], outs)):
            small, large = sizes[-1 - i], sizes[-2 - i]  # this layer maps small up to large
            # the rows and columns that reach exactly the size the encoder's convolution read
            pad = tuple(n - ((m - 1) * s - 2 * p + k) for n, m in zip(large, small))
            last = i == len(channels) - 1
            init = inits[1] if last else inits[0]
            self.steps.append(ConvTranspose2d(c_in, c_out, k, s, p, pad, init, rng, dtype))
            if not last:
                self.steps.append(IN_PLACE[activation]())
        self.steps.append(Flatten())  # (B, 1, H, W) -> (B, D)
        self.layers = [step for step in self.steps if step.params]
