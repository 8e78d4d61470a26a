"""Checks that the host never waits for the device inside a block, on every backend.

    with no_wait(backend):          # a few training steps, with no read-back between them
        model.loss_and_grads(x) ...

* NumPy: nothing to wait for; the block just runs.
* The stand-in for CuPy (tests/fake_cupy.py): every read-back or wait raises inside it.
* A real GPU: the block runs while the GPU is kept busy by one kernel that spins for a
  second or two. Had anything in the block synchronised (``float(loss)``, ``.get()``, a copy
  to the host, ``stream.synchronize()``), the host would have waited for that kernel to end;
  so if the kernel is still running when the block ends, nothing in it waited.

Why not ``cupyx.allow_synchronize(False)``: in CuPy 14.2 nothing calls the detector behind
it (``cupy._core.syncdetect._declare_synchronize`` is referenced only by its own module; the
API has been deprecated since CuPy 10), so a block under it passes whatever it does.
Used by the tests and by ``benchmarks/gpu_check.py``.
"""

from __future__ import annotations

import contextlib
import itertools
import time

SPIN_SOURCE = r"""
extern "C" __global__ void tinyvae_spin(unsigned long long nanoseconds) {
    unsigned long long start, now;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
    do {
        asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
    } while (now - start < nanoseconds);
}
"""


class HostWaited(AssertionError):
    """The host waited for the GPU inside a block that should not have."""


def is_stand_in(backend) -> bool:
    return backend.name == "cupy" and getattr(backend.xp, "STAND_IN", False)


def no_wait(backend, seconds=2.0):
    """A context manager in which the host must not wait for the device (see above)."""
    if backend.name == "numpy":
        return contextlib.nullcontext()
    if is_stand_in(backend):
        return backend.xp.forbid_read_back()
    return gpu_stays_busy(backend.xp, seconds)


@contextlib.contextmanager
def gpu_stays_busy(cupy, seconds=2.0, report=None):
    """Run the block while one GPU kernel spins for ``seconds``; raise HostWaited when the
    kernel was done by the end of the block (so the block waited for it). ``report``, a
    dict, receives the measurements: the block's host seconds and whether the GPU was busy.
    Run the block's work once beforehand: a first call compiles kernels and grows CuPy's
    memory pool, and may take longer than the spin."""
    spin = cupy.RawKernel(SPIN_SOURCE, "tinyvae_spin")
    stream = cupy.cuda.get_current_stream()
    stream.synchronize()
    spin((1,), (1,), (cupy.uint64(int(seconds * 1e9)),))
    spun = cupy.cuda.Event()
    spun.record(stream)
    start = time.perf_counter()
    yield
    host_seconds = time.perf_counter() - start
    busy = not spun.done  # cudaEventQuery: asks without waiting
    stream.synchronize()
    if report is not None:
        report.update(host_seconds=host_seconds, spin_seconds=seconds, gpu_still_busy=busy)
    if not busy:
        more = ("" if host_seconds < seconds else
                f"; but the block took {host_seconds:.2f} s, longer than the spin, so run its "
                "work once first or spin longer")  # fmt: skip
        raise HostWaited(f"the GPU had finished a {seconds:g} s kernel before the block ended: "
                         f"something in the block waited for it{more}")  # fmt: skip


def train_steps(model, optimizer, batches, config, count, rng):
    """``count`` steps of ``tinyvae.tools.training.train_epoch``'s loop, its read-back
    excepted: noise, corruption, loss and gradients, the squared gradient norm, the update,
    the running sums. ``batches`` yields (x, y) device arrays and ``rng`` draws the noise,
    both made before a no-wait block, as train_epoch makes them at the start of an epoch:
    an epoch begins with a sort of the shuffled order (``started``), and a sort on the GPU
    may wait for it. Returns two 0-d device arrays (a sum of the losses, of |g|^2)."""
    from tinyvae.tools.data import corrupt

    xp = model.xp
    grad_sq, total = xp.zeros((), dtype=xp.float64), xp.zeros((), dtype=xp.float64)
    for _, (x, y) in zip(range(count), batches):
        eps = rng.standard_normal((config.samples, len(x), model.latent_dim), dtype=model.dtype)
        x_in = corrupt(x, config.denoise, config.noise, rng) if config.denoise else None
        labels = y if model.num_classes else None
        loss, parts, _ = model.loss_and_grads(x, eps, 1.0, labels, config.samples,
                                              config.objective, validate=False, x_input=x_in)  # fmt: skip
        grad_sq = grad_sq + model.flat.grad @ model.flat.grad
        optimizer.step()
        total = total + loss * len(x) + parts["kl"]
    return total, grad_sq


def started(iterator):
    """The same batches, with the first already drawn (the epoch's sort is done)."""
    first = next(iterator)
    return itertools.chain([first], iterator)
