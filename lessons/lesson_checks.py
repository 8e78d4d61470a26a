"""Checkers for the lessons' exercises: ``check_<exercise>(your_function)`` prints a verdict.

Each checker runs the student's function on random inputs, compares the answer with
tinyvae or with a reference written here, and names the first thing that is wrong: a
shape, a missing factor, a sign. Where a mistake is common it is recognised and named.
A function that still raises ``NotImplementedError`` is reported as "not attempted yet",
so every lesson runs top to bottom before any exercise is solved. Solutions call the
checkers with ``strict=True``, which raises unless the answer passes.
"""

from __future__ import annotations

import math

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

from tinyvae.core import distributions as D
from tinyvae.core.layers import sigmoid


def _rng(seed):
    return np.random.default_rng(seed)


# --- Lesson 1: autoencoders ---------------------------------------------------------------


@exercise(1, "tied_autoencoder")
def check_tied_autoencoder(fn, strict=False):
    """``fn(x, W) -> (loss, dW)`` for the linear autoencoder xhat = x W W^T (tied weights)."""

    def test():
        rng = _rng(1)
        x, W = rng.random((5, 7)), rng.standard_normal((7, 3)) * 0.5  # B = 5, D = 7, L = 3
        loss, dW = expect_tuple(fn(x.copy(), W.copy()), ("loss", "dW"))
        B, Dim = x.shape

        def f():  # the loss of section 1.3 for this autoencoder; W is nudged in place
            return float(((x @ W @ W.T - x) ** 2).sum(axis=1).mean())

        want_loss = f()
        known_mistakes(
            loss,
            [
                (
                    want_loss / Dim,
                    "You averaged over the pixels as well: sum over the D pixels of "
                    "each image, then average over the B images.",
                ),
                (want_loss * B, "You summed over the batch: average over the B images."),
            ],
        )
        expect_close(loss, want_loss, "loss")
        z = x @ W  # (B, L)
        G = 2 * (z @ W.T - x) / B  # (B, D): d loss / d xhat
        expect_gradient(
            dW,
            f,
            W,
            "dW",
            [
                (
                    "only the decoder's use of W is counted. W also makes the code z = x W, "
                    "and the gradient that reaches W along that path adds to it.",
                    G.T @ z,
                ),
                (
                    "only the encoder's use of W is counted. The decoder xhat = z W^T uses W "
                    "too, and the gradient that reaches W along that path adds to it.",
                    x.T @ (G @ W),
                ),
                ("the factor 2 of d/du u^2 = 2u is missing.", (G.T @ z + x.T @ (G @ W)) / 2),
                ("the 1/B of the batch average is missing.", (G.T @ z + x.T @ (G @ W)) * B),
            ],
        )

    run_check("tied_autoencoder", test, strict)


def _pca_reference(x, L):
    mean = x.mean(axis=0)
    _, _, Vt = np.linalg.svd(x - mean, full_matrices=False)
    V = Vt[:L].T  # (D, L) top principal directions
    return mean + (x - mean) @ V @ V.T


@exercise(1, "pca_reconstruction")
def check_pca_reconstruction(fn, strict=False):
    """``fn(x, L) -> xhat``: the best reconstruction through an L-dimensional linear code."""

    def test():
        rng = _rng(3)
        x = rng.standard_normal((60, 6)) * np.array([5.0, 3.0, 2.0, 1.0, 0.5, 0.2]) + 4.0
        x = x @ np.linalg.qr(rng.standard_normal((6, 6)))[0]  # rotate: axes are not the answer
        for L in (1, 3):
            got = fn(x.copy(), L)
            got = expect_array(got, x.shape, f"the reconstruction for L={L}")
            no_centre = x @ np.linalg.svd(x, full_matrices=False)[2][:L].T
            no_centre = no_centre @ np.linalg.svd(x, full_matrices=False)[2][:L]
            known_mistakes(
                got,
                [
                    (
                        no_centre,
                        "Centre the data first (subtract the mean image), project, then add "
                        "the mean back: a linear code cannot store the mean for free.",
                    ),
                ],
            )
            want = _pca_reference(x, L)
            error, best = ((got - x) ** 2).sum(), ((want - x) ** 2).sum()
            if error < best * (1 - 1e-6) - 1e-9:
                raise Wrong(
                    f"for L={L} your squared error is lower than the best any "
                    f"{L}-dimensional linear code can reach: the "
                    f"reconstruction must pass through a code of {L} number(s) per image."
                )
            if error > best * (1 + 1e-6) + 1e-9:
                raise Wrong(
                    f"for L={L} your squared error is larger than the smallest possible. "
                    "Use the L directions of largest variance (the first L "
                    "rows of Vt from an SVD of the centred data)."
                )
            expect_close(got, want, f"the reconstruction for L={L}", rtol=1e-5, atol=1e-7)

    run_check("pca_reconstruction", test, strict)


