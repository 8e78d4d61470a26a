"""Training runs whose numbers are pinned: a change to what training computes fails them,
on any CPU a learner has.

Why two precisions
------------------
A matrix product's last bits depend on the CPU: OpenBLAS picks kernels for AVX-512, AVX2 or
plain SSE2 (and Apple's chips have their own), and each sums in its own order. Training
feeds every rounding back into the next step, so over a run the differences grow:

================================  ==================  ====================
spread across CPU kernels         float32             float64
================================  ==================  ====================
digits, 5 epochs (MLP)            1.3e-4              2.1e-15
digits, 2 epochs (conv)           3.5e-7              2.1e-15
Fashion-MNIST, 1 epoch (MLP)      4.0e-3              2.1e-15
================================  ==================  ====================

(largest relative difference from the AVX-512 run of any metric, over OpenBLAS's Haswell
and Prescott kernels, NumPy's own loops limited to AVX2 and to SSE, and
``TINYVAE_KERNELS=numpy``; measured on an AVX-512 machine with, for example::

    OPENBLAS_CORETYPE=Prescott NPY_DISABLE_CPU_FEATURES="X86_V4 AVX512_ICL X86_V3" \\
        python tests/test_reference_runs.py

which prints the figures these tests pin.)

A change of behaviour is far larger in float64 than that spread: multiplying the KL
gradient with respect to log σ² by 1 + 1e-7 moves the digits metrics by 9.5e-8 (relative)
and the Fashion-MNIST ones by 4.1e-8. So the float64 runs are pinned to a relative 1e-10:
five hundred times what any CPU changes, four hundred times smaller than that change.
``test_a_change_of_1e-7_in_the_kl_gradient_fails_the_float64_pin`` makes the change and
checks that the pin catches it.

The float32 runs are the ones ``python -m tinyvae.train`` makes: they are pinned loosely,
to fifteen times the spread above (digits 2e-3, Fashion-MNIST 5e-2), so that they catch
a run that learns something else (a wrong sign, a lost term), not a CPU's rounding.

All runs use one BLAS thread (the fixture in conftest.py): several threads split sums
differently again.
"""

import json

import pytest

import tinyvae.core.distributions as distributions
import tinyvae.train
from tinyvae.core.backend import get_backend
from tinyvae.tools.data import SYSTEM_DIRS
from tinyvae.train import main as train_main

KEYS = ("train_loss", "test_loss", "recon", "kl")  # per epoch, in nats per image
FLOAT64, FLOAT32_DIGITS, FLOAT32_FASHION = 1e-10, 2e-3, 5e-2  # relative tolerances

DIGITS = ("--dataset", "digits", "--epochs", "5", "--seed", "3")
DIGITS_FLOAT64 = [
    (37.93942996016989, 31.68180438357497, 37.4939653553182, 0.4454646048516855),
    (30.496424814843913, 28.494438312830844, 30.11477188145969, 0.381652933384222),
    (28.636013817510584, 27.497746366159618, 28.47652380227053, 0.15949001524004902),
    (27.937229354741092, 27.07273112602, 27.79001821132766, 0.14721114341343305),
    (27.5816063441507, 26.785384297902315, 27.34145947481737, 0.24014686933333024),
]
DIGITS_FLOAT32 = [
    (37.91163125356039, 31.775512284301346, 37.456202799479165, 0.45542845408121746),
    (30.536951377868654, 28.578065814393938, 30.159351236979166, 0.3776001408894857),
    (28.62862531344096, 27.446085200968014, 28.459320149739582, 0.16930516370137533),
    (27.936284993489583, 26.988812276409934, 27.76151953125, 0.17476546223958334),
    (27.546873176574707, 26.741390138362796, 27.23049072265625, 0.31638245391845704),
]
CONV = ("--dataset", "digits", "--arch", "conv", "--epochs", "2", "--seed", "3")
CONV_FLOAT64 = [
    (39.79254020249579, 36.44843113716614, 39.76338167095377, 0.029158531542025717),
    (34.748492884108295, 32.1392368745855, 34.555654401468765, 0.19283848263952924),
]
FASHION = ("--dataset", "fashion-mnist", "--epochs", "1", "--seed", "2")
FASHION_FLOAT64 = [(284.97155289979145, 262.7744500923711, 270.3907575089106, 14.580795390880821)]
FASHION_FLOAT32 = [(285.15643796135583, 262.4099390625, 270.7265532877604, 14.429884673595428)]

