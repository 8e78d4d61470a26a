"""Where a training step's time goes: cProfile over a few dozen steps, by function.

    python benchmarks/profile_step.py                  # the default MLP recipe
    python benchmarks/profile_step.py --arch conv      # the convolutional recipe
    python benchmarks/profile_step.py --arch conv --by-layer   # ms per layer, no profiler
    TINYVAE_KERNELS=numpy python benchmarks/profile_step.py --arch conv   # NumPy alone

The step is what a user's loop runs: ``model.loss_and_grads(xb, validate=False)`` then
``opt.step()``, batch 128, on random 28x28 images (the time does not depend on the pixels).
It first times ``--steps`` steps without the profiler (ms per step), then profiles as many
and prints the functions with the most time of their own ("tottime": a layer's forward or
backward includes its matrix products, which are NumPy calls, not functions of their own).
Rows name a file and line: in ``conv.py`` the first ``forward``/``backward`` pair is
``Conv2d``'s, the second ``ConvTranspose2d``'s; in ``layers.py``, ``Linear`` comes first.
The profiler adds a little to every Python call, so the table is a breakdown, not a timing.

``--by-layer`` instead times each layer's forward and backward (and Adam's step) with a
clock around the call, without the profiler: the ms each takes per step, largest first, and
what is left (the likelihood, the latent layer, gathering the batch).
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import pstats
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's tinyvae
from tinyvae import VAE, Adam  # noqa: E402


def training_steps(arch: str = "mlp"):
    """``(model, opt, steps)``: the recipe's model and Adam, and ``steps(n)``, which runs n
    training steps as a user's loop does, batch 128, over 40 batches of random images."""
    B, batches = 128, 40
    x = (np.random.default_rng(0).random((B * batches, 784)) < 0.3).astype(np.float32)
    shape = {"arch": "conv", "image_shape": (28, 28)} if arch == "conv" else {}
    model = VAE(784, seed=1, **shape)
    opt = Adam(model.flat)

    def steps(n):
        for i in range(n):
            model.loss_and_grads(x[(i % batches) * B : (i % batches + 1) * B], validate=False)
            opt.step()

    return model, opt, steps


def blas_threads() -> str:
    """The threads NumPy's BLAS library uses now, as text ("unknown" if it is not found)."""
    counts = [i["num_threads"] for i in threadpool_info() if i.get("user_api") == "blas"]
    return str(min(counts)) if counts else "unknown"


def layers_of(network, tag: str) -> dict:
    """name -> layer, in order: a network's steps, then a conv encoder's linear head."""
    steps = network.steps + ([network.head] if hasattr(network, "head") else [])
    return {f"{tag}.{i} {type(step).__name__}": step for i, step in enumerate(steps)}


def time_each(layers: dict, opt, totals):
    """Wrap each layer's forward and backward (and opt.step) in a clock adding to ``totals``."""

    def clocked(function, name):
        def run(*args, **kwargs):
            start = time.perf_counter()
            result = function(*args, **kwargs)
            totals[name] += time.perf_counter() - start
            return result

        return run

    for name, layer in layers.items():
        layer.forward = clocked(layer.forward, f"{name} forward")
        layer.backward = clocked(layer.backward, f"{name} backward")
    opt.step = clocked(opt.step, "Adam step")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=["mlp", "conv"], default="mlp")
    parser.add_argument("--steps", type=int, default=40, help="steps timed, then profiled")
    parser.add_argument("--rows", type=int, default=16, help="functions listed")
    parser.add_argument("--by-layer", action="store_true", help="ms per layer, no profiler")
    args = parser.parse_args(argv)
    model, opt, steps = training_steps(args.arch)
    steps(5)  # loads Numba's loops and warms the caches
    start = time.perf_counter()
    steps(args.steps)
    ms = (time.perf_counter() - start) / args.steps * 1e3
    print(f"{args.arch}: {ms:.1f} ms per step without the profiler ({args.steps} steps; BLAS "
          f"threads: {blas_threads()}, OPENBLAS_NUM_THREADS sets them)")  # fmt: skip
    if args.by_layer:
        totals = collections.defaultdict(float)
        time_each(layers_of(model.encoder, "encoder") | layers_of(model.decoder, "decoder"),
                  opt, totals)  # fmt: skip
        start = time.perf_counter()
        steps(args.steps)
        step_ms = (time.perf_counter() - start) / args.steps * 1e3
        print(f"with the clocks: {step_ms:.1f} ms per step; ms per step of each:")
        for name, seconds in sorted(totals.items(), key=lambda item: -item[1]):
            print(f"  {name:36} {seconds / args.steps * 1e3:6.2f}")
        rest = step_ms - sum(totals.values()) / args.steps * 1e3
        print(f"  {'the rest (likelihood, latent, batch)':36} {rest:6.2f}")
        return 0
    profiler = cProfile.Profile()
    profiler.enable()
    steps(args.steps)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(args.rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
