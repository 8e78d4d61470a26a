r"""Optimizers written by hand, updating one flat parameter buffer in place.

Both take the model's flat arrays (``model.flat.data`` and ``model.flat.grad``, see
``tinyvae/params.py``), so one step is a few whole-buffer operations, each written
into existing memory with ``out=`` or ``*=``: no per-parameter Python loop and no
new arrays per step.

    opt = Adam(model.flat, lr=1e-3)
    loss, parts, grads = model.loss_and_grads(x)
    opt.step()
"""

from __future__ import annotations

import functools
import math
import os

import numpy as np

from tinyvae.backend import array_module, cupy


def clip_grad_norm(grad, max_norm: float):
    r"""Scale ``grad`` in place so that :math:`\|g\|_2 \le` max_norm; returns the norm before.

    The scale :math:`\min(1, \text{max\_norm} / \|g\|)` is applied without asking whether
    it is needed, so on a GPU no value has to be read back (no synchronisation).
    """
    xp = array_module(grad)
    norm = xp.sqrt(grad @ grad)  # 0-d array; one BLAS dot product
    grad *= xp.minimum(1.0, max_norm / (norm + 1e-12))
    return norm


class SGD:
    r"""Stochastic gradient descent with momentum :math:`\mu`:

    .. math:: v \leftarrow \mu v + g, \qquad \theta \leftarrow \theta - \eta v
    """

    def __init__(
        self, flat, lr: float = 1e-2, momentum: float = 0.9, clip_norm: float | None = None
    ):
        self.flat, self.lr, self.momentum, self.clip_norm = flat, lr, momentum, clip_norm
        self.velocity = array_module(flat.data).zeros_like(flat.data)  # (P,)
        self.t = 0

    def step(self):
        g = self.flat.grad
        if self.clip_norm is not None:
            clip_grad_norm(g, self.clip_norm)
        self.velocity *= self.momentum
        self.velocity += g
        self.flat.data -= self.lr * self.velocity
        self.t += 1

    def state_dict(self):
        return {"t": self.t, "velocity": self.velocity}

    def load_state_dict(self, state):
        self.t = int(state["t"])
        self.velocity[...] = state["velocity"]


