"""A saved model's description (``model.config``, as a checkpoint's JSON holds it): the
check that it is whole, and the few words that name its architecture in messages."""

from __future__ import annotations

import math

from tinyvae.core.backend import DTYPES
from tinyvae.errors import CheckpointError


def check_model(path, model: dict, param_shapes: list) -> None:
    """The model description has the right types, and no size larger than any parameter
    has (so a damaged description cannot make us build a huge model)."""
    largest = max((n for _, shape in param_shapes for n in shape), default=0)

    def size(value, least=1):
        return type(value) is int and least <= value <= largest

    hidden, logvar, seed = model.get("hidden"), model.get("gaussian_logvar"), model.get("seed", 0)
    channels, shape, pixels = model["channels"], model["image_shape"], model.get("input_dim")
    mlp = model["arch"] == "mlp" and channels is None and shape is None and size(pixels)
    # A conv model's image can have more pixels than a weight has numbers, but each convolution
    # halves its sides: they are at most 2 ** len(channels) times a parameter's size.
    side = lambda n: type(n) is int and 1 <= n <= 2 ** len(channels) * (largest + 1)
    conv = model["arch"] == "conv" and isinstance(channels, list) and 0 < len(channels) <= 16
    conv = conv and all(map(size, channels)) and isinstance(shape, list) and len(shape) == 2
    latent, upper = model.get("latent_dim"), model.get("upper_hidden")
    two = isinstance(latent, list) and len(latent) == 2 and all(map(size, latent))
    two = two and isinstance(upper, list) and 0 < len(upper) <= 16 and all(map(size, upper))
    ok = (
        (mlp or (conv and all(map(side, shape)) and pixels == shape[0] * shape[1]))
        and (size(latent) and upper is None or two and mlp)
        and size(model.get("num_classes", 0), least=0)
        and isinstance(hidden, list)
        and all(size(h) for h in hidden)
        and all(isinstance(model.get(k), str) for k in ("likelihood", "activation"))
        and model.get("dtype", "float32") in DTYPES
        and type(seed) is int
        and seed >= 0  # any seed --seed takes (NumPy takes integers of any size)
        and (logvar is None or (type(logvar) in (int, float) and math.isfinite(logvar)))
    )
    if not ok:
        raise CheckpointError(f"{path}: damaged description (model {describe(model)})")


def describe(model_config: dict) -> str:
    """``"784-400-20 relu bernoulli"``, ``"conv 28x28-32-64-20 relu bernoulli"``: an
    architecture in a few words, for messages."""
    c, conv, shape = (
        model_config,
        model_config.get("arch") == "conv",
        model_config.get("image_shape"),
    )
    hidden = c.get("channels" if conv else "hidden") or []
    hidden = hidden if isinstance(hidden, list) else [hidden]
    first = (
        f"conv {'x'.join(map(str, shape))}"
        if conv and isinstance(shape, list)
        else c.get("input_dim")
    )
    latent = c.get("latent_dim")
    if isinstance(latent, list) and len(latent) == 2:  # two layers: x-hidden-z1-upper-z2
        latent = "-".join(map(str, [latent[0], *(c.get("upper_hidden") or []), latent[1]]))
    sizes = "-".join(str(s) for s in [first, *hidden, latent])
    extra = f" {c['num_classes']} classes" if c.get("num_classes") else ""
    return f"{sizes} {c.get('activation')} {c.get('likelihood')}{extra}"
