"""Checkers for the exercises of lesson 8, speed.

Each ``check_<exercise>(your_function)`` runs your function on test inputs, compares the
answer with tinyvae or with a reference written here, and prints one line through
``grading.run_check``: not attempted yet, not right yet (naming the usual mistake where it
is recognised), or correct. Solutions call the checkers with ``strict=True``, which raises
unless the answer passes.
"""

from __future__ import annotations

import math
import statistics
import tracemalloc

import numpy as np
from lesson_utils import (
    Wrong,
    exercise,
    expect_array,
    expect_close,
    expect_tuple,
    known_mistakes,
    run_check,
    seeded,
)


class _FakeDevice:
    """A clock and a device whose work is queued: ``run`` returns at once, ``sync`` waits."""

    LAUNCH = 1e-6  # seconds a call takes to return, before its work is done

    def __init__(self, durations):
        self.now, self.pending, self.durations, self.calls = 0.0, 0.0, list(durations), 0

    def clock(self):
        return self.now

    def run(self):
        self.now += self.LAUNCH
        self.pending += self.durations[self.calls]
        self.calls += 1

    def sync(self):
        self.now += self.pending
        self.pending = 0.0


@exercise(8, "median_time")
def check_median_time(fn, strict=False):
    """``fn(f, repeats, warmup, clock, sync) -> seconds``: the median time of one call of f."""

    def test():
        # Call 1 is slow (a warm-up), call 5 is hit by another program.
        durations = [0.9, 0.010, 0.012, 0.011, 0.400, 0.010, 0.013, 0.011]
        device = _FakeDevice(durations)
        got = fn(device.run, repeats=7, warmup=1, clock=device.clock, sync=device.sync)
        got = float(expect_array(got, (), "the time"))
        if device.calls != 8:
            raise Wrong(
                f"f was called {device.calls} times; with warmup=1 and repeats=7 it must "
                "be called 1 + 7 = 8 times."
            )
        timed = durations[1:]
        known_mistakes(
            got,
            [
                (
                    _FakeDevice.LAUNCH,
                    "you timed only the launch: on a GPU a call returns before its work "
                    "is done. Call sync() after f() and before reading the clock.",
                ),
                (
                    statistics.mean(timed) + _FakeDevice.LAUNCH,
                    "that is the mean: one slow run (another program) drags it up. "
                    "Take the median.",
                ),
                (
                    statistics.median(durations) + _FakeDevice.LAUNCH,
                    "the warm-up call was counted: run f warmup times first, untimed.",
                ),
                (
                    statistics.median([durations[0] + timed[0], *timed[1:]]) + _FakeDevice.LAUNCH,
                    "the warm-up's work was still queued when the first timing started: "
                    "call sync() after the warm-up, before starting the clock.",
                ),
                (
                    min(timed) + _FakeDevice.LAUNCH,
                    "that is the fastest run; this exercise asks for the median.",
                ),
            ],
            rtol=1e-4,
            atol=1e-9,
        )
        want = statistics.median(timed) + _FakeDevice.LAUNCH
        expect_close(got, want, "the median time", rtol=1e-4, atol=1e-9)

    run_check("median_time", test, strict)


@exercise(8, "momentum_step_inplace")
def check_momentum_step_inplace(fn, strict=False):
    """``fn(theta, m, g, lr, momentum, scratch)``: m <- momentum m + g, then theta -= lr m,
    both in place, allocating nothing."""

    def test():
        rng = seeded(40)
        n = 200_000
        theta, m, g = (rng.standard_normal(n).astype(np.float32) for _ in range(3))
        scratch = np.empty_like(theta)
        lr, momentum = np.float32(0.01), np.float32(0.9)
        want_m = momentum * m + g
        want_theta = theta - lr * want_m
        theta0, m0 = theta.copy(), m.copy()
        tracemalloc.start()
        try:
            fn(theta, m, g, 0.01, 0.9, scratch)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        if np.array_equal(theta, theta0):
            raise Wrong(
                "theta is unchanged: `theta = theta - ...` makes a new array and only "
                "rebinds the local name. Write into theta: theta -= ..., or out=theta."
            )
        if np.array_equal(m, m0):
            raise Wrong(
                "m is unchanged: the velocity must be updated in place too (the caller keeps "
                "it for the next step): np.multiply(m, momentum, out=m), then m += g."
            )
        # float32: each of the few operations rounds by at most 6e-8 of values below ~10
        known_mistakes(
            theta,
            [
                (
                    theta0 - lr * m0,
                    "theta moved with the old velocity: update m first, then theta -= lr m.",
                ),
                (
                    theta0 - lr * g,
                    "theta moved with the gradient alone: the step is lr times the new velocity m.",
                ),
            ],
            rtol=1e-5,
            atol=1e-6,
        )
        expect_close(m, want_m, "m", rtol=1e-5, atol=1e-6)
        expect_close(theta, want_theta, "theta", rtol=1e-5, atol=1e-6)
        if peak > theta.nbytes // 4:
            raise Wrong(
                f"the update allocated {peak / 1e6:.1f} MB, about {peak / theta.nbytes:.0f} "
                f"temporary array(s) the size of theta ({theta.nbytes / 1e6:.1f} MB). Make "
                "every operation write into theta, m or scratch: out=, or an in-place operator "
                "whose right-hand side is an existing array."
            )

    run_check("momentum_step_inplace", test, strict)


@exercise(8, "flat_views")
def check_flat_views(fn, strict=False):
    """``fn(shapes {name: shape}, dtype) -> (buffer (P,), views {name: array})``."""

    def test():
        shapes = {"enc.W": (5, 3), "enc.b": (3,), "dec.W": (3, 5), "dec.b": (5,)}
        buffer, views = expect_tuple(fn(dict(shapes), np.float32), ("buffer", "views"))
        total = sum(math.prod(s) for s in shapes.values())
        if not isinstance(buffer, np.ndarray) or buffer.shape != (total,):
            raise Wrong(f"buffer should be a flat array of shape ({total},), the sum of sizes.")
        if buffer.dtype != np.float32:
            raise Wrong(f"buffer has dtype {buffer.dtype}; use the dtype argument.")
        if not isinstance(views, dict) or list(views) != list(shapes):
            raise Wrong(f"views should be a dict with the names {list(shapes)}, in that order.")
        offset = 0
        for name, shape in shapes.items():
            view = views[name]
            if np.shape(view) != shape:
                raise Wrong(f"views[{name!r}] has shape {np.shape(view)}, should be {shape}.")
            if not np.shares_memory(view, buffer):
                raise Wrong(
                    f"views[{name!r}] does not share memory with buffer: make it with "
                    "buffer[start:stop].reshape(shape), never with a copy or np.zeros."
                )
            start = view.__array_interface__["data"][0] - buffer.__array_interface__["data"][0]
            if start != offset * buffer.itemsize:
                raise Wrong(
                    f"views[{name!r}] starts at element {start // buffer.itemsize} of the "
                    f"buffer, should start at {offset}: lay the parameters out one after "
                    "the other, in the order given."
                )
            offset += math.prod(shape)
        buffer[...] = 0
        views["dec.b"][...] = 7
        if not np.all(buffer[-5:] == 7):
            raise Wrong("writing into views['dec.b'] did not change the buffer's last 5 values.")

    run_check("flat_views", test, strict)
