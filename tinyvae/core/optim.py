r"""Optimizers written by hand, updating one flat parameter buffer in place.

Both take the model's flat arrays (``model.flat.data`` and ``model.flat.grad``, see
``params.py``), so one step is a few whole-buffer operations, each written into existing
memory: no per-parameter Python loop and no new arrays per step.

    opt = Adam(model.flat, lr=1e-3)
    loss, parts, grads = model.loss_and_grads(x)
    opt.step()
"""

from __future__ import annotations

import math

from tinyvae.core.backend import array_module
from tinyvae.fast import adam


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

    def __init__(self, flat, lr: float = 1e-2, momentum: float = 0.9, clip_norm=None):
        self.flat, self.lr, self.momentum, self.clip_norm = flat, lr, momentum, clip_norm
        self.velocity = array_module(flat.data).zeros_like(flat.data)  # (P,)
        self.t = 0

    def step(self):
        """One update from ``flat.grad``, which ``model.loss_and_grads`` has just written."""
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
    ``step`` folds both corrections into two numbers, so that no pass over the buffer is
    spent on them:

    .. math:: \theta \leftarrow \theta - \alpha_t \frac{m}{\sqrt{v} + \hat\epsilon_t}, \qquad
              \alpha_t = \frac{\eta \sqrt{1 - \beta_2^t}}{1 - \beta_1^t}, \qquad
              \hat\epsilon_t = \epsilon \sqrt{1 - \beta_2^t}

    and hands the three lines above to ``tinyvae/fast/adam.py``, which runs them as one GPU
    kernel, one compiled CPU loop (with Numba) or a few NumPy passes, all with the same
    result. ``compiled=False`` asks for the NumPy passes even when Numba is there.
    """

    def __init__(self, flat, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, clip_norm=None, compiled=True):
        xp = array_module(flat.data)
        self.flat, self.lr, self.eps, self.clip_norm = flat, float(lr), float(eps), clip_norm
        self.beta1, self.beta2 = float(betas[0]), float(betas[1])  # Python floats: see fast/adam.py
        self.compiled = compiled
        self.m = xp.zeros_like(flat.data)  # (P,) first moment
        self.v = xp.zeros_like(flat.data)  # (P,) second moment
        self.scratch = xp.empty_like(flat.data)  # (P,) for the NumPy passes: no new arrays
        self.t = 0

    def step(self):
        """One update of every parameter, from the gradient in ``flat.grad``: the buffer that
        ``model.loss_and_grads`` has just written (the model and this optimizer share
        ``model.flat``, so nothing is passed between them). Clips it first if ``clip_norm``."""
        if self.clip_norm is not None:
            clip_grad_norm(self.flat.grad, self.clip_norm)
        self.t += 1
        self.step_part(slice(None), self.t)

    def step_part(self, part, t):
        """Update ``t`` (from 1) of the parameters in ``part``, a slice of the flat buffer.
        The update is element by element, so the parts of a buffer may be updated apart,
        even at once on several threads (``tinyvae/tools/halves.py``), with the same bits."""
        root_bias2 = math.sqrt(1 - self.beta2**t)
        alpha = self.lr * root_bias2 / (1 - self.beta1**t)  # alpha_t above
        eps_hat = self.eps * root_bias2  # epsilon-hat_t above
        adam.adam_update(self.flat.data[part], self.flat.grad[part], self.m[part], self.v[part],
                         self.beta1, self.beta2, alpha, eps_hat, t, self.scratch[part],
                         self.compiled)  # fmt: skip

    def state_dict(self):
        return {"t": self.t, "m": self.m, "v": self.v}

    def load_state_dict(self, state):
        self.t = int(state["t"])
        self.m[...] = state["m"]
        self.v[...] = state["v"]


OPTIMIZERS = {"adam": Adam, "sgd": SGD}  # the names --optimizer takes
