"""What every command-line tool shares: one-line errors, exit codes, Ctrl-C.

    if __name__ == "__main__":
        sys.exit(run(main))

A :class:`UserError` (bad flag, missing file, diverged training ...) prints
``error: <message>`` as one line on stderr and exits with status 2, without a traceback.
So does running out of memory, which a size that is too large for this machine causes
(``--hidden 100000``, ``--n 10000000000``). Ctrl-C exits with status 130. Any other
exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading

from tinyvae.errors import UserError

USER_ERROR, INTERRUPTED = 2, 130


def run(main, argv=None) -> int:
    """Call ``main(argv)`` and turn its outcome into an exit status."""
    try:
        return int(main(argv) or 0)
    except UserError as error:
        return report(str(error))
    except MemoryError as error:
        return report(
            f"out of memory ({error or 'no detail'}): ask for less, such as a smaller "
            "--hidden, --latent-dim, --batch-size, --n or --k"
        )
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return INTERRUPTED


def report(message: str) -> int:
    """Print ``error: message`` as one line on stderr; return the user-error status."""
    message = " ".join(message.split())  # one line, whatever the message held
    print(f"error: {message}", file=sys.stderr)
    return USER_ERROR


@contextlib.contextmanager
def ctrl_c_stops_gently(notice="stopping after this step (press Ctrl-C again to quit at once)"):
    """Within this block, the first Ctrl-C only sets a flag; yields ``stop() -> bool``.

    The training loop checks ``stop()`` after every step and then saves a consistent
    checkpoint. A second Ctrl-C raises KeyboardInterrupt as usual. (Signals can only be
    caught in the main thread; elsewhere ``stop()`` is always False.)
    """
    requested = []
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        requested.append(signum)
        signal.signal(signal.SIGINT, previous)  # the next Ctrl-C interrupts at once
        print(f"\n{notice}", file=sys.stderr, flush=True)

    signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: bool(requested)
    finally:
        signal.signal(signal.SIGINT, previous)