@exercise(1, "fraction_near")
def check_fraction_near(fn, strict=False):
    """``fn(samples, codes, radius) -> float``: share of samples with a code within radius."""

    def test():
        rng = _rng(4)
        codes = rng.standard_normal((30, 2))
        samples = np.concatenate([codes[:5] + 0.01, rng.uniform(-6, 6, (15, 2))])  # (20, 2)
        distances = np.sqrt(((samples[:, None, :] - codes[None, :, :]) ** 2).sum(-1))  # (20, 30)
        for radius in (0.05, 0.5, 2.0):
            want = float((distances.min(axis=1) <= radius).mean())
            got = float(
                expect_array(
                    fn(samples.copy(), codes.copy(), radius),
                    (),
                    f"the fraction for radius {radius}",
                )
            )
            wrong_way = float((distances.min(axis=0) <= radius).mean())
            if abs(got - want) > 1e-9 and abs(got - wrong_way) < 1e-9:
                raise Wrong(
                    "you measured the codes' distance to the samples; the question is, "
                    "for each *sample*, is some code within the radius?"
                )
            if abs(got - want) > 1e-9:
                raise Wrong(
                    f"for radius {radius} your fraction ({got:.3f}) is not right. "
                    "Take each sample's nearest code (min over codes) and compare it "
                    "with the radius; the answer is a fraction between 0 and 1."
                )

    run_check("fraction_near", test, strict)


# --- Lesson 2: backpropagation -----------------------------------------------------------


@exercise(2, "residual_backward")
def check_residual_backward(fn, strict=False):
    """``fn(X, W, b, dY) -> (dX, dW, db)`` for the residual layer Y = X + tanh(X W + b)."""

    def test():
        rng = _rng(6)
        X, W = rng.standard_normal((4, 3)), rng.standard_normal((3, 3)) * 0.7
        b, dY = rng.standard_normal(3) * 0.5, rng.standard_normal((4, 3))
        out = expect_tuple(fn(X.copy(), W.copy(), b.copy(), dY.copy()), ("dX", "dW", "db"))
        for got, name, shape in zip(out, ("dX", "dW", "db"), (X.shape, W.shape, b.shape)):
            if np.shape(got) != shape:
                raise Wrong(
                    f"{name} has shape {np.shape(got)}, should be {shape}: each gradient has "
                    "the shape of what it is the gradient of."
                )
        dX, dW, db = out

        def loss():  # sum(Y * dY), whose gradient with respect to Y is dY
            return float(((X + np.tanh(X @ W + b)) * dY).sum())

        T = np.tanh(X @ W + b)  # (B, n)
        dA = dY * (1 - T**2)  # (B, n): the gradient at the tanh's input
        expect_gradient(
            dX,
            loss,
            X,
            "dX",
            [
                (
                    "the skip path is missing. X reaches Y twice, directly and through the "
                    "tanh, and the gradients of the two paths add.",
                    dA @ W.T,
                ),
                (
                    "the tanh's derivative is missing on the inner path: multiply dY by "
                    "tanh'(XW + b) before going back through W.",
                    dY + dY @ W.T,
                ),
                ("tanh'(a) = 1 - tanh(a)^2, not 1 - tanh(a).", dY + (dY * (1 - T)) @ W.T),
            ],
        )
        expect_gradient(
            dW,
            loss,
            W,
            "dW",
            [
                ("the tanh's derivative is missing: dW = X^T (dY * tanh'(XW + b)).", X.T @ dY),
                ("tanh'(a) = 1 - tanh(a)^2, not 1 - tanh(a).", X.T @ (dY * (1 - T))),
            ],
        )
        expect_gradient(
            db,
            loss,
            b,
            "db",
            [
                (
                    "db should sum over the batch, not average: b is added to every row.",
                    dA.mean(axis=0),
                ),
                ("the tanh's derivative is missing.", dY.sum(axis=0)),
            ],
        )

    run_check("residual_backward", test, strict)


