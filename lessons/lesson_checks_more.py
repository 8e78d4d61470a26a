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
    expect_gradient,
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


def mutual_information_reference(z, mu, logvar):
    """(1/n) sum_i [log q(z_i | x_i) - log q(z_i)], q(z) the mixture of the n posteriors."""
    n = len(z)
    log_q = D.diagonal_normal_log_density(z[:, None, :], mu[None], logvar[None])  # (n, n)
    log_aggregate = D.logsumexp(log_q, axis=1) - math.log(n)  # (n,) log q(z_i)
    return float(np.mean(np.diag(log_q) - log_aggregate))


@exercise(7, "mutual_information")
def check_mutual_information(fn, strict=False):
    """``fn(z (n, L), mu (n, L), logvar (n, L)) -> float``: the estimate of I(i; z) from one
    sample z_i of each posterior N(mu_i, e^logvar_i)."""

    def test():
        rng = _rng(32)
        n, L = 40, 3
        mu, logvar = rng.standard_normal((n, L)), rng.uniform(-2, 0, (n, L))
        z = mu + np.exp(0.5 * logvar) * rng.standard_normal((n, L))
        same = np.zeros((n, L)), np.zeros((n, L))  # every posterior N(0, I)
        got = float(expect_array(fn(z.copy(), *same), (), "I for identical posteriors"))
        missing_log_n = (
            "q(z) is the *average* of the n posteriors, "
            "log q(z) = logsumexp_j log q(z | x_j) - log n: the -log n is missing."
        )
        known_mistakes(got, [(-math.log(n), missing_log_n)], rtol=1e-9)
        if abs(got) > 1e-9:
            raise Wrong(
                "when every image has the same posterior, the code says nothing about which "
                "image it was: I must be 0, and yours is not. Is log q(z) the log of the "
                "*average* of the n densities?"
            )
        offset = np.zeros((n, L))
        offset[:, 0] = 1e3 * np.arange(n)  # posteriors so far apart that each z has one source,
        tiny = logvar - 600  # and so narrow that each density is about e^900: exp overflows
        z_far = mu + offset + np.exp(0.5 * tiny) * rng.standard_normal((n, L))
        with np.errstate(all="ignore"):
            got = fn(z_far, mu + offset, tiny)
        if np.size(got) == 1 and not np.isfinite(np.asarray(got, dtype=np.float64)).all():
            raise Wrong(
                "for narrow posteriors far apart your estimate is not finite: their "
                "densities overflow (about e^900), or underflow to 0 at the other images' "
                "codes. Combine the log densities with a log-sum-exp."
            )
        got = float(expect_array(got, (), "I"))
        if abs(got - math.log(n)) > 1e-9:
            raise Wrong(
                "when the posteriors are so far apart that each code could only come from "
                "its own image, the code tells which of the n images it was: I must be "
                "log n, and yours is not."
            )
        got = float(expect_array(fn(z.copy(), mu.copy(), logvar.copy()), (), "I"))
        want = mutual_information_reference(z, mu, logvar)
        known_mistakes(
            got,
            [
                (want - math.log(n), missing_log_n),
                (
                    -want,
                    "the sign is flipped: I = E[log q(z | x_i) - log q(z)].",
                ),
            ],
            rtol=1e-9,
        )
        expect_close(got, want, "I", rtol=1e-9, atol=1e-12)

    run_check("mutual_information", test, strict)


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


@exercise(8, "momentum_step_inplace")
def check_momentum_step_inplace(fn, strict=False):
    """``fn(theta, m, g, lr, momentum, scratch)``: m <- momentum m + g, then theta -= lr m,
    both in place, allocating nothing."""

    def test():
        rng = _rng(40)
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
        model = tinyvae.VAE(5, hidden=(4,), latent_dim=2, num_classes=10, dtype="float64")
        mu, logvar = model.encode(x, labels)  # what the library's encoder makes of (x, labels)
        expect_close(
            model.encoder.forward(np.asarray(got, dtype=np.float64)),
            np.concatenate([mu, logvar], axis=1),
            "a conditional tinyvae.VAE's encoder output on your inputs",
        )

    run_check("one_hot_inputs", test, strict)


FREE_BITS_FLOOR = 0.25


