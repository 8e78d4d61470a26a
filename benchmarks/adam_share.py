"""How much of a training epoch Adam takes, with its NumPy passes and with the compiled loop.

The default recipe (784-400-20-400-784, batch 128, 60,000 images of uniform noise: the
time does not depend on the pixel values), the loop of ``bench_train.py``, with a clock
around ``opt.step()`` alone. One warm-up epoch (it compiles the loop), then ``--epochs``
timed ones; the medians are printed.

    python benchmarks/adam_share.py              # both paths (the compiled one needs Numba)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's tinyvae

import tinyvae  # noqa: E402
from tinyvae.fast.adam import compiled_adam_loop  # noqa: E402


def epoch_times(x, compiled, epochs, batch_size=128, seed=1):
    """[(seconds for the epoch, seconds inside opt.step)] for each timed epoch."""
    model = tinyvae.VAE(784, hidden=(400,), latent_dim=20, seed=seed)
    opt = tinyvae.Adam(model.flat, lr=1e-3, compiled=compiled)
    rng, times = np.random.default_rng(seed), []
    for _ in range(1 + epochs):
        order, in_adam = rng.permutation(len(x)), 0.0
        start = time.perf_counter()
        for first in range(0, len(x), batch_size):
            model.loss_and_grads(x[order[first : first + batch_size]], validate=False)
            before = time.perf_counter()
            opt.step()
            in_adam += time.perf_counter() - before
        times.append((time.perf_counter() - start, in_adam))
    return times[1:]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args(argv)
    x = np.random.default_rng(0).random((60000, 784), dtype=np.float32)
    paths = [False] + ([True] if compiled_adam_loop() is not None else [])
    for compiled in paths:
        times = epoch_times(x, compiled, args.epochs)
        epoch = statistics.median(t for t, _ in times)
        adam = statistics.median(a for _, a in times)
        name = "compiled loop" if compiled else "NumPy passes "
        print(
            f"Adam as {name}: epoch {epoch:.2f} s, of which Adam {adam:.2f} s "
            f"({100 * adam / epoch:.0f} %)"
        )
    if len(paths) == 1:
        print("(Numba is not installed: no compiled loop to time)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
