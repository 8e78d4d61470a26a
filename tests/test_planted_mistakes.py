"""Mistakes planted one at a time in the course's solutions: each is caught by its checker,
whose verdict names the cause and the place (the exercise and the array), and never prints
a number of the right answer.

The right answers are recorded by running each checker on the solution itself through a
spy; a planted verdict may print sizes, ratios and shares, but no element of those."""

import re
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "lessons"), str(ROOT / "course" / "solutions")]
import checks_10_convolution as CONV  # noqa: E402
import checks_11_capstone as C  # noqa: E402

import tinyvae.core.distributions as dist  # noqa: E402

S = runpy.run_path(str(ROOT / "course" / "solutions" / "11_capstone.py"), run_name="solutions")
S10 = runpy.run_path(str(ROOT / "course" / "solutions" / "10_convolution.py"), run_name="s10")


def decoder_averaged_twice(d_logits, cache, params):
    dz, grads = S["decoder_backward"](d_logits, cache, params)
    return dz, {**grads, "decoder.1.W": grads["decoder.1.W"] / (C.K * C.B)}


def reparameterize_without_half(dz, mu, logvar, eps):
    return dz.sum(axis=0), (dz * np.exp(0.5 * logvar) * eps).sum(axis=0)


def whole(decoder=None, reparameterize=None, forward=None):
    """The solution's loss_and_grads with one of its pieces replaced."""
    decoder = decoder or S["decoder_backward"]
    reparameterize = reparameterize or S["reparameterize_backward"]

    def loss_and_grads(params, x, eps, beta=1.0):
        loss, cache = S["forward"](params, x, eps, beta)
        dz, grads = decoder(S["recon_backward"](x, cache["logits"]), cache, params)
        dmu, dlogvar = reparameterize(dz, cache["mu"], cache["logvar"], eps)
        kl_mu, kl_logvar = S["kl_backward"](cache["mu"], cache["logvar"], beta)
        d_stats = np.concatenate([dmu + kl_mu, dlogvar + kl_logvar], axis=1)
        grads.update(S["encoder_backward"](d_stats, cache, params))
        return (forward(params, x, eps, beta) if forward else loss), grads

    return loss_and_grads


def forward_with(sigma=None, kl_sum=False, recon_mean_pixels=False):
    """The capstone's loss with one mistake: sigma(logvar), a KL summed over the batch, or a
    reconstruction term averaged over the pixels."""

    def loss(P, x, eps, beta):
        h = np.tanh(x @ P["encoder.0.W"] + P["encoder.0.b"])
        stats = h @ P["encoder.1.W"] + P["encoder.1.b"]
        mu, logvar = stats[:, : C.L], stats[:, C.L :]
        z = mu + (sigma or (lambda lv: np.exp(0.5 * lv)))(logvar) * eps
        logits = np.tanh(z @ P["decoder.0.W"] + P["decoder.0.b"]) @ P["decoder.1.W"]
        logits = logits + P["decoder.1.b"]
        log_p = dist.bernoulli_log_likelihood(x, logits)
        recon = -(log_p.mean() / x.shape[1] if recon_mean_pixels else log_p.mean())
        kl = dist.kl_standard_normal(mu, logvar)
        return recon + beta * (kl.sum() if kl_sum else kl.mean())

    return loss


def tanh_overwrites_y(Y, dY):
    Y **= 2  # the cache's h_dec, now squared
    return dY * (1 - Y)


def tanh_overwrites_dy(Y, dY):
    dY *= 1 - Y * Y
    return dY


def encoder_overwrites_cache(d_stats, cache, params):
    grads = S["encoder_backward"](d_stats, cache, params)
    cache["h_enc"] *= 0  # "free" an array the caller still holds
    return grads


def encoder_bias_wrong_axis(d_stats, cache, params):
    grads = S["encoder_backward"](d_stats, cache, params)
    return {**grads, "encoder.1.b": d_stats.sum(axis=1)}  # (B,) where (2L,) is right


def col2im_assigned(cols, shape, k, s):
    Ho, Wo = (shape[0] - k) // s + 1, (shape[1] - k) // s + 1
    x, cols = np.zeros(shape), cols.reshape(k, k, Ho, Wo)
    for u in range(k):
        for v in range(k):
            x[u : u + s * Ho : s, v : v + s * Wo : s] = cols[u, v]
    return x


