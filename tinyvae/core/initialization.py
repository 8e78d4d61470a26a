r"""How a layer with weights draws them, once, from a host generator (so that every backend
starts from the same numbers): the initialisations ``Linear``, ``Conv2d`` and
``ConvTranspose2d`` share, each layer giving its own fan-in and fan-out.
"""

from __future__ import annotations

import math

import numpy as np

INITIALIZATIONS = ("pytorch", "he", "glorot")  # one layer's choices


def initial_weights(init: str, shape, fan_in: int, fan_out: int, rng, dtype):
    r"""W of ``shape`` and b of ``(shape[-1],)``, drawn once from the host generator ``rng``:

    * ``"pytorch"``: W and b uniform in :math:`\pm 1/\sqrt{\text{fan\_in}}` (PyTorch's default);
    * ``"he"``: W normal with variance :math:`2/\text{fan\_in}`, b = 0 (before a ReLU);
    * ``"glorot"``: W uniform in :math:`\pm\sqrt{6/(\text{fan\_in} + \text{fan\_out})}`, b = 0.
    """
    b = np.zeros(shape[-1])
    if init == "pytorch":
        bound = 1 / math.sqrt(fan_in)
        W = rng.uniform(-bound, bound, shape)
        b = rng.uniform(-bound, bound, shape[-1])
    elif init == "he":
        W = rng.standard_normal(shape) * math.sqrt(2.0 / fan_in)
    elif init == "glorot":
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        W = rng.uniform(-limit, limit, shape)
    else:
        raise ValueError(f"unknown init {init!r}: choose one of {', '.join(INITIALIZATIONS)}")
    return {"W": W.astype(dtype), "b": b.astype(dtype)}