@exercise(2, "SoftplusLayer")
def check_softplus_layer(cls, strict=False):
    """``cls()`` with ``forward(X)`` = log(1 + e^X) and ``backward(dY)`` = dY * sigmoid(X)."""

    def test():
        rng = _rng(7)
        X = rng.standard_normal((3, 4)) * 3
        X[0, :2] = [800.0, -800.0]  # far out: a naive log(1 + exp(x)) overflows here
        dY = rng.standard_normal((3, 4))
        layer = cls()
        with np.errstate(all="ignore"):
            Y = layer.forward(X.copy())
            dX = layer.backward(dY.copy())
        if np.shape(Y) == X.shape and not np.all(np.isfinite(np.asarray(Y, dtype=np.float64))):
            raise Wrong(
                "forward(X) gives inf or NaN at x = 800 or -800, where e^x overflows: "
                "write log(1 + e^x) as max(x, 0) + log1p(exp(-|x|))."
            )
        Y = expect_array(Y, X.shape, "forward(X)")
        dX = expect_array(dX, X.shape, "backward(dY)")
        expect_close(
            Y,
            D.softplus(X),
            "forward(X)",
            hint="Write log(1 + e^x) as max(x, 0) + log1p(exp(-|x|)).",
        )
        expect_close(
            dX,
            dY * sigmoid(X),
            "backward(dY)",
            hint="d/dx log(1 + e^x) = e^x / (1 + e^x) = sigmoid(x); multiply by dY.",
        )

    run_check("SoftplusLayer", test, strict)


@exercise(2, "central_difference")
def check_central_difference(fn, strict=False):
    """``fn(f, x, h) -> grad``: central differences of a scalar f, one element at a time."""

    def test():
        x = _rng(8).standard_normal((3, 4))
        saved = x.copy()
        f = lambda v: float(np.sum(np.sin(v) * np.arange(1, 13).reshape(3, 4)))
        got = expect_array(fn(f, x, 1e-3), x.shape, "the gradient")
        if not np.array_equal(x, saved):
            raise Wrong("x was changed by your function: restore each element after perturbing it.")
        want = np.cos(x) * np.arange(1, 13).reshape(3, 4)
        error = np.abs(got - want).max()
        if 1e-5 < error < 1e-1:
            raise Wrong(
                f"the error is {error:.1e}, about what a one-sided difference "
                "(f(x+h) - f(x)) / h gives (error ~ h); the central one, "
                "(f(x+h) - f(x-h)) / 2h, has error ~ h^2 = 1e-6."
            )
        expect_close(got, want, "the gradient", atol=1e-5)

    run_check("central_difference", test, strict)


# --- Lesson 3: the ELBO ------------------------------------------------------------------


def _toy_cases():
    return [(1.3, 2.0, 0.5), (-0.7, 0.5, 1.5), (2.5, -1.0, 0.8)]  # (x, w, s)


def _log_joint(z, x, w, s):
    """log p(z) + sum_i log N(x_i; w_i z, s^2) on a grid z (G,): (G,)."""
    residual = x[None, :] - w[None, :] * z[:, None]  # (G, n)
    log_lik = -0.5 * (np.log(2 * math.pi * s * s) + residual**2 / (s * s)).sum(axis=1)
    return -0.5 * (math.log(2 * math.pi) + z * z) + log_lik


