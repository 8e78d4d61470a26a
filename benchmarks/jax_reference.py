"""The benchmark recipes in JAX, with the whole training step compiled by ``jax.jit``.

A contestant for ``bench_train.py`` (``--jax-python``), never a dependency of tinyvae: it
runs from an environment of its own (``python -m venv jaxvenv && jaxvenv/bin/pip install
jax optax numpy tqdm``: tqdm because ``bench_train.py``'s worker reads its flags with
tinyvae's parser). The models are ``torch_reference.py``'s:

* ``mlp``: 784-400-20 with ReLU, mu and logvar from one (400, 40) layer, the decoder
  20-400-784 giving Bernoulli logits;
* ``conv``: 28x28 -> 14x14 -> 7x7 by 4x4 convolutions of stride 2 (channels 32, 64), a
  linear layer to (mu, logvar); the decoder mirrors it with transposed convolutions.

The loss is tinyvae's: the negative ELBO per image, the Bernoulli log-likelihood of the
logits summed over the pixels plus the Gaussian KL, averaged over the batch. One step is a
single compiled function: forward, autodiff's backward and optax's Adam (lr 1e-3), all
fused by XLA. The loss of every step is read back to the host, as tinyvae's loop reads it.

    jaxvenv/bin/python benchmarks/jax_reference.py --epochs 2          # a quick look
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

try:
    import jax
    import jax.numpy as jnp
    import optax
except ImportError as error:  # run from an environment that has JAX
    jax = jnp = optax = None
    JAX_IMPORT_ERROR = error

D, H, L = 784, 400, 20


def require_jax() -> None:
    if jax is None:
        raise ImportError(
            "benchmarks/jax_reference.py needs JAX and optax (tinyvae does not): install "
            "them in a separate environment, e.g. `pip install jax optax numpy`"
        ) from JAX_IMPORT_ERROR


def uniform(rng, fan_in, shape):
    """PyTorch's default initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / np.sqrt(fan_in)
    return jnp.asarray(rng.uniform(-bound, bound, shape).astype(np.float32))


def init_mlp(rng):
    sizes = {"enc1": (D, H), "enc2": (H, 2 * L), "dec1": (L, H), "dec2": (H, D)}
    return {name: (uniform(rng, n, (n, m)), uniform(rng, n, (m,))) for name, (n, m) in sizes.items()}


def init_conv(rng, channels=(32, 64)):
    c1, c2 = channels
    F = c2 * 7 * 7
    conv = lambda c_out, c_in: (uniform(rng, c_in * 16, (c_out, c_in, 4, 4)), uniform(rng, c_in * 16, (c_out,)))
    convT = lambda c_in, c_out: (uniform(rng, c_out * 16, (c_in, c_out, 4, 4)), uniform(rng, c_out * 16, (c_out,)))
    return {"conv1": conv(c1, 1), "conv2": conv(c2, c1), "enc": (uniform(rng, F, (F, 2 * L)), uniform(rng, F, (2 * L,))),
            "dec": (uniform(rng, L, (L, F)), uniform(rng, L, (F,))),
            "convT1": convT(c2, c1), "convT2": convT(c1, 1)}  # fmt: skip


def linear(p, x):
    W, b = p
    return x @ W + b


def conv2d(p, x):  # (B, C, H, W) -> (B, F, H/2, W/2)
    W, b = p
    y = jax.lax.conv_general_dilated(x, W, (2, 2), ((1, 1), (1, 1)))
    return y + b[None, :, None, None]


def conv_transpose2d(p, x):  # (B, C, H, W) -> (B, F, 2H, 2W), PyTorch's ConvTranspose2d(4, 2, 1)
    W, b = p  # (C_in, C_out, 4, 4)
    kernel = jnp.flip(W, (2, 3)).transpose(1, 0, 2, 3)  # as a convolution of the dilated input
    y = jax.lax.conv_general_dilated(x, kernel, (1, 1), ((2, 2), (2, 2)), lhs_dilation=(2, 2))
    return y + b[None, :, None, None]


def mlp_forward(params, x, eps):
    stats = linear(params["enc2"], jax.nn.relu(linear(params["enc1"], x)))
    mu, logvar = stats[:, :L], stats[:, L:]
    z = mu + jnp.exp(0.5 * logvar) * eps
    return linear(params["dec2"], jax.nn.relu(linear(params["dec1"], z))), mu, logvar


def conv_forward(params, x, eps):
    B = x.shape[0]
    h = jax.nn.relu(conv2d(params["conv1"], x.reshape(B, 1, 28, 28)))
    h = jax.nn.relu(conv2d(params["conv2"], h))
    stats = linear(params["enc"], h.reshape(B, -1))
    mu, logvar = stats[:, :L], stats[:, L:]
    z = mu + jnp.exp(0.5 * logvar) * eps
    h = jax.nn.relu(linear(params["dec"], z)).reshape(B, -1, 7, 7)
    h = jax.nn.relu(conv_transpose2d(params["convT1"], h))
    return conv_transpose2d(params["convT2"], h).reshape(B, D), mu, logvar


def make_step(forward, optimizer):
    """The compiled step: (params, state, x, key) -> (params, state, key, loss)."""

    def loss_fn(params, x, eps):
        logits, mu, logvar = forward(params, x, eps)
        recon = jnp.sum(jax.nn.softplus(logits) - x * logits, axis=1)  # -log p(x|z), (B,)
        kl = -0.5 * jnp.sum(1 + logvar - mu**2 - jnp.exp(logvar), axis=1)  # (B,)
        return jnp.mean(recon + kl)

    @jax.jit
    def step(params, state, x, key):
        key, sub = jax.random.split(key)
        eps = jax.random.normal(sub, (x.shape[0], L), dtype=x.dtype)
        loss, grads = jax.value_and_grad(loss_fn)(params, x, eps)
        updates, state = optimizer.update(grads, state, params)
        return optax.apply_updates(params, updates), state, key, loss

    return step


def contestant(x, batch_size, seed, arch="mlp", channels=(32, 64)):
    """``run_epoch() -> mean loss``: one shuffled pass over ``x`` (n, 784), a compiled step
    per batch, each step's loss read back; and a sync function (the loss read is one)."""
    require_jax()
    rng = np.random.default_rng(seed)
    params = init_conv(rng, channels) if arch == "conv" else init_mlp(rng)
    optimizer = optax.adam(1e-3)
    state = optimizer.init(params)
    step = make_step(conv_forward if arch == "conv" else mlp_forward, optimizer)
    key = jax.random.PRNGKey(seed)
    holder = {"params": params, "state": state, "key": key}

    def run_epoch():
        order = rng.permutation(len(x))
        total = 0.0
        p, s, k = holder["params"], holder["state"], holder["key"]
        for start in range(0, len(x), batch_size):
            xb = x[order[start : start + batch_size]]  # (B, 784), gathered on the host
            p, s, k, loss = step(p, s, xb, k)
            total += float(loss) * len(xb)  # the loss read back every step
        holder.update(params=p, state=s, key=k)
        return total / len(x)

    return run_epoch, lambda: None, lambda: {}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--arch", choices=("mlp", "conv"), default="mlp")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    x = np.random.default_rng(args.seed).random((60000, D), dtype=np.float32)
    run_epoch, _, _ = contestant(x, 128, args.seed, args.arch)
    for epoch in range(args.epochs):
        start = time.perf_counter()
        loss = run_epoch()
        print(f"epoch {epoch + 1}: loss {loss:.3f}, {time.perf_counter() - start:.2f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
