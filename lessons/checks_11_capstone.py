"""Checkers for lesson 11, the capstone: your backward pass, judged by a gradient check.

Every piece you write is graded the same way: the forward pass it belongs to is run with
one input nudged up and down by h (central differences, float64, lesson 2), and the slope
that gives is compared with your gradient. Nothing is compared with stored answers. When a
piece is wrong, the check says which array is wrong and, when the difference has the shape
of a typical mistake (a flipped sign, a missing 1/2, a mean where the loss sums, a missing
1/B, samples not averaged, the wrong sigma), names that mistake. It never prints the right
numbers. Your functions get the check's arrays themselves, so a function that overwrites one
of its inputs (``Y *= ...``) is told so; and an answer that calls tinyvae's own function for
the exercise is named as such (it is the answer, not a way to it).

The whole model's forward pass is tinyvae's own, ``VAE.loss``, on a small float64 model with
tanh units (smooth, so no finite difference straddles a kink).
"""

from __future__ import annotations

import grading
import numpy as np
from lesson_utils import (
    Wrong,
    call_watched,
    calls_the_answer,
    exercise,
    expect_array,
    expect_tuple,
    run_check,
    seeded,
)

import tinyvae
from tinyvae.core import distributions as dist
from tinyvae.core.gradcheck import numerical_gradient, relative_error

B, K, D, H, L = 5, 3, 7, 6, 2  # batch, samples, pixels, hidden, latent; 2L = 4: all different
TOLERANCE = 1e-6  # a right gradient's relative error stays far below it in float64


def small_model(seed=0):
    """The model every check uses, float64 and tanh, and its data: (model, x, eps)."""
    seed += 1000 * grading.VARIANT  # another model for a course's hidden checks
    model = tinyvae.VAE(D, hidden=(H,), latent_dim=L, activation="tanh", dtype="float64", seed=seed)
    rng = seeded(seed + 100)
    return model, rng.random((B, D)), rng.standard_normal((K, B, L))


def forward(params, x, eps, beta=1.0):
    """The loss of lesson 11, step by step (the same as the notebook's): (loss, cache)."""
    P = params
    h_enc = np.tanh(x @ P["encoder.0.W"] + P["encoder.0.b"])  # (B, H)
    stats = h_enc @ P["encoder.1.W"] + P["encoder.1.b"]  # (B, 2L) = [mu | logvar]
    n = stats.shape[1] // 2
    mu, logvar = stats[:, :n], stats[:, n:]
    z = mu + np.exp(0.5 * logvar) * eps  # (K, B, L)
    h_dec = np.tanh(z @ P["decoder.0.W"] + P["decoder.0.b"])  # (K, B, H)
    logits = h_dec @ P["decoder.1.W"] + P["decoder.1.b"]  # (K, B, D)
    recon = -dist.bernoulli_log_likelihood(x, logits).mean()  # mean over K and B
    kl = dist.kl_standard_normal(mu, logvar).mean()  # mean over B
    cache = dict(x=x, h_enc=h_enc, mu=mu, logvar=logvar, eps=eps, z=z, h_dec=h_dec, logits=logits)
    return recon + beta * kl, cache


# --- judging one gradient ------------------------------------------------------------------


def judge(got, f, array, what, mistakes=()):
    """Raise :class:`Wrong` unless ``got`` is the gradient of ``f()`` with respect to ``array``.

    ``mistakes``: (name, wrong) pairs, where ``wrong(numeric)`` is what the mistake would
    give, computed from the finite-difference gradient itself; the first that matches
    ``got`` is named."""
    got = expect_array(got, array.shape, what)
    numeric = numerical_gradient(f, array, h=1e-6)
    if relative_error(got, numeric) < TOLERANCE:
        return
    for explanation, wrong in mistakes:
        if relative_error(got, wrong(numeric)) < TOLERANCE:
            raise Wrong(f"{what}: {explanation}")
    raise Wrong(f"{what}: {shape_of_error(got, numeric)}")


RATIOS = {  # a gradient that is a constant multiple of the right one: what that usually means
    -1.0: "the sign is flipped: check which way each term enters the loss.",
    2.0: "twice too large: a missing 1/2?",
    0.5: "half what it should be: a 1/2 too many?",
    float(B): f"B = {B} times too large: a sum where the loss takes a mean over the batch "
    "(a missing 1/B).",
    1 / B: f"B = {B} times too small: a mean over the batch where the chain rule sums.",
    float(K): f"K = {K} times too large: the K samples are not averaged (a missing 1/K).",
    1 / K: f"K = {K} times too small: the K samples' contributions add up; sum them.",
    float(K * B): "K B times too large: neither the K samples nor the B images are averaged.",
    1 / (K * B): f"K B = {K * B} times too small: the mean's 1/(K B) is applied twice (the "
    "likelihood's gradient already has it).",
    1 / D: f"D = {D} times too small: the loss sums over the pixels, it does not average them.",
}