needs_fashion = pytest.mark.skipif(
    not SYSTEM_DIRS["fashion-mnist"].is_dir(), reason="Debian's dataset-fashion-mnist is not installed"
)


def metrics_of(folder, flags, monkeypatch=None, dtype="float32"):
    """The metrics of ``python -m tinyvae.train FLAGS`` run in ``folder``, flat: epoch 1's
    four KEYS, then epoch 2's... Given ``monkeypatch``, in ``dtype`` (the command line has
    no flag for it: the backend the run builds is swapped for one in that dtype)."""
    if monkeypatch is not None:
        monkeypatch.setattr(tinyvae.train, "get_backend", lambda name: get_backend(name, dtype))
    out = folder / "run"
    assert train_main([*flags, "--out", str(out), "--no-progress"]) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [row[k] for row in rows for k in KEYS]


def flat(rows):
    return [v for row in rows for v in row]


def test_digits_in_float64_give_the_pinned_numbers(tmp_path, monkeypatch):
    got = metrics_of(tmp_path, DIGITS, monkeypatch, "float64")
    assert got == pytest.approx(flat(DIGITS_FLOAT64), rel=FLOAT64, abs=0)


def test_digits_in_float32_give_the_pinned_numbers(tmp_path):
    got = metrics_of(tmp_path, DIGITS)
    assert got == pytest.approx(flat(DIGITS_FLOAT32), rel=FLOAT32_DIGITS, abs=0)


def test_conv_digits_in_float64_give_the_pinned_numbers(tmp_path, monkeypatch):
    got = metrics_of(tmp_path, CONV, monkeypatch, "float64")
    assert got == pytest.approx(flat(CONV_FLOAT64), rel=FLOAT64, abs=0)


def test_a_change_of_1e_7_in_the_kl_gradient_fails_the_float64_pin(tmp_path, monkeypatch):
    kl_grad = distributions.kl_standard_normal_grad

    def nudged(mu, logvar):
        dmu, dlogvar = kl_grad(mu, logvar)
        return dmu, dlogvar * (1 + 1e-7)

    monkeypatch.setattr(distributions, "kl_standard_normal_grad", nudged)
    got = metrics_of(tmp_path, DIGITS, monkeypatch, "float64")
    assert got != pytest.approx(flat(DIGITS_FLOAT64), rel=FLOAT64, abs=0)
    assert got == pytest.approx(flat(DIGITS_FLOAT64), rel=1e-5)  # nudged, not broken


@pytest.mark.slow
@needs_fashion
def test_fashion_mnist_in_float64_gives_the_pinned_numbers(tmp_path, monkeypatch):
    got = metrics_of(tmp_path, FASHION, monkeypatch, "float64")
    assert got == pytest.approx(flat(FASHION_FLOAT64), rel=FLOAT64, abs=0)


@pytest.mark.slow
@needs_fashion
def test_fashion_mnist_in_float32_gives_the_pinned_numbers(tmp_path):
    got = metrics_of(tmp_path, FASHION)
    assert got == pytest.approx(flat(FASHION_FLOAT32), rel=FLOAT32_FASHION, abs=0)


if __name__ == "__main__":  # print this machine's figures, one BLAS thread, as pinned above
    import tempfile
    from pathlib import Path

    from threadpoolctl import threadpool_limits

    runs = [("DIGITS", DIGITS, "float64"), ("DIGITS", DIGITS, "float32"),
            ("CONV", CONV, "float64"), ("FASHION", FASHION, "float64"),
            ("FASHION", FASHION, "float32")]  # fmt: skip
    with threadpool_limits(1), pytest.MonkeyPatch.context() as patch:
        for name, flags, dtype in runs:
            if name == "FASHION" and not SYSTEM_DIRS["fashion-mnist"].is_dir():
                continue
            with tempfile.TemporaryDirectory() as folder:
                got = metrics_of(Path(folder), flags, patch, dtype)
            print(f"{name}_{dtype.upper()} = [")
            for i in range(0, len(got), len(KEYS)):
                print(f"    ({', '.join(repr(v) for v in got[i:i + len(KEYS)])}),")
            print("]")
