"""The lessons: every notebook runs top to bottom in a real kernel, offline, in quick mode;
committed notebooks carry no outputs; every exercise checker accepts its solution, rejects a
typical mistake without giving the answer away, and reports an untouched exercise as "not
attempted"; the capstone's gradient checks name each typical mistake planted in its solution."""

import importlib
import os
import re
import runpy
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
LESSONS = ROOT / "lessons"
NOTEBOOKS = sorted(LESSONS.glob("[0-9][0-9]_*.ipynb"))
SOLUTIONS = sorted((ROOT / "course" / "solutions").glob("[0-9][0-9]_*.py"))
CELL_TIMEOUT = 300  # seconds for any one cell
NOTEBOOK_BUDGET = 120  # seconds for a whole lesson in quick mode; each takes under 15 today

sys.path[:0] = [str(LESSONS), str(ROOT / "course" / "solutions")]  # the checkers, _path
import grading  # noqa: E402
import lesson_utils as U  # noqa: E402

CHECKS = {path.stem: importlib.import_module(f"checks_{path.stem}") for path in NOTEBOOKS}
"""Each lesson's checkers, in the module named like it: ``checks_03_elbo`` for 03_elbo.ipynb."""
CHECKERS = {
    name: f for m in CHECKS.values() for name, f in vars(m).items() if name.startswith("check_")
}
CAPSTONE_CHECKS = CHECKS["11_capstone"]


def quick_environment(monkeypatch):
    """What CI runs the lessons with: quick mode, this checkout's tinyvae, one BLAS thread
    (the lessons' quick-mode matrices are small, and a busy machine cannot slow them down)."""
    monkeypatch.setenv(U.MODE_VARIABLE, "quick")
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    )
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(variable, "1")


def test_the_lessons_exist():
    assert len(NOTEBOOKS) >= 5 and len(SOLUTIONS) == len(NOTEBOOKS), (NOTEBOOKS, SOLUTIONS)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_lesson_runs_top_to_bottom_in_quick_mode(path, monkeypatch):
    from nbclient import NotebookClient

    quick_environment(monkeypatch)
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(LESSONS)}},
    ).execute()
    seconds = time.perf_counter() - start
    assert seconds < NOTEBOOK_BUDGET, f"{path.name} took {seconds:.0f} s in quick mode"

    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "Lesson mode 'quick'" in text and "data set 'digits'" in text
    figures = sum("image/png" in o.get("data", {}) for o in outputs)
    assert figures >= 2, f"{path.name} drew {figures} figures"
    attempts = len(re.findall(r"^\[ \] ", text, re.M))  # one "[ ] name: not attempted" per check
    assert attempts == len(re.findall(r"C\.check_\w+\(", _code(nb))), text[-2000:]
    assert re.search(r"Lesson \d+: 0 of \d+ exercises correct", text), "no score summary"