@exercise(3, "toy_posterior")
def check_toy_posterior(fn, strict=False):
    """``fn(x (n,), w (n,), s) -> (mean, var)`` of p(z | x_1..x_n) for z ~ N(0, 1) and
    independent x_i | z ~ N(w_i z, s^2).

    Judged by Bayes' rule itself: log N(z; mean, var) - [log p(z) + sum_i log p(x_i | z)]
    must be the same number for every z (it is -log p(x)). Both sides are quadratics in z,
    so a wrong variance shows in the z^2 terms and a wrong mean in the z terms."""

    def test():
        cases = [
            (np.array([1.3]), np.array([2.0]), 0.5),
            (np.array([1.3, -0.4, 2.2]), np.array([2.0, -1.0, 0.5]), 0.7),
            (np.array([0.3, 0.8, -0.1, 1.1]), np.array([1.5, 1.5, 0.2, -0.8]), 1.2),
        ]
        grid = np.linspace(-3, 3, 9)
        for x, w, s in cases:
            mean, var = expect_tuple(fn(x.copy(), w.copy(), s), ("mean", "var"))
            where = f"for n = {len(x)} observation(s)"
            mean = float(expect_array(mean, (), f"the mean {where}"))
            var = float(expect_array(var, (), f"the variance {where}"))
            if var <= 0:
                raise Wrong(f"the variance {where} is not positive.")
            first = (w[0] * x[0] / (w[0] ** 2 + s * s), s * s / (w[0] ** 2 + s * s))
            if len(x) > 1 and np.allclose([mean, var], first, rtol=1e-9, atol=0):
                raise Wrong(
                    f"{where} you used only the first observation: every x_i adds its own "
                    "term to log p(z) + sum_i log p(x_i | z)."
                )
            log_q = -0.5 * (np.log(2 * math.pi * var) + (grid - mean) ** 2 / var)
            joint = _log_joint(grid, x, w, s)
            c2, c1, _ = np.polyfit(grid, log_q - joint, 2)  # must both be 0
            size = abs(np.polyfit(grid, joint, 2)[0])  # the joint's z^2 coefficient: a scale
            if abs(c2) > 1e-8 * size:
                raise Wrong(
                    f"{where} your N(mean, var) is not proportional to p(z) prod_i p(x_i | z): "
                    "their z^2 terms differ, so the variance is not right. Collect every "
                    "z^2 term of log p(z) + sum_i log p(x_i | z): 1 / var is minus twice "
                    "their coefficient."
                )
            if abs(c1) > 1e-8 * size * (1 + abs(mean)):
                raise Wrong(
                    f"{where} the z^2 terms match (the variance is right) but the z terms "
                    "do not: the mean is not right. Collect the terms linear in z; "
                    "mean / var is their coefficient."
                )

    run_check("toy_posterior", test, strict)


def toy_elbo_reference(x, m, v, w, s):
    """Closed-form ELBO of the toy model for q(z) = N(m, v) (lesson 3, exercise 2)."""
    expected_log_lik = -0.5 * (
        math.log(2 * math.pi * s * s) + ((x - w * m) ** 2 + w * w * v) / (s * s)
    )
    return expected_log_lik - 0.5 * (v + m * m - 1 - math.log(v))


@exercise(3, "toy_elbo")
def check_toy_elbo(fn, strict=False):
    """``fn(x, m, v, w, s) -> ELBO`` of the toy model for q(z) = N(m, v), in closed form;
    it must also touch log p(x) exactly at q = p(z | x) (section 3.4)."""

    def test():
        for (x, w, s), (m, v) in zip(_toy_cases(), [(0.4, 0.3), (-1.0, 2.0), (0.5, 0.6)]):
            got = expect_array(fn(x, m, v, w, s), (), "the ELBO")
            want = toy_elbo_reference(x, m, v, w, s)
            no_variance = want + 0.5 * w * w * v / (s * s)
            known_mistakes(
                got,
                [
                    (
                        no_variance,
                        "E_q[(x - w z)^2] = (x - w m)^2 + w^2 v: the "
                        "spread of z under q adds w^2 v.",
                    )
                ],
            )
            known_mistakes(
                got,
                [
                    (
                        want + (v + m * m - 1 - math.log(v)),
                        "The KL term enters with a minus sign: ELBO = E_q[log p(x|z)] - KL.",
                    )
                ],
            )
            m_star, v_star = w * x / (w * w + s * s), s * s / (w * w + s * s)
            log_evidence = -0.5 * (
                math.log(2 * math.pi * (w * w + s * s)) + x * x / (w * w + s * s)
            )
            tight = float(expect_array(fn(x, m_star, v_star, w, s), (), "the ELBO"))
            if abs(tight - log_evidence) > 1e-9 * abs(log_evidence):
                raise Wrong(
                    "at q = p(z | x) the ELBO must equal log p(x) exactly (the gap is the KL "
                    "from q to the posterior, section 3.4), and yours does not."
                )
            expect_close(got, want, f"the ELBO for x={x}, m={m}, v={v}, w={w}, s={s}")

    run_check("toy_elbo", test, strict)


