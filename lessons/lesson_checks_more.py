"""Checkers for the exercises of lessons 6 to 9: ``check_<exercise>(your_function)``.

They work like those of ``lesson_checks.py`` (lessons 1 to 5): each runs the student's
function on test inputs, compares the answer with tinyvae or with a reference written here,
and prints one line through ``lesson_utils.run_check``: not attempted yet, not right yet
(naming the usual mistake where it is recognised), or correct. Solutions call the checkers
with ``strict=True``, which raises unless the answer passes.
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
)

import tinyvae
from tinyvae.core import distributions as D
from tinyvae.core.params import FlatParameters


def _rng(seed):
    return np.random.default_rng(seed)


# --- Lesson 6: training a VAE end to end --------------------------------------------------


def adam_reference(theta, g, m, v, t, lr, beta1, beta2, eps, correct=True):
    """One Adam step in the textbook form; ``correct=False`` leaves out the bias corrections."""
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    m_hat = m / (1 - beta1**t) if correct else m
    v_hat = v / (1 - beta2**t) if correct else v
    return theta - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


@exercise(6, "adam_step")
def check_adam_step(fn, strict=False):
    """``fn(theta, g, m, v, t, lr, beta1, beta2, eps) -> (theta, m, v)``: one Adam step."""

    def test():
        rng = _rng(21)
        lr, beta1, beta2, eps = 1e-2, 0.9, 0.999, 1e-8
        scales = np.array([1e-3, 1.0, 100.0, 1.0, 5.0, 0.1])  # very different sizes
        theta0 = rng.standard_normal(6)
        grads = [rng.standard_normal(6) * scales for _ in range(5)]
        # tinyvae.Adam over a flat float64 buffer: the answer to compare with.
        flat = FlatParameters({"theta": theta0}, tinyvae.get_backend("numpy", "float64"))
        library = tinyvae.Adam(flat, lr=lr, betas=(beta1, beta2), eps=eps)
        theta, m, v = theta0.copy(), np.zeros(6), np.zeros(6)
        bare = (theta0.copy(), np.zeros(6), np.zeros(6))  # the same steps, no bias correction
        for t, g in enumerate(grads, start=1):
            flat.grad[...] = g
            library.step()
            with np.errstate(all="ignore"):
                out = expect_tuple(
                    fn(theta.copy(), g.copy(), m.copy(), v.copy(), t, lr, beta1, beta2, eps),
                    ("theta", "m", "v"),
                )
            got = np.asarray(out[0], dtype=np.float64)
            if got.shape == (6,) and not np.all(np.isfinite(got)):
                raise Wrong(
                    f"theta is not finite at step t = {t}: t counts from 1, so that "
                    "1 - beta^t is never 0."
                )
            bare = adam_reference(bare[0], g, *bare[1:], t, lr, beta1, beta2, eps, correct=False)
            if t == 1:
                known_mistakes(
                    got,
                    [
                        (
                            bare[0],
                            "without the bias corrections the first step is about "
                            "0.1 / sqrt(0.001) = 3.2 times too long: divide m by 1 - beta1^t "
                            "and v by 1 - beta2^t.",
                        ),
                        (
                            theta - lr * g / np.sqrt(g * g + eps),
                            "epsilon goes outside the square root: m_hat / (sqrt(v_hat) + eps).",
                        ),
                    ],
                )
            expect_close(out[1], library.m, f"m after step {t}", rtol=1e-10, atol=1e-14)
            expect_close(
                out[2],
                library.v,
                f"v after step {t}",
                rtol=1e-10,
                atol=1e-14,
                hint="v averages the *squared* gradients, g * g.",
            )
            theta, m, v = (np.asarray(a, dtype=np.float64) for a in out)
            expect_close(theta, flat.data, f"theta after step {t}", rtol=1e-9, atol=1e-12)

    run_check("adam_step", test, strict)


@exercise(6, "loss_parts")
def check_loss_parts(fn, strict=False):
    """``fn(model, x, eps) -> (recon, kl)``: the two parts of the loss, averaged over the batch."""

    def test():
        model = tinyvae.VAE(12, hidden=(6,), latent_dim=3, dtype="float64", seed=4)
        x = (_rng(22).random((5, 12)) < 0.5).astype(np.float64)
        eps = _rng(23).standard_normal((5, 3))
        recon, kl = expect_tuple(fn(model, x.copy(), eps.copy()), ("recon", "kl"))
        _, parts, _ = model.loss_and_grads(x, eps=eps)
        mu, logvar = model.encode(x)
        probabilities = model.decode(D.reparameterize(mu, logvar, eps))
        known_mistakes(
            recon,
            [
                (
                    -D.bernoulli_log_likelihood(x, probabilities).mean(),
                    "model.decode returns probabilities sigmoid(logits); "
                    "bernoulli_log_likelihood wants the logits: model.decoder.forward(z).",
                ),
                (
                    parts["recon"] / x.shape[1],
                    "sum -log p(x|z) over the pixels of each image, then average over images.",
                ),
            ],
        )
        known_mistakes(
            kl,
            [
                (
                    D.kl_standard_normal(mu, logvar).sum(),
                    "the KL should be averaged over the batch, not summed.",
                )
            ],
        )
        expect_close(recon, parts["recon"], "recon", rtol=1e-9)
        expect_close(kl, parts["kl"], "kl", rtol=1e-9)

    run_check("loss_parts", test, strict)


def ema_reference(values, beta, correct=True):
    """Exponential moving average from s_0 = 0; divided by 1 - beta^t when ``correct``."""
    s, out = 0.0, []
    for t, value in enumerate(values, start=1):
        s = beta * s + (1 - beta) * value
        out.append(s / (1 - beta**t) if correct else s)
    return np.array(out)


@exercise(6, "debiased_ema")
def check_debiased_ema(fn, strict=False):
    """``fn(values (T,), beta) -> (T,)``: the bias-corrected exponential moving average."""

    def test():
        constant = np.full(50, 5.0)
        got = expect_array(fn(constant.copy(), 0.9), (50,), "the average of a constant")
        known_mistakes(
            got,
            [
                (
                    ema_reference(constant, 0.9, correct=False),
                    "the early values are pulled towards the zero start: divide s_t by "
                    "1 - beta^t, so that the average of a constant is that constant.",
                )
            ],
        )
        expect_close(got, constant, "the average of a constant 5", hint="It must be 5 throughout.")
        values = _rng(24).standard_normal(40).cumsum() + 100
        got = expect_array(fn(values.copy(), 0.95), (40,), "the average")
        started = [values[0]]
        for value in values[1:]:
            started.append(0.95 * started[-1] + 0.05 * value)
        known_mistakes(
            got,
            [
                (
                    np.array(started) / (1 - 0.95 ** np.arange(1, 41)),
                    "start from s_0 = 0: the correction 1 / (1 - beta^t) assumes it. "
                    "Starting from the first value *and* dividing counts it twice.",
                )
            ],
        )
        expect_close(got, ema_reference(values, 0.95), "the average")

    run_check("debiased_ema", test, strict)


# --- Lesson 7: the latent space -----------------------------------------------------------


@exercise(7, "aggregate_moments")
def check_aggregate_moments(fn, strict=False):
    """``fn(mu (n, L), logvar (n, L)) -> (mean (L,), cov (L, L))`` of the aggregate posterior."""

    def test():
        rng = _rng(30)
        mu = rng.standard_normal((200, 3)) @ np.array([[1.0, 0.5, 0], [0, 1.0, 0], [0, 0, 0.3]])
        logvar = rng.uniform(-3, 0, (200, 3))
        mean, cov = expect_tuple(fn(mu.copy(), logvar.copy()), ("mean", "cov"))
        between = np.cov(mu.T, bias=True)  # (L, L) covariance of the means, divided by n
        within = np.diag(np.exp(logvar).mean(axis=0))  # (L, L) average posterior variance
        expect_close(mean, mu.mean(axis=0), "the mean")
        known_mistakes(
            cov,
            [
                (
                    between,
                    "that is only the covariance of the means. Each image's posterior also "
                    "has its own spread: add the average of exp(logvar) on the diagonal "
                    "(the law of total variance).",
                ),
                (
                    np.cov(mu.T) + within,
                    "np.cov divides by n - 1; the mixture of n components weighs each by "
                    "1/n: use np.cov(mu.T, bias=True), or divide by n yourself.",
                ),
                (
                    between + np.diag(np.exp(0.5 * logvar).mean(axis=0)),
                    "exp(logvar / 2) is the standard deviation; the variance is exp(logvar).",
                ),
            ],
        )
        expect_close(cov, between + within, "the covariance")

    run_check("aggregate_moments", test, strict)


def slerp_reference(a, b, t):
    """Spherical interpolation from a to b at the fractions t: (T,) -> (T, L)."""
    omega = math.acos(np.clip(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)), -1, 1))
    t = np.asarray(t, dtype=np.float64)[:, None]
    return (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / math.sin(omega)


@exercise(7, "slerp")
def check_slerp(fn, strict=False):
    """``fn(a (L,), b (L,), t (T,)) -> (T, L)``: spherical interpolation."""

    def test():
        rng = _rng(31)
        a, b = rng.standard_normal(16), rng.standard_normal(16) * 1.5
        t = np.linspace(0, 1, 7)
        got = expect_array(fn(a.copy(), b.copy(), t.copy()), (7, 16), "the path")
        known_mistakes(
            got,
            [
                (
                    (1 - t[:, None]) * a + t[:, None] * b,
                    "that is the straight line (1 - t) a + t b; slerp follows the arc: "
                    "weights sin((1 - t) w) / sin(w) and sin(t w) / sin(w).",
                )
            ],
        )
        expect_close(got[0], a, "the path at t = 0", hint="It must start at a.")
        expect_close(got[-1], b, "the path at t = 1", hint="It must end at b.")
        expect_close(got, slerp_reference(a, b, t), "the path")
        u = a / np.linalg.norm(a) * 4.0  # same length as w: the norm stays 4 all along the arc
        w = b / np.linalg.norm(b) * 4.0
        norms = np.linalg.norm(expect_array(fn(u, w, t), (7, 16), "the path"), axis=1)
        expect_close(norms, np.full(7, 4.0), "the norms along a path between two points of norm 4")

    run_check("slerp", test, strict)


@exercise(7, "mask_corrupt")
def check_mask_corrupt(fn, strict=False):
    """``fn(x (B, D), p, rng) -> (B, D)``: each pixel set to 0 with probability p."""

    def test():
        x = _rng(32).uniform(0.5, 1.0, (200, 100))  # no zeros: every 0 of the answer was set
        saved = x.copy()
        got = expect_array(fn(x, 0.3, np.random.default_rng(0)), x.shape, "the corrupted images")
        if not np.array_equal(x, saved):
            raise Wrong("x was changed: return a new array and leave the clean images alone.")
        zeroed = got == 0
        if not np.array_equal(got[~zeroed], x[~zeroed]):
            raise Wrong("pixels that are not masked must keep their value.")
        fraction = zeroed.mean()
        if abs(fraction - 0.7) < 0.02:
            raise Wrong(
                f"{fraction:.0%} of the pixels were set to 0: you kept each pixel with "
                "probability p; it should be *corrupted* with probability p."
            )
        if abs(fraction - 0.3) > 0.02:
            raise Wrong(f"with p = 0.3 about 30% of the pixels should be 0; got {fraction:.1%}.")
        again = np.asarray(fn(x, 0.3, np.random.default_rng(1)))
        if np.array_equal(again, got):
            raise Wrong("two different generators gave the same mask: draw it from rng.")
        if not np.array_equal(np.asarray(fn(x, 0.0, np.random.default_rng(0))), x):
            raise Wrong("with p = 0 nothing should change.")

    run_check("mask_corrupt", test, strict)


# --- Lesson 8: speed ----------------------------------------------------------------------


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


@exercise(8, "sgd_step_inplace")
def check_sgd_step_inplace(fn, strict=False):
    """``fn(theta, g, lr, scratch)``: theta -= lr * g, in place, allocating nothing."""

    def test():
        rng = _rng(40)
        n = 200_000
        theta, g = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n)
        g = g.astype(np.float32)
        scratch = np.empty_like(theta)
        want = theta - np.float32(0.01) * g
        before = theta.copy()
        tracemalloc.start()
        try:
            fn(theta, g, 0.01, scratch)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        if np.array_equal(theta, before):
            raise Wrong(
                "theta is unchanged: `theta = theta - lr * g` makes a new array and "
                "only rebinds the local name. Write into theta: theta -= ..., or out=theta."
            )
        expect_close(theta, want, "theta", rtol=1e-6, atol=1e-7)
        if peak > theta.nbytes // 4:
            raise Wrong(
                f"the update allocated {peak / 1e6:.1f} MB, about {peak / theta.nbytes:.0f} "
                f"temporary array(s) the size of theta ({theta.nbytes / 1e6:.1f} MB). "
                "Compute lr * g into scratch with np.multiply(g, lr, out=scratch), then "
                "theta -= scratch."
            )

    run_check("sgd_step_inplace", test, strict)


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


# --- Lesson 9: beyond ---------------------------------------------------------------------


@exercise(9, "one_hot_inputs")
def check_one_hot_inputs(fn, strict=False):
    """``fn(x (B, n), labels (B,), num_classes) -> (B, n + num_classes)``: x, then one-hot labels."""

    def test():
        rng = _rng(52)
        x, labels = rng.random((6, 5)), np.array([3, 0, 9, 3, 1, 7])
        got = fn(x.copy(), labels.copy(), 10)
        one_hot = np.eye(10)[labels]  # (B, C): row b is 1 in column labels[b]
        if np.shape(got) == (6, 6):
            raise Wrong(
                "one column was added: the label as a number says 9 is 'more' than 3. "
                "Add num_classes columns, a 1 in the label's column and 0 elsewhere."
            )
        known_mistakes(
            got,
            [
                (
                    np.concatenate([one_hot, x], axis=1),
                    "the one-hot part goes after the pixels: [x | one-hot], the order in "
                    "which tinyvae's encoder and decoder read their inputs.",
                )
            ],
        )
        expect_close(got, np.concatenate([x, one_hot], axis=1), "the inputs")
        if not np.array_equal(np.asarray(fn(x, labels, 12))[:, 5:].sum(axis=1), np.ones(6)):
            raise Wrong("use the num_classes argument: with 12 classes there are 12 columns.")

    run_check("one_hot_inputs", test, strict)


@exercise(9, "count_active_units")
def check_count_active_units(fn, strict=False):
    """``fn(mu (n, L), threshold) -> int``: units whose posterior mean varies across images."""

    def test():
        rng = _rng(50)
        spreads = np.array([1.0, 0.5, 0.2, 0.12, 0.08, 0.05, 0.01, 0.0])  # std across images
        mu = rng.standard_normal((300, 8))
        mu = (mu - mu.mean(0)) / mu.std(0) * spreads + 0.7  # exact standard deviations
        got = fn(mu.copy(), 0.01)
        want = int((mu.var(axis=0) > 0.01).sum())  # 4: variances 1, .25, .04, .0144
        if isinstance(got, (np.ndarray, list)) and np.ndim(got) > 0:
            raise Wrong("return one integer: the number of active units.")
        got = int(got)
        if got == int((mu.std(axis=0) > 0.01).sum()) and got != want:
            raise Wrong(
                "compare the *variance* across images with the threshold, not the standard "
                "deviation (a threshold of 0.01 on the variance is 0.1 on the std)."
            )
        if got > mu.shape[1]:
            raise Wrong(
                f"{got} active units out of {mu.shape[1]}: take the variance over the images "
                "(axis 0), one value per latent unit."
            )
        if got != want:
            raise Wrong(
                f"you counted {got} units with Var over images of mu > 0.01, which is not "
                "right: count every unit whose variance across the images exceeds it."
            )
        if int(fn(mu.copy(), 0.1)) != int((mu.var(axis=0) > 0.1).sum()):
            raise Wrong("use the threshold argument instead of a fixed 0.01.")

    run_check("count_active_units", test, strict)


@exercise(9, "importance_weights")
def check_importance_weights(fn, strict=False):
    """``fn(log_w (K, B)) -> (K, B)``: normalised importance weights, each column sums to 1."""

    def test():
        rng = _rng(51)
        log_w = rng.standard_normal((6, 4)) * 2 + np.array([0.0, -1000.0, 1000.0, -5.0])
        with np.errstate(all="ignore"):
            got = fn(log_w.copy())
        shifted = np.exp(log_w - log_w.max(axis=0))
        want = shifted / shifted.sum(axis=0)
        got = np.asarray(got, dtype=np.float64) if np.shape(got) == log_w.shape else got
        if np.shape(got) == log_w.shape and not np.all(np.isfinite(got)):
            raise Wrong(
                "some weights are NaN or infinite for log weights near -1000 and +1000: "
                "subtract each column's largest log weight before exp."
            )
        rows = np.exp(log_w - log_w.max(axis=1, keepdims=True))
        known_mistakes(
            got,
            [
                (
                    rows / rows.sum(axis=1, keepdims=True),
                    "normalise over the K samples of each image (axis 0): each column sums to 1.",
                )
            ],
        )
        expect_close(got, want, "the weights", atol=1e-12)

    run_check("importance_weights", test, strict)
