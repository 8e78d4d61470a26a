"""tinyvae: a Variational Autoencoder written from scratch, every gradient by hand.

    tinyvae/core/    the maths a learner reads: backend, layers, distributions, params,
                     model, optim, gradcheck (and kernels, the fast paths of Adam)
    tinyvae/tools/   what runs it: data and files, training, checkpoints, pictures, the CLI
    tinyvae/train.py, sample.py, evaluate.py    the three commands (python -m tinyvae.train)

The core imports nothing from the tools; ``tests/test_layering.py`` checks it.
"""

from tinyvae.core.backend import Backend, get_backend
from tinyvae.core.model import VAE
from tinyvae.core.optim import SGD, Adam
from tinyvae.errors import BackendError, CheckpointError, DataError, Diverged, UserError
from tinyvae.tools.data import Batches, Dataset, load
from tinyvae.tools.run_folder import Run, load_run

__all__ = [
    "VAE",
    "Adam",
    "SGD",
    "Backend",
    "BackendError",
    "Batches",
    "CheckpointError",
    "DataError",
    "Dataset",
    "Diverged",
    "Run",
    "UserError",
    "get_backend",
    "load",
    "load_run",
]
__version__ = "0.1.0"