@exercise(3, "bounds_from_log_weights")
def check_bounds_from_log_weights(fn, strict=False):
    """``fn(log_w (K, B)) -> (elbo (B,), iw (B,))``, stable for log weights of -1000."""

    def test():
        rng = _rng(9)
        log_w = rng.standard_normal((50, 4)) * 3 - np.array([1.0, 10.0, 300.0, 1000.0])
        K = log_w.shape[0]
        with np.errstate(all="ignore"):
            elbo, iw = expect_tuple(fn(log_w.copy()), ("elbo", "iw"))
        if np.shape(elbo) != (4,) or np.shape(iw) != (4,):
            raise Wrong(
                f"both answers should have shape (B,) = (4,), got {np.shape(elbo)} and "
                f"{np.shape(iw)}: reduce over the K samples, axis 0."
            )
        want_iw = D.logsumexp(log_w, axis=0) - math.log(K)
        if not np.all(np.isfinite(np.asarray(iw, dtype=np.float64))):
            raise Wrong(
                "iw is not finite for log weights near -1000: exp underflows to 0. "
                "Subtract the largest log weight first: log sum e^a = m + log sum e^(a-m)."
            )
        known_mistakes(iw, [(want_iw + math.log(K), "iw is a log *mean*: subtract log K.")])
        expect_close(elbo, log_w.mean(axis=0), "elbo")
        expect_close(iw, want_iw, "iw")

    run_check("bounds_from_log_weights", test, strict)


# --- Lesson 4: the KL divergence ---------------------------------------------------------


def kl_diag_reference(mu1, logvar1, mu2, logvar2):
    """KL(N(mu1, e^logvar1) || N(mu2, e^logvar2)), diagonal, summed over the last axis."""
    ratio = np.exp(logvar1 - logvar2)
    return 0.5 * (logvar2 - logvar1 + ratio + (mu1 - mu2) ** 2 * np.exp(-logvar2) - 1).sum(-1)


@exercise(4, "kl_diag_gaussians")
def check_kl_diag_gaussians(fn, strict=False):
    """``fn(mu1, logvar1, mu2, logvar2) -> (B,)``: KL between two diagonal Gaussians."""

    def test():
        rng = _rng(10)
        mu1, lv1, mu2, lv2 = (rng.standard_normal((5, 3)) for _ in range(4))
        got = fn(mu1, lv1, mu2, lv2)
        if np.shape(got) == (5, 3):
            raise Wrong("sum over the latent dimensions (the last axis): one KL per example.")
        prior = expect_array(
            fn(mu1, lv1, np.zeros_like(mu2), np.zeros_like(lv2)), (5,), "the KL against N(0, I)"
        )
        expect_close(
            prior,
            D.kl_standard_normal(mu1, lv1),
            "the KL against N(0, I)",
            hint="With mu2 = 0 and logvar2 = 0 it must equal tinyvae's kl_standard_normal.",
        )
        expect_close(got, kl_diag_reference(mu1, lv1, mu2, lv2), "the KL")
        if np.any(np.abs(np.asarray(fn(mu1, lv1, mu1, lv1), dtype=np.float64)) > 1e-9):
            raise Wrong("the KL of a distribution to itself must be 0.")

    run_check("kl_diag_gaussians", test, strict)


