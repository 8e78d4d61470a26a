"""Every error tinyvae raises on purpose: the ones that mean "the user asked for something
we cannot do". Each message is one line that says what was wrong and what to do.

Command-line tools catch :class:`UserError` (and so every class below), print its message
as a single line on stderr and exit with status 2 (``tinyvae/tools/cli.py``). Programming
errors (bugs) are not UserErrors and keep their tracebacks.

    UserError            bad input or a bad environment
    ├── ModelError       a model's arguments that cannot build one (also a ValueError)
    ├── BackendError     a backend that cannot be used here (no CuPy, no GPU, a typo)
    ├── DataError        a data file or data option that cannot be used
    ├── CheckpointError  a checkpoint file that cannot be used
    └── Diverged         the loss, a gradient or the weights became NaN or Inf
"""


class UserError(Exception):
    """Bad input or a bad environment, explained in one actionable line."""


class ModelError(UserError, ValueError):
    """A model's arguments (sizes, likelihood, activation, init, arch, image shape) cannot
    build one; ``tinyvae.core.networks.check_architecture`` says which and why."""


class BackendError(UserError):
    """A backend was asked for that cannot be used here; the message says what to do."""


class DataError(UserError):
    """A data file or data option cannot be used; the message says why and what to do."""


class CheckpointError(UserError):
    """A checkpoint file cannot be used; the message names it and says why."""


class Diverged(UserError):
    """The loss, a gradient or the weights became NaN or Inf; the message names the epoch
    and step."""
