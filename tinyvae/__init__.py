"""tinyvae: a Variational Autoencoder written from scratch, every gradient by hand."""

from tinyvae.backend import Backend, BackendError, get_backend
from tinyvae.errors import UserError
from tinyvae.model import VAE
from tinyvae.optim import SGD, Adam

__all__ = ["VAE", "Adam", "SGD", "Backend", "BackendError", "UserError", "get_backend"]
__version__ = "0.1.0"
