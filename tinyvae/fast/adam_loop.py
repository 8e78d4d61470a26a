r"""Adam's update as one loop over the flat buffer, for Numba to compile (``numba_jit.py``).

NumPy's update (``adam.adam_numpy``) is a dozen passes over the buffer, each loading and
storing whole arrays. This loop loads 4 numbers per parameter (theta, g, m, v), keeps the
rest in registers, and stores 3. It is the formula of the CuPy kernel in ``adam.py``.
"""

from __future__ import annotations

import numpy as np


def adam_update(g, b1, one_minus_b1, b2, one_minus_b2, alpha, eps_hat, flush, tiny, theta, m, v):
    r"""One Adam step on flat arrays, in place: theta, m, v and g are all (P,), one dtype.

    The scalars come in the arrays' dtype, so that a float32 run stays in float32, with the
    bias corrections already folded into ``alpha`` and ``eps_hat`` (see ``optim.Adam``):

    .. math:: m \leftarrow \beta_1 m + (1 - \beta_1) g, \quad
              v \leftarrow \beta_2 v + (1 - \beta_2) g^2, \quad
              \theta \leftarrow \theta - \alpha\, m / (\sqrt v + \hat\epsilon)

    With ``flush`` true, moments smaller in size than ``tiny`` (the smallest normal float)
    are first set to 0, as ``adam.flush_subnormals`` does on the NumPy path, so that they
    never linger as the subnormal numbers that x86 CPUs compute slowly. Each line rounds as
    the NumPy update does (the brackets set the order), so both paths give the same bits.

    Nothing here checks the arguments: ``adam.adam_update`` passes arrays of one size and
    dtype and scalars of that dtype (a Python float would turn the loop into float64).
    """
    zero = tiny - tiny  # 0 in the scalars' dtype: a bare 0 would make the loop float64
    for i in range(theta.size):
        mi, vi, gi = m[i], v[i], g[i]
        if flush and abs(mi) < tiny:
            mi = zero
        if flush and vi < tiny:  # v is never negative
            vi = zero
        mi = b1 * mi + one_minus_b1 * gi
        vi = b2 * vi + one_minus_b2 * (gi * gi)
        m[i] = mi
        v[i] = vi
        theta[i] -= alpha * (mi / (np.sqrt(vi) + eps_hat))
