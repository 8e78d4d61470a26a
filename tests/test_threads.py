"""The BLAS thread count: what limits it, how the automatic choice is made, and that a run
keeps it. (Whether the choice is fast is for benchmarks/bench_contention.py, not a test.)"""

import os
import re
import subprocess
import sys

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from tinyvae.core.model import VAE
from tinyvae.tools import threads as T


@pytest.mark.parametrize(
    "files, quota",
    [
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu.max": "150000 100000\n"}, 1.5),
        ({"cpu/cpu.cfs_quota_us": "200000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 2.0),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({}, None),
    ],
)
def test_the_cgroup_cpu_quota_is_read_in_both_versions(tmp_path, files, quota):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    assert T.cgroup_cpu_quota(tmp_path) == quota


def test_cpus_allowed_and_busy_are_within_the_machine():
    allowed = T.cpus_allowed()
    assert 1 <= allowed <= (os.cpu_count() or 1)
    assert 0 <= T.busy_cpus(0.05) <= allowed + 0.01


def test_the_products_of_a_step_are_listed_forward_and_backward():
    model = VAE(64, hidden=(32,), latent_dim=4)  # Linear layers 64x32, 32x8, 4x32, 32x64
    shapes = T.product_shapes(model, 10)
    assert (10, 64, 32) in shapes and (64, 10, 32) in shapes and (10, 32, 64) in shapes
    assert len(shapes) == 3 * 4


def test_an_asked_count_is_used_and_a_kept_one_respects_a_lower_limit(monkeypatch):
    model = VAE(64, hidden=(32,), latent_dim=4)
    monkeypatch.setattr(T, "cpus_allowed", lambda: 4)
    with threadpool_limits(1):
        assert T.blas_limit() == 1
        assert T.choose_threads(None, model, 10)[0] == 1  # no more than the limit
        assert T.choose_threads(None, model, 10, kept=3)[0] == 1  # OPENBLAS_NUM_THREADS=1 wins
        assert T.choose_threads(2, model, 10)[0] == 2  # --threads wins over everything
        with T.blas_threads(2):
            assert T.blas_limit() == 2
        assert T.blas_limit() == 1  # put back
    with threadpool_limits(2):
        assert T.choose_threads(None, model, 10, kept=1) == (1, "kept from the start of this "
                                                              "run (--threads N changes it)")


@pytest.mark.parametrize(
    "asked, allowed, busy, used, said",
    [
        (2, 4, 0.0, 2, "--threads"),
        (8, 2, 0.0, 2, "--threads 8 lowered to the 2 CPUs this process may use"),
        (10**20, 2, 0.0, 2, "--threads 100000000000000000000 lowered to the 2 CPUs"),
        (2, 2, 1.0, 2, "--threads; note: other programs keep 1 of the 2 CPUs busy"),
        (1, 2, 1.0, 1, "--threads"),
    ],
)
def test_an_asked_count_is_lowered_to_the_cpus_and_a_busy_machine_is_noted(
    monkeypatch, asked, allowed, busy, used, said
):
    monkeypatch.setattr(T, "cpus_allowed", lambda: allowed)
    monkeypatch.setattr(T, "busy_cpus", lambda: busy)
    model = VAE(64, hidden=(32,), latent_dim=4)
    n, why = T.choose_threads(asked, model, 10)
    assert n == used and why.startswith(said)
    assert ("note:" in why) == (busy > 0 and asked > 1)


@pytest.mark.parametrize("text", ["99999999999999999999", "4097", "0", "-3", "two"])
def test_a_thread_count_beyond_any_machine_is_one_line_and_exit_2(tmp_path, text):
    command = [sys.executable, "-m", "tinyvae.train", "--dataset", "digits", "--epochs", "1",
               "--threads", text, "--out", str(tmp_path / "run")]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith("error: --threads")
    assert not (tmp_path / "run").exists()


def test_use_automatic_threads_sets_the_count_for_what_follows(monkeypatch):
    monkeypatch.setattr(T, "automatic_threads", lambda shapes, budget=0.5: (1, f"{len(shapes)}"))
    with threadpool_limits(2):
        assert T.use_automatic_threads([(64, 32), (32, 64)], 10) == (1, "6")
        assert T.blas_limit() == 1  # not only inside a block: for the rest of the kernel


def test_the_automatic_choice_times_both_and_says_why():
    model = VAE(784, hidden=(400,), latent_dim=20)
    with threadpool_limits(2):
        n, why = T.choose_threads(None, model, 128)
    assert n in (1, min(2, T.cpus_allowed())) and why.startswith("automatic: ")
    timed = re.search(r"took ([\d.]+) ms on 1 thread, ([\d.]+) on", why)
    if timed:  # the products were timed (no CPU was busy): the faster count was kept
        one, many = map(float, timed.groups())
        assert (n > 1) == (many < one) or abs(many - one) < 0.01  # printed to 0.01 ms


def test_timing_the_products_takes_a_time_for_every_call():
    pairs = T.random_pairs([(8, 16, 4), (4, 8, 16)])
    assert [(a.shape, b.shape) for a, b in pairs] == [((8, 16), (16, 4)), ((4, 8), (8, 16))]
    times = [T.time_products(pairs, 1) for _ in range(3)]
    assert all(t > 0 for t in times) and np.isfinite(times).all()
