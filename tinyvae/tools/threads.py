"""How many threads the matrix products get: chosen when a run starts, from the CPUs this
process may use, how busy other programs keep them, and how the model's own products run.

NumPy hands every matrix product to its BLAS library (OpenBLAS), which splits it among one
thread per CPU and waits for the last part. On an idle machine, with large products, that
is fastest. When another program keeps a CPU busy, one of those threads waits for its turn
on that CPU, every product waits for it, and an epoch can take three times as long as with
one thread. Small products are faster on one thread even on an idle machine: waking the
other threads costs more than their share of the work saves.

    threads, why = choose_threads(config.threads, model, config.batch_size)
    with blas_threads(threads):
        ...  # train

``choose_threads`` (when ``--threads`` is not given) takes the smallest of: the CPUs this
process may run on (its CPU affinity and its cgroup's CPU quota), those of them that are not
busy with other programs right now (two readings of ``/proc/stat``), and any thread limit
already set (``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS``, threadpoolctl). If that leaves
more than one, it times the model's own products, one step's worth, on one thread and on
that many, in turns for about half a second, and keeps the faster. The count is chosen once,
when the run starts, and a resumed run keeps it: OpenBLAS rounds some products differently
on one thread than on several, and a run's numbers should not depend on when it was resumed.

``--threads N`` is used as given, lowered to the CPUs allowed (more threads than CPUs only
take turns), with a note when other programs keep some of those CPUs busy. The lessons, the
course kit's grading and the website's build run lessons, which call
``use_automatic_threads`` once through ``lessons/lesson_utils.py``: the same choice, made for
the lessons' networks.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits


def cpus_allowed() -> int:
    """CPUs this process may run on: its affinity set, capped by its cgroup's CPU quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cpus = os.cpu_count() or 1
    quota = cgroup_cpu_quota()
    return max(1, min(cpus, math.ceil(quota))) if quota else max(1, cpus)


def cgroup_cpu_quota(root=Path("/sys/fs/cgroup")) -> float | None:
    """CPUs' worth of time the cgroup may use (cgroup v2 ``cpu.max``, or v1), None if unlimited."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota <= 0 else quota / period
    except (OSError, ValueError):
        return None


def busy_cpus(seconds=0.2) -> float:
    """How many of this process's CPUs other programs keep busy: the share of non-idle time
    of each over ``seconds``, summed (this process sleeps meanwhile). 0 without /proc/stat."""
    try:
        mine = os.sched_getaffinity(0)
    except AttributeError:
        return 0.0
    first = _cpu_times(mine)
    time.sleep(seconds)
    second = _cpu_times(mine)
    busy = 0.0
    for cpu, (idle, total) in second.items():
        idle0, total0 = first.get(cpu, (idle, total))
        if total > total0:
            busy += 1 - (idle - idle0) / (total - total0)
    return busy


def _cpu_times(cpus) -> dict:
    """cpu number -> (idle ticks, all ticks) from /proc/stat, for the CPUs in ``cpus``."""
    times = {}
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return times
    for line in lines:
        name, *ticks = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            ticks = [int(t) for t in ticks[:8]]  # user nice system idle iowait irq softirq steal
            times[int(name[3:])] = (ticks[3] + ticks[4], sum(ticks))
    return times


def blas_limit() -> int | None:
    """The thread count the BLAS library is set to now (an environment variable or an outer
    threadpoolctl limit may have lowered it), or None when NumPy's BLAS is not found."""
    counts = [i["num_threads"] for i in threadpool_info() if i.get("user_api") == "blas"]
    return min(counts) if counts else None


def product_shapes(model, batch_size: int) -> list:
    """The (m, k, n) of one training step's matrix products in ``model``'s Linear layers."""
    return step_products([s for s in model.flat.shapes.values() if len(s) == 2], batch_size)


def step_products(weights, batch_size: int) -> list:
    """The (m, k, n) of one step's matrix products for Linear layers of weights W (k, n):
    forward (B, k) @ (k, n), weight gradient (k, B) @ (B, n), input gradient (B, n) @ (n, k)."""
    shapes = []
    for k, n in weights:
        shapes += [(batch_size, k, n), (k, batch_size, n), (batch_size, n, k)]
    return shapes


