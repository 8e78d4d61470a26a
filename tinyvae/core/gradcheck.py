r"""Gradient checking by central finite differences, in float64.

For a scalar function :math:`f(\theta)` and a small :math:`h`,

.. math:: \frac{\partial f}{\partial \theta_i} \approx
          \frac{f(\theta + h e_i) - f(\theta - h e_i)}{2h},

with error :math:`O(h^2)`. Two checks:

* ``numerical_gradient``: every element (or a random subset) one at a time;
* ``directional_check``: one random direction :math:`u`, comparing
  :math:`(f(\theta + hu) - f(\theta - hu)) / 2h` with :math:`\nabla f \cdot u`: this touches every
  parameter at once for the cost of two evaluations (Chainer's ``check_backward`` idea).

The functions perturb the given array *in place* (and restore it), so they test the
real code path: pass the live parameter array and a closure that runs the model.
"""

from __future__ import annotations

import numpy as np

from tinyvae.core.backend import array_module


def to_host(a):
    """A NumPy float64 copy of a NumPy or CuPy array (CuPy arrays have ``.get()``)."""
    return np.asarray(a.get() if hasattr(a, "get") else a, dtype=np.float64)


def relative_error(analytic, numeric) -> float:
    r"""Norm-wise relative error :math:`\|a - n\|_2 / \max(\|a\|_2, \|n\|_2)`.

    Measured over the whole array rather than element by element, so that a gradient
    element that is nearly zero (where finite differences only see round-off) does not
    dominate. A wrong gradient gives an error of order 1; a right one, about 1e-9.
    """
    a, n = to_host(analytic).reshape(-1), to_host(numeric).reshape(-1)
    scale = max(np.linalg.norm(a), np.linalg.norm(n))
    return float(np.linalg.norm(a - n) / scale) if scale > 0 else 0.0


def numerical_gradient(f, array, h: float = 1e-5, indices=None):
    """Central differences of scalar ``f()`` w.r.t. ``array`` (perturbed in place, restored).

    ``indices``: flat positions to check (default: all). Returns a NumPy float64 array of
    the same size as ``indices`` (or the array's shape when checking all).
    """
    flat = array.reshape(-1)  # a view: writing into it writes into ``array``
    positions = range(flat.size) if indices is None else indices
    grad = np.empty(len(positions), dtype=np.float64)
    for j, i in enumerate(positions):
        saved = float(flat[i])
        flat[i] = saved + h
        f_plus = float(f())
        flat[i] = saved - h
        f_minus = float(f())
        flat[i] = saved
        grad[j] = (f_plus - f_minus) / (2 * h)
    return grad.reshape(array.shape) if indices is None else grad


def check_gradient(
    f, array, analytic, h: float = 1e-5, max_checks: int | None = None, seed: int = 0
):
    """Relative error between ``analytic`` (same shape as ``array``) and central differences.

    With ``max_checks``, only that many randomly chosen elements are compared.
    """
    analytic = to_host(analytic).reshape(-1)
    indices = None
    if max_checks is not None and array.size > max_checks:
        indices = np.random.default_rng(seed).choice(array.size, max_checks, replace=False)
    numeric = numerical_gradient(f, array, h, indices).reshape(-1)
    return relative_error(analytic if indices is None else analytic[indices], numeric)


def directional_check(f, array, analytic, h: float = 1e-5, seed: int = 0):
    """Relative error of the directional derivative along one random unit direction u."""
    u_host = np.random.default_rng(seed).standard_normal(array.shape)
    u_host /= np.linalg.norm(u_host)
    u = array_module(array).asarray(u_host, dtype=array.dtype)
    saved = array.copy()
    array += h * u
    f_plus = float(f())
    array[...] = saved - h * u
    f_minus = float(f())
    array[...] = saved
    numeric = (f_plus - f_minus) / (2 * h)
    analytic_dot = float((to_host(analytic) * u_host).sum())
    return relative_error(analytic_dot, numeric)
