"""The encoder and decoder networks a VAE can use: two MLPs, or two convolutional networks.

``build_networks(arch="mlp", ...)`` gives the MLPs of ``layers.py``; ``arch="conv"`` gives

    encoder  x (B, D) -> (B, 1, H, W) -> [Conv2d 4x4 stride 2, activation] per entry of
             ``channels`` -> flatten, [| one-hot] -> Linear -> (B, 2L) = [mu | logvar]
    decoder  [z | one-hot] (B, L + C) -> Linear, activation -> (B, channels[-1], h, w)
             -> [ConvTranspose2d 4x4 stride 2, activation] ... -> (B, 1, H, W) logits -> (B, D)

Each convolution halves the image (28 -> 14 -> 7 with channels (32, 64); 8 -> 4 -> 2 for
the bundled digits) and each transposed convolution doubles it back, the decoder being the
encoder's mirror image. A conditional model's label enters through the linear layers only.
Both kinds of network offer the same methods (forward, backward, named_params,
named_grads, bind), so the VAE does not need to know which it has; parameters are named
``encoder.i.W``, ``encoder.i.b`` for the i-th layer that has parameters, counted from 0.
"""

from __future__ import annotations

from tinyvae.core.arrays import array_module
from tinyvae.core.conv import Conv2d, ConvTranspose2d, Flatten, Reshape, output_size
from tinyvae.core.layers import ACTIVATIONS, MLP, Linear, Network

ARCHS = ("mlp", "conv")  # what VAE(arch=...) and --arch take
KERNEL, STRIDE, PADDING = 4, 2, 1  # every convolution of the conv recipe


def build_networks(arch, input_dim, hidden, latent_dim, num_classes, activation, rng, dtype,
                   init, channels=(), image_shape=None):  # fmt: skip
    """(encoder, decoder) for a VAE; the weights are drawn from ``rng``, encoder first."""
    L, C = latent_dim, num_classes
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}: choose one of {', '.join(ARCHS)}")
    if arch == "mlp":
        encoder = MLP([input_dim + C, *hidden, 2 * L], activation, rng, dtype, init)
        decoder = MLP([L + C, *hidden[::-1], input_dim], activation, rng, dtype, init)
        return encoder, decoder
    sizes = conv_sizes(image_shape, len(channels))
    inits = layer_inits(init, activation)
    encoder = ConvEncoder(sizes, channels, C, 2 * L, activation, rng, dtype, inits)
    decoder = ConvDecoder(sizes, channels, L + C, activation, rng, dtype, inits)
    return encoder, decoder


def conv_sizes(image_shape, layers: int) -> list:
    """[(H, W), (H1, W1), ...]: the image's size before and after each of ``layers``
    convolutions. Raises ValueError when the image is too small for that many."""
    sizes = [tuple(image_shape)]
    for _ in range(layers):
        sizes.append(tuple(output_size(n, KERNEL, STRIDE, PADDING) for n in sizes[-1]))
    if min(sizes[-1]) < 1:
        raise ValueError(
            f"images of {image_shape[0]}x{image_shape[1]} are too small for arch='conv' with "
            f"{layers} convolutions (each halves the image; at least {2**layers}x{2**layers} "
            "is needed): use fewer channels entries, or arch='mlp'"
        )
    return sizes


def layer_inits(init: str, activation: str):
    """(init of a layer followed by an activation, init of a last layer), as MLP chooses."""
    if init == "pytorch":
        return "pytorch", "pytorch"
    return ("he" if activation in ("relu", "leaky_relu") else "glorot"), "glorot"


class ConvNetwork(Network):
    """What both conv networks share beyond :class:`layers.Network`: ``self.steps``, every
    step (layer, activation, reshape) run in order."""

    def run_forward(self, steps, X):
        for step in steps:
            X = step.forward(X)
        return X

    def run_backward(self, steps, dY, need_input_grad=True):
        """Backpropagate dY through ``steps``, last to first; returns dX, or None when the
        input needs no gradient (then the first layer with parameters skips computing it)."""
        first = next(i for i, step in enumerate(steps) if step.params)  # before it: reshapes
        for i in range(len(steps) - 1, -1, -1):
            if not steps[i].params:
                dY = steps[i].backward(dY)
            elif i > first or need_input_grad:
                dY = steps[i].backward(dY, True)
            else:
                return steps[i].backward(dY, need_input_grad=False)
        return dY