class Adam:
    r"""Adam (Kingma & Ba 2015), in the form PyTorch uses, so runs compare directly:

    .. math::
        m &\leftarrow \beta_1 m + (1 - \beta_1) g, \qquad
        v \leftarrow \beta_2 v + (1 - \beta_2) g^2 \\
        \theta &\leftarrow \theta - \frac{\eta}{1 - \beta_1^t}\,
            \frac{m}{\sqrt{v} / \sqrt{1 - \beta_2^t} + \epsilon}

    The two fractions :math:`1 - \beta^t` undo the bias of m and v towards their zero start.
    ``step`` computes the same update with both corrections folded into two numbers, so that
    no whole-buffer pass is spent on them:

    .. math:: \theta \leftarrow \theta - \alpha_t \frac{m}{\sqrt{v} + \hat\epsilon_t}, \qquad
              \alpha_t = \frac{\eta \sqrt{1 - \beta_2^t}}{1 - \beta_1^t}, \qquad
              \hat\epsilon_t = \epsilon \sqrt{1 - \beta_2^t}

    On a GPU the whole update is one fused kernel. On the CPU it is NumPy, the buffer block
    by block (see ``BLOCK``), or, when Numba is installed, one compiled loop with the same
    result to the bit (``tinyvae/kernels.py``); ``compiled=False`` asks for NumPy even then
    (it changes nothing on a GPU). Both CPU paths clear the moments of subnormal numbers
    every ``FLUSH_EVERY`` steps (see :func:`flush_subnormals`).
    """

    BLOCK = 2**15  # elements per block: the 5 arrays of a block (640 KB) stay in the CPU cache
    FLUSH_EVERY = 10  # steps between two flush_subnormals

    def __init__(
        self,
        flat,
        lr: float = 1e-3,
        betas=(0.9, 0.999),
        eps: float = 1e-8,
        clip_norm: float | None = None,
        compiled: bool = True,
    ):
        xp = array_module(flat.data)
        self.flat, self.lr, self.eps, self.clip_norm = flat, float(lr), float(eps), clip_norm
        self.compiled = compiled  # use the compiled CPU loop when there is one
        # Python floats: NumPy then rounds them to the buffer's dtype (a float64 scalar
        # would turn a float32 update into a float64 one, rounded differently)
        self.beta1, self.beta2 = float(betas[0]), float(betas[1])
        self.m = xp.zeros_like(flat.data)  # (P,) first moment
        self.v = xp.zeros_like(flat.data)  # (P,) second moment
        self.scratch = xp.empty_like(flat.data)  # (P,) reused every step: no new arrays
        self.t = 0

    def step(self):
        g = self.flat.grad
        if self.clip_norm is not None:
            clip_grad_norm(g, self.clip_norm)
        self.t += 1
        root_bias2 = math.sqrt(1 - self.beta2**self.t)
        alpha = self.lr * root_bias2 / (1 - self.beta1**self.t)  # alpha_t above
        eps_hat = self.eps * root_bias2  # epsilon-hat_t above
        b1, b2 = self.beta1, self.beta2
        if cupy is not None and isinstance(g, cupy.ndarray):
            _adam_kernel(g, b1, 1 - b1, b2, 1 - b2, alpha, eps_hat, self.flat.data, self.m, self.v)
            return
        flush = self.t % self.FLUSH_EVERY == 0
        kernel = compiled_adam_update() if self.compiled else None
        if kernel is not None:  # one loop over the buffer instead of a dozen
            c = g.dtype.type  # the scalars in the buffer's dtype
            tiny = np.finfo(g.dtype).tiny
            kernel(g, c(b1), c(1 - b1), c(b2), c(1 - b2), c(alpha), c(eps_hat), flush, c(tiny),
                   self.flat.data, self.m, self.v)  # fmt: skip
            return
        # The NumPy path: the buffer in blocks, each updated by the dozen passes of _update.
        for start in range(0, g.size, self.BLOCK):
            self._update(slice(start, start + self.BLOCK), alpha, eps_hat, flush)

    def _update(self, block, alpha, eps_hat, flush):
        """The NumPy update of ``data[block]``: each line is one pass, written in place."""
        g, m, v, s = self.flat.grad[block], self.m[block], self.v[block], self.scratch[block]
        if flush:  # here, where the block is in the cache for the update anyway
            flush_subnormals(m, s)
            flush_subnormals(v, s)
        np.multiply(g, 1 - self.beta1, out=s)  # m = beta1 m + (1 - beta1) g
        m *= self.beta1
        m += s
        np.multiply(g, g, out=s)  # v = beta2 v + (1 - beta2) g^2
        s *= 1 - self.beta2
        v *= self.beta2
        v += s
        np.sqrt(v, out=s)  # s = alpha m / (sqrt(v) + eps_hat)
        s += eps_hat
        np.divide(m, s, out=s)
        s *= alpha
        self.flat.data[block] -= s

    def state_dict(self):
        return {"t": self.t, "m": self.m, "v": self.v}

    def load_state_dict(self, state):
        self.t = int(state["t"])
        self.m[...] = state["m"]
        self.v[...] = state["v"]


@functools.cache
def compiled_adam_update():
    """``kernels.adam_update``, or None without Numba or with ``TINYVAE_KERNELS=numpy``.

    Imported on first use, not with tinyvae, so a program that never steps Adam on the
    CPU does not wait for Numba to load. The answer is kept for the rest of the process:
    set the variable before the first step (``compiled_adam_update.cache_clear()`` makes
    it look again)."""
    if os.environ.get("TINYVAE_KERNELS", "").strip().lower() == "numpy":
        return None
    try:
        from tinyvae.kernels import adam_update
    except ImportError:
        return None
    return adam_update


def flush_subnormals(a, scratch):
    """Set the entries of ``a`` smaller in size than the smallest normal float to 0, in place.

    Where a gradient stays exactly 0 (a pixel that is blank in every image of the batch),
    Adam's m shrinks by beta1 each step until it falls below about 1e-38 (float32), into the
    *subnormal* numbers, on which x86 CPUs compute 10-100 times slower. A value that small
    moves no weight (it is divided by at least eps_hat), so setting it to 0 changes nothing
    but the time. ``scratch``: an array like ``a`` to work in.
    """
    xp = array_module(a)
    xp.abs(a, out=scratch)
    a[scratch < xp.finfo(a.dtype).tiny] = 0


if cupy is not None:  # one GPU kernel for the whole Adam update: one pass, no temporaries
    _adam_kernel = cupy.ElementwiseKernel(
        "T g, T b1, T one_minus_b1, T b2, T one_minus_b2, T alpha, T eps_hat",
        "T theta, T m, T v",
        """
        m = b1 * m + one_minus_b1 * g;
        v = b2 * v + one_minus_b2 * g * g;
        theta -= alpha * m / (sqrt(v) + eps_hat);
        """,
        "tinyvae_adam",
    )


OPTIMIZERS = {"adam": Adam, "sgd": SGD}
