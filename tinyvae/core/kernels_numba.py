r"""A compiled CPU loop, for the one place where NumPy's one-operation-at-a-time costs most.

NumPy runs every operation as its own loop over the array. Adam's update
(``kernels.adam_numpy``) is a dozen such loops over all 650,000 parameters of the default
model, every step, which load and store 28 numbers per parameter and cost about a third of
a training epoch on the CPU. The loop below does the same update element by element: it
loads 4 numbers (theta, g, m, v), keeps the rest in registers, and stores 3. Numba
compiles it to machine code. It is the formula of the CuPy kernel in ``kernels.py``.

It runs on one core on purpose. Between two matrix products OpenBLAS keeps its worker
threads spinning for a while, so a second set of threads started here would fight them
for the cores; measured on 2 cores, that made the whole epoch more than twice as slow
(``benchmarks/README.md``).

Numba is optional (``pip install "tinyvae[fast]"``). ``kernels.adam_update`` uses this
module when Numba can be imported, and the NumPy code otherwise, or when the environment variable
``TINYVAE_KERNELS=numpy`` is set; ``tests/test_perf_paths.py`` checks, step by step, that
both give the same bits. Importing this module fails with ImportError when Numba is not
installed.

The first call in a process compiles the loop, or reads it back from the disk cache that
``cache=True`` keeps: about half a second, once.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, error_model="numpy")
def adam_update(g, b1, one_minus_b1, b2, one_minus_b2, alpha, eps_hat, flush, tiny, theta, m, v):
    r"""One Adam step on flat arrays, in place: theta, m, v and g are all (P,), one dtype.

    The scalars come in the arrays' dtype, so that a float32 run stays in float32, with the
    bias corrections already folded into ``alpha`` and ``eps_hat`` (see ``optim.Adam``):

    .. math:: m \leftarrow \beta_1 m + (1 - \beta_1) g, \quad
              v \leftarrow \beta_2 v + (1 - \beta_2) g^2, \quad
              \theta \leftarrow \theta - \alpha\, m / (\sqrt v + \hat\epsilon)

    With ``flush`` true, moments smaller in size than ``tiny`` (the smallest normal float)
    are first set to 0, as ``kernels.flush_subnormals`` does on the NumPy path, so that they
    never linger as the subnormal numbers that x86 CPUs compute slowly. Each line rounds as
    the NumPy update does (the brackets set the order), so both paths give the same bits.

    Nothing here checks the arguments: ``kernels.adam_update`` passes arrays of one size and dtype
    and scalars of that dtype (a Python float would turn the loop into float64).
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
