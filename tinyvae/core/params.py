"""All of a model's parameters in one flat array, each parameter a view into it.

Why: the optimizer then updates *every* parameter with a handful of whole-buffer,
in-place operations (``data -= lr * step``) instead of a Python loop over a dozen
small arrays, and saving a checkpoint is saving one array. Each layer keeps using its
own ``W`` and ``b``: they are views (``flat.data[offset:offset + size].reshape(shape)``),
so writing into a view writes into the buffer, and vice versa.

    data: [ encoder.0.W (784*400) | encoder.0.b (400) | ... | decoder.2.b (784) ]
"""

from __future__ import annotations


class FlatParameters:
    """``data`` and ``grad``: two flat arrays; ``params`` and ``grads``: name -> view."""

    def __init__(self, named_arrays: dict, backend):
        xp, dtype = backend.xp, backend.dtype
        total = sum(int(a.size) for a in named_arrays.values())
        self.data = xp.empty(total, dtype=dtype)  # (P,)
        self.grad = xp.zeros(total, dtype=dtype)  # (P,)
        self.params, self.grads, self.shapes = {}, {}, {}
        offset = 0
        for name, array in named_arrays.items():
            size, shape = int(array.size), tuple(array.shape)
            self.params[name] = self.data[offset : offset + size].reshape(shape)
            self.grads[name] = self.grad[offset : offset + size].reshape(shape)
            self.params[name][...] = backend.asarray(array)
            self.shapes[name] = shape
            offset += size

    @property
    def size(self) -> int:
        """P, the number of scalar parameters."""
        return int(self.data.size)