def shape_of_error(got, numeric):
    """Say how ``got`` differs from the right gradient, without revealing it."""
    if not np.any(got):
        return "it is zero everywhere: this part of the gradient never reached it."
    ratio = float(np.vdot(got, numeric) / max(np.vdot(numeric, numeric), 1e-300))
    if relative_error(got, ratio * numeric) < TOLERANCE:
        for c, words in RATIOS.items():
            if abs(ratio - c) < 1e-6 * abs(c):
                return words
        return f"a constant factor is off: {ratio:.4g} times the right gradient."
    error = relative_error(got, numeric)
    wrong = ~np.isclose(got, numeric, rtol=1e-5, atol=1e-7 * max(np.abs(numeric).max(), 1e-12))
    agree = np.mean(np.sign(got) == np.sign(numeric))
    return (
        f"the gradient check fails (relative error {error:.2g}); {wrong.mean():.0%} of the "
        f"elements differ, and {agree:.0%} have the right sign."
    )


# --- the pieces, in the order of the lesson --------------------------------------------------

LIBRARY = (
    "your answer calls tinyvae's own dist.{}, which is this exercise's answer, not a way to "
    "it: write it from the formula."
)


@exercise(11, "sigmoid_logit_grad", points=1)
def check_sigmoid_logit_grad(fn, strict=False):
    """``fn(x, logits) -> d/dlogits [x a - softplus(a)]``, one number per pixel."""

    def test():
        rng = seeded(1)
        x, a = rng.random((B, D)), rng.standard_normal((B, D)) * 3
        if calls_the_answer(fn, dist.bernoulli_log_likelihood_grad):
            raise Wrong(LIBRARY.format("bernoulli_log_likelihood_grad"))
        got = call_watched(fn, ("x", "logits"), x, a)

        def sigma(g):  # sigma(a) recovered from the finite-difference gradient x - sigma(a)
            return x - g

        judge(
            got,
            lambda: dist.bernoulli_log_likelihood(x, a).sum(),
            a,
            "the gradient",
            [
                (
                    "the sign is flipped: the log-likelihood's gradient is x - sigma(a) "
                    "(sigma(a) - x is the gradient of the loss, -log p).",
                    lambda g: -g,
                ),
                (
                    "the wrong sigma: sigma(a) = 1 / (1 + e^(-a)), not 1 / (1 + e^a).",
                    lambda g: x - (1 - sigma(g)),
                ),  # fmt: skip
                (
                    "d/da softplus(a) is sigma(a), with no extra factor sigma(a)(1 - sigma(a)).",
                    lambda g: g * sigma(g) * (1 - sigma(g)),
                ),  # fmt: skip
                ("the derivative of x a is x: it is missing.", lambda g: g - x),
                ("d/da softplus(a) = e^a / (1 + e^a) = sigma(a), not a.", lambda g: x - a),
            ],
        )

    run_check("sigmoid_logit_grad", test, strict)


@exercise(11, "linear_backward", points=2)
def check_linear_backward(fn, strict=False):
    """``fn(X, W, dY) -> (dX, dW, db)`` for Y = X W + b, X with any leading axes."""

    def test():
        rng = seeded(2)
        for lead in ((B,), (K, B)):  # a batch, then K samples of a batch, as the decoder gets
            X, W, b = rng.standard_normal((*lead, 3)), rng.standard_normal((3, 2)), rng.random(2)
            G = rng.standard_normal((*lead, 2))  # dY of the loss sum(Y * G)
            out = expect_tuple(call_watched(fn, ("X", "W", "dY"), X, W, G), ("dX", "dW", "db"))
            loss = lambda X=X, W=W, b=b, G=G: ((X @ W + b) * G).sum()  # perturbed in place
            rows = int(np.prod(lead))
            where = f"with X of shape {X.shape}"
            for got, array, name in ((out[1], W, "dW"), (out[2], b, "db"), (out[0], X, "dX")):
                if np.shape(got) != array.shape:
                    raise Wrong(
                        f"{name} has shape {np.shape(got)} {where}; it must have the shape "
                        f"of what it differentiates, {array.shape}: sum over every leading axis."
                    )
                mean = (f"a mean over the {rows} rows where the chain rule sums them: "
                        f"every row uses {name[1:]}.")  # fmt: skip
                judge(got, loss, array, f"{name} ({where})", [(mean, lambda g, n=rows: g / n)])

    run_check("linear_backward", test, strict)


