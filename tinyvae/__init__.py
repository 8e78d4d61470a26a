"""tinyvae: a Variational Autoencoder written from scratch, every gradient by hand."""

from tinyvae.backend import Backend, BackendError, get_backend
from tinyvae.data import Batches, Dataset, load
from tinyvae.errors import UserError
from tinyvae.idx import DataError
from tinyvae.model import VAE
from tinyvae.optim import SGD, Adam

__all__ = [
    "VAE",
    "Adam",
    "SGD",
    "Backend",
    "BackendError",
    "Batches",
    "DataError",
    "Dataset",
    "UserError",
    "get_backend",
    "load",
]
__version__ = "0.1.0"