class ConvEncoder(ConvNetwork):
    """[x | extra] (B, D + E) -> (B, n_out): the image x through the convolutions, then its
    features and the E extra columns (a one-hot label, or none) through one Linear layer."""

    def __init__(self, sizes, channels, extra, n_out, activation, rng, dtype, inits):
        (H, W), (h, w) = sizes[0], sizes[-1]
        self.image_dim, self.steps = H * W, [Reshape((1, H, W))]
        for c_in, c_out in zip((1, *channels[:-1]), channels):
            conv = Conv2d(c_in, c_out, KERNEL, STRIDE, PADDING, inits[0], rng, dtype)
            self.steps += [conv, ACTIVATIONS[activation](inplace=True)]
        self.steps.append(Flatten())  # (B, channels[-1] * h * w)
        self.head = Linear(channels[-1] * h * w + extra, n_out, inits[1], rng, dtype)
        self.n_features = channels[-1] * h * w
        self.layers = [step for step in self.steps if step.params] + [self.head]

    def forward(self, X):
        """X (B, D + E) -> (B, n_out)."""
        features = self.run_forward(self.steps, X[:, : self.image_dim])  # (B, F)
        if X.shape[1] > self.image_dim:  # the extra columns join the features
            features = array_module(X).concatenate([features, X[:, self.image_dim :]], axis=1)
        return self.head.forward(features)

    def backward(self, dY, need_input_grad: bool = True):
        """dY (B, n_out) -> dX (B, D + E), or None when the input needs no gradient."""
        d_features = self.head.backward(dY)  # (B, F + E): the features, then the extra columns
        d_image = self.run_backward(self.steps, d_features[:, : self.n_features], need_input_grad)
        if not need_input_grad:
            return None
        xp = array_module(dY)
        return xp.concatenate([d_image, d_features[:, self.n_features :]], axis=1)


class ConvDecoder(ConvNetwork):
    """[z | extra] (B, n_in) -> (B, D): a Linear layer and the activation, reshaped into
    (B, channels[-1], h, w), then transposed convolutions back up to (B, 1, H, W): the
    mirror image of :class:`ConvEncoder`. The last layer has no activation (logits)."""

    def __init__(self, sizes, channels, n_in, activation, rng, dtype, inits):
        (h, w), k, s, p = sizes[-1], KERNEL, STRIDE, PADDING
        linear = Linear(n_in, channels[-1] * h * w, inits[0], rng, dtype)
        self.steps = [linear, ACTIVATIONS[activation](inplace=True), Reshape((channels[-1], h, w))]
        outs = (*channels[-2::-1], 1)  # 64 -> 32 -> 1 for channels (32, 64)
        for i, (c_in, c_out) in enumerate(zip(channels[::-1], outs)):
            small, large = sizes[-1 - i], sizes[-2 - i]  # this layer maps small up to large
            # the rows and columns that reach exactly the size the encoder's convolution read
            pad = tuple(n - ((m - 1) * s - 2 * p + k) for n, m in zip(large, small))
            last = i == len(channels) - 1
            init = inits[1] if last else inits[0]
            self.steps.append(ConvTranspose2d(c_in, c_out, k, s, p, pad, init, rng, dtype))
            if not last:
                self.steps.append(ACTIVATIONS[activation](inplace=True))
        self.steps.append(Flatten())  # (B, 1, H, W) -> (B, D)
        self.layers = [step for step in self.steps if step.params]

    def forward(self, X):
        """X (B, n_in) -> (B, D): the logits (or Gaussian means) of every pixel."""
        return self.run_forward(self.steps, X)

    def backward(self, dY, need_input_grad: bool = True):
        """dY (B, D) -> dX (B, n_in), or None when the input needs no gradient."""
        return self.run_backward(self.steps, dY, need_input_grad)