def random_pairs(shapes) -> list:
    """For each (m, k, n): two float32 arrays (m, k) and (k, n) to multiply."""
    rng = np.random.default_rng(0)
    return [(rng.random((m, k), np.float32), rng.random((k, n), np.float32)) for m, k, n in shapes]


def time_products(pairs, threads: int) -> float:
    """Seconds that the products ``a @ b`` of ``pairs`` take on ``threads`` threads, after
    one untimed product that wakes the threads up."""
    with threadpool_limits(threads, user_api="blas"):
        a, b = pairs[0]
        a @ b
        start = time.perf_counter()
        for a, b in pairs:
            a @ b
        return time.perf_counter() - start


def choose_threads(asked, model, batch_size: int, kept=None, budget=0.5) -> tuple:
    """``(threads, why)``: ``asked`` (``--threads``) when given, lowered to the CPUs this
    process may use; else ``kept`` (the count a resumed run started with); else chosen as
    the module docstring says, timing the model's products for about ``budget`` seconds."""
    limit = blas_limit() or 1
    if asked:
        return asked_threads(int(asked))
    if kept:
        n = min(int(kept), limit)
        return n, "kept from the start of this run (--threads N changes it)"
    return automatic_threads(product_shapes(model, batch_size), budget)


def asked_threads(asked: int) -> tuple:
    """``(threads, why)`` for ``--threads asked``: at most the CPUs allowed (more threads
    than CPUs only take turns), and a note when other programs keep some of them busy."""
    allowed = cpus_allowed()
    n, why = min(asked, allowed), "--threads"
    if asked > allowed:
        why += f" {asked} lowered to the {allowed} CPUs this process may use"
    free = max(1, round(allowed - busy_cpus()))
    if n > free:
        why += (f"; note: other programs keep {allowed - free} of the {allowed} CPUs busy, so "
                f"each product waits for them: leave --threads out to let tinyvae choose")  # fmt: skip
    with blas_threads(n):  # OpenBLAS caps it at the most it was built for: say what it uses
        return blas_limit() or n, why


def automatic_threads(shapes, budget=0.5) -> tuple:
    """``(threads, why)``: the smallest of the CPUs allowed, those of them not busy now and
    the BLAS limit already set; if more than one, whichever of one thread and that many
    multiplies the (m, k, n) ``shapes`` faster, timed in turns for about ``budget`` seconds
    (at least twice each, at most 15 times)."""
    limit = blas_limit() or 1
    allowed = cpus_allowed()
    why = f"automatic: {allowed} CPUs allowed"
    if limit < allowed:
        why += f", BLAS limited to {limit}"
    if min(allowed, limit) == 1:  # nothing to choose, nothing to measure
        return 1, why
    busy = busy_cpus()
    n = max(1, min(allowed, limit, round(allowed - busy)))
    why += f", {busy:.1f} busy with other programs"
    if n == 1:
        return 1, why
    pairs, one, many = random_pairs(shapes), [], []
    end = time.perf_counter() + budget
    while len(one) < 15 and (len(one) < 2 or time.perf_counter() < end):
        one.append(time_products(pairs, 1))  # in turns, so that a change of load hits both
        many.append(time_products(pairs, n))
    one, many = statistics.median(one), statistics.median(many)
    why += f"; one step's products took {one * 1e3:.2f} ms on 1 thread, {many * 1e3:.2f} on {n}"
    return (n if many < one else 1), why


def use_automatic_threads(weights, batch_size: int) -> tuple:
    """Set this process's BLAS threads, from now on, to the automatic choice for Linear
    layers of ``weights`` (k, n) in steps of ``batch_size``; return ``(threads, why)``.
    For a notebook or a script that computes outside ``train.py``: a lesson calls it once."""
    threads, why = automatic_threads(step_products(weights, batch_size))
    threadpool_limits(threads, user_api="blas")
    return threads, why


@contextmanager
def blas_threads(threads):
    """Within this block the BLAS library uses ``threads`` threads (None: leave it as it is)."""
    if threads is None:
        yield
        return
    with threadpool_limits(int(threads), user_api="blas"):
        yield