PLANTED = [  # (checker, solution's name, the planted answer, words the verdict must hold)
    (C.check_tanh_backward, "tanh_backward", tanh_overwrites_y, ["tanh_backward", "changed Y in place"]),
    (C.check_tanh_backward, "tanh_backward", tanh_overwrites_dy, ["changed dY in place"]),
    (C.check_encoder_backward, "encoder_backward", encoder_overwrites_cache,
     ["encoder_backward", "changed cache['h_enc'] in place"]),
    (C.check_encoder_backward, "encoder_backward", encoder_bias_wrong_axis,
     ["encoder.1.b has shape (5,) but should have shape (4,)"]),
    (C.check_decoder_backward, "decoder_backward", decoder_averaged_twice,
     ["decoder.1.W", "applied twice", "decoder.1.W is the first wrong"]),
    (C.check_loss_and_grads, "loss_and_grads", whole(decoder=decoder_averaged_twice),
     ["decoder.1.W is the first wrong array", "applied twice", "decoder's backward pass"]),
    (C.check_loss_and_grads, "loss_and_grads", whole(reparameterize=reparameterize_without_half),
     ["encoder.1.W is the first wrong array", "Every decoder gradient is right", "reparameterization"]),
    (C.check_loss_and_grads, "loss_and_grads", whole(forward=forward_with(sigma=np.exp)),
     ["z is where it differs"]),
    (C.check_loss_and_grads, "loss_and_grads", whole(forward=forward_with(kl_sum=True)),
     ["its KL term", "differs; the reconstruction term is right"]),
    (C.check_loss_and_grads, "loss_and_grads", whole(forward=forward_with(recon_mean_pixels=True)),
     ["its reconstruction term", "even with eps = 0"]),
    (C.check_kl_backward, "kl_backward",
     lambda mu, lv, beta: tuple(beta * g / len(mu) for g in dist.kl_standard_normal_grad(mu, lv)),
     ["tinyvae's own dist.kl_standard_normal_grad"]),
    (C.check_reparameterize_backward, "reparameterize_backward",
     lambda dz, mu, lv, eps: dist.reparameterize_backward(dz, mu, lv, eps),
     ["tinyvae's own dist.reparameterize_backward"]),
    (C.check_sigmoid_logit_grad, "sigmoid_logit_grad",
     lambda x, a: dist.bernoulli_log_likelihood_grad(x, a),
     ["tinyvae's own dist.bernoulli_log_likelihood_grad"]),
    (CONV.check_col2im, "col2im_1ch", col2im_assigned, ["col2im", "add (+=)"]),
]  # fmt: skip


def right_answers(checker, solution):
    """Every number the solution returns on the checker's inputs."""
    numbers = []

    def spy(*args):
        out = solution(*args)
        parts = out if isinstance(out, tuple) else (out,)
        for part in parts:
            values = part.values() if isinstance(part, dict) else [part]
            numbers.extend(np.ravel(np.asarray(v, dtype=np.float64)) for v in values)
        return out

    checker(spy, strict=True)
    return np.concatenate(numbers)


@pytest.mark.parametrize(
    "checker, name, planted, words", PLANTED, ids=[f"{p[1]}-{i}" for i, p in enumerate(PLANTED)]
)
def test_each_planted_mistake_is_named_and_no_answer_is_printed(
    checker, name, planted, words, capsys
):
    solution = S10[name] if name in S10 else S[name]
    right = right_answers(checker, solution)
    capsys.readouterr()
    checker(planted)
    verdict = capsys.readouterr().out
    assert verdict.startswith("[x]") and verdict.count("\n") == 1, verdict
    for word in words:
        assert word in verdict, (word, verdict)
    printed = [float(n) for n in re.findall(r"-?\d+\.\d+(?:e-?\d+)?", verdict)]
    for number in printed:  # a ratio such as 0.06667 may print; no element of the answer
        close = np.isclose(right, number, rtol=1e-3, atol=0)
        assert not close.any(), (number, verdict)
    assert "Traceback" not in verdict


def test_the_solutions_pass_on_the_hidden_checks_other_inputs():
    """The rerun on other inputs (grading.VARIANT 1) passes the solutions of every exercise
    of the capstone and of lesson 10, and draws other inputs than the checks a student sees."""
    import grading

    grading._PENDING.clear()
    for module, solutions in ((C, S), (CONV, S10)):
        names = [n for n in dir(module) if n.startswith("check_")]
        for name in names:
            exercise = name.removeprefix("check_")
            fn = solutions.get(exercise) or solutions[f"{exercise}_1ch"]
            getattr(module, name)(fn, strict=True)
        assert grading.points(len(names)) == sum(getattr(module, n).points for n in names)
    seen = grading.seeded(3).standard_normal(3)
    grading.VARIANT = 1
    try:
        assert not np.allclose(grading.seeded(3).standard_normal(3), seen)
    finally:
        grading.VARIANT = 0


def test_a_wrong_answer_earns_partial_credit_only_where_it_is_right(capsys):
    import grading

    grading._PENDING.clear()
    C.check_decoder_backward(decoder_averaged_twice)  # 4 of its 5 arrays right, twice
    assert grading.points(1) == pytest.approx(C.check_decoder_backward.points * 4 / 5)
    C.check_tanh_backward(tanh_overwrites_y)
    assert grading.points(1) == 0
    out = capsys.readouterr().out
    assert "checked again on other inputs: decoder.1.W" in out


@pytest.mark.parametrize(
    "path",
    sorted((ROOT / "course" / "solutions").glob("[0-9][0-9]_*.py")),
    ids=lambda p: p.stem,
)
def test_every_lessons_solutions_pass_the_hidden_checks(path, capsys):
    """A right answer earns the hidden half of its points too: each lesson's solutions pass
    their checks (strict) on the other inputs that the instructor's hidden tests draw."""
    import grading

    module = runpy.run_path(str(path), run_name="solutions")
    grading.VARIANT = 1
    try:
        module["check_all"]()
    finally:
        grading.VARIANT = 0
    assert "[x]" not in capsys.readouterr().out