def free_bits_inputs():
    """(mu, logvar), (6, 5) each: units 0-1 under the floor, units 2-4 above it, all by a
    margin wide enough that no finite difference crosses the kink of max (tested)."""
    rng = _rng(50)
    mu = rng.standard_normal((6, 5)) * np.array([0.1, 0.2, 1.0, 1.5, 2.0])
    logvar = rng.uniform(-0.2, 0.2, (6, 5)) * np.array([0.5, 0.5, 1, 4, 8])
    return mu, logvar


@exercise(9, "free_bits")
def check_free_bits(fn, strict=False):
    """``fn(mu (B, L), logvar (B, L), floor) -> (term, dmu, dlogvar)``: the free-bits KL term
    sum_u max(floor, mean_b KL_bu) and its gradient, judged by a gradient check."""

    def test():
        (mu, logvar), floor = free_bits_inputs(), FREE_BITS_FLOOR
        B = len(mu)
        kl = 0.5 * (np.exp(logvar) + mu**2 - 1 - logvar)  # (B, L)
        per_unit = kl.mean(axis=0)  # (L,)
        term, dmu, dlogvar = expect_tuple(
            fn(mu.copy(), logvar.copy(), floor), ("term", "dmu", "dlogvar")
        )

        def f():
            kl = 0.5 * (np.exp(logvar) + mu**2 - 1 - logvar)
            return float(np.maximum(floor, kl.mean(axis=0)).sum())

        known_mistakes(
            term,
            [
                (
                    np.maximum(floor, kl).mean(axis=0).sum(),
                    "the floor applies to each unit's KL averaged over the batch, not to "
                    "each image's KL: average over the B images first, then take the max.",
                ),
                (
                    np.maximum(floor, kl.sum(axis=0)).sum(),
                    "average each unit's KL over the batch (1/B), do not sum it.",
                ),
            ],
        )
        expect_close(term, f(), "the term")
        used = (per_unit > floor).astype(float)  # (L,): 1 where the max picks the KL
        charged = "below the floor the term is the constant floor: those units' gradient is 0."
        expect_gradient(
            dmu,
            f,
            mu,
            "dmu",
            [
                (charged, mu / B),
                ("the 1/B of the batch average is missing.", mu * used),
                (
                    "the units above the floor are the ones charged, not those below.",
                    mu * (1 - used) / B,
                ),
            ],
        )
        expect_gradient(
            dlogvar,
            f,
            logvar,
            "dlogvar",
            [
                (charged, 0.5 * (np.exp(logvar) - 1) / B),
                ("the 1/B of the batch average is missing.", 0.5 * (np.exp(logvar) - 1) * used),
            ],
        )

    run_check("free_bits", test, strict)


@exercise(9, "importance_weights")
def check_importance_weights(fn, strict=False):
    """``fn(log_w (K, B)) -> (weights (K, B), ess (B,))``: normalised importance weights, each
    column summing to 1, and the effective sample size 1 / sum_k w_k^2 of each column."""

    def test():
        rng = _rng(51)
        log_w = rng.standard_normal((6, 4)) * 2 + np.array([0.0, -1000.0, 1000.0, -5.0])
        with np.errstate(all="ignore"):
            weights, ess = expect_tuple(fn(log_w.copy()), ("weights", "ess"))
        shifted = np.exp(log_w - log_w.max(axis=0))
        want = shifted / shifted.sum(axis=0)
        if np.shape(weights) == log_w.shape:
            weights = np.asarray(weights, dtype=np.float64)
            if not np.all(np.isfinite(weights)):
                raise Wrong(
                    "some weights are NaN or infinite for log weights near -1000 and +1000: "
                    "subtract each column's largest log weight before exp."
                )
        rows = np.exp(log_w - log_w.max(axis=1, keepdims=True))
        known_mistakes(
            weights,
            [
                (
                    rows / rows.sum(axis=1, keepdims=True),
                    "normalise over the K samples of each image (axis 0): each column sums to 1.",
                )
            ],
        )
        expect_close(weights, want, "the weights", atol=1e-12)
        ess = expect_array(ess, (4,), "ess")
        known_mistakes(
            ess,
            [
                ((want**2).sum(axis=0), "ess is 1 / sum_k w_k^2: the reciprocal is missing."),
                (1 / want.sum(axis=0), "square the normalised weights: 1 / sum_k w_k^2."),
            ],
        )
        expect_close(ess, 1 / (want**2).sum(axis=0), "ess")
        equal = fn(np.full((8, 3), -7.0))[1]  # equal weights: every sample counts fully
        expect_close(equal, np.full(3, 8.0), "ess for 8 equal weights", hint="It must be K = 8.")

    run_check("importance_weights", test, strict)
