"""Solutions to the exercises of lesson 8 (speed). Run: python course/solutions/08_speed.py"""

import math
import statistics
import time

import numpy as np


def median_time(f, repeats=7, warmup=1, clock=time.perf_counter, sync=lambda: None):
    """Run f warmup times untimed, then time each of repeats calls; the median, in seconds.
    sync() waits for queued device work: before the clock starts, and before it is read."""
    for _ in range(warmup):
        f()
    sync()
    times = []
    for _ in range(repeats):
        start = clock()
        f()
        sync()
        times.append(clock() - start)
    return statistics.median(times)


def momentum_step_inplace(theta, m, g, lr, momentum, scratch):
    """m <- momentum m + g, then theta -= lr m; every operation writes into m, scratch or theta."""
    np.multiply(m, momentum, out=m)
    m += g
    np.multiply(m, lr, out=scratch)
    theta -= scratch


def flat_views(shapes, dtype):
    """One flat buffer, and each parameter a reshaped slice of it, in the order given."""
    buffer = np.zeros(sum(math.prod(shape) for shape in shapes.values()), dtype=dtype)
    views, offset = {}, 0
    for name, shape in shapes.items():
        size = math.prod(shape)
        views[name] = buffer[offset : offset + size].reshape(shape)  # a view, not a copy
        offset += size
    return buffer, views


def check_all():
    import _path  # noqa: F401  (makes lessons/ importable)
    import checks_08_speed as C

    C.check_median_time(median_time, strict=True)
    C.check_momentum_step_inplace(momentum_step_inplace, strict=True)
    C.check_flat_views(flat_views, strict=True)


if __name__ == "__main__":
    check_all()