@exercise(11, "tanh_backward", points=1)
def check_tanh_backward(fn, strict=False):
    """``fn(Y, dY) -> dX`` for Y = tanh(X), written with the output Y."""

    def test():
        rng = seeded(3)
        X, G = rng.standard_normal((B, H)), rng.standard_normal((B, H))
        Y = np.tanh(X)
        got = call_watched(fn, ("Y", "dY"), Y, G)
        judge(
            got,
            lambda: (np.tanh(X) * G).sum(),
            X,
            "dX",
            [
                ("tanh'(x) = 1 - tanh(x)^2 = 1 - Y^2, not 1 - Y.", lambda g: G * (1 - Y)),
                (
                    "Y is already tanh(X): the derivative is 1 - Y^2, not 1 - tanh(Y)^2.",
                    lambda g: G * (1 - np.tanh(Y) ** 2),
                ),  # fmt: skip
                ("multiply by dY: the chain rule.", lambda g: 1 - Y**2),
            ],
        )

    run_check("tanh_backward", test, strict)


@exercise(11, "recon_backward", points=1)
def check_recon_backward(fn, strict=False):
    """``fn(x, logits) -> d recon / d logits``, (K, B, D), recon = -mean over K, B of log p."""

    def test():
        rng = seeded(4)
        x, a = rng.random((B, D)), rng.standard_normal((K, B, D)) * 2
        got = call_watched(fn, ("x", "logits"), x, a)
        judge(got, lambda: -dist.bernoulli_log_likelihood(x, a).mean(), a, "d recon / d logits")

    run_check("recon_backward", test, strict)


def _parameter_judges(grads, names, loss, params, network):
    """name -> a judge of grads[name] as the gradient of ``loss()`` with respect to
    params[name]; raises :class:`Wrong` when grads lacks any of ``names``."""
    missing = [n for n in names if n not in grads]
    if missing:
        raise Wrong(f"grads has no {', '.join(missing)}: return all four {network} arrays.")
    return {n: (lambda g, n=n: judge(g, loss, params[n], n)) for n in names}


def _backprop_report(outs, judges, order):
    """Judge each array; if some are wrong, say where in the chain the error starts."""
    verdicts = {}
    for name in order:
        try:
            judges[name](outs[name])
            verdicts[name] = None
        except Wrong as error:
            verdicts[name] = str(error)
    wrong = [name for name in order if verdicts[name]]
    if wrong:
        right = [name for name in order if not verdicts[name]]
        told = f" ({', '.join(right)} right)" if right else ""
        raise Wrong(
            f"{verdicts[wrong[0]]} Going backward, {wrong[0]} is the first wrong{told}.",
            credit=len(right) / len(order),
        )


@exercise(11, "decoder_backward", points=2)
def check_decoder_backward(fn, strict=False):
    """``fn(d_logits, cache, params) -> (dz, grads)``: grads has the four decoder.* arrays."""

    def test():
        model, x, eps = small_model(5)
        params = model.parameters()
        _, cache = forward(params, x, eps)
        G = seeded(11).standard_normal((K, B, D))  # d_logits of the loss sum(logits * G)
        out = call_watched(fn, ("d_logits", "cache", "params"), G, cache, params)
        dz, grads = expect_tuple(out, ("dz", "grads"))
        if not isinstance(grads, dict):
            raise Wrong(f"grads should be a dict name -> array; got {type(grads).__name__}.")
        z = cache["z"].copy()

        def decoded():  # the loss sum(logits * G), as a function of z and the decoder
            h = np.tanh(z @ params["decoder.0.W"] + params["decoder.0.b"])
            return ((h @ params["decoder.1.W"] + params["decoder.1.b"]) * G).sum()

        names = ["decoder.1.W", "decoder.1.b", "decoder.0.W", "decoder.0.b"]
        judges = _parameter_judges(grads, names, decoded, params, "decoder")
        outs = {**{n: grads[n] for n in names}, "dz": dz}
        judges["dz"] = lambda g: judge(g, decoded, z, "dz")
        _backprop_report(outs, judges, names + ["dz"])

    run_check("decoder_backward", test, strict)