@exercise(4, "kl_diag_grad")
def check_kl_diag_grad(fn, strict=False):
    """``fn(mu1, logvar1, mu2, logvar2) -> (dmu1, dlogvar1, dmu2, dlogvar2)``: the gradient of
    the summed KL(N(mu1, e^logvar1) || N(mu2, e^logvar2)), judged by a gradient check."""

    def test():
        rng = _rng(11)
        mu1, lv1, mu2, lv2 = (rng.standard_normal((4, 3)) for _ in range(4))
        names = ("dmu1", "dlogvar1", "dmu2", "dlogvar2")
        out = expect_tuple(fn(mu1.copy(), lv1.copy(), mu2.copy(), lv2.copy()), names)
        for got, name in zip(out, names):
            if np.shape(got) != mu1.shape:
                raise Wrong(
                    f"{name} has shape {np.shape(got)}, should be {mu1.shape}: one derivative "
                    "per element, the KL of each example summed over its L dimensions."
                )

        def total():  # the KL of every example, summed: its gradient is the per-element one
            return float(kl_diag_reference(mu1, lv1, mu2, lv2).sum())

        d, ratio = mu1 - mu2, np.exp(lv1 - lv2)  # (B, L) each
        mean_term = d * d * np.exp(-lv2)
        expect_gradient(
            out[0],
            total,
            mu1,
            "dmu1",
            [("(mu1 - mu2)^2 is divided by e^logvar2, and so is its derivative.", d)],
        )
        expect_gradient(
            out[1],
            total,
            lv1,
            "dlogvar1",
            [
                ("the 1/2 in front of the KL is missing.", ratio - 1),
                ("-logvar1 has a derivative too, -1/2.", 0.5 * ratio),
            ],
        )
        expect_gradient(
            out[2],
            total,
            mu2,
            "dmu2",
            [("mu2 enters as -(mu1 - mu2): the sign is the opposite of dmu1's.", d * np.exp(-lv2))],
        )
        expect_gradient(
            out[3],
            total,
            lv2,
            "dlogvar2",
            [
                (
                    "the mean term (mu1 - mu2)^2 e^(-logvar2) depends on logvar2 too.",
                    0.5 * (1 - ratio),
                ),
                ("the 1/2 in front of the KL is missing.", 1 - ratio - mean_term),
            ],
        )

    run_check("kl_diag_grad", test, strict)


@exercise(4, "kl_monte_carlo")
def check_kl_monte_carlo(fn, strict=False):
    """``fn(mu, logvar, K, rng) -> (B,)``: a K-sample Monte Carlo estimate of the KL to N(0, I)."""

    def test():
        rng = _rng(12)
        mu, logvar = rng.uniform(-1, 1, (4, 3)), rng.uniform(-1, 1, (4, 3))
        exact = D.kl_standard_normal(mu, logvar)
        got = expect_array(fn(mu, logvar, 20000, np.random.default_rng(0)), (4,), "the estimate")
        if np.allclose(got, exact, rtol=0, atol=1e-12):
            raise Wrong(
                "that is the closed form itself; estimate it from samples z ~ q: "
                "the mean of log q(z) - log p(z)."
            )
        again = np.asarray(fn(mu, logvar, 20000, np.random.default_rng(1)), dtype=np.float64)
        if np.array_equal(got, again):
            raise Wrong(
                "two different generators gave the same estimate: draw the samples "
                "from the rng argument."
            )
        if np.abs(got - exact).max() > 0.08:
            raise Wrong(
                "with K=20000 the estimate should lie within about 0.05 of the exact "
                "KL, and yours is further away. Sample z = mu + "
                "exp(logvar/2) eps and average log q(z) - log p(z) over the K samples."
            )

    run_check("kl_monte_carlo", test, strict)


# --- Lesson 5: the reparameterization trick -----------------------------------------------

SUM_THE_SAMPLES = "the K samples' contributions add up: sum them, do not average."


def _expect_dmu(dmu, loss, mu, dz):
    """z = mu + (something) eps for each of K samples: dmu, the sum of the samples' dz,
    judged by a gradient check of ``loss`` (naming the average in place of the sum)."""
    expect_gradient(dmu, loss, mu, "dmu", [(SUM_THE_SAMPLES, dz.mean(0))])