def test_the_lessons_kernel_is_this_python():
    """The lessons above run in the "python3" kernel: it must be this environment's Python,
    not one that a user-level kernelspec (``ipykernel install --user``) points elsewhere.
    CI installs the kernel with ``--sys-prefix`` and sets JUPYTER_PREFER_ENV_PATH=1."""
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("import sys; print(sys.prefix)")]
    )
    NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3").execute()
    prefix = nb.cells[0].outputs[0]["text"].strip()
    assert os.path.realpath(prefix) == os.path.realpath(sys.prefix), (
        f"the python3 kernel runs {prefix}, not this environment ({sys.prefix}): run "
        "`python -m ipykernel install --sys-prefix --name python3` and export "
        "JUPYTER_PREFER_ENV_PATH=1"
    )


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_solutions_pass_their_checkers(path, monkeypatch):
    quick_environment(monkeypatch)
    done = subprocess.run(
        [sys.executable, str(path)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[x]" not in done.stdout and "[ ]" not in done.stdout, done.stdout


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_lesson_checks_the_exercises_its_solutions_solve(path):
    solution = ROOT / "course" / "solutions" / f"{path.stem}.py"
    assert solution.is_file(), f"no solutions file {solution.relative_to(ROOT)}"
    code = _code(nbformat.read(path, as_version=4))
    assert f"import checks_{path.stem} as C" in code and f"import checks_{path.stem} as C" in (
        solution.read_text()
    ), f"{path.name} and its solutions check with checks_{path.stem}.py"
    in_lesson = set(re.findall(r"C\.(check_\w+)\(", code))
    in_solution = set(re.findall(r"C\.(check_\w+)\(", solution.read_text()))
    assert in_lesson and in_lesson == in_solution
    assert in_lesson <= set(vars(CHECKS[path.stem])), in_lesson - set(vars(CHECKS[path.stem]))


@pytest.mark.parametrize("path", sorted(LESSONS.rglob("*.ipynb")), ids=lambda p: p.stem)
def test_committed_notebooks_have_no_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}, cell {index} has outputs: clear them"
            assert cell.execution_count is None, f"{path.name}, cell {index} has an execution count"
        assert not cell.get("attachments"), f"{path.name}, cell {index} has a pasted image"
        if cell.cell_type == "markdown":
            assert not re.search(r"!\[|<img", cell.source), (
                f"{path.name}, cell {index} embeds an image"
            )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_lessons_have_the_section_shape(path):
    """Title and motivation, the switch in the first code cell, ..., Summary, then Exercises."""
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    first_code = next(c for c in nb.cells if c.cell_type == "code").source
    assert "U.settings()" in first_code and "tinyvae" in first_code
    headings = [
        line for c in nb.cells if c.cell_type == "markdown" for line in c.source.splitlines()
    ]
    assert headings.index("## Summary") < headings.index("## Exercises")
    assert any("$$" in c.source for c in nb.cells if c.cell_type == "markdown"), "no derivation"


def _code(nb):
    return "\n".join(c.source for c in nb.cells if c.cell_type == "code")


# --- the switch --------------------------------------------------------------------------


def test_the_switch_defaults_to_mnist_and_quick_selects_the_bundled_digits(monkeypatch):
    monkeypatch.delenv(U.MODE_VARIABLE, raising=False)
    full = U.settings()
    assert (full.mode, full.dataset) == ("full", "mnist")
    monkeypatch.setenv(U.MODE_VARIABLE, "quick")
    quick = U.settings()
    assert (quick.mode, quick.dataset) == ("quick", "digits") and quick.steps < full.steps
    monkeypatch.setenv(U.MODE_VARIABLE, "fast")
    with pytest.raises(ValueError, match=U.MODE_VARIABLE):
        U.settings()


def test_the_switch_chooses_the_threads_once_a_kernel_and_says_so(monkeypatch, capsys):
    asked = []

    def automatic(weights, batch_size):
        asked.append((weights, batch_size))
        return 1, "automatic: stand-in"

    monkeypatch.setattr(U, "use_automatic_threads", automatic)
    monkeypatch.setattr(U, "_threads", None)  # a fresh kernel
    monkeypatch.setenv(U.MODE_VARIABLE, "quick")
    U.settings()
    U.settings()  # the cell run again: the same choice, not a new one
    assert asked == [([(64, 128), (128, 128), (128, 64)], 100)]
    said = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Threads")]
    assert said == ["Threads for the matrix products: 1 (automatic: stand-in)."] * 2


def test_without_mnist_the_full_mode_says_so_and_falls_back(monkeypatch, capsys, tmp_path):
    def unavailable(name, **kwargs):
        if name == "mnist":
            raise U.UserError("could not download train-images-idx3-ubyte.gz (offline)")
        return real_load(name, **kwargs)

    real_load = U.load
    monkeypatch.setattr(U, "load", unavailable)
    monkeypatch.setitem(U.SYSTEM_DIRS, "fashion-mnist", tmp_path / "absent")  # nor Fashion-MNIST
    data = U.load_data(U.Settings("full", "mnist", 1, 1, 1, 1))
    assert data.name == "digits"
    out = capsys.readouterr().out
    assert "NOTE: mnist could not be loaded: could not download" in out
    assert "--data-dir" not in out and "tinyvae.load('mnist')" in out  # notebook language


# --- the checkers ------------------------------------------------------------------------


def placeholder(*args, **kwargs):
    raise NotImplementedError


class NaiveSoftplus:  # overflows at x = 800
    def forward(self, X):
        self.X = X
        return np.log(1 + np.exp(X))

    def backward(self, dY):
        return dY / (1 + np.exp(-self.X))


def forward_difference(f, x, h=1e-5):
    grad = np.zeros_like(x)
    base = f(x)
    for i in np.ndindex(x.shape):
        saved = x[i]
        x[i] = saved + h
        grad[i] = (f(x) - base) / h
        x[i] = saved
    return grad


def decoder_path_only(x, W):
    z = x @ W
    G = 2 * (z @ W.T - x) / len(x)
    return ((z @ W.T - x) ** 2).sum(1).mean(), G.T @ z


def residual_without_skip(X, W, b, dY):
    dA = dY * (1 - np.tanh(X @ W + b) ** 2)
    return dA @ W.T, X.T @ dA, dA.sum(0)


MISTAKES = {  # checker -> (a typical wrong answer, words the verdict must contain)
    "check_tied_autoencoder": (decoder_path_only, "only the decoder's use of W"),
    "check_pca_reconstruction": (lambda x, L: x, "best any"),
    "check_fraction_near": (lambda s, c, r: 1.0, "radius"),
    "check_residual_backward": (residual_without_skip, "skip path is missing"),
    "check_softplus_layer": (NaiveSoftplus, "log1p"),
    "check_central_difference": (forward_difference, "one-sided"),
    "check_toy_posterior": (
        lambda x, w, s: (np.sum(w * x) / (np.sum(w * w) + s * s), 1 / (1 + np.sum(w * w))),
        "variance is not right",
    ),
    "check_toy_elbo": (
        lambda x, m, v, w, s: (
            CHECKS["03_elbo"].toy_elbo_reference(x, m, v, w, s) + 0.5 * w * w * v / (s * s)
        ),
        "w^2 v",
    ),
    "check_bounds_from_log_weights": (
        lambda lw: (lw.mean(0), np.log(np.exp(lw).mean(0))),
        "largest",
    ),
    "check_kl_diag_gaussians": (
        lambda m1, l1, m2, l2: 0.5 * (l2 - l1 + np.exp(l1 - l2) + (m1 - m2) ** 2 - 1),
        "sum",
    ),
    "check_kl_diag_grad": (
        lambda m1, l1, m2, l2: (
            m1 - m2,
            0.5 * (np.exp(l1 - l2) - 1),
            m2 - m1,
            0.5 * (1 - np.exp(l1 - l2)),
        ),
        "divided by e^logvar2",
    ),
    "check_kl_monte_carlo": (
        lambda mu, lv, K, rng: 0.5 * (np.exp(lv) + mu**2 - 1 - lv).sum(-1),
        "closed form",
    ),
    "check_softplus_reparameterize_backward": (
        lambda dz, mu, rho, eps: (dz.sum(0), (dz * 0.5 * np.exp(0.5 * rho) * eps).sum(0)),
        "log-variance version",
    ),
    "check_cholesky_reparameterize_backward": (
        lambda dz, mu, C, eps: (dz.sum(0), dz.T @ eps),
        "not parameters",
    ),
    "check_score_function_grad": (lambda f, mu, sigma, K, rng: 0.0, "exact gradient"),
}


def time_including_warmup(f, repeats=7, warmup=1, clock=None, sync=None):
    times = []
    for _ in range(warmup + repeats):
        start = clock()
        f()
        sync()
        times.append(clock() - start)
    return float(np.median(times))


def momentum_with_temporaries(theta, m, g, lr, momentum, scratch):
    m *= momentum
    m += g
    theta -= lr * m  # allocates lr * m


def mutual_information_of_sums(z, mu, logvar):  # log of the sum of the densities, not the mean
    log_q = -0.5 * (
        np.log(2 * np.pi) + logvar[None] + (z[:, None] - mu[None]) ** 2 / np.exp(logvar[None])
    )
    log_q = log_q.sum(-1)
    top = log_q.max(1)
    return float(np.mean(np.diag(log_q) - top - np.log(np.exp(log_q - top[:, None]).sum(1))))


def free_bits_charging_every_unit(mu, logvar, floor):
    kl = 0.5 * (np.exp(logvar) + mu**2 - 1 - logvar)
    term = np.maximum(floor, kl.mean(0)).sum()
    return term, mu / len(mu), 0.5 * (np.exp(logvar) - 1) / len(mu)


def flat_copies(shapes, dtype):
    buffer = np.zeros(sum(int(np.prod(s)) for s in shapes.values()), dtype=dtype)
    return buffer, {name: np.zeros(shape, dtype=dtype) for name, shape in shapes.items()}


def probabilities_as_logits(model, x, eps):
    from tinyvae.core import distributions as dist

    mu, logvar = model.encode(x)
    probabilities = model.decode(dist.reparameterize(mu, logvar, eps))
    return (
        -dist.bernoulli_log_likelihood(x, probabilities).mean(),
        dist.kl_standard_normal(mu, logvar).mean(),
    )


MISTAKES.update(
    {  # lessons 6-9
        "check_adam_step": (
            lambda th, g, m, v, t, lr, b1, b2, eps: CHECKS["06_training"].adam_reference(
                th, g, m, v, t, lr, b1, b2, eps, correct=False
            ),
            "bias corrections",
        ),
        "check_loss_parts": (probabilities_as_logits, "logits"),
        "check_debiased_ema": (
            lambda values, beta: CHECKS["06_training"].ema_reference(values, beta, correct=False),
            "1 - beta^t",
        ),
        "check_aggregate_moments": (
            lambda mu, lv: (mu.mean(0), np.cov(mu.T, bias=True)),
            "law of total variance",
        ),
        "check_slerp": (
            lambda a, b, t: (1 - np.asarray(t)[:, None]) * a + np.asarray(t)[:, None] * b,
            "straight line",
        ),
        "check_mutual_information": (mutual_information_of_sums, "-log n is missing"),
        "check_median_time": (time_including_warmup, "warm-up"),
        "check_momentum_step_inplace": (momentum_with_temporaries, "temporary"),
        "check_flat_views": (flat_copies, "share memory"),
        "check_one_hot_inputs": (
            lambda x, labels, C: np.concatenate([x, labels[:, None]], axis=1),
            "one column",
        ),
        "check_free_bits": (free_bits_charging_every_unit, "gradient is 0"),
        "check_importance_weights": (
            lambda lw: (np.exp(lw) / np.exp(lw).sum(0), np.full(lw.shape[1], 1.0)),
            "largest",
        ),
    }
)


def naive_continuous_bernoulli(a):  # 0/0 at a = 0
    a = np.asarray(a, dtype=np.float64)
    return np.log(a / np.tanh(a / 2)), 1 / a - 1 / np.sinh(a)


MISTAKES.update(
    {  # lesson 12
        "check_bits_per_dim": (lambda nll, D, levels=None: np.asarray(nll) / D, "nats per"),
        "check_effective_beta": (
            lambda r, k, B, D, L: (
                1 / D if r[0] == "mean" else 1.0,
                float(D) if r[0] == "mean" else 1.0,
            ),
            "scale * recon is not",
        ),
        "check_continuous_bernoulli_log_norm": (naive_continuous_bernoulli, "Taylor series"),
        "check_best_logvar": (lambda x, m: ((x - m) ** 2).mean(0), "return its log"),
    }
)


@pytest.mark.parametrize("name", list(MISTAKES))
def test_checker_reports_untouched_wrong_and_strict(name, capsys):
    checker = CHECKERS[name]
    checker(placeholder)
    assert "not attempted yet" in capsys.readouterr().out
    wrong, words = MISTAKES[name]
    with np.errstate(all="ignore"):
        checker(wrong)
    verdict = capsys.readouterr().out
    assert verdict.startswith("[x]") and words in verdict, verdict
    with pytest.raises(AssertionError), np.errstate(all="ignore"):
        checker(wrong, strict=True)


def col2im_assigned(cols, shape, k, s):
    return CHECKS["10_convolution"]._col2im_assigned(cols, shape, k, s)


def kernel_gradient_flipped(x, dy, k, s):
    Ho, Wo = dy.shape
    dW = np.array([[(x[u : u + s * Ho : s, v : v + s * Wo : s] * dy).sum() for v in range(k)]
                   for u in range(k)])  # fmt: skip
    return dW[::-1, ::-1]


def conv_transpose_flipped(y, w, s, shape):
    return CHECKS["10_convolution"]._scatter(y, w[::-1, ::-1], s, shape)


MISTAKES.update(
    {  # lesson 10: each graded by tinyvae's gradient check
        "check_col2im": (col2im_assigned, "add (+=)"),
        "check_kernel_gradient": (kernel_gradient_flipped, "correlation"),
        "check_conv_transpose": (conv_transpose_flipped, "nothing is flipped"),
    }
)


HIERARCHY = runpy.run_path(
    str(ROOT / "course" / "solutions" / "13_hierarchy.py"), run_name="solutions"
)


def hierarchical_without_z1_path(params, x, eps, beta=1.0):
    """The solution with d log p(z1|z2) / dz1 dropped: the gradient through z1 is missing."""
    names = HIERARCHY["hierarchical_loss_and_grads"].__globals__
    right = names["gaussian_log_density_grads"]
    names["gaussian_log_density_grads"] = lambda z, m, s: (0 * z, *right(z, m, s)[1:])
    try:
        return HIERARCHY["hierarchical_loss_and_grads"](params, x, eps, beta)
    finally:
        names["gaussian_log_density_grads"] = right


MISTAKES.update(
    {  # lesson 13: each graded by a gradient check
        "check_gaussian_log_density_grads": (
            lambda z, m, s: (lambda g: (g[1], g[1], g[2]))(
                HIERARCHY["gaussian_log_density_grads"](z, m, s)
            ),
            "sign is flipped",
        ),
        "check_z2_reparameterize_backward": (
            lambda dz, lv, e: (dz.sum(0), (dz * 0.5 * np.exp(0.5 * lv) * e).sum(0)),
            "nothing is summed over K",
        ),
        "check_hierarchical_loss_and_grads": (
            hierarchical_without_z1_path,
            "log p(z1|z2) also depends on z1",
        ),
    }
)


def test_every_checker_has_a_mistake_test():
    capstone = {n for n in vars(CAPSTONE_CHECKS) if n.startswith("check_")}
    assert set(CHECKERS) - capstone == set(MISTAKES)


# --- the capstone: each typical mistake, planted in the solutions, is named by the check ----

CAPSTONE = runpy.run_path(
    str(ROOT / "course" / "solutions" / "11_capstone.py"), run_name="solutions"
)
sig = lambda a: 1 / (1 + np.exp(-a))


def whole_model(kl_factor=1.0, dlogvar_of=None):
    """The solution's loss_and_grads with its KL gradient scaled, or its reparameterization's
    dlogvar computed by ``dlogvar_of(dz, logvar, eps)``."""
    S = CAPSTONE

    def loss_and_grads(params, x, eps, beta=1.0):
        loss, cache = S["forward"](params, x, eps, beta)
        dz, grads = S["decoder_backward"](S["recon_backward"](x, cache["logits"]), cache, params)
        dmu, dlogvar = S["reparameterize_backward"](dz, cache["mu"], cache["logvar"], eps)
        if dlogvar_of is not None:
            dlogvar = dlogvar_of(dz, cache["logvar"], eps)
        kl_mu, kl_logvar = S["kl_backward"](cache["mu"], cache["logvar"], beta)
        d_stats = np.concatenate([dmu + kl_factor * kl_mu, dlogvar + kl_factor * kl_logvar], 1)
        grads.update(S["encoder_backward"](d_stats, cache, params))
        return loss, grads

    return loss_and_grads


PLANTED = {  # checker -> [(the solution with one mistake planted, words the verdict must hold)]
    "check_sigmoid_logit_grad": [
        (lambda x, a: sig(a) - x, "sign is flipped"),
        (lambda x, a: x - 1 / (1 + np.exp(a)), "the wrong sigma"),
        (lambda x, a: (x - sig(a)) * sig(a) * (1 - sig(a)), "no extra factor"),
    ],
    "check_linear_backward": [
        (
            lambda X, W, dY: (
                dY @ W.T,
                X.reshape(-1, 3).T @ dY.reshape(-1, 2),
                dY.reshape(-1, 2).mean(0),
            ),
            "a mean over the 5 rows where the chain rule sums",
        ),  # fmt: skip
        (lambda X, W, dY: (dY @ W.T, X.T @ dY, dY.sum(0)), "shape"),
    ],
    "check_tanh_backward": [(lambda Y, dY: dY * (1 - Y), "1 - Y^2, not 1 - Y")],
    "check_recon_backward": [
        (lambda x, a: (sig(a) - x) / a.shape[1], "samples are not averaged"),
        (lambda x, a: (x - sig(a)) / (a.shape[0] * a.shape[1]), "sign is flipped"),
        (lambda x, a: (sig(a) - x) / a.shape[0], "a missing 1/B"),
    ],
    "check_decoder_backward": [
        (
            lambda d, cache, p: (
                CAPSTONE["decoder_backward"](d, cache, p)[0],
                {k: -v for k, v in CAPSTONE["decoder_backward"](d, cache, p)[1].items()},
            ),
            "decoder.1.W: the sign is flipped",
        ),  # fmt: skip
        (
            lambda d, cache, p: (
                CAPSTONE["decoder_backward"](d, cache, p)[0],
                {
                    k: v
                    for k, v in CAPSTONE["decoder_backward"](d, cache, p)[1].items()
                    if k != "decoder.1.W"
                },
            ),
            "no decoder.1.W: return all four decoder arrays",
        ),  # fmt: skip
    ],
    "check_reparameterize_backward": [
        (
            lambda dz, mu, lv, eps: (dz.sum(0), (dz * np.exp(0.5 * lv) * eps).sum(0)),
            "1/2 is missing",
        ),
        (lambda dz, mu, lv, eps: (dz.sum(0), (dz * np.exp(lv) * eps).sum(0)), "the wrong sigma"),
        (
            lambda dz, mu, lv, eps: (dz.mean(0), (dz * 0.5 * np.exp(0.5 * lv) * eps).sum(0)),
            "contributions add up; sum them",
        ),  # fmt: skip
    ],
    "check_kl_backward": [
        (lambda mu, lv, beta: (beta * mu, beta * 0.5 * (np.exp(lv) - 1)), "a missing 1/B"),
        (
            lambda mu, lv, beta: (beta * mu / len(mu), beta * (np.exp(lv) - 1) / len(mu)),
            "the 1/2 is missing",
        ),  # fmt: skip
        (lambda mu, lv, beta: (mu / len(mu), 0.5 * (np.exp(lv) - 1) / len(mu)), "beta is missing"),
    ],
    "check_encoder_backward": [
        (
            lambda d, cache, p: {
                k: v
                for k, v in CAPSTONE["encoder_backward"](d, cache, p).items()
                if k != "encoder.0.b"
            },
            "no encoder.0.b",
        ),  # fmt: skip
    ],
    "check_loss_and_grads": [
        (whole_model(kl_factor=CAPSTONE_CHECKS.B), "KL term's part is wrong"),
        (whole_model(kl_factor=CAPSTONE_CHECKS.B), "a missing 1/B"),
        (whole_model(kl_factor=0.0), "never reached it"),
        (
            whole_model(dlogvar_of=lambda dz, lv, eps: (dz * np.exp(0.5 * lv) * eps).sum(0)),
            "even with beta = 0",
        ),  # fmt: skip
    ],
}


@pytest.mark.parametrize(
    "name, planted, words",
    [(n, p, w) for n, cases in PLANTED.items() for p, w in cases],
    ids=lambda v: v if isinstance(v, str) and v.startswith("check") else "",
)
def test_capstone_checks_name_each_planted_mistake(name, planted, words, capsys):
    getattr(CAPSTONE_CHECKS, name)(planted)
    verdict = capsys.readouterr().out
    assert verdict.startswith("[x]") and words in verdict, verdict


def test_every_capstone_checker_is_tested_and_passes_the_solutions(capsys):
    checkers = {n for n in vars(CAPSTONE_CHECKS) if n.startswith("check_")}
    assert checkers == set(PLANTED)
    for name in checkers:
        checker = getattr(CAPSTONE_CHECKS, name)
        checker(placeholder)
        assert "not attempted yet" in capsys.readouterr().out
        checker(CAPSTONE[name.removeprefix("check_")], strict=True)


# --- feedback: no answer given away, tuples counted, the crashing line shown --------------


def test_feedback_does_not_reveal_the_expected_values():
    want = np.array([[0.123456, -2.5], [3.75, 0.5]])
    for got, words in (
        (-want, "wrong sign"),
        (2 * want, "2 times what it should be"),
        (
            want + np.array([[0, 0], [0, 1.0]]),
            "25% of its elements differ, the first at index (1, 1)",
        ),
    ):
        with pytest.raises(grading.Wrong) as caught:
            grading.expect_close(got, want, "dW")
        message = str(caught.value)
        assert words in message, message
        assert not re.search(r"0\.123|2\.5|3\.75", message), message


def test_a_tuple_of_the_wrong_length_is_counted():
    with pytest.raises(
        grading.Wrong, match=r"a tuple of 2, \(dmu, dlogvar\); got a tuple of 3 items"
    ):
        grading.expect_tuple((1, 2, 3), ("dmu", "dlogvar"))
    with pytest.raises(grading.Wrong, match="returned None"):
        grading.expect_tuple(None, ("dmu", "dlogvar"))


def test_a_crash_in_the_students_code_shows_its_line(tmp_path, capsys):
    student = tmp_path / "student_cell.py"
    student.write_text(
        "def toy_posterior(x, w, s):\n    scale = w * 2.0\n    return 1 / (s - s), scale\n"
    )
    namespace = runpy.run_path(str(student))
    CHECKERS["check_toy_posterior"](namespace["toy_posterior"])
    verdict = capsys.readouterr().out
    assert (
        "ZeroDivisionError" in verdict
        and "line 3 of student_cell.py: `return 1 / (s - s), scale`" in verdict
    ), verdict


def test_the_score_summary_counts_each_exercise_of_the_lesson(capsys):
    CHECKERS["check_toy_posterior"](placeholder)
    CHECKERS["check_toy_elbo"](lambda x, m, v, w, s: 0.0)
    CHECKERS["check_bounds_from_log_weights"](
        lambda lw: (lw.mean(0), np.log(np.mean(np.exp(lw - lw.max(0)), 0)) + lw.max(0))
    )
    capsys.readouterr()
    assert grading.summary(3) == (1, 3)
    out = capsys.readouterr().out
    assert "Lesson 3: 1 of 3 exercises correct." in out and "[x]  toy_elbo: not right yet" in out


def test_the_free_bits_check_keeps_every_unit_away_from_the_kink_of_max():
    """Its gradient check nudges mu and logvar by 1e-6: no unit's batch-mean KL may be near
    the floor, or a finite difference would straddle the kink."""
    mu, logvar = CHECKS["09_beyond"].free_bits_inputs()
    per_unit = (0.5 * (np.exp(logvar) + mu**2 - 1 - logvar)).mean(axis=0)
    margin = np.abs(per_unit - CHECKS["09_beyond"].FREE_BITS_FLOOR)
    assert margin.min() > 0.05 and (per_unit < CHECKS["09_beyond"].FREE_BITS_FLOOR).sum() == 2, (
        per_unit
    )