@exercise(11, "reparameterize_backward", points=2)
def check_reparameterize_backward(fn, strict=False):
    """``fn(dz, mu, logvar, eps) -> (dmu, dlogvar)``, each (B, L), for z = mu + e^(l/2) eps."""

    def test():
        rng = seeded(6)
        mu, logvar = rng.standard_normal((B, L)), rng.standard_normal((B, L))
        eps, G = rng.standard_normal((K, B, L)), rng.standard_normal((K, B, L))
        if calls_the_answer(fn, dist.reparameterize_backward):
            raise Wrong(LIBRARY.format("reparameterize_backward"))
        out = call_watched(fn, ("dz", "mu", "logvar", "eps"), G, mu, logvar, eps)
        dmu, dlogvar = expect_tuple(out, ("dmu", "dlogvar"))
        loss = lambda: ((mu + np.exp(0.5 * logvar) * eps) * G).sum()
        for got, name in ((dmu, "dmu"), (dlogvar, "dlogvar")):
            if np.shape(got) in ((K, B, L), (K * B, L)):
                raise Wrong(f"{name} has z's shape; it must have mu's, (B, L) = {(B, L)}: "
                            "every one of the K samples uses the same mu, so sum over them.")  # fmt: skip
        judge(dmu, loss, mu, "dmu")
        sigma = np.exp(0.5 * logvar)
        judge(
            dlogvar,
            loss,
            logvar,
            "dlogvar",
            [
                (
                    "the wrong sigma: sigma = e^(logvar / 2), the standard deviation; you "
                    "differentiated e^logvar eps, as if e^logvar were it.",
                    lambda g: g * 2 * sigma,
                ),  # fmt: skip
                ("d/dl e^(l/2) = e^(l/2) / 2: the 1/2 is missing.", lambda g: 2 * g),
                (
                    "d z / d logvar is e^(logvar/2) eps / 2: the factor sigma is missing.",
                    lambda g: g / sigma,
                ),  # fmt: skip
            ],
        )

    run_check("reparameterize_backward", test, strict)


@exercise(11, "kl_backward", points=2)
def check_kl_backward(fn, strict=False):
    """``fn(mu, logvar, beta) -> (dmu, dlogvar)`` of beta times the batch mean of the KL."""

    def test():
        rng = seeded(7)
        mu, logvar, beta = rng.standard_normal((B, L)), rng.standard_normal((B, L)), 2.5
        if calls_the_answer(fn, dist.kl_standard_normal_grad):
            raise Wrong(LIBRARY.format("kl_standard_normal_grad"))
        out = call_watched(fn, ("mu", "logvar"), mu, logvar, beta)
        dmu, dlogvar = expect_tuple(out, ("dmu", "dlogvar"))
        loss = lambda: beta * dist.kl_standard_normal(mu, logvar).mean()
        no_beta = ("beta is missing: the KL term is weighted by beta.", lambda g: g / beta)
        no_mean = (f"the KL term is averaged over the batch: a missing 1/B (B = {B}).",
                   lambda g: g * B)  # fmt: skip
        judge(dmu, loss, mu, "dmu", [no_mean, no_beta])
        judge(
            dlogvar,
            loss,
            logvar,
            "dlogvar",
            [
                no_mean,
                no_beta,
                ("KL = 1/2 (e^l + mu^2 - 1 - l): the 1/2 is missing.", lambda g: 2 * g),
                (
                    "the -l term has a derivative too: d/dl (e^l - l) = e^l - 1.",
                    lambda g: g + beta / (2 * B),
                ),  # fmt: skip
            ],
        )

    run_check("kl_backward", test, strict)


@exercise(11, "encoder_backward", points=2)
def check_encoder_backward(fn, strict=False):
    """``fn(d_stats, cache, params) -> grads``: the four encoder.* arrays, from d[mu | logvar]."""

    def test():
        model, x, eps = small_model(8)
        params = model.parameters()
        _, cache = forward(params, x, eps)
        G = seeded(9).standard_normal((B, 2 * L))  # d_stats of sum(stats * G)
        grads = call_watched(fn, ("d_stats", "cache", "params"), G, cache, params)
        if not isinstance(grads, dict):
            raise Wrong(f"return a dict name -> array; got {type(grads).__name__}.")

        def loss():
            h = np.tanh(x @ params["encoder.0.W"] + params["encoder.0.b"])
            return ((h @ params["encoder.1.W"] + params["encoder.1.b"]) * G).sum()

        names = ["encoder.1.W", "encoder.1.b", "encoder.0.W", "encoder.0.b"]
        judges = _parameter_judges(grads, names, loss, params, "encoder")
        _backprop_report(grads, judges, names)

    run_check("encoder_backward", test, strict)