@exercise(5, "softplus_reparameterize_backward")
def check_softplus_reparameterize_backward(fn, strict=False):
    """``fn(dz (K, B, L), mu, rho, eps) -> (dmu, drho)``, each (B, L), for
    z = mu + softplus(rho) eps, judged by a gradient check."""

    def test():
        rng = _rng(13)
        mu, rho = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
        eps, dz = rng.standard_normal((2, 4, 3)), rng.standard_normal((2, 4, 3))
        dmu, drho = expect_tuple(fn(dz.copy(), mu.copy(), rho.copy(), eps.copy()), ("dmu", "drho"))
        if np.shape(dmu) != (4, 3) or np.shape(drho) != (4, 3):
            raise Wrong(
                f"dmu and drho should have mu's shape (4, 3), got {np.shape(dmu)} and "
                f"{np.shape(drho)}: every one of the K samples uses the same mu and rho, so "
                "sum the K contributions (axis 0)."
            )

        def loss():  # sum(z * dz), whose gradient with respect to z is dz
            return float(((mu + D.softplus(rho) * eps) * dz).sum())

        slope = sigmoid(rho)  # d softplus / d rho
        _expect_dmu(dmu, loss, mu, dz)
        expect_gradient(
            drho,
            loss,
            rho,
            "drho",
            [
                (
                    "d/drho softplus(rho) is sigmoid(rho), not softplus(rho): differentiate "
                    "sigma as a function of rho.",
                    (dz * D.softplus(rho) * eps).sum(0),
                ),
                (
                    "that is the log-variance version's derivative, exp(l/2) / 2. Here "
                    "sigma = softplus(rho), whose derivative is sigmoid(rho).",
                    (dz * 0.5 * np.exp(0.5 * rho) * eps).sum(0),
                ),
                ("the factor eps is missing: d z / d sigma = eps.", (dz * slope).sum(0)),
                (
                    SUM_THE_SAMPLES,
                    (dz * slope * eps).mean(0),
                ),
            ],
        )

    run_check("softplus_reparameterize_backward", test, strict)


@exercise(5, "cholesky_reparameterize_backward")
def check_cholesky_reparameterize_backward(fn, strict=False):
    """``fn(dz (K, n), mu (n,), C (n, n), eps (K, n)) -> (dmu (n,), dC (n, n))`` for
    z_k = mu + C eps_k with C lower triangular; judged by a gradient check over the
    entries that are parameters (on and below the diagonal; dC is 0 above it)."""

    def test():
        rng = _rng(14)
        n, K = 3, 5
        mu = rng.standard_normal(n)
        factor = np.tril(rng.standard_normal((n, n)))
        factor[np.diag_indices(n)] = np.abs(factor[np.diag_indices(n)]) + 0.5
        eps, dz = rng.standard_normal((K, n)), rng.standard_normal((K, n))
        dmu, dC = expect_tuple(fn(dz.copy(), mu.copy(), factor.copy(), eps.copy()), ("dmu", "dC"))

        def loss():  # sum(z * dz) with z_k = mu + C eps_k; only C's lower triangle is used
            return float(((mu + eps @ np.tril(factor).T) * dz).sum())

        _expect_dmu(dmu, loss, mu, dz)
        full = dz.T @ eps  # (n, n): what every entry of C would get if it were a parameter
        expect_gradient(
            dC,
            loss,
            factor,
            "dC",
            [
                (
                    "the entries above the diagonal are not parameters (C is lower "
                    "triangular, they are always 0): their gradient is 0 (np.tril).",
                    full,
                ),
                (
                    "dC is transposed: z_ki = mu_i + sum_j C_ij eps_kj, so dC_ij sums "
                    "dz_ki eps_kj over the samples.",
                    np.tril(full.T),
                ),
                (
                    SUM_THE_SAMPLES,
                    np.tril(full) / K,
                ),
            ],
        )

    run_check("cholesky_reparameterize_backward", test, strict)


@exercise(5, "score_function_grad")
def check_score_function_grad(fn, strict=False):
    """``fn(f, mu, sigma, K, rng) -> float``: the score-function estimate of d/dmu E[f(z)]."""

    def test():
        cases = [
            (lambda z: z * z, 1.5, 0.8, 2 * 1.5),  # E[z^2] = mu^2 + sigma^2
            (
                np.sin,
                0.3,
                1.2,
                math.cos(0.3) * math.exp(-(1.2**2) / 2),
            ),  # E[sin z] = sin(mu) e^(-s^2/2)
        ]
        for f, mu, sigma, want in cases:
            got = float(
                expect_array(
                    fn(f, mu, sigma, 400_000, np.random.default_rng(0)), (), "the estimate"
                )
            )
            if abs(got - want) > 0.05:
                raise Wrong(
                    f"for mu={mu}, sigma={sigma} your estimate is further from the exact "
                    "gradient than 400,000 samples allow. Average f(z) (z - mu) / sigma^2 over "
                    "z ~ N(mu, sigma^2)."
                )

    run_check("score_function_grad", test, strict)
