"""Two training runs whose numbers are pinned: a change to the code that changes what
training computes, even in the last bit, makes these fail.

The figures are what ``metrics.jsonl`` held for these commands, run with one BLAS thread
(``OPENBLAS_NUM_THREADS=1``; here the one-thread fixture of conftest.py) before the package
was reorganised into ``core/`` and ``tools/``::

    python -m tinyvae.train --dataset digits --epochs 5 --seed 3
    python -m tinyvae.train --dataset fashion-mnist --epochs 1 --seed 2

They hold on the x86-64 machines where they were measured; another BLAS build may round
matrix products differently, and so give other last digits.
"""

import json

import pytest

from tinyvae.tools.data import SYSTEM_DIRS
from tinyvae.train import main as train_main

KEYS = ("train_loss", "test_loss", "recon", "kl")
DIGITS_SEED_3 = [  # per epoch: train_loss, test_loss, recon, kl (nats per image)
    (37.91163125356039, 31.775512284301346, 37.456202799479165, 0.45542845408121746),
    (30.536951377868654, 28.578065814393938, 30.159351236979166, 0.3776001408894857),
    (28.62862531344096, 27.446085200968014, 28.459320149739582, 0.16930516370137533),
    (27.936284993489583, 26.988812276409934, 27.76151953125, 0.17476546223958334),
    (27.546873176574707, 26.741390138362796, 27.23049072265625, 0.31638245391845704),
]
FASHION_SEED_2 = [(285.15643796135583, 262.4099390625, 270.7265532877604, 14.429884673595428)]


def metrics_of(tmp_path, *flags):
    out = tmp_path / "run"
    assert train_main([*flags, "--out", str(out), "--no-progress"]) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [row[k] for row in rows for k in KEYS]  # flat: epoch 1's four, then epoch 2's ...


def test_digits_five_epochs_give_the_pinned_numbers(tmp_path):
    got = metrics_of(tmp_path, "--dataset", "digits", "--epochs", "5", "--seed", "3")
    assert got == pytest.approx([v for row in DIGITS_SEED_3 for v in row], rel=1e-12, abs=0)


@pytest.mark.slow
@pytest.mark.skipif(not SYSTEM_DIRS["fashion-mnist"].is_dir(),
                    reason="Debian's dataset-fashion-mnist is not installed")  # fmt: skip
def test_fashion_mnist_one_epoch_gives_the_pinned_numbers(tmp_path):
    got = metrics_of(tmp_path, "--dataset", "fashion-mnist", "--epochs", "1", "--seed", "2")
    assert got == pytest.approx([v for row in FASHION_SEED_2 for v in row], rel=1e-12, abs=0)