BACKWARD = [  # the parameters in the order backpropagation reaches them from the loss
    "decoder.1.W", "decoder.1.b", "decoder.0.W", "decoder.0.b",
    "encoder.1.W", "encoder.1.b", "encoder.0.W", "encoder.0.b",
]  # fmt: skip


@exercise(11, "loss_and_grads", points=3)
def check_loss_and_grads(fn, strict=False):
    """``fn(params, x, eps, beta) -> (loss, grads)``: the whole model, against ``VAE.loss``."""

    def test():
        model, x, eps = small_model(10)
        params = model.parameters()

        def real(beta, e=eps):
            return float(model.loss(x, eps=e, beta=beta, samples=K)[0])

        def yours(beta, e=eps):
            out = call_watched(fn, ("params", "x", "eps"), params, x, e, beta)
            loss, grads = expect_tuple(out, ("loss", "grads"))
            if not isinstance(grads, dict) or sorted(grads) != sorted(BACKWARD):
                raise Wrong(f"grads should be a dict with the keys {sorted(BACKWARD)}.")
            return float(expect_array(loss, (), "loss")), grads

        runs = {beta: yours(beta) for beta in (1.0, 0.0)}
        _judge_forward(runs, real, yours)
        results = {b: {n: expect_array(g[n], params[n].shape, n) for n in BACKWARD}
                   for b, (_, g) in runs.items()}  # fmt: skip
        numeric = {b: {n: numerical_gradient(lambda b=b: real(b), params[n], h=1e-6)
                       for n in BACKWARD} for b in runs}  # fmt: skip
        bad = {b: [n for n in BACKWARD if relative_error(results[b][n], numeric[b][n]) > TOLERANCE]
               for b in runs}  # fmt: skip
        credit = 1 - len(bad[1.0]) / len(BACKWARD)
        if not bad[1.0]:
            return
        if not bad[0.0]:  # the reconstruction path is right: the KL term's gradient is not
            n = bad[1.0][0]
            kl_got, kl_num = results[1.0][n] - results[0.0][n], numeric[1.0][n] - numeric[0.0][n]
            raise Wrong(
                f"with beta = 0 every gradient is right, so the KL term's part is wrong "
                f"(in {', '.join(bad[1.0])}). Its part of {n}: {shape_of_error(kl_got, kl_num)}",
                credit,
            )
        n, after = bad[0.0][0], bad[0.0][1:]
        where = (
            "Look at the likelihood's gradient (exercise 4) and the decoder's backward pass."
            if n.startswith("decoder")
            else "Every decoder gradient is right, so look between z and the encoder: the "
            "reparameterization's backward pass, or how d[mu | logvar] is put together."
        )
        also = f" After it, {', '.join(after)} fail too." if after else ""
        raise Wrong(
            f"even with beta = 0 (no KL), the gradient check fails. Going backward from the "
            f"loss, {n} is the first wrong array: {shape_of_error(results[0.0][n], numeric[0.0][n])}"
            f"{also} {where}",
            credit,
        )

    run_check("loss_and_grads", test, strict)


def _judge_forward(runs, real, yours):
    """Raise :class:`Wrong` naming the quantity where the student's loss leaves ``VAE.loss``:
    the reconstruction term (the loss at beta = 0), z (the same term with eps = 0, where
    z = mu, is right), or the KL term (the change from beta = 0 to beta = 1)."""

    def close(a, b):
        return abs(a - b) <= 1e-9 * max(1.0, abs(b))

    if not close(runs[0.0][0], real(0.0)):
        zero = np.zeros((K, B, L))
        if close(yours(0.0, zero)[0], real(0.0, zero)):
            raise Wrong(
                "your loss is not VAE.loss, and z is where it differs: with eps = 0, where "
                "z = mu, your reconstruction term is right; with other eps it is not. Check "
                "how z is made from mu, logvar and eps."
            )
        raise Wrong(
            "your loss is not VAE.loss: its reconstruction term (the loss at beta = 0) "
            "differs, even with eps = 0, where z = mu. Check the decoder's forward pass and "
            "the likelihood's mean over the K samples and B images."
        )
    if not close(runs[1.0][0] - runs[0.0][0], real(1.0) - real(0.0)):
        raise Wrong(
            "your loss is not VAE.loss: its KL term (what beta = 1 adds to the loss at "
            "beta = 0) differs; the reconstruction term is right."
        )
