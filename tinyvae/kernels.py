r"""A compiled CPU loop, for the one place where NumPy's one-pass-per-operation costs most.

NumPy runs every operation as its own pass over memory. Adam's update
(``optim.Adam._update``) is a dozen such passes over all 650,000 parameters of the default
model, every step: about a third of a training epoch on the CPU. The loop below does the
same update in **one** pass, element by element, and Numba compiles it to machine code.
It is the CuPy kernel of ``optim.py`` written as a Python loop.

It runs on one core on purpose. Between two matrix products OpenBLAS keeps its worker
threads spinning for a while, so a second set of threads started here would fight them
for the cores; measured on 2 cores, that made the whole epoch twice as slow.

Numba is optional (``pip install "tinyvae[fast]"``). ``optim.Adam`` uses this module when
Numba can be imported, and the NumPy code otherwise, or when the environment variable
``TINYVAE_KERNELS=numpy`` is set; ``tests/test_perf_paths.py`` checks that both give the
same bits. Importing this module fails with ImportError when Numba is not installed.

The first call compiles the loop (about a second); ``cache=True`` keeps the machine code
on disk, so later runs start at once.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, error_model="numpy")
def adam_update(g, b1, one_minus_b1, b2, one_minus_b2, alpha, eps_hat, tiny, theta, m, v):
    r"""One Adam step on flat arrays, in place: theta, m, v and g are all (P,), one dtype.

    The arguments are those of the CuPy kernel in ``optim.py``, plus ``tiny``. The scalars
    come in the arrays' dtype, so that a float32 run stays in float32, with the bias
    corrections already folded into ``alpha`` and ``eps_hat`` (see ``optim.Adam``):

    .. math:: m \leftarrow \beta_1 m + (1 - \beta_1) g, \quad
              v \leftarrow \beta_2 v + (1 - \beta_2) g^2, \quad
              \theta \leftarrow \theta - \alpha\, m / (\sqrt v + \hat\epsilon)

    Each line rounds as the NumPy update in ``optim.Adam._update`` does (the brackets set
    the order), so both give the same bits. Moments smaller in size than ``tiny`` (the
    smallest normal float) are set to 0, so they never become the subnormal numbers that
    x86 CPUs compute slowly (``optim.flush_subnormals`` does this for the NumPy update,
    every 10 steps).
    """
    zero = tiny - tiny  # 0 in the scalars' dtype: a bare 0 would make the loop float64
    for i in range(theta.size):
        gi = g[i]
        mi = b1 * m[i] + one_minus_b1 * gi
        vi = b2 * v[i] + one_minus_b2 * (gi * gi)
        if abs(mi) < tiny:
            mi = zero
        if vi < tiny:  # v is never negative
            vi = zero
        m[i] = mi
        v[i] = vi
        theta[i] -= alpha * (mi / (np.sqrt(vi) + eps_hat))
