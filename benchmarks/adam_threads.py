"""A training step with Adam's update on one core, against the same with it split over Numba's threads.

A whole training step (forward, backward and Adam), with Adam's compiled loop of
``tinyvae/fast/adam_loop.py`` on one core, against the same step with that loop split
over Numba's threads (the matrix products keep OpenBLAS's threads, as in training).

    python benchmarks/adam_threads.py          # needs Numba

Adam's update reads and writes every parameter's four numbers each step (about 18 MB for
the default model), on one core. Two cores could move memory faster, but then OpenBLAS's
threads for the products and Numba's threads for Adam share the two cores. This script
measures it: the default MLP recipe, batch 128, random images
(``profile_step.training_steps``), both ways in turns in one process, each timed over
``--steps`` steps, ``--rounds`` times; medians in ms per step. The split way runs the same
compiled loop on blocks of the buffer, so it computes the same numbers;
it lives here, not in tinyvae, because it is slower.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numba

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]  # this checkout's tinyvae, and profile_step
from profile_step import blas_threads, training_steps  # noqa: E402

from tinyvae.fast import adam  # noqa: E402
from tinyvae.fast.adam_loop import adam_update as plain_adam_update  # noqa: E402

adam_update = numba.njit(error_model="numpy")(plain_adam_update)  # compiled, callable from below


@numba.njit(parallel=True, error_model="numpy")
def adam_on_threads(g, b1, one_minus_b1, b2, one_minus_b2, alpha, eps_hat, flush, tiny,
                    theta, m, v):  # fmt: skip
    """``adam_loop.adam_update`` itself, on 8 blocks of the elements, the blocks shared
    out among Numba's threads."""
    n, blocks = theta.size, 8
    size = (n + blocks - 1) // blocks
    for block in numba.prange(blocks):
        part = slice(block * size, min(n, (block + 1) * size))
        adam_update(g[part], b1, one_minus_b1, b2, one_minus_b2, alpha, eps_hat, flush, tiny,
                    theta[part], m[part], v[part])  # fmt: skip


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150, help="training steps per timing")
    parser.add_argument("--rounds", type=int, default=6, help="timings of each way, in turns")
    args = parser.parse_args(argv)
    chooser = adam.compiled_adam_loop
    one_core = chooser()
    if one_core is None:
        raise SystemExit("error: Numba is not installed or is turned off (TINYVAE_KERNELS)")
    _, _, steps = training_steps("mlp")
    loops = {"one core": one_core, f"{numba.get_num_threads()} threads": adam_on_threads}
    print(f"whole training steps; Adam's loop on one core or on {numba.get_num_threads()} Numba "
          f"threads; BLAS threads for the products: {blas_threads()}")  # fmt: skip

    def ms_per_step(loop, n):
        adam.compiled_adam_loop = lambda: loop  # what Adam.step calls, for these steps
        start = time.perf_counter()
        steps(n)
        return (time.perf_counter() - start) / n * 1e3

    times = {name: [] for name in loops}
    try:
        for loop in loops.values():
            ms_per_step(loop, 20)  # compiles, warms up
        for round_ in range(args.rounds):
            for name in list(loops)[:: 1 if round_ % 2 == 0 else -1]:
                times[name].append(ms_per_step(loops[name], args.steps))
    finally:
        adam.compiled_adam_loop = chooser  # as it was
    for name, values in times.items():
        rounded = ", ".join(f"{v:.2f}" for v in values)
        print(f"{name:10} median {statistics.median(values):6.2f} ms per step ({rounded})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
