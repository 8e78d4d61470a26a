"""tinyvae: a Variational Autoencoder written from scratch, every gradient by hand.

    tinyvae/core/    the maths a learner reads, in the order the lessons teach it
                     (``core/__init__.py`` gives that order)
    tinyvae/fast/    the same numbers, sooner: in-place activations, the fused Bernoulli,
                     Adam's kernels, compiled im2col and col2im
    tinyvae/tools/   what runs it: data and files, training, checkpoints, pictures, the CLI
    tinyvae/train.py, sample.py, evaluate.py    the three commands (python -m tinyvae.train)
    tinyvae/cupy_check.py, errors.py    why CuPy cannot run here; every error, in one line

The core imports nothing from the tools; ``tests/test_layering.py`` checks it. The names
below load their module on first use, so ``import tinyvae.core`` loads no tools.
"""

import importlib

_HOMES = {  # name -> the module that defines it
    "VAE": "tinyvae.core.model",
    "Adam": "tinyvae.core.optim",
    "SGD": "tinyvae.core.optim",
    "Backend": "tinyvae.core.backend",
    "get_backend": "tinyvae.core.backend",
    "BackendError": "tinyvae.errors",
    "CheckpointError": "tinyvae.errors",
    "DataError": "tinyvae.errors",
    "Diverged": "tinyvae.errors",
    "ModelError": "tinyvae.errors",
    "UserError": "tinyvae.errors",
    "Batches": "tinyvae.tools.data",
    "Dataset": "tinyvae.tools.data",
    "load": "tinyvae.tools.data",
    "Run": "tinyvae.tools.run_folder",
    "load_run": "tinyvae.tools.run_folder",
    "pretrained": "tinyvae.tools.pretrained",
    "pretrained_models": "tinyvae.tools.pretrained",
}
__all__ = sorted(_HOMES)
__version__ = "0.1.0"


def __getattr__(name):
    if name not in _HOMES:
        raise AttributeError(f"module 'tinyvae' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value  # found once; later lookups do not come here
    return value


def __dir__():
    return sorted(set(globals()) | set(_HOMES))
